"""PDF writers: the PDF adapter (fpdf2 writes, pypdf reads), and a dependency-free writer.

The adapter is this module and its private sibling _pdf_render (fpdf2's drawing: the page,
HTML, tables, charts), split from it for length; nothing else imports fpdf2. Both
libraries are imported inside the functions that use them, so that commands which write
no PDF (and `atmpvault --help`) do not pay for loading them.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from atmpvault.errors import IntegrityError, TemplateProblem

if TYPE_CHECKING:
    from fpdf import FPDF
    from pypdf import PdfReader

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
    from fpdf.errors import FPDFException

    charts = charts or {}
    parts = CHART_MARKER.split(html)  # text, chart name, text, chart name, ..., text
    for name in parts[1::2]:
        if name not in charts:
            raise TemplateProblem(f"{title!r} places a chart {name!r} that was not given")
        _check_chart(charts[name])
    _check_attachments(title, attachments)
    created = created if created.tzinfo else created.replace(tzinfo=UTC)
    try:
        from atmpvault.archive.core import _pdf_render

        pdf = _pdf_render.Report(title, created, landscape)
        if subject:
            pdf.set_subject(subject)
        if keywords:
            pdf.set_keywords(keywords)
        if author:
            pdf.set_author(author)
        if pdfa:
            _make_archival(pdf, created)
        _pdf_render.write_body(pdf, parts, charts)
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


def embedded_files(data: bytes) -> dict[str, bytes]:
    """The files embedded in a PDF, by name, as written (to verify a certificate's record)."""
    reader = _read(data)
    try:
        found = dict(reader.attachments.items())
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on a damaged file
        raise IntegrityError(f"cannot read the files embedded in the PDF: {exc}") from exc
    for name, contents in found.items():
        if len(contents) != 1:
            raise IntegrityError(f"the PDF embeds {len(contents)} files named {name!r}")
    return {name: contents[0] for name, contents in found.items()}


def pdf_text(data: bytes) -> str:
    """The text of a PDF, page after page (as pypdf extracts it)."""
    reader = _read(data)
    try:
        return "\n".join(page.extract_text() for page in reader.pages)
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on a damaged file
        raise IntegrityError(f"cannot read the text of the PDF: {exc}") from exc


def _read(data: bytes) -> PdfReader:
    from pypdf import PdfReader

    try:
        return PdfReader(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on a damaged file
        raise IntegrityError(f"cannot read the PDF: {exc}") from exc
