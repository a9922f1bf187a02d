"""signoff.html: the run on one self-contained page (its CSS and plots inline, no script, nothing
loaded from anywhere), for a person who has to decide from it. At the top the verdict, the
target, when and how long, Python and the services, the counts and (with a baseline) what
changed; then the claims, failing and unchecked first, each with its budget, measured figures
and evidence, opened to its plots, its details (stacks, the shrunk case, the seed to replay)
and every figure it recorded; then the plots of whole kinds."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signoff import __version__
from signoff.report.compare import REGRESSIONS, Change, ClaimChange, Comparison
from signoff.report.figures import describe
from signoff.report.html_figures import claim_figures, kind_figures
from signoff.report.html_plots import Figure
from signoff.report.html_style import CSS
from signoff.report.html_svg import esc
from signoff.report.run_info import RunInfo
from signoff.units import format_duration, format_size
from signoff.verdict import Verdict, overall

HTML_FILE = "signoff.html"
_GROUPS = (
    ("fails", "Fails"),
    ("error", "Could not be checked"),
    ("holds", "Holds"),
)
_WORD = {"holds": "HOLDS", "fails": "FAILS", "error": "ERROR"}
_GOOD = ("better", "now holds")
SHORT_ITEMS = 4  # figures in a claim's line; the rest when it is opened
LIST_ITEMS = 12  # items of a list shown in the figures table
_BYTES = ("rss", "bytes", "limit", "growth", "max_growth", "memory_limit")


def write_html(
    info: RunInfo, verdicts: list[Verdict], folder: Path, comparison: Comparison | None = None
) -> Path:
    path = folder / HTML_FILE
    path.write_text(render_html(info, verdicts, folder, comparison), encoding="utf-8")
    return path


def render_html(
    info: RunInfo, verdicts: list[Verdict], folder: Path, comparison: Comparison | None = None
) -> str:
    """The page. `folder`: the run folder, where load claims' artifacts are read from."""
    verdict = overall(verdicts)
    changes = {c.id: c for c in comparison.changes} if comparison is not None else {}
    body = [_header(info, verdicts, comparison), _claims(verdicts, folder, changes)]
    figures = kind_figures(verdicts)
    if figures:
        body.append(
            '<section class="kinds"><h2>By kind</h2>'
            + "".join(map(_figure, figures))
            + "</section>"
        )
    body.append(
        f"<footer>signoff {esc(__version__)} · rendered {esc(_when(datetime.now(UTC)))} from "
        f"{esc(folder.name)}/ledger.jsonl</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>signoff: {esc(info.target)} {esc(verdict)}</title>"
        f"<style>{CSS}</style></head><body>" + "".join(body) + "</body></html>\n"
    )


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the top: verdict, run, counts, comparison -----------------------------------------------------


def _header(info: RunInfo, verdicts: list[Verdict], comparison: Comparison | None) -> str:
    verdict = overall(verdicts)
    counts = {s: sum(v.status == s for v in verdicts) for s in ("fails", "error", "holds")}
    chips = "".join(
        f'<span class="count count-{s}"><b>{counts[s]}</b> {words}</span>'
        for s, words in (("fails", "fail"), ("error", "could not be checked"), ("holds", "hold"))
    )
    ready = {n: f"ready in {format_duration(s)}" for n, s in info.service_start_s.items()}
    services = "".join(
        f'<li><b>{esc(name)}</b> {esc(backend)} <span class="quiet">{esc(ready.get(name, ""))}'
        "</span></li>"
        for name, backend in info.services.items()
    )
    run = (
        f'<dl class="runinfo"><dt>started</dt><dd>{esc(_when(info.started))}</dd>'
        f"<dt>took</dt><dd>{esc(format_duration(info.duration_s))}</dd>"
        f"<dt>Python</dt><dd>{esc(info.python)}</dd>"
        f"<dt>services</dt><dd>{f'<ul class=services>{services}</ul>' if services else 'none'}</dd>"
        f"<dt>claims file</dt><dd><code>{esc(info.claims_file)}</code></dd></dl>"
    )
    notes = "".join(f'<p class="run-note">{esc(n)}</p>' for n in info.notes)
    if not verdicts:
        notes += '<p class="run-note">no claims were checked</p>'
    return (
        f'<header class="top top-{verdict}"><div class="verdict-line">'
        f'<span class="verdict-word">{_WORD[verdict]}</span>'
        f'<span class="target">{esc(info.target)}</span></div>'
        f'<div class="counts">{chips}</div></header>'
        f"{notes}{_comparison(comparison)}{run}"
    )


def _comparison(comparison: Comparison | None) -> str:
    if comparison is None:
        return ""
    order: tuple[Change, ...] = (
        "now fails",
        "worse",
        "better",
        "now holds",
        "new",
        "gone",
        "unchanged",
    )
    counts = comparison.counts()
    chips = "".join(
        f'<span class="change {_change_class(c)}"><b>{counts[c]}</b> {esc(c)}</span>'
        for c in order
        if counts.get(c)
    )
    gone = [c for c in comparison.changes if c.change == "gone"]
    gone_list = (
        '<p class="quiet">gone (in the baseline, not in this run): '
        + ", ".join(f"<code>{esc(c.id)}</code>" for c in gone)
        + "</p>"
        if gone
        else ""
    )
    head = "regressed" if comparison.regressed else "no regression"
    return (
        f'<section class="comparison comparison-{"bad" if comparison.regressed else "good"}">'
        f"<p><b>Against the baseline {esc(comparison.baseline)}: {head}</b></p>"
        f'<div class="counts">{chips or "no claim in common"}</div>{gone_list}'
        + "".join(f'<p class="quiet">{esc(n)}</p>' for n in comparison.notes)
        + "</section>"
    )


def _change_class(change: str) -> str:
    if change in REGRESSIONS:
        return "change-bad"
    return "change-good" if change in _GOOD else "change-quiet"


# -- the claims ------------------------------------------------------------------------------------


def _claims(verdicts: list[Verdict], folder: Path, changes: Mapping[str, ClaimChange]) -> str:
    parts = ['<section class="claims"><h2>Claims</h2>']
    for status, title in _GROUPS:
        group = [v for v in verdicts if v.status == status]  # file order within a group
        if not group:
            continue
        parts.append(f'<h3 class="group group-{status}">{title} ({len(group)})</h3>')
        parts.extend(_claim(v, folder, changes.get(v.id)) for v in group)
    parts.append("</section>")
    return "".join(parts)


def _claim(v: Verdict, folder: Path, change: ClaimChange | None) -> str:
    lines = v.evidence.splitlines()
    if v.status == "holds":
        evidence = f'<div class="ev ev-short">{esc(lines[0]) if lines else ""}</div>'
    else:
        evidence = f'<div class="ev">{esc(v.evidence)}</div>'
    badge = _change_badge(change) if change is not None else ""
    summary = (
        f'<summary><span class="badge badge-{v.status}">{_WORD[v.status]}</span>'
        f'<span class="what"><span class="id">{esc(v.id)}</span>{badge}{evidence}</span>'
        f'<span class="figs">{_short("budget", v.budget)}{_short("measured", v.measured)}</span>'
        "</summary>"
    )
    inside = "".join(map(_figure, claim_figures(v, folder)))
    if v.status == "holds" and len(lines) > 1:
        inside += f'<h4>evidence</h4><pre class="evidence">{esc(v.evidence)}</pre>'
    if v.details:
        inside += f'<h4>details</h4><pre class="details">{esc(v.details)}</pre>'
    table = _figures_table(v)
    if table:
        inside += f"<h4>every figure</h4>{table}"
    inside += f'<p class="quiet">checked in {esc(format_duration(v.duration_s))}</p>'
    opened = " open" if v.status == "fails" else ""
    return (
        f'<details class="claim claim-{v.status}"{opened}>{summary}'
        f'<div class="inside">{inside}</div></details>'
    )


def _change_badge(change: ClaimChange) -> str:
    figures = f"{change.old} → {change.new}" if change.old or change.new else ""
    tip = "; ".join(x for x in (figures, change.note) if x)
    words = f' <span class="quiet">{esc(figures)}</span>' if figures else ""
    return (
        f'<span class="change {_change_class(change.change)}" title="{esc(tip)}">'
        f"{esc(change.change)}</span>{words}"
    )


def _short(label: str, figures: Mapping[str, Any]) -> str:
    """The first few plain figures: a number, a word, a short string; tables and lists wait
    for the claim to be opened."""
    plain = {
        k: v
        for k, v in figures.items()
        if not isinstance(v, dict | list) and v is not None and len(str(v)) <= 60
    }
    text = describe(dict(list(plain.items())[:SHORT_ITEMS]))
    if not text:
        return ""
    return f'<span class="fig"><span class="quiet">{label}</span> {esc(text)}</span>'


def _figure(figure: Figure) -> str:
    return f"<figure><figcaption>{esc(figure.title)}</figcaption>{figure.body}</figure>"


def _figures_table(v: Verdict) -> str:
    rows = [*_flat("budget", v.budget), *_flat("measured", v.measured)]
    if not rows:
        return ""
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{esc(value)}</td></tr>" for k, value in rows)
    return f'<table class="all-figures"><tbody>{cells}</tbody></table>'


def _flat(
    prefix: str, figures: Mapping[str, Any], seconds: bool = False
) -> Iterator[tuple[str, str]]:
    """("measured.memory.max_rss", "98.5 MiB (103325696)"), ...: nested tables by dotted name;
    the numbers of a table named "..._s" (latency_s) are seconds too."""
    for key, value in figures.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            yield from _flat(name, value, seconds or str(key).endswith("_s"))
        else:
            yield name, _value(f"{key}_s" if seconds and key != "count" else str(key), value)


def _value(key: str, value: Any) -> str:
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return f"{len(value)} entries (drawn above)"  # a series for a plot: the timeline
    if isinstance(value, list):
        shown = ", ".join(_value(key, item) for item in value[:LIST_ITEMS])
        more = f" … ({len(value) - LIST_ITEMS} more)" if len(value) > LIST_ITEMS else ""
        return f"[{shown}{more}]"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key.endswith("_s") or key == "seconds":
        return format_duration(float(value))
    if key.endswith(_BYTES) and abs(value) >= 1024:
        return f"{format_size(float(value))} ({value})"
    return f"{value:g}" if isinstance(value, float) else str(value)


__all__ = ["HTML_FILE", "render_html", "write_html"]
