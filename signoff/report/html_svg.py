"""Plots for signoff.html as inline SVG written from Python: scales with round ticks, an XY plot
(lines, dots, bands, bound lines) and a row chart (one strip per claim or case on a shared
axis, its label and figure in HTML beside it). Colours come from the page's CSS classes, so a
plot needs no script and no style of its own; every mark's <title> is its tooltip."""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

Format = Callable[[float], str]


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float) -> str:
    """A coordinate, short: 12.5, 3."""
    return f"{value:.1f}".removesuffix(".0")


def _short(value: float) -> str:
    """A number for a tick label: 0.25, 1.5, 2e+03 never; 2000."""
    return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"


def tick_seconds(value: float) -> str:
    """A duration tick: 0, 250 us, 50 ms, 1.5 s, 2 min."""
    if value == 0:
        return "0"
    if value < 1e-3:
        return f"{_short(value * 1e6)} us"
    if value < 1.0:
        return f"{_short(value * 1e3)} ms"
    if value < 120:
        return f"{_short(value)} s"
    return f"{_short(value / 60)} min"


def tick_plain(value: float) -> str:
    return _short(value)


def nice_step(span: float, count: int) -> float:
    """The round step (1, 2 or 5 times a power of ten) that cuts `span` into about `count`."""
    raw = span / max(count, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    # a step a little under `raw` is fine: a few more ticks, and less axis past the data
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.7)


@dataclass(frozen=True)
class Axis:
    """A domain and how its ticks read. `log`: ticks at powers of ten (values must be > 0)."""

    lo: float
    hi: float
    fmt: Format = tick_plain
    log: bool = False
    ticks: tuple[float, ...] = ()

    @classmethod
    def fit(
        cls,
        values: Iterable[float],
        *,
        fmt: Format = tick_plain,
        log: bool = False,
        zero: bool = True,
        count: int = 5,
    ) -> Axis:
        """An axis over `values` (from 0 unless `zero` is false, or on a log scale), its ends
        on round ticks."""
        data = [v for v in values if math.isfinite(v) and (v > 0 or not log)]
        if log:
            return cls._fit_log(data, fmt)
        lo = min([*data, 0.0]) if zero else min(data, default=0.0)
        hi = max(data, default=1.0)
        if hi <= lo:
            hi = lo + (abs(lo) or 1.0)
        step = nice_step(hi - lo, count)
        start = math.floor(lo / step + 1e-9) * step
        end = math.ceil(hi / step - 1e-9) * step
        n = round((end - start) / step)
        ticks = tuple(round(start + i * step, 12) for i in range(n + 1))
        return cls(start, end, fmt, False, ticks)

    @classmethod
    def _fit_log(cls, data: list[float], fmt: Format) -> Axis:
        lo = min(data, default=1e-3)
        hi = max(data, default=1.0)
        first = math.floor(math.log10(lo) + 1e-9)
        last = max(math.ceil(math.log10(hi) - 1e-9), first + 1)
        ticks = [10.0**k for k in range(first, last + 1)]
        if len(ticks) <= 3:  # a decade or two: 2 and 5 between them too
            ticks = sorted({t * m for t in ticks[:-1] for m in (1, 2, 5)} | {ticks[-1]})
        return cls(10.0**first, 10.0**last, fmt, True, tuple(ticks))

    def scale(self, start: float, end: float) -> Callable[[float], float]:
        """value -> pixel, `start` at lo and `end` at hi (values outside are clamped)."""
        if self.log:
            lo, hi = math.log10(self.lo), math.log10(self.hi)

            def to_px(value: float) -> float:
                v = math.log10(min(max(value, self.lo), self.hi))
                return start + (v - lo) / (hi - lo) * (end - start)

            return to_px

        def linear(value: float) -> float:
            v = min(max(value, self.lo), self.hi)
            return start + (v - self.lo) / (self.hi - self.lo) * (end - start)

        return linear


@dataclass
class Plot:
    """An XY plot: x and y axes, grid at their ticks, and marks added in data coordinates."""

    x: Axis
    y: Axis
    label: str  # what it shows, for screen readers and the tooltip of the whole plot
    width: int = 640
    height: int = 180
    x_title: str = ""
    y_title: str = ""
    parts: list[str] = field(default_factory=list)
    left: int = 58
    right: int = 14
    top: int = 10
    bottom: int = 30

    def __post_init__(self) -> None:
        if self.y_title:
            self.top = max(self.top, 22)  # room for the title above the highest tick
        self.px = self.x.scale(self.left, self.width - self.right)
        self.py = self.y.scale(self.height - self.bottom, self.top)

    def line(self, points: Sequence[tuple[float, float]], cls: str, title: str = "") -> None:
        if not points:
            return
        path = " ".join(f"{_num(self.px(x))},{_num(self.py(y))}" for x, y in points)
        tip = f"<title>{esc(title)}</title>" if title else ""
        self.parts.append(f'<polyline class="{cls}" points="{path}">{tip}</polyline>')

    def step(self, points: Sequence[tuple[float, float]], cls: str, title: str = "") -> None:
        """A line that holds each value until the next point (counts per second)."""
        stepped: list[tuple[float, float]] = []
        for (x0, y0), (x1, _) in itertools.pairwise(points):
            stepped += [(x0, y0), (x1, y0)]
        if points:
            stepped.append(points[-1])
        self.line(stepped, cls, title)

    def dot(self, x: float, y: float, cls: str, title: str = "", r: float = 3.5) -> None:
        tip = f"<title>{esc(title)}</title>" if title else ""
        self.parts.append(
            f'<circle class="{cls}" cx="{_num(self.px(x))}" cy="{_num(self.py(y))}" '
            f'r="{_num(r)}">{tip}</circle>'
        )

    def hline(self, y: float, cls: str, label: str = "") -> None:
        """A bound across the plot, its label above its right end."""
        py = _num(self.py(y))
        self.parts.append(
            f'<line class="{cls}" x1="{self.left}" x2="{self.width - self.right}" '
            f'y1="{py}" y2="{py}"><title>{esc(label)}</title></line>'
        )
        if label:
            self.parts.append(
                f'<text class="mark-label {cls}" x="{self.width - self.right - 2}" '
                f'y="{_num(self.py(y) - 3)}" text-anchor="end">{esc(label)}</text>'
            )

    def corner(self, text: str, cls: str) -> None:
        """A line of text at the plot's top right (a bound off its scale)."""
        self.parts.append(
            f'<text class="mark-label {cls}" x="{self.width - self.right - 2}" '
            f'y="{self.top + 10}" text-anchor="end">{esc(text)}</text>'
        )

    def vline(self, x: float, cls: str, label: str = "", row: int = 0) -> None:
        """A moment across the plot, its label at the top (`row` lines further down)."""
        px = _num(self.px(x))
        self.parts.append(
            f'<line class="{cls}" x1="{px}" x2="{px}" y1="{self.top}" '
            f'y2="{self.height - self.bottom}"><title>{esc(label)}</title></line>'
        )
        if label:
            self.parts.append(
                f'<text class="mark-label {cls}" x="{_num(self.px(x) + 3)}" '
                f'y="{self.top + 10 + 12 * row}">{esc(label)}</text>'
            )

    def xband(self, x0: float, x1: float, cls: str, title: str = "") -> None:
        """A stretch of time (a fault in force), the plot's whole height."""
        a, b = sorted((self.px(x0), self.px(x1)))
        self.parts.append(
            f'<rect class="{cls}" x="{_num(a)}" y="{self.top}" width="{_num(max(b - a, 1))}" '
            f'height="{self.height - self.bottom - self.top}"><title>{esc(title)}</title></rect>'
        )

    def rect(self, x0: float, x1: float, y0: float, y1: float, cls: str, title: str = "") -> None:
        """A box over x0..x1 and y0..y1 (a call's time in its lane, a bar from 0)."""
        a, b = sorted((self.px(x0), self.px(x1)))
        top, base = sorted((self.py(y0), self.py(y1)))
        tip = f"<title>{esc(title)}</title>" if title else ""
        self.parts.append(
            f'<rect class="{cls}" x="{_num(a)}" y="{_num(top)}" width="{_num(max(b - a, 1.5))}" '
            f'height="{_num(max(base - top, 1))}">{tip}</rect>'
        )

    def render(self) -> str:
        w, h = self.width, self.height
        grid: list[str] = []
        for t in self.y.ticks:
            py = _num(self.py(t))
            grid.append(
                f'<line class="grid" x1="{self.left}" x2="{w - self.right}" y1="{py}" y2="{py}"/>'
                f'<text class="tick" x="{self.left - 5}" y="{_num(self.py(t) + 4)}" '
                f'text-anchor="end">{esc(self.y.fmt(t))}</text>'
            )
        for t in self.x.ticks:
            px = _num(self.px(t))
            grid.append(
                f'<line class="grid" x1="{px}" x2="{px}" y1="{self.top}" '
                f'y2="{h - self.bottom}"/><text class="tick" x="{px}" '
                f'y="{h - self.bottom + 14}" text-anchor="middle">{esc(self.x.fmt(t))}</text>'
            )
        titles = ""
        if self.x_title:
            titles += (
                f'<text class="axis-title" x="{w - self.right}" y="{h - 3}" '
                f'text-anchor="end">{esc(self.x_title)}</text>'
            )
        if self.y_title:
            titles += (
                f'<text class="axis-title" x="4" y="{self.top - 9}">{esc(self.y_title)}</text>'
            )
        base = _num(self.py(max(self.y.lo, 0.0)))
        axes = (
            f'<line class="axis" x1="{self.left}" x2="{w - self.right}" y1="{base}" y2="{base}"/>'
            f'<line class="axis" x1="{self.left}" x2="{self.left}" y1="{self.top}" '
            f'y2="{h - self.bottom}"/>'
        )
        return (
            f'<svg class="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
            f'aria-label="{esc(self.label)}"><title>{esc(self.label)}</title>'
            f"{''.join(grid)}{axes}{''.join(self.parts)}{titles}</svg>"
        )


# -- row charts --------------------------------------------------------------------------------

STRIP_W = 460
STRIP_H = 22
PAD = 8


@dataclass(frozen=True)
class Mark:
    """One mark on a row's strip: a bar (lo..hi), a dot (at lo), a tick (a thin line at lo,
    the strip's height) or a band (lo..hi, the strip's height, translucent)."""

    shape: str  # "bar", "dot", "tick", "band"
    lo: float
    cls: str
    title: str = ""
    hi: float = 0.0


def bar(lo: float, hi: float, cls: str, title: str = "") -> Mark:
    return Mark("bar", lo, cls, title, hi)


def dot(at: float, cls: str, title: str = "") -> Mark:
    return Mark("dot", at, cls, title)


def tick(at: float, cls: str, title: str = "") -> Mark:
    return Mark("tick", at, cls, title)


def band(lo: float, hi: float, cls: str, title: str = "") -> Mark:
    return Mark("band", lo, cls, title, hi)


@dataclass
class Row:
    label: str
    marks: list[Mark]
    figure: str = ""  # the figure beside the strip: "6.19 ms"
    sublabel: str = ""  # a second, quieter line under the label: the fault
    status: str = ""  # holds/fails/error: the label's colour


@dataclass
class RowChart:
    """Rows of marks on one shared horizontal axis: each row a label (HTML, wraps), a strip
    (SVG) and its figure; the axis's tick labels under the last row."""

    label: str
    rows: list[Row] = field(default_factory=list)
    fmt: Format = tick_seconds
    log: bool = False

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def axis(self) -> Axis:
        values = [m.lo for r in self.rows for m in r.marks]
        values += [m.hi for r in self.rows for m in r.marks if m.shape in ("bar", "band")]
        return Axis.fit(values, fmt=self.fmt, log=self.log)

    def render(self) -> str:
        if not self.rows:
            return ""
        axis = self.axis()
        px = axis.scale(PAD, STRIP_W - PAD)
        grid = "".join(
            f'<line class="grid" x1="{_num(px(t))}" x2="{_num(px(t))}" y1="0" y2="{STRIP_H}"/>'
            for t in axis.ticks
        )
        body = []
        for row in self.rows:
            marks = "".join(_mark(m, px) for m in row.marks)
            sub = f'<span class="sub">{esc(row.sublabel)}</span>' if row.sublabel else ""
            cls = f' class="row-{row.status}"' if row.status else ""
            body.append(
                f"<tr{cls}><th>{esc(row.label)}{sub}</th>"
                f'<td class="strip"><svg viewBox="0 0 {STRIP_W} {STRIP_H}" width="{STRIP_W}" '
                f'height="{STRIP_H}" role="img" aria-label="{esc(row.label)}: {esc(row.figure)}">'
                f'{grid}{marks}</svg></td><td class="fig">{esc(row.figure)}</td></tr>'
            )
        ticks = "".join(
            f'<text class="tick" x="{_num(px(t))}" y="12" text-anchor="middle">'
            f"{esc(axis.fmt(t))}</text>"
            for t in axis.ticks
        )
        body.append(
            f'<tr class="axis-row"><th></th><td class="strip"><svg viewBox="0 0 {STRIP_W} 16" '
            f'width="{STRIP_W}" height="16" aria-hidden="true">{ticks}</svg></td><td></td></tr>'
        )
        return (
            f'<table class="rows" aria-label="{esc(self.label)}"><tbody>{"".join(body)}'
            "</tbody></table>"
        )


def _mark(mark: Mark, px: Callable[[float], float]) -> str:
    tip = f"<title>{esc(mark.title)}</title>" if mark.title else ""
    if mark.shape == "dot":
        return f'<circle class="{mark.cls}" cx="{_num(px(mark.lo))}" cy="11" r="4">{tip}</circle>'
    if mark.shape == "tick":
        x = _num(px(mark.lo))
        return f'<line class="{mark.cls}" x1="{x}" x2="{x}" y1="1" y2="{STRIP_H - 1}">{tip}</line>'
    a, b = sorted((px(mark.lo), px(mark.hi)))
    y, h = (0, STRIP_H) if mark.shape == "band" else (5, STRIP_H - 10)
    return (
        f'<rect class="{mark.cls}" x="{_num(a)}" y="{y}" width="{_num(max(b - a, 1.5))}" '
        f'height="{h}">{tip}</rect>'
    )


def legend(items: Sequence[tuple[str, str]]) -> str:
    """A legend under a plot: (CSS class of the swatch, what it means)."""
    return (
        '<ul class="legend">'
        + "".join(f'<li><span class="swatch {cls}"></span>{esc(text)}</li>' for cls, text in items)
        + "</ul>"
    )
