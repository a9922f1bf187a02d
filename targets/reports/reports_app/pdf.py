"""The PDF a report job produces: a real document made by fpdf2 (pure Python), a title page
and a table of figures. fpdf2 is imported when a PDF is made, not when this module is."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime

REPORTS = {
    "daily": "Daily activity",
    "weekly": "Weekly summary",
    "monthly": "Monthly report",
    "quarterly": "Quarterly review",
    "annual": "Annual report",
}
DEFAULT_ROWS = 60
MAX_ROWS = 5000


@dataclass(frozen=True)
class RenderedPdf:
    content: bytes
    pages: int
    filename: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def render_report(report: str, rows: int, job_id: str, user: str) -> RenderedPdf:
    """The PDF of `report` with `rows` lines of (deterministic, made-up) figures."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    title = REPORTS[report]
    figures = random.Random(f"{report}:{job_id}")
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    doc = FPDF(format="A4")
    doc.set_creation_date(datetime.now(UTC))
    doc.set_title(f"{title} ({job_id})")
    doc.set_author("reports")
    doc.set_auto_page_break(auto=True, margin=15)
    doc.add_page()
    doc.set_font("Helvetica", style="B", size=20)
    doc.cell(0, 12, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_font("Helvetica", size=10)
    doc.cell(0, 6, f"Job {job_id}, for {user}, made {made}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.ln(4)

    headings = ("#", "Region", "Orders", "Revenue", "Refunds", "Net")
    widths = (12, 48, 28, 34, 30, 34)
    regions = ("North", "South", "East", "West", "Central", "Online")

    def heading() -> None:
        doc.set_font("Helvetica", style="B", size=10)
        for text, width in zip(headings, widths, strict=True):
            doc.cell(width, 7, text, border=1, align="C")
        doc.ln()
        doc.set_font("Helvetica", size=9)

    heading()
    total = 0.0
    for n in range(1, rows + 1):
        if doc.get_y() > doc.h - 25:
            doc.add_page()
            heading()
        orders = figures.randint(10, 900)
        revenue = orders * figures.uniform(8.0, 120.0)
        refunds = revenue * figures.uniform(0.0, 0.08)
        total += revenue - refunds
        cells = (
            str(n),
            regions[n % len(regions)],
            str(orders),
            f"{revenue:,.2f}",
            f"{refunds:,.2f}",
            f"{revenue - refunds:,.2f}",
        )
        for text, width in zip(cells, widths, strict=True):
            doc.cell(width, 6, text, border=1, align="R" if text[:1].isdigit() else "L")
        doc.ln()
    doc.ln(4)
    doc.set_font("Helvetica", style="B", size=11)
    doc.cell(0, 8, f"Net total: {total:,.2f}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    content = bytes(doc.output())
    return RenderedPdf(content=content, pages=doc.page_no(), filename=f"{report}-{job_id}.pdf")
