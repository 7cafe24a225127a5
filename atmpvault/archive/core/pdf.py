"""PDF writers: the PDF adapter (fpdf2), and a dependency-free writer for demos.

The adapter is this module and its private sibling _pdf_render (fpdf2's drawing: the page,
HTML, tables, charts), split from it for length; nothing else imports fpdf2. fpdf2 is
imported inside the functions that use it, so that commands which write no PDF (and
`atmpvault --help`) do not pay for loading it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from atmpvault.errors import TemplateProblem

LINES_PER_PAGE = 48

FONTS_DIR = Path(__file__).resolve().parents[2] / "fonts"
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
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    try:
        from atmpvault.archive.core import _pdf_render

        pdf = _pdf_render.Report(title, created, landscape)
        _pdf_render.write_body(pdf, parts, charts)
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
