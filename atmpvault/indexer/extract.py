"""Text extraction for indexing, and reading back the PDFs atmpvault writes (their text,
their embedded files): the one module that imports pypdf and pypdfium2.

`extract` never raises for bad content: a file whose text cannot be read (encrypted,
scanned, damaged, unsupported) comes back with searchable=False and a reason a user can
read. PDF text comes from pypdfium2 (fast); pypdf inspects the file (version, pages,
encryption, metadata). XML (and DOCX, which is zipped XML) is streamed through
indexer.safexml, which refuses any DOCTYPE, so no entity can be declared, expanded or
fetched.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from atmpvault.errors import IntegrityError

if TYPE_CHECKING:
    from atmpvault.indexer.safexml import Target

MAX_TEXT_CHARS = 2_000_000
MAX_DOCX_XML_BYTES = 64 * 1024 * 1024  # guards against zip bombs
PLAIN_TEXT = frozenset({".txt", ".md", ".log", ".csv"})
PDF_HEADER_WINDOW = 1024  # the spec lets %PDF- appear anywhere in the first 1024 bytes

ENCRYPTED_PDF = "encrypted PDF (password-protected)"
NO_TEXT_LAYER = "no text layer (image-only or scanned PDF)"
NOT_A_PDF = "not a PDF although named .pdf"
UNSAFE_XML = "unsafe XML refused: DOCTYPE and ENTITY declarations are not allowed"

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_W_TEXT, _W_PARAGRAPH, _W_TAB = f"{_W}t", f"{_W}p", f"{_W}tab"
_W_BREAKS = frozenset({f"{_W}br", f"{_W}cr"})
_DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"


@dataclass(frozen=True)
class Extraction:
    """The text of one file, or why there is none (searchable=False and a reason)."""

    text: str
    searchable: bool
    reason: str | None = None
    pages: int | None = None
    info: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PdfInfo:
    """What pypdf can tell about a PDF without extracting its text."""

    encrypted: bool
    version: str
    pages: int  # 0 when the page tree cannot be read (e.g. encrypted with a password)
    has_javascript: bool
    metadata: dict[str, str]


class ExtractionError(ValueError):
    """The bytes are not a readable file of the kind they claim to be."""


def extract(data: bytes, filename: str) -> Extraction:
    """The searchable text of a file, chosen by its extension; never raises for bad content."""
    suffix = PurePath(filename).suffix.lower()
    try:
        if suffix == ".pdf":
            return _pdf(data)
        if suffix in PLAIN_TEXT:
            return _text(decode(data), {"format": suffix[1:]})
        if suffix == ".json":
            return _json(data)
        if suffix == ".xml":
            return _xml(data)
        if suffix == ".docx":
            return _docx(data)
    except RecursionError:
        return _refused("too deeply nested to extract")
    except MemoryError:
        return _refused("too large to extract")
    except Exception as exc:  # noqa: BLE001 - a bad file must be archived, not crash the write
        return _refused(f"could not extract text: {type(exc).__name__}: {_detail(exc)}")
    return _refused(f"unsupported format: {suffix or '(no extension)'}")


def _refused(
    reason: str, pages: int | None = None, info: dict[str, str] | None = None
) -> Extraction:
    return Extraction(text="", searchable=False, reason=reason, pages=pages, info=info or {})


def _text(text: str, info: dict[str, str], pages: int | None = None) -> Extraction:
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        info = {**info, "truncated": "true"}
    return Extraction(text=text, searchable=True, reason=None, pages=pages, info=info)


def decode(data: bytes) -> str:
    """Text from bytes: UTF-8 (a BOM honoured, UTF-16 too), else Windows-1252."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# --- PDF ---------------------------------------------------------------------------------


def inspect_pdf(data: bytes) -> PdfInfo:
    """Version, page count, encryption, JavaScript and metadata of a PDF (via pypdf)."""
    if b"%PDF-" not in data[:PDF_HEADER_WINDOW]:
        raise ExtractionError(NOT_A_PDF)
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    with _quiet("pypdf"):
        return _inspect(PdfReader, PyPdfError, data)


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Keep a library's warnings about a damaged file off the user's terminal."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _inspect(PdfReader: Any, PyPdfError: type[Exception], data: bytes) -> PdfInfo:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = bool(reader.is_encrypted)
        readable = not encrypted or bool(reader.decrypt(""))
        version = reader.pdf_header.removeprefix("%PDF-")
        pages = len(reader.pages) if readable else _declared_pages(reader)
        metadata: dict[str, str] = {}
        if readable and reader.metadata:
            for key, value in reader.metadata.items():
                if value is not None and not isinstance(value, (bytes, dict, list)):
                    metadata[str(key).lstrip("/")] = str(value)
        has_js = readable and _has_javascript(reader)
    except PyPdfError as exc:
        raise ExtractionError(f"damaged PDF: {_detail(exc)}") from exc
    except Exception as exc:
        raise ExtractionError(f"damaged PDF: {type(exc).__name__}: {_detail(exc)}") from exc
    return PdfInfo(encrypted, version, pages, has_js, metadata)


def _declared_pages(reader: Any) -> int:
    """/Count of the page tree, which stays readable (numbers are never encrypted)."""
    try:
        return int(reader.trailer["/Root"]["/Pages"]["/Count"])
    except Exception:  # noqa: BLE001 - best effort on a file we cannot decrypt
        return 0


def _has_javascript(reader: Any) -> bool:
    root = reader.trailer["/Root"]
    names = root.get("/Names")
    if names is not None and "/JavaScript" in names.get_object():
        return True
    action = root.get("/OpenAction")
    if action is not None:
        action = action.get_object()
        if isinstance(action, dict) and action.get("/S") == "/JavaScript":
            return True
    return "/AA" in root


def _pdf(data: bytes) -> Extraction:
    """Text and facts of a PDF through pdfium alone (pypdf's full parse costs as much
    again); pypdf is consulted only to explain a file pdfium cannot open."""
    if b"%PDF-" not in data[:PDF_HEADER_WINDOW]:
        return _refused(NOT_A_PDF)
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            return _refused(ENCRYPTED_PDF, None, {"format": "pdf", "encrypted": "true"})
        try:
            info = inspect_pdf(data)
        except ExtractionError as inspected:
            return _refused(str(inspected))
        if info.encrypted:
            return _refused(
                ENCRYPTED_PDF, info.pages or None, {"format": "pdf", "encrypted": "true"}
            )
        return _refused(f"damaged PDF: {_detail(exc)}", info.pages or None, {"format": "pdf"})
    chunks: list[str] = []
    size = 0
    try:
        pages = len(document)
        version = document.get_version()
        details = {"format": "pdf", "pages": str(pages)}
        if version:
            details["pdf_version"] = f"{version // 10}.{version % 10}"
        for key, value in document.get_metadata_dict(skip_empty=True).items():
            details[f"pdf_{key.lower()}"] = str(value)
        if pdfium.raw.FPDF_GetSecurityHandlerRevision(document) != -1:
            details["encrypted"] = "true"
        for number in range(pages):
            page = document[number]
            try:
                textpage = page.get_textpage()
                try:
                    chunk = textpage.get_text_bounded()
                finally:
                    textpage.close()
            finally:
                page.close()
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_TEXT_CHARS:
                break
    except pdfium.PdfiumError as exc:
        return _refused(f"damaged PDF: {_detail(exc)}", None, {"format": "pdf"})
    finally:
        document.close()
    text = "\n\f".join(c.replace("\r\n", "\n") for c in chunks)
    if not text.strip():
        return _refused(NO_TEXT_LAYER, pages, details)
    return _text(text, details, pages)


def _detail(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


# --- JSON, XML, DOCX ---------------------------------------------------------------------


def _json(data: bytes) -> Extraction:
    raw = decode(data)
    try:
        value = json.loads(raw)
    except ValueError:
        return _text(raw, {"format": "json", "warning": "invalid JSON; indexed as plain text"})
    parts: list[str] = []
    stack: list[Any] = [value]
    while stack:  # iterative: deep nesting must not exhaust the stack
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                stack.append(child)
                stack.append(str(key))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif item is not None:
            parts.append(str(item))
    return _text("\n".join(parts), {"format": "json"})


class _XmlText:
    """Collects an XML document's character data, a line break after each element."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def start(self, _tag: str, _attrib: dict[str, str]) -> None:
        pass

    def end(self, _tag: str) -> None:
        self.parts.append("\n")

    def data(self, text: str) -> None:
        if self.size < MAX_TEXT_CHARS:
            self.parts.append(text)
            self.size += len(text)


def xml_text(data: bytes) -> str:
    """The character data of an XML document, one element's text per line.

    Raises ExtractionError if the XML declares a DOCTYPE or is not well-formed.
    """
    collected = _XmlText()
    _parse(data, collected, "XML")
    return "\n".join(line.strip() for line in "".join(collected.parts).splitlines() if line.strip())


def _parse(data: bytes, target: Target, kind: str) -> None:
    from atmpvault.indexer import safexml

    try:
        safexml.feed(data, target)
    except safexml.UnsafeXml as exc:
        raise ExtractionError(UNSAFE_XML) from exc
    except safexml.XmlError as exc:
        raise ExtractionError(f"damaged {kind}: {exc.reason}") from exc


def _xml(data: bytes) -> Extraction:
    try:
        return _text(xml_text(data), {"format": "xml"})
    except ExtractionError as exc:
        return _refused(str(exc), info={"format": "xml"})


def _docx(data: bytes) -> Extraction:
    details = {"format": "docx"}
    if data.startswith(b"\xd0\xcf\x11\xe0"):  # an OLE container: how Word stores encrypted files
        return _refused("encrypted DOCX (password-protected) or legacy .doc", info=details)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            try:
                entry = archive.getinfo("word/document.xml")
            except KeyError:
                return _refused("damaged DOCX: word/document.xml is missing", info=details)
            if entry.file_size > MAX_DOCX_XML_BYTES:
                return _refused("DOCX too large to extract", info=details)
            body = archive.read(entry)
            core = _read_small(archive, "docProps/core.xml")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        return _refused(f"damaged DOCX: {_detail(exc)}", info=details)
    except NotImplementedError as exc:  # e.g. an unsupported compression method
        return _refused(f"damaged DOCX: {_detail(exc)}", info=details)
    try:
        text = _docx_text(body)
        if core is not None:
            title = _core_title(core)
            if title:
                details["title"] = title
    except ExtractionError as exc:
        return _refused(str(exc).replace("damaged XML", "damaged DOCX"), info=details)
    return _text(text, details)


def _read_small(archive: zipfile.ZipFile, name: str) -> bytes | None:
    try:
        entry = archive.getinfo(name)
    except KeyError:
        return None
    return archive.read(entry) if entry.file_size <= 1024 * 1024 else None


class _DocxText:
    """Collects the paragraphs of a DOCX body (word/document.xml): w:t text, tabs, breaks."""

    def __init__(self) -> None:
        self.paragraphs: list[str] = []
        self.current: list[str] = []
        self.in_text = False
        self.size = 0

    def start(self, tag: str, _attrib: dict[str, str]) -> None:
        if tag == _W_TEXT:
            self.in_text = True
        elif tag == _W_TAB:
            self.current.append("\t")
        elif tag in _W_BREAKS:
            self.current.append("\n")

    def end(self, tag: str) -> None:
        if tag == _W_TEXT:
            self.in_text = False
        elif tag == _W_PARAGRAPH:
            self.paragraphs.append("".join(self.current))
            self.current.clear()

    def data(self, text: str) -> None:
        if self.in_text and self.size < MAX_TEXT_CHARS:
            self.current.append(text)
            self.size += len(text)


def _docx_text(body: bytes) -> str:
    collected = _DocxText()
    _parse(body, collected, "DOCX")
    if collected.current:
        collected.paragraphs.append("".join(collected.current))
    return "\n".join(collected.paragraphs)


class _CoreTitle:
    """Collects dc:title from DOCX core properties (docProps/core.xml)."""

    def __init__(self) -> None:
        self.title: list[str] = []
        self.inside = False

    def start(self, tag: str, _attrib: dict[str, str]) -> None:
        self.inside = tag == _DC_TITLE

    def end(self, _tag: str) -> None:
        self.inside = False

    def data(self, text: str) -> None:
        if self.inside:
            self.title.append(text)


def _core_title(core: bytes) -> str | None:
    collected = _CoreTitle()
    try:
        _parse(core, collected, "DOCX")
    except ExtractionError:
        return None
    return "".join(collected.title).strip() or None


# -- reading back the PDFs atmpvault writes (certificates) --------------------------------


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


def _read(data: bytes) -> Any:
    from pypdf import PdfReader

    try:
        return PdfReader(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on a damaged file
        raise IntegrityError(f"cannot read the PDF: {exc}") from exc
