"""Text extraction: every supported format, and every way a file can fail to yield text."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import pytest

from atmpvault.archive.core.pdf import make_pdf
from atmpvault.indexer import safexml
from atmpvault.indexer.extract import (
    MAX_TEXT_CHARS,
    Extraction,
    ExtractionError,
    PdfInfo,
    extract,
    inspect_pdf,
)

TEXT_PDF = make_pdf(
    [["Batch record L-0042", "Viability 93%"], ["Sterility: passed", "Released by QA"]],
    title="BR L-0042",
)


def _write(writer: object) -> bytes:
    out = io.BytesIO()
    writer.write(out)  # type: ignore[attr-defined]
    return out.getvalue()


def encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=io.BytesIO(TEXT_PDF))
    writer.encrypt(user_password, owner_password="owner-secret", algorithm="AES-256")
    return _write(writer)


def blank_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    return _write(writer)


def docx(paragraphs: list[str], title: str = "") -> bytes:
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{p}</w:t></w:r></w:p>' for p in paragraphs)
    document = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{ns}"><w:body>{body}</w:body></w:document>'
    core = (
        '<?xml version="1.0"?><cp:coreProperties '
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", document)
        archive.writestr("docProps/core.xml", core)
    return out.getvalue()


# --- PDF ---------------------------------------------------------------------------------


def test_text_pdf() -> None:
    result = extract(TEXT_PDF, "batch-record-L0042.pdf")
    assert result.searchable
    assert result.reason is None
    assert result.pages == 2
    assert "Viability 93%" in result.text
    assert "Released by QA" in result.text
    assert result.info["pdf_version"] == "1.4"
    assert result.info["pdf_title"] == "BR L-0042"


def test_extension_is_case_insensitive() -> None:
    assert extract(TEXT_PDF, "SCAN.PDF").searchable


def test_encrypted_pdf() -> None:
    result = extract(encrypted_pdf("s3cret"), "locked.pdf")
    assert not result.searchable
    assert result.reason == "encrypted PDF (password-protected)"
    assert result.text == ""


def test_encrypted_pdf_without_user_password_is_readable() -> None:
    # Owner-only encryption (print/copy restrictions) opens without a password.
    result = extract(encrypted_pdf(""), "restricted.pdf")
    assert result.searchable
    assert "Sterility" in result.text
    assert result.info["encrypted"] == "true"


def test_image_only_pdf() -> None:
    result = extract(blank_pdf(), "scan.pdf")
    assert not result.searchable
    assert result.reason == "no text layer (image-only or scanned PDF)"
    assert result.pages == 1


@pytest.mark.parametrize("keep", [0.5, 0.2, 40])
def test_truncated_pdf(keep: float) -> None:
    cut = int(len(TEXT_PDF) * keep) if keep < 1 else int(keep)
    result = extract(TEXT_PDF[:cut], "truncated.pdf")
    assert not result.searchable
    assert result.reason is not None and result.reason.startswith("damaged PDF: ")


def test_garbled_pdf_body() -> None:
    data = TEXT_PDF[:20] + bytes(range(256)) * 4
    result = extract(data, "garbled.pdf")
    assert not result.searchable
    assert result.reason is not None and result.reason.startswith("damaged PDF")


@pytest.mark.parametrize("data", [b"", b"hello, world", b"PK\x03\x04 a zip"])
def test_not_a_pdf(data: bytes) -> None:
    result = extract(data, "report.pdf")
    assert not result.searchable
    assert result.reason == "not a PDF although named .pdf"


def test_inspect_pdf() -> None:
    info = inspect_pdf(TEXT_PDF)
    assert info == PdfInfo(
        encrypted=False,
        version="1.4",
        pages=2,
        has_javascript=False,
        metadata={"Title": "BR L-0042", "Producer": "atmpvault"},
    )
    assert inspect_pdf(make_pdf([["x"]], version="1.7")).version == "1.7"
    locked = inspect_pdf(encrypted_pdf("s3cret"))
    assert locked.encrypted
    with pytest.raises(ExtractionError):
        inspect_pdf(b"not a pdf")


def test_inspect_pdf_finds_javascript() -> None:
    from pypdf import PdfWriter
    from pypdf.actions import JavaScript

    writer = PdfWriter(clone_from=io.BytesIO(TEXT_PDF))
    writer.add_open_action(JavaScript("app.alert('hi');"))
    assert inspect_pdf(_write(writer)).has_javascript


# --- text formats ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["notes.txt", "README.md", "run.log", "NOTES.TXT"])
def test_plain_text(name: str) -> None:
    result = extract("Lot C19-2026-001 released\nviabilité 93 %".encode(), name)
    assert result.searchable
    assert result.text == "Lot C19-2026-001 released\nviabilité 93 %"
    assert result.pages is None


def test_cp1252_fallback_and_bom() -> None:
    assert extract("viabilité – 93 %".encode("cp1252"), "a.txt").text == "viabilité – 93 %"
    assert extract("\ufeffhello".encode(), "a.txt").text == "hello"
    assert extract("héllo".encode("utf-16"), "a.txt").text == "héllo"


def test_csv() -> None:
    data = b"lot,viability\nC19-2026-001,93\nC19-2026-002,88\n"
    result = extract(data, "results.csv")
    assert result.searchable
    assert "C19-2026-002" in result.text
    assert result.info["format"] == "csv"


def test_json() -> None:
    data = json.dumps({"lot": "C19-2026-001", "tests": [{"name": "sterility", "ok": True}]})
    result = extract(data.encode(), "release.json")
    assert result.searchable
    for word in ("lot", "C19-2026-001", "sterility", "True"):
        assert word in result.text
    assert '"' not in result.text


def test_invalid_json_is_indexed_as_text() -> None:
    result = extract(b'{"lot": "C19-2026-001",', "broken.json")
    assert result.searchable
    assert "C19-2026-001" in result.text
    assert "warning" in result.info


def test_deeply_nested_json_does_not_crash() -> None:
    result = extract(b"[" * 100_000 + b"]" * 100_000, "deep.json")
    assert result == Extraction(text="", searchable=False, reason="too deeply nested to extract")
    # Nesting a parser handles is extracted as usual.
    shallow = extract(b"[" * 50 + b'"L-0042"' + b"]" * 50, "shallow.json")
    assert (shallow.text, shallow.searchable) == ("L-0042", True)


def test_xml() -> None:
    data = b'<?xml version="1.0"?><batch lot="C19-2026-001"><step>Thaw</step><step>Wash &amp; count</step></batch>'
    result = extract(data, "batch.xml")
    assert result.searchable
    assert result.text.splitlines() == ["Thaw", "Wash & count"]


ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<lolz>&lol9;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>"""


@pytest.mark.parametrize(
    "data", [ENTITY_BOMB, EXTERNAL_ENTITY, b'<!DOCTYPE html SYSTEM "x.dtd"><html/>']
)
def test_xml_with_doctype_is_refused(data: bytes) -> None:
    result = extract(data, "evil.xml")
    assert not result.searchable
    assert result.reason is not None and "DOCTYPE" in result.reason
    assert "lol" not in result.text and "root" not in result.text


def test_malformed_xml() -> None:
    result = extract(b"<a><b></a>", "bad.xml")
    assert not result.searchable
    assert result.reason is not None and result.reason.startswith("damaged XML")


def test_undefined_entity_is_not_expanded() -> None:
    result = extract(b"<a>&secret;</a>", "bad.xml")
    assert not result.searchable
    assert result.reason == "damaged XML: undefined entity"


def test_xml_text_is_capped() -> None:
    data = b"<r>" + b"<s>abcdefghij</s>" * (MAX_TEXT_CHARS // 10 + 100) + b"</r>"
    result = extract(data, "big.xml")
    assert result.searchable
    assert len(result.text) == MAX_TEXT_CHARS
    assert result.info["truncated"] == "true"


# --- safexml -----------------------------------------------------------------------------

INDEX_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<ectd:ectd xmlns:ectd="http://www.ich.org/ectd" xmlns:xlink="http://www.w3.org/1999/xlink">
  <m1-regional>
    <leaf ID="L1" operation="new" checksum="0cc175b9c0f1b6a831c399e269772661"
          checksum-type="md5" xlink:href="m1/us/cover.pdf"><title>Cover letter</title></leaf>
  </m1-regional>
  <m3-quality><ectd:leaf ID="L2" xlink:href="m3/32-body-data/spec.pdf"/></m3-quality>
</ectd:ectd>"""


def test_safexml_parse_finds_elements_by_local_name() -> None:
    root = safexml.parse(INDEX_XML)
    assert safexml.local_name(root.tag) == "ectd"
    leaves = [safexml.attributes(e) for e in safexml.iter_local(root, "leaf")]
    assert leaves == [
        {
            "ID": "L1",
            "operation": "new",
            "checksum": "0cc175b9c0f1b6a831c399e269772661",
            "checksum-type": "md5",
            "href": "m1/us/cover.pdf",
        },
        {"ID": "L2", "href": "m3/32-body-data/spec.pdf"},
    ]
    assert [e.text for e in safexml.iter_local(root, "title")] == ["Cover letter"]
    assert list(safexml.iter_local(safexml.parse(b"<leaf a='1'/>"), "leaf"))  # the root too


@pytest.mark.parametrize(
    "data", [ENTITY_BOMB, EXTERNAL_ENTITY, b'<!DOCTYPE html SYSTEM "x.dtd"><html/>']
)
def test_safexml_refuses_doctypes(data: bytes) -> None:
    with pytest.raises(safexml.UnsafeXml, match="DOCTYPE") as caught:
        safexml.parse(data)
    assert isinstance(caught.value, safexml.XmlProblem)
    assert isinstance(caught.value, ValueError)
    with pytest.raises(safexml.UnsafeXml):
        safexml.feed(data, _Ignore())


@pytest.mark.parametrize(
    ("data", "reason", "line", "column"),
    [
        (b"<a><b></a>", "mismatched tag", 1, 8),
        (b"<a>\n<1/></a>", "not well-formed (invalid token)", 2, 1),
        (b"<a>&secret;</a>", "undefined entity", 1, 3),
        (b"", "no element found", 1, 0),
    ],
)
def test_safexml_errors_read_like_expat(data: bytes, reason: str, line: int, column: int) -> None:
    with pytest.raises(safexml.XmlError) as caught:
        safexml.parse(data)
    error = caught.value
    assert str(error) == f"{reason}: line {line}, column {column}"
    assert (error.reason, error.line, error.column) == (reason, line, column)
    assert isinstance(error, safexml.XmlProblem)


class _Ignore:
    def start(self, tag: str, attrib: dict[str, str]) -> None:
        pass

    def end(self, tag: str) -> None:
        pass

    def data(self, text: str) -> None:
        pass


def test_safexml_feed_streams_events_in_order() -> None:
    events: list[tuple[str, ...]] = []

    class Record(_Ignore):
        def start(self, tag: str, attrib: dict[str, str]) -> None:
            events.append(("start", tag, *attrib))

        def end(self, tag: str) -> None:
            events.append(("end", tag))

        def data(self, text: str) -> None:
            events.append(("data", text))

    safexml.feed(b'<r xmlns="urn:x"><s n="1">a &amp; b</s>tail</r>', Record())
    assert events == [
        ("start", "{urn:x}r"),
        ("start", "{urn:x}s", "n"),
        ("data", "a & b"),
        ("end", "{urn:x}s"),
        ("data", "tail"),
        ("end", "{urn:x}r"),
    ]


# --- DOCX --------------------------------------------------------------------------------


def test_docx() -> None:
    result = extract(
        docx(["Deviation DEV-0007", "Root cause: courier delay"], title="DEV"), "d.docx"
    )
    assert result.searchable
    assert result.text == "Deviation DEV-0007\nRoot cause: courier delay"
    assert result.info["title"] == "DEV"


def test_docx_with_doctype_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("word/document.xml", ENTITY_BOMB)
    result = extract(out.getvalue(), "bomb.docx")
    assert not result.searchable
    assert result.reason is not None and "DOCTYPE" in result.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip at all", "damaged DOCX"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "encrypted DOCX"),
    ],
)
def test_damaged_docx(data: bytes, reason: str) -> None:
    result = extract(data, "broken.docx")
    assert not result.searchable
    assert result.reason is not None and result.reason.startswith(reason)


def test_docx_without_document_xml() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    result = extract(out.getvalue(), "empty.docx")
    assert result.reason == "damaged DOCX: word/document.xml is missing"


# --- general -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shown"), [("image.png", ".png"), ("Makefile", "(no extension)")])
def test_unsupported_format(name: str, shown: str) -> None:
    result = extract(b"\x89PNG....", name)
    assert not result.searchable
    assert result.reason == f"unsupported format: {shown}"


def test_text_is_capped() -> None:
    result = extract(b"a" * (MAX_TEXT_CHARS + 10), "big.txt")
    assert len(result.text) == MAX_TEXT_CHARS
    assert result.info["truncated"] == "true"


def test_extraction_is_frozen_and_picklable() -> None:
    result = extract(TEXT_PDF, "a.pdf")
    assert pickle.loads(pickle.dumps(result)) == result
    with pytest.raises(AttributeError):
        result.text = "x"  # type: ignore[misc]
