"""PDF writers: report and certificate PDFs from HTML, and a dependency-free writer.

What the archive calls to make a PDF: html_pdf checks its input and hands it to
_pdf_render, the one module that imports fpdf2, loaded only when a PDF is written (not by
`atmpvault --help`). Reading a PDF back (its text, its embedded files) is the indexer's
extract module, the one that imports pypdf; embedded_files and pdf_text are named here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from atmpvault.errors import TemplateProblem
from atmpvault.indexer.extract import embedded_files, pdf_text

__all__ = ["Attachment", "BarChart", "embedded_files", "html_pdf", "make_pdf", "pdf_text"]

LINES_PER_PAGE = 48

PACKAGE_DIR = Path(__file__).resolve().parents[2]
FONTS_DIR = PACKAGE_DIR / "fonts"
SRGB_PROFILE = PACKAGE_DIR / "icc" / "sRGB.icc"  # ICC v2, the output intent of PDF/A
CHART_MARKER = re.compile(r"<!--\s*chart:([\w.-]+)\s*-->")
# The relationships PDF/A-3 lets an associated file have with the document (ISO 19005-3).
AF_RELATIONSHIPS = ("Source", "Data", "Alternative", "Supplement", "Unspecified")
MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


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


@dataclass(frozen=True)
class Attachment:
    """A file embedded in a PDF, such as the machine-readable record a certificate shows."""

    name: str
    data: bytes
    mime: str
    description: str
    relationship: str = "Data"  # to the document: one of AF_RELATIONSHIPS


def html_pdf(
    html: str,
    *,
    title: str,
    created: datetime,
    charts: Mapping[str, BarChart] | None = None,
    landscape: bool = False,
    pdfa: bool = False,
    attachments: Sequence[Attachment] = (),
    subject: str | None = None,
    keywords: str | None = None,
    author: str | None = None,
) -> bytes:
    """An A4 PDF of report HTML, each `<!-- chart:NAME -->` marker replaced by charts[NAME].

    With pdfa=True the PDF is PDF/A-3b (for certificates): XMP metadata that declares it,
    an sRGB output intent, only embedded fonts, and the attachments as associated files.
    The same arguments always give the same bytes.
    """
    charts = charts or {}
    parts = CHART_MARKER.split(html)  # text, chart name, text, chart name, ..., text
    for name in parts[1::2]:
        if name not in charts:
            raise TemplateProblem(f"{title!r} places a chart {name!r} that was not given")
        _check_chart(charts[name])
    _check_attachments(title, attachments)
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    from atmpvault.archive.core import _pdf_render

    return _pdf_render.write(
        parts, charts, title=title, created=created, landscape=landscape, pdfa=pdfa,
        attachments=attachments, subject=subject, keywords=keywords, author=author,
    )  # fmt: skip


def _check_chart(chart: BarChart) -> None:
    for name, values in chart.series:
        if len(values) != len(chart.categories):
            raise TemplateProblem(
                f"chart {chart.title!r}: series {name!r} has {len(values)} values"
                f" for {len(chart.categories)} categories"
            )
        if any(value < 0 for value in values):
            raise TemplateProblem(f"chart {chart.title!r}: series {name!r} has a negative count")


def _check_attachments(title: str, attachments: Sequence[Attachment]) -> None:
    names: set[str] = set()
    for attachment in attachments:
        problem = None
        if not attachment.name or attachment.name in names:
            problem = "has no name" if not attachment.name else "is attached twice"
        elif not attachment.data:
            problem = "is empty"
        elif not MIME_TYPE.fullmatch(attachment.mime):
            problem = f"has no MIME type (type/subtype in lower case): {attachment.mime!r}"
        elif attachment.relationship not in AF_RELATIONSHIPS:
            problem = (
                f"has relationship {attachment.relationship!r},"
                f" not one of {', '.join(AF_RELATIONSHIPS)}"
            )
        if problem:
            raise TemplateProblem(f"{title!r}: the attachment {attachment.name!r} {problem}")
        names.add(attachment.name)
