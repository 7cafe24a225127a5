"""Certificates as PDF/A-3b (archive/core/pdf.py): metadata, colour, fonts, attachments, text.

pdftotext (Debian's poppler-utils, which .ci/run installs) must be there: a missing tool
fails these tests, it never skips them.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter
from pypdf.generic import DictionaryObject, IndirectObject

from atmpvault.archive.core.pdf import (
    SRGB_PROFILE,
    Attachment,
    embedded_files,
    html_pdf,
    make_pdf,
    pdf_text,
)
from atmpvault.errors import IntegrityError, TemplateProblem

ISSUED = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
TITLE = "Chain-of-custody certificate L-0042"
EVENTS = [
    ("2026-03-01 08:00", "collection", "Apheresis site → courier", "4 °C", "jdoe"),
    ("2026-03-01 14:30", "cryopreservation", "Manufacturing → LN2 dewar", "−196 °C", "asmith"),
    ("2026-03-03 09:10", "shipment", "Dewar &lt;A&gt; → clinic", "−196 °C", "courier-7"),
]
# As an autoescaped Jinja2 template writes it.
CERTIFICATE = (
    "<h1>Chain-of-custody certificate</h1>"
    "<p>Lot <b>L-0042</b> — chain-of-identity <b>COI-2026-000123</b> &amp; DIN W1234 26 123456</p>"
    "<table><tr><th>When (UTC)</th><th>Step</th><th>From → to</th><th>Temperature</th>"
    "<th>By</th></tr>"
    + "".join("<tr>" + "".join(f"<td>{v}</td>" for v in event) + "</tr>" for event in EVENTS)
    + "</table><p>The machine-readable record is attached: event-record.json.</p>"
)
RECORD = json.dumps(
    {"lot": "L-0042", "events": [dict(zip(("at", "step"), e[:2], strict=True)) for e in EVENTS]},
    ensure_ascii=False,
    indent=2,
).encode()
ATTACHMENT = Attachment(
    "event-record.json", RECORD, "application/json", "The custody events this certificate shows"
)
XMP_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
}


def certify(html: str = CERTIFICATE, issued: datetime = ISSUED, **options: Any) -> bytes:
    return html_pdf(
        html,
        title=TITLE,
        created=issued,
        pdfa=True,
        attachments=[ATTACHMENT],
        subject="Chain of custody of lot L-0042",
        keywords="custody, L-0042",
        author="QA, site 1",
        **options,
    )


@pytest.fixture(scope="module")
def certificate() -> bytes:
    return certify()


@pytest.fixture(scope="module")
def catalog(certificate: bytes) -> DictionaryObject:
    return PdfReader(io.BytesIO(certificate)).trailer["/Root"].get_object()


def xmp_text(catalog: DictionaryObject) -> str:
    metadata = catalog["/Metadata"].get_object()
    assert "/Filter" not in metadata  # PDF/A: XMP readable without decoding
    return str(metadata.get_data().decode("utf-8"))


def test_the_xmp_declares_pdf_a_3b(catalog: DictionaryObject) -> None:
    xmp = xmp_text(catalog)
    assert 'pdfaid:part="3"' in xmp
    assert 'pdfaid:conformance="B"' in xmp
    assert xmp.startswith('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert xmp.rstrip().endswith('<?xpacket end="w"?>')


def test_the_xmp_says_what_the_info_dictionary_says(certificate: bytes) -> None:
    reader = PdfReader(io.BytesIO(certificate))
    info = reader.metadata
    assert info is not None
    xmp = ET.fromstring(re.sub(r"<\?xpacket[^>]*\?>", "", xmp_text(reader.trailer["/Root"])))
    about = xmp.find(".//rdf:Description", XMP_NS)
    assert about is not None

    def one(path: str) -> str | None:
        found = about.findall(path, XMP_NS)
        assert len(found) == 1, path
        return found[0].text

    assert info.title == TITLE == one("dc:title/rdf:Alt/rdf:li")
    assert info.author == "QA, site 1" == one("dc:creator/rdf:Seq/rdf:li")
    assert info.subject == "Chain of custody of lot L-0042" == one("dc:description/rdf:Alt/rdf:li")
    assert datetime.fromisoformat(one("dc:date/rdf:Seq/rdf:li") or "") == ISSUED
    attribute = {key.split("}")[1]: value for key, value in about.attrib.items()}
    assert info.creation_date == ISSUED == datetime.fromisoformat(attribute["CreateDate"])
    assert info.creator == "atmpvault" == attribute["CreatorTool"]
    assert info.producer == "atmpvault" == attribute["Producer"]
    assert info["/Keywords"] == "custody, L-0042" == attribute["Keywords"]
    assert reader.pdf_header == "%PDF-1.7"


def test_an_srgb_output_intent_carries_the_packaged_icc_profile(
    catalog: DictionaryObject,
) -> None:
    (intent,) = [item.get_object() for item in catalog["/OutputIntents"]]
    assert intent["/Type"] == "/OutputIntent"
    assert intent["/S"] == "/GTS_PDFA1"
    assert "sRGB" in intent["/OutputConditionIdentifier"]
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3
    assert profile.get_data() == SRGB_PROFILE.read_bytes()
    assert profile.get_data()[36:40] == b"acsp"  # an ICC profile's signature
    assert (SRGB_PROFILE.parent / "LICENSE").is_file()


def test_every_font_is_embedded(certificate: bytes) -> None:
    reader = PdfReader(io.BytesIO(certificate))
    fonts = [
        font.get_object()
        for page in reader.pages
        for font in page["/Resources"]["/Font"].get_object().values()
    ]
    assert len(fonts) >= 2  # regular and bold
    for font in fonts:
        assert font["/Subtype"] == "/Type0"
        (descendant,) = [item.get_object() for item in font["/DescendantFonts"]]
        descriptor = descendant["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, font["/BaseFont"]
        assert "DejaVuSans" in font["/BaseFont"]


def test_the_record_is_attached_as_associated_data(
    certificate: bytes, catalog: DictionaryObject
) -> None:
    assert embedded_files(certificate) == {"event-record.json": RECORD}
    (listed,) = catalog["/AF"]
    assert isinstance(listed, IndirectObject)  # the same file specification as in /Names
    spec = listed.get_object()
    names = catalog["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "event-record.json" and names[1].get_object() == spec
    assert spec["/AFRelationship"] == "/Data"
    assert spec["/F"] == spec["/UF"] == "event-record.json"
    assert spec["/Desc"] == "The custody events this certificate shows"
    stream = spec["/EF"]["/F"].get_object()
    assert stream["/Subtype"] == "/application/json"
    params = stream["/Params"]
    assert params["/Size"] == len(RECORD)
    assert params["/ModDate"] == "D:20260303100000Z"
    assert bytes(params["/CheckSum"]) == hashlib.md5(RECORD).digest()


def test_nothing_forbidden_by_pdf_a(certificate: bytes) -> None:
    reader = PdfReader(io.BytesIO(certificate))
    assert not reader.is_encrypted and "/Encrypt" not in reader.trailer
    assert "/ID" in reader.trailer
    objects = [reader.get_object(number) for number in range(1, reader.trailer["/Size"])]
    dictionaries = [
        found for found in objects if isinstance(found, DictionaryObject)
    ]  # streams too
    assert len(dictionaries) > 20
    for dictionary in dictionaries:
        assert not {"/JS", "/JavaScript", "/AA", "/SMask", "/Encrypt"} & set(dictionary)
        assert dictionary.get("/S") not in ("/JavaScript", "/Transparency")
        assert "/Group" not in dictionary  # no transparency groups either


def test_pdftotext_reads_the_title_and_the_table(certificate: bytes) -> None:
    # No skip: FileNotFoundError fails the test where poppler-utils is missing.
    result = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", "-", "-"], input=certificate, capture_output=True
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode("utf-8")
    for expected in (
        "Chain-of-custody certificate",
        "COI-2026-000123 & DIN W1234 26 123456",
        "When (UTC)",
        "From → to",
        "Manufacturing → LN2 dewar",
        "Dewar <A> → clinic",
        "−196 °C",
        "4 °C",
        "courier-7",
        f"{TITLE} — page 1 of 1",
    ):
        assert expected in text, expected


def test_pdf_text_reads_it_too(certificate: bytes) -> None:
    text = pdf_text(certificate)
    assert "Chain-of-custody certificate" in text
    assert "−196 °C" in text and "Apheresis site → courier" in text


def test_the_same_certificate_gives_the_same_bytes(certificate: bytes) -> None:
    assert certify() == certificate
    later = certify(issued=datetime(2026, 3, 4, 10, 0, tzinfo=UTC))
    assert later != certificate
    ids = [PdfReader(io.BytesIO(data)).trailer["/ID"][0] for data in (certificate, later)]
    assert ids[0] != ids[1]  # the document ID is derived from the content


def test_attachments_without_pdf_a() -> None:
    data = html_pdf("<p>x</p>", title="Plain", created=ISSUED, attachments=[ATTACHMENT])
    assert embedded_files(data) == {"event-record.json": RECORD}
    assert b"pdfaid" not in data and b"/OutputIntents" not in data
    assert embedded_files(make_pdf([["no attachments"]])) == {}


@pytest.mark.parametrize(
    ("attachments", "message"),
    [
        ([Attachment("", b"{}", "application/json", "d")], "has no name"),
        ([ATTACHMENT, ATTACHMENT], "'event-record.json' is attached twice"),
        ([Attachment("a.json", b"", "application/json", "d")], "is empty"),
        ([Attachment("a.json", b"{}", "json", "d")], "no MIME type"),
        ([Attachment("a.json", b"{}", "application/json", "d", "Evidence")], "not one of Source"),
    ],
    ids=["no-name", "twice", "empty", "bad-mime", "bad-relationship"],
)
def test_bad_attachments_are_a_template_problem(
    attachments: list[Attachment], message: str
) -> None:
    with pytest.raises(TemplateProblem, match=message):
        html_pdf("<p>x</p>", title="Bad", created=ISSUED, pdfa=True, attachments=attachments)


def test_reading_back_a_damaged_or_ambiguous_pdf_is_an_integrity_problem() -> None:
    with pytest.raises(IntegrityError, match="cannot read the PDF"):
        embedded_files(b"%PDF-1.7\nnot really")
    with pytest.raises(IntegrityError, match="cannot read the PDF"):
        pdf_text(b"")
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["x"]]))))
    writer.add_attachment("record.json", b"{}")
    writer.add_attachment("record.json", b'{"forged": true}')
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(IntegrityError, match="2 files named 'record.json'"):
        embedded_files(out.getvalue())
