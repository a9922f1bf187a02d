"""The CSS of signoff.html. Each plot mark's class sets one colour (--c); the shape's rules
paint with it (a line's stroke, a box's or a dot's fill, a legend's swatch), so a mark and its
legend entry cannot disagree."""

CSS = """
:root { --bg: #fff; --fg: #1f2328; --quiet: #59636e; --panel: #f6f8fa; --line: #d1d9e0;
  --grid: #eaeef2; --red: #cf222e; --green: #1a7f37; --amber: #9a6700; --blue: #0969da;
  --purple: #8250df; --orange: #bc4c00; color-scheme: light dark; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --quiet: #9198a1; --panel: #161b22; --line: #3d444d;
    --grid: #262c36; --red: #f85149; --green: #3fb950; --amber: #d29922; --blue: #4493f8;
    --purple: #ab7df8; --orange: #f0883e; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 0 20px 40px; background: var(--bg);
  color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
code, pre, .ev, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
h2 { font-size: 20px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); }
h3.group { font-size: 15px; margin: 18px 0 6px; text-transform: uppercase; letter-spacing: .04em; }
h3.group-fails { color: var(--red); } h3.group-error { color: var(--amber); }
h3.group-holds { color: var(--green); }
h4 { font-size: 13px; margin: 14px 0 4px; color: var(--quiet); }
.quiet { color: var(--quiet); }
.top { margin: 0 -20px; padding: 18px 20px 14px; color: #fff; }
.top-fails { background: #b42318; } .top-holds { background: #1a7f37; }
.verdict-line { display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap; }
.verdict-word { font-size: 52px; font-weight: 800; letter-spacing: .03em; line-height: 1; }
.target { font-size: 30px; font-weight: 600; }
.counts { display: flex; gap: 10px; flex-wrap: wrap; margin-top: 10px; }
.count, .change { padding: 2px 10px; border-radius: 12px; font-size: 14px;
  background: rgba(255,255,255,.18); }
.count b { font-size: 17px; }
.top-holds .count-fails, .top-holds .count-error { opacity: .75; }
.run-note { border-left: 5px solid var(--amber); background: var(--panel); padding: 8px 12px;
  margin: 12px 0; }
dl.runinfo { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 14px 0; }
dl.runinfo dt { color: var(--quiet); } dl.runinfo dd { margin: 0; }
ul.services { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap;
  gap: 4px 18px; }
.comparison { border: 1px solid var(--line); border-left-width: 6px; padding: 4px 14px 10px;
  margin: 14px 0; }
.comparison-bad { border-left-color: var(--red); }
.comparison-good { border-left-color: var(--green); }
.comparison .change, .claim .change { background: var(--panel); border: 1px solid var(--line); }
.change-bad { color: var(--red); font-weight: 700; border-color: var(--red) !important; }
.change-good { color: var(--green); font-weight: 700; border-color: var(--green) !important; }
.change-quiet { color: var(--quiet); }
details.claim { border: 1px solid var(--line); border-left: 6px solid var(--line); margin: 6px 0;
  border-radius: 4px; background: var(--bg); }
.claim-fails { border-left-color: var(--red) !important; }
.claim-error { border-left-color: var(--amber) !important; }
.claim-holds { border-left-color: var(--green) !important; }
summary { display: grid; grid-template-columns: 64px minmax(0, 1fr) minmax(180px, 30%);
  gap: 12px; padding: 8px 12px; cursor: pointer; list-style: none; }
summary::-webkit-details-marker { display: none; }
summary .id::before { content: "▸ "; color: var(--quiet); }
details[open] > summary .id::before { content: "▾ "; }
.badge { font-weight: 800; font-size: 13px; letter-spacing: .03em; align-self: start;
  padding: 1px 0; text-align: center; border-radius: 3px; color: #fff; }
.badge-fails { background: var(--red); } .badge-error { background: var(--amber); }
.badge-holds { background: var(--green); }
.what { min-width: 0; }
.id { font-weight: 650; word-break: break-word; }
.claim .change { margin-left: 8px; font-size: 12px; }
.ev { white-space: pre-wrap; word-break: break-word; font-size: 13px; margin-top: 4px; }
.claim-fails .ev { color: var(--fg); }
.ev-short { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; color: var(--quiet); }
.figs { font-size: 12.5px; display: flex; flex-direction: column; gap: 3px;
  word-break: break-word; }
.inside { padding: 2px 14px 12px 88px; border-top: 1px solid var(--grid); }
pre { background: var(--panel); padding: 8px 10px; overflow: auto; font-size: 12.5px;
  border-radius: 4px; white-space: pre-wrap; word-break: break-word; }
pre.details { max-height: 32em; white-space: pre; }
table.all-figures { border-collapse: collapse; font-size: 12.5px; }
table.all-figures th { text-align: left; font-weight: 400; color: var(--quiet);
  padding: 1px 16px 1px 0; vertical-align: top; }
table.all-figures td { font-family: ui-monospace, monospace; word-break: break-word; }
figure { margin: 12px 0 16px; overflow-x: auto; }
figcaption { font-weight: 650; font-size: 14px; margin-bottom: 4px; }
.kinds figure { border: 1px solid var(--line); border-radius: 4px; padding: 10px 14px; }
.note, .plot-error { font-size: 12.5px; color: var(--quiet); margin: 2px 0; }
.plot-error { color: var(--amber); }
footer { margin-top: 30px; font-size: 12px; color: var(--quiet); }
table.rows { border-collapse: collapse; }
table.rows th { text-align: right; font-weight: 500; font-size: 12.5px; padding: 0 10px 0 0;
  max-width: 380px; word-break: break-word; line-height: 1.2; }
table.rows th .sub { display: block; font-weight: 400; color: var(--quiet); font-size: 11.5px; }
table.rows td { padding: 1px 0; }
table.rows td.fig { font-size: 12px; padding-left: 10px; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
table.rows tr.row-fails th, table.rows tr.row-fails td.fig { color: var(--red); font-weight: 700; }
table.rows tr.row-error th { color: var(--amber); }
svg { display: block; max-width: 100%; height: auto; overflow: visible; }
svg .grid { stroke: var(--grid); } svg .axis { stroke: var(--quiet); }
svg text { font: 11px system-ui, sans-serif; fill: var(--quiet); }
svg text.mark-label { fill: var(--c); font-weight: 600; }
svg polyline { fill: none; stroke: var(--c); stroke-width: 2; stroke-linejoin: round; }
svg line:not(.grid):not(.axis) { stroke: var(--c); stroke-width: 2; }
svg rect, svg circle { fill: var(--c); }
ul.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 2px 16px; padding: 0;
  margin: 4px 0; font-size: 12px; color: var(--quiet); }
.swatch { display: inline-block; width: 16px; height: 10px; margin-right: 5px; background: var(--c);
  vertical-align: baseline; border-radius: 2px; }
.run { --c: var(--blue); } svg circle.run { opacity: .75; }
.median { --c: var(--fg); } svg line.median { stroke-width: 3; }
.budget { --c: var(--red); } svg line.budget { stroke-dasharray: 5 3; }
.swatch.budget, .swatch.lat-p99 { background: repeating-linear-gradient(90deg, var(--c) 0 5px,
  transparent 5px 8px); height: 3px; vertical-align: middle; }
.tol { --c: var(--red); } svg rect.tol, .swatch.tol { opacity: .15; }
.hung, .bar-hung, .bar-error, .raised { --c: var(--amber); }
svg rect.bar-hung, .swatch.bar-hung { opacity: .55; }
.bar-holds, .real, .recovered { --c: var(--green); }
.bar-fails, .stand-in, .failed, .rps-failed { --c: var(--red); }
.bar-unjudged { --c: var(--quiet); } svg rect.bar-unjudged { opacity: .5; }
.fault-on { --c: var(--red); } svg rect.fault-on, .swatch.fault-on { opacity: .18; }
.fault-lifting { --c: var(--amber); } svg rect.fault-lifting, .swatch.fault-lifting { opacity: .3; }
.answer { --c: var(--purple); } .lifted { --c: var(--quiet); }
.lat-p50, .rps, .rss { --c: var(--blue); } .lat-p95 { --c: var(--orange); }
.lat-p99 { --c: var(--purple); }
svg .lat-p50 { stroke-width: 1.6; } svg .lat-p95 { stroke-width: 2.4; }
svg .lat-p99 { stroke-width: 1.4; stroke-dasharray: 4 3; }
.users, .held { --c: var(--purple); } svg .held { stroke-dasharray: 6 2; }
.settling { --c: var(--quiet); } svg rect.settling, .swatch.settling { opacity: .12; }
a { color: var(--blue); }
@media print { details.claim { break-inside: avoid; } .inside { display: block; } }
"""
