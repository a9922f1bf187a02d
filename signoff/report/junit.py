"""junit.xml: one testcase per claim, named by its claim id, for CI systems that read JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from signoff.report.run_info import RunInfo
from signoff.verdict import Verdict


def write_junit(info: RunInfo, verdicts: list[Verdict], path: Path) -> Path:
    suite = ET.Element(
        "testsuite",
        name=f"signoff {info.target}",
        tests=str(len(verdicts)),
        failures=str(sum(v.status == "fails" for v in verdicts)),
        errors=str(sum(v.status == "error" for v in verdicts)),
        time=f"{info.duration_s:.3f}",
        timestamp=info.started_iso,
    )
    for verdict in verdicts:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"signoff.{verdict.kind}",
            name=verdict.id,
            time=f"{verdict.duration_s:.3f}",
        )
        if verdict.status != "holds":
            tag = "failure" if verdict.status == "fails" else "error"
            node = ET.SubElement(
                case,
                tag,
                message=verdict.evidence.splitlines()[0] if verdict.evidence else verdict.status,
            )
            node.text = "\n\n".join(x for x in (verdict.evidence, verdict.details) if x)
    root = ET.Element("testsuites")
    root.append(suite)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
