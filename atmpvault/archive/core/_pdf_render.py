"""The one module that imports fpdf2: the page, its HTML (headings, tables), charts,
PDF/A-3b and attachments, for archive/core/pdf.py.

pdf.py is the module the rest of atmpvault calls; it checks the input and imports this
one inside html_pdf, so fpdf2 is loaded only when a PDF is written (not by `--help`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fpdf import FPDF
from fpdf.fonts import TextStyle
from fpdf.html import HTML2FPDF
from fpdf.table import Cell, Table

from atmpvault.archive.core.pdf import FONTS_DIR, SRGB_PROFILE, Attachment, BarChart
from atmpvault.errors import TemplateProblem

FONT = "dejavu"
FONT_FILES = {"": "", "B": "-Bold", "I": "-Oblique", "BI": "-BoldOblique"}  # DejaVuSans*.ttf
BODY_PT, MARGIN_MM, CELL_PADDING_MM, CHART_HEIGHT_MM = 10, 18, 1.2, 75
HEADING, TEXT, HEADER_FILL, RULE, GRID = "#1f3a5f", "#222222", "#e6e6e6", "#999999", "#dddddd"
# Series fills that most colour-blind readers can tell apart (Tableau 10).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")


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
    """An A4 page in DejaVu Sans with the title and page count in its footer."""

    HTML2FPDF_CLASS = ReportHTML

    def __init__(self, title: str, created: datetime, landscape: bool) -> None:
        super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
        self.report_title = title
        for style, suffix in FONT_FILES.items():
            self.add_font(FONT, style, FONTS_DIR / f"DejaVuSans{suffix}.ttf")
        self.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
        self.set_auto_page_break(True, margin=MARGIN_MM)
        self.set_title(title)
        self.set_producer("atmpvault")
        self.set_creator("atmpvault")
        self.set_creation_date(created)
        self.add_page()
        self.set_font(FONT, "", BODY_PT)
        self.set_text_color(TEXT)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.set_text_color(RULE)
        self.cell(0, 5, f"{self.report_title} — page {self.page_no()} of {{nb}}", align="C")


def write_body(pdf: FPDF, parts: Sequence[str], charts: Mapping[str, BarChart]) -> None:
    """Write HTML and charts in turn: parts are text, chart name, text, ..., text."""
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


def _tag_styles() -> dict[str, Any]:
    # tag: (size in pt, space above in mm); fpdf2 takes the space below as a fraction of the size
    sizes = {"h1": (16, 2), "h2": (13, 5), "h3": (11, 4)}
    return {
        tag: TextStyle(FONT, "B", size, color=HEADING, t_margin=top, b_margin=0.35)
        for tag, (size, top) in sizes.items()
    }


def _column_widths(pdf: FPDF, table: Table, size_pt: float) -> list[float] | None:
    """Column widths (as fractions) that give each column room for its text, as HTML does."""
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


def write(
    parts: list[str],
    charts: Mapping[str, BarChart],
    *,
    title: str,
    created: datetime,
    landscape: bool,
    pdfa: bool,
    attachments: Sequence[Attachment],
    subject: str | None,
    keywords: str | None,
    author: str | None,
) -> bytes:
    """The PDF of checked report parts (pdf.html_pdf says what each argument means)."""
    from fpdf.errors import FPDFException

    try:
        pdf = Report(title, created, landscape)
        if subject:
            pdf.set_subject(subject)
        if keywords:
            pdf.set_keywords(keywords)
        if author:
            pdf.set_author(author)
        if pdfa:
            _make_archival(pdf, created)
        write_body(pdf, parts, charts)
        for attachment in attachments:
            # checksum: an MD5 of the file in /Params; fpdf2 hashes the stream as stored, so
            # it is right only for an uncompressed stream (fpdf2's default, kept here)
            pdf.embed_file(
                bytes=attachment.data,
                basename=attachment.name,
                desc=attachment.description,
                mime_type=attachment.mime,
                associated_file_relationship=attachment.relationship,
                modification_date=created,
                checksum=True,
            )
        return bytes(pdf.output())
    except (FPDFException, NotImplementedError, ValueError, TypeError, LookupError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise TemplateProblem(f"cannot write {title!r} as PDF: {reason}") from exc


def _make_archival(pdf: FPDF, created: datetime) -> None:
    """Make the document PDF/A-3b: XMP that declares it and an sRGB output intent.

    fpdf2's own PDF/A mode (FPDF(enforce_compliance=...)) writes its XMP with the time of
    writing, so the same certificate would never give the same bytes, and it leaves out the
    Info dictionary that pdfinfo and pypdf read; so its parts are used here one by one,
    before anything is drawn. Everything else PDF/A asks for is so already: fonts
    are the packaged TrueType fonts, embedded; nothing is encrypted or scripted;
    attachments carry their MIME type, /Params and /AFRelationship and are listed in the
    catalog's /AF (fpdf2).
    """
    from fpdf.enums import OutputIntentSubType
    from fpdf.output import PDFICCProfile

    pdf.pdf_version = max(pdf.pdf_version, "1.7")  # PDF/A-3 is based on PDF 1.7
    # No transparency at all (PDF/A-3 would allow some): no page transparency groups,
    # no soft masks, so the page looks the same in any viewer, as in PDF/A-1
    pdf.allow_images_transparency = False
    pdf.set_xmp_metadata(_xmp(pdf, created))
    pdf.add_output_intent(
        OutputIntentSubType.PDFA,
        output_condition_identifier="sRGB IEC61966-2.1",
        output_condition="IEC 61966-2-1:1999",
        registry_name="http://www.color.org",
        dest_output_profile=PDFICCProfile(SRGB_PROFILE.read_bytes(), n=3, alternate="DeviceRGB"),
        info="sRGB IEC61966-2.1",
    )


def _xmp(pdf: FPDF, created: datetime) -> str:
    """XMP declaring PDF/A-3B, with the same title, author, dates ... as the Info dictionary."""
    when = created.isoformat(timespec="seconds")

    def text(value: str | None) -> str:
        return escape(value or "")

    simple = {
        "pdfaid:part": "3",
        "pdfaid:conformance": "B",
        "xmp:CreatorTool": pdf.creator,
        "xmp:CreateDate": when,
        "xmp:ModifyDate": when,
        "xmp:MetadataDate": when,
        "pdf:Producer": pdf.producer,
        "pdf:Keywords": getattr(pdf, "keywords", None),
    }
    properties = [
        "<dc:format>application/pdf</dc:format>",
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{text(pdf.title)}</rdf:li></rdf:Alt></dc:title>',
        f"<dc:date><rdf:Seq><rdf:li>{when}</rdf:li></rdf:Seq></dc:date>",
    ]
    if author := getattr(pdf, "author", None):
        properties.append(
            f"<dc:creator><rdf:Seq><rdf:li>{text(author)}</rdf:li></rdf:Seq></dc:creator>"
        )
    if subject := getattr(pdf, "subject", None):
        properties.append(
            '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{text(subject)}</rdf:li></rdf:Alt></dc:description>"
        )
    attributes = "".join(
        f"\n    {key}={quoteattr(value)}" for key, value in simple.items() if value
    )
    return "\n".join(
        [
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
            '  <rdf:Description rdf:about=""',
            '    xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"',
            '    xmlns:dc="http://purl.org/dc/elements/1.1/"',
            '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
            f'    xmlns:pdf="http://ns.adobe.com/pdf/1.3/"{attributes}>',
            *(f"   {line}" for line in properties),
            "  </rdf:Description>",
            " </rdf:RDF>",
            "</x:xmpmeta>",
        ]
    )
