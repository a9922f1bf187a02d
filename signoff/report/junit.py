"""junit.xml: one testcase per claim, named by its claim id, for CI systems that read JUnit. Each
case carries the claim's budget and measured figures as properties ("budget.median_s",
"measured.median_s", ...), and a claim that does not hold its whole evidence as the failure's
message, so a CI system shows them without opening the report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
        figures = [*_flat("budget", verdict.budget), *_flat("measured", verdict.measured)]
        if figures:
            properties = ET.SubElement(case, "properties")
            for name, value in figures:
                ET.SubElement(properties, "property", name=name, value=value)
        if verdict.status != "holds":
            tag = "failure" if verdict.status == "fails" else "error"
            node = ET.SubElement(case, tag, message=verdict.evidence or verdict.status)
            node.text = "\n\n".join(x for x in (verdict.evidence, verdict.details) if x)
    root = ET.Element("testsuites")
    root.append(suite)
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path


def _flat(prefix: str, figures: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """("measured.memory.max_rss", "1234"), ...: nested tables by dotted name, lists as JSON."""
    for key, value in figures.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            yield from _flat(name, value)
        elif isinstance(value, str):
            yield name, value
        else:
            yield name, json.dumps(value)
