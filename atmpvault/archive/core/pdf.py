"""PDF writers: the one module that imports fpdf2, and a dependency-free writer for demos.

fpdf2 is imported inside the functions that use it, so that commands which write no
PDF (and `atmpvault --help`) do not pay for loading it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.errors import TemplateProblem

if TYPE_CHECKING:
    from fpdf import FPDF
    from fpdf.table import Table

LINES_PER_PAGE = 48

FONTS_DIR = Path(__file__).resolve().parents[2] / "fonts"
FONT = "dejavu"
FONT_FILES = {"": "", "B": "-Bold", "I": "-Oblique", "BI": "-BoldOblique"}  # DejaVuSans*.ttf
BODY_PT, MARGIN_MM, CELL_PADDING_MM, CHART_HEIGHT_MM = 10, 18, 1.2, 75
HEADING, TEXT, HEADER_FILL, RULE, GRID = "#1f3a5f", "#222222", "#e6e6e6", "#999999", "#dddddd"
# Series fills that most colour-blind readers can tell apart (Tableau 10).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")
CHART_MARKER = re.compile(r"<!--\s*chart:([\w.-]+)\s*-->")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def make_pdf(pages: list[list[str]], title: str = "", version: str = "1.4") -> bytes:
    """A PDF with one page per list of lines, set in Helvetica 10 pt."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in once the page tree exists
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for lines in pages or [[""]]:
        ops = ["BT", "/F1 10 Tf", "12 TL", "56 790 Td"]
        for line in lines[:LINES_PER_PAGE]:
            ops.append(f"({_escape(line)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("cp1252", "replace")
        content = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (tree, font, content)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = add(
        b"<< /Title (%s) /Producer (atmpvault) >>" % _escape(title).encode("cp1252", "replace")
    )

    out = bytearray(b"%%PDF-%s\n%%\xe2\xe3\xcf\xd3\n" % version.encode("ascii"))
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        catalog,
        info,
        xref,
    )
    return bytes(out)


@dataclass(frozen=True)
class BarChart:
    """Grouped bars of counts: one group per category, one bar per series in each group."""

    title: str
    categories: tuple[str, ...]
    series: tuple[tuple[str, tuple[int, ...]], ...]


def html_pdf(
    html: str,
    *,
    title: str,
    created: datetime,
    charts: Mapping[str, BarChart] | None = None,
    landscape: bool = False,
) -> bytes:
    """An A4 PDF of report HTML, each `<!-- chart:NAME -->` marker replaced by charts[NAME]."""
    from fpdf.errors import FPDFException

    charts = charts or {}
    parts = CHART_MARKER.split(html)  # text, chart name, text, chart name, ..., text
    for name in parts[1::2]:
        if name not in charts:
            raise TemplateProblem(f"{title!r} places a chart {name!r} that was not given")
        _check_chart(charts[name])
    try:
        pdf = _document(title, created, landscape)
        for index, part in enumerate(parts):
            if index % 2:
                with pdf.local_context():
                    _draw_chart(pdf, charts[part])
            elif part.strip():
                pdf.write_html(
                    part,
                    table_line_separators=True,
                    warn_on_tags_not_matching=False,
                    li_prefix_color=TEXT,
                    tag_styles=_tag_styles(),
                )
        return bytes(pdf.output())
    except (FPDFException, NotImplementedError, ValueError, TypeError, LookupError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise TemplateProblem(f"cannot write {title!r} as PDF: {reason}") from exc


def _check_chart(chart: BarChart) -> None:
    for name, values in chart.series:
        if len(values) != len(chart.categories):
            raise TemplateProblem(
                f"chart {chart.title!r}: series {name!r} has {len(values)} values"
                f" for {len(chart.categories)} categories"
            )
        if any(value < 0 for value in values):
            raise TemplateProblem(f"chart {chart.title!r}: series {name!r} has a negative count")


def _document(title: str, created: datetime, landscape: bool) -> FPDF:
    from fpdf import FPDF
    from fpdf.html import HTML2FPDF

    class ReportHTML(HTML2FPDF):
        """fpdf2's HTML reader, with grey table headers and columns sized to their text."""

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "th" and not any(key == "bgcolor" for key, _ in attrs):
                attrs = [*attrs, ("bgcolor", HEADER_FILL)]
            if tag == "table" and not any(key == "cellpadding" for key, _ in attrs):
                attrs = [*attrs, ("cellpadding", str(CELL_PADDING_MM))]
            # fpdf2 justifies cell text by default, which spaces out words in a narrow column
            aligned = any(key == "align" for key, _ in attrs) or (self.tr or {}).get("align")
            if tag == "td" and not aligned:
                attrs = [*attrs, ("align", "left")]
            super().handle_starttag(tag, attrs)

        def handle_endtag(self, tag: str) -> None:
            if tag == "table" and self.table is not None:
                if not self.table._col_widths:
                    self.table._col_widths = _column_widths(self.pdf, self.table, self.font_size_pt)
                self.pdf.ln(2)  # fpdf2 sets a table flush against the text above it
            super().handle_endtag(tag)

        def feed(self, data: str) -> None:
            super().feed(data)
            if self.table is not None:
                raise ValueError("a <table> is not closed (is a chart marker inside it?)")

    class Report(FPDF):
        HTML2FPDF_CLASS = ReportHTML

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(FONT, "", 8)
            self.set_text_color(RULE)
            self.cell(0, 5, f"{title} — page {self.page_no()} of {{nb}}", align="C")

    pdf = Report(orientation="L" if landscape else "P", unit="mm", format="A4")
    for style, suffix in FONT_FILES.items():
        pdf.add_font(FONT, style, FONTS_DIR / f"DejaVuSans{suffix}.ttf")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_auto_page_break(True, margin=MARGIN_MM)
    pdf.set_title(title)
    pdf.set_producer("atmpvault")
    pdf.set_creator("atmpvault")
    pdf.set_creation_date(created if created.tzinfo else created.replace(tzinfo=UTC))
    pdf.add_page()
    pdf.set_font(FONT, "", BODY_PT)
    pdf.set_text_color(TEXT)
    return pdf


def _tag_styles() -> dict[str, Any]:
    from fpdf.fonts import TextStyle

    # tag: (size in pt, space above in mm); fpdf2 takes the space below as a fraction of the size
    sizes = {"h1": (16, 2), "h2": (13, 5), "h3": (11, 4)}
    return {
        tag: TextStyle(FONT, "B", size, color=HEADING, t_margin=top, b_margin=0.35)
        for tag, (size, top) in sizes.items()
    }


def _column_widths(pdf: FPDF, table: Table, size_pt: float) -> list[float] | None:
    """Column widths (as fractions) that give each column room for its text, as HTML does."""
    from fpdf.table import Cell

    columns = max((row.cols_count for row in table.rows), default=0)
    widest, longest_word = [0.0] * columns, [0.0] * columns
    with pdf.local_context():
        for row in table.rows:
            position = 0
            for cell in row.cells:
                if not isinstance(cell, Cell) or cell.rowspan > 1:
                    return None  # spans: let fpdf2 share the width evenly
                if cell.colspan == 1 and cell.text:
                    emphasis = cell.style.emphasis if cell.style else None
                    pdf.set_font(FONT, "B" if emphasis and "B" in emphasis.style else "", size_pt)
                    widest[position] = max(widest[position], pdf.get_string_width(cell.text))
                    words = [pdf.get_string_width(word) for word in cell.text.split()]
                    longest_word[position] = max(longest_word[position], *words, 0.0)
                position += cell.colspan
    padding = 2 * CELL_PADDING_MM + 1.0
    high = [width + padding for width in widest]
    low = [width + padding for width in longest_word]
    room = pdf.epw
    if sum(high) <= room or sum(low) >= room:
        return high if sum(high) <= room else low
    slack = [h - lo for h, lo in zip(high, low, strict=True)]
    spare = room - sum(low)
    return [lo + spare * s / sum(slack) for lo, s in zip(low, slack, strict=True)]


def _tick_step(peak: int) -> int:
    """The first of 1, 2, 5, 10, 20, 50 ... that divides 0..peak into at most five steps."""
    step = 1
    while peak > 5 * step:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def _draw_chart(pdf: FPDF, chart: BarChart) -> None:
    if pdf.y + CHART_HEIGHT_MM > pdf.page_break_trigger:
        pdf.add_page()
    x0, y0, width = pdf.l_margin, pdf.y + 2, pdf.epw
    pdf.set_text_color(TEXT)
    pdf.set_font(FONT, "B", 10)
    _centred(pdf, x0 + width / 2, y0 + 4, chart.title)

    pdf.set_font(FONT, "", 8)
    items = [(PALETTE[i % len(PALETTE)], name) for i, (name, _) in enumerate(chart.series)]
    legend_width = sum(5 + pdf.get_string_width(name) + 5 for _, name in items)
    x = x0 + (width - legend_width) / 2
    for colour, name in items:
        pdf.set_fill_color(colour)
        pdf.rect(x, y0 + 7.2, 3, 3, style="F")
        pdf.text(x + 4.5, y0 + 9.8, name)
        x += 5 + pdf.get_string_width(name) + 5

    peak = max((max(values, default=0) for _, values in chart.series), default=0)
    step = _tick_step(peak)
    top_value = max(step, math.ceil(peak / step) * step)
    left, right = x0 + pdf.get_string_width(str(top_value)) + 3, x0 + width
    group_width = (right - left) / max(1, len(chart.categories))
    label_pt = 8.0
    pdf.set_font(FONT, "", label_pt)
    widest = max((pdf.get_string_width(category) for category in chart.categories), default=0.0)
    rotate = widest > group_width - 1  # category labels set vertically when they would collide
    label_room = min(30.0, widest + 2) if rotate else 5.0
    top, bottom = y0 + 17, y0 + CHART_HEIGHT_MM - 4 - label_room
    height = bottom - top

    pdf.set_font(FONT, "", 8)
    pdf.set_line_width(0.2)
    for tick in range(0, top_value + 1, step):
        y = bottom - height * tick / top_value
        pdf.set_draw_color(GRID if tick else RULE)
        pdf.line(left, y, right, y)
        pdf.text(left - 1.5 - pdf.get_string_width(str(tick)), y + 1, str(tick))
    pdf.set_draw_color(RULE)
    pdf.line(left, top, left, bottom)

    inner = group_width * 0.75
    bar_width = inner / max(1, len(chart.series))
    value_pt = max(5.0, min(7.0, bar_width * 2.5))
    for g, category in enumerate(chart.categories):
        group_left = left + g * group_width + (group_width - inner) / 2
        for s, (_, values) in enumerate(chart.series):
            value = values[g]
            if not value:
                continue
            bar_height = height * value / top_value
            bar_left = group_left + s * bar_width
            pdf.set_fill_color(PALETTE[s % len(PALETTE)])
            pdf.rect(bar_left, bottom - bar_height, bar_width, bar_height, style="F")
            pdf.set_font(FONT, "", value_pt)
            _centred(pdf, bar_left + bar_width / 2, bottom - bar_height - 1, str(value))
        pdf.set_font(FONT, "", label_pt)
        centre = left + (g + 0.5) * group_width
        if rotate:
            text = category
            while len(text) > 1 and pdf.get_string_width(text) > label_room - 2:
                text = text[:-2] + "…"
            with pdf.rotation(90, centre, bottom + 2):
                pdf.text(centre - pdf.get_string_width(text), bottom + 2 + label_pt * 0.12, text)
        else:
            _centred(pdf, centre, bottom + 4, category)
    pdf.set_xy(pdf.l_margin, y0 + CHART_HEIGHT_MM + 2)


def _centred(pdf: FPDF, x: float, baseline: float, text: str) -> None:
    pdf.text(x - pdf.get_string_width(text) / 2, baseline, text)
