"""Submission packages: eCTD-style build, determinism, checksums, PDF checks, lifecycle."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from click.testing import Result

from atmpvault.archive.core.pdf import make_pdf
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.versions import Documents
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.submissions.model import (
    MAX_NAME,
    Package,
    normalise_name,
    record_path,
)
from atmpvault.archive.regulatory.submissions.verify import verify_build
from atmpvault.config import Settings
from tests.conftest import run

IND = "IND-012345"
BLA = "BLA-125123"
ECTD = "{http://www.ich.org/ectd}"
XLINK = "{http://www.w3c.org/1999/xlink}"


# -- helpers ------------------------------------------------------------------------------


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def ok_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def refused(result: Result, code: int, *words: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.startswith("atmpvault: ") or code == 2, message
    for word in words:
        assert word in message, (word, message)
    return message


def archive(vault: Path, tmp: Path, name: str, data: bytes, title: str | None = None) -> str:
    path = tmp / "incoming" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    args = ["add", str(path), "--program", "CART-19", "--type", "batch-record", "--json"]
    if title:
        args += ["--title", title]
    doc: str = ok_json(run(vault, *args))["id"]
    return doc


def pdf(*lines: str, version: str = "1.4") -> bytes:
    return make_pdf([list(lines) or ["page"]], title=lines[0] if lines else "", version=version)


def pypdf_variant(data: bytes, encrypt: bool = False, javascript: bool = False) -> bytes:
    """A PDF 1.7 copy of `data`, encrypted with a password or opening a JavaScript action."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, TextStringObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.pdf_header = b"%PDF-1.7"
    if javascript:
        action = DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.alert('hello');"),
            }
        )
        writer._root_object[NameObject("/OpenAction")] = action
    if encrypt:
        writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture
def vp(vault_path: Path) -> Path:
    """A CLI vault with an IND and a BLA registered."""
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(vault_path, "app", "new", "bla", "125123", "--program", "CART-19"))
    return vault_path


def new_sequence(vault: Path, seq: str, sub_type: str = "original", app: str = IND) -> None:
    ok(run(vault, "package", "new", app, "--sequence", seq, "--type", sub_type))


def add(vault: Path, seq: str, doc: str, section: str, *extra: str, app: str = IND) -> Any:
    return ok_json(
        run(vault, "package", "add", app, seq, doc, "--section", section, *extra, "--json")
    )


def force_leaf(settings: Settings, seq: str, doc: str, section: str, app: str = IND) -> str:
    """Append a `new` leaf to a sequence's record unchecked, as an older release could."""
    with Vault.open(settings, domains()) as vault:
        version = Documents(vault).show(doc)
        path = record_path(app, seq)
        raw = json.loads(vault.read_file(path) or b"")
        leaf_id = f"leaf-{len(raw['leaves']) + 1:04d}"
        raw["status"] = "in-preparation"
        raw["leaves"].append(
            {
                "id": leaf_id,
                "doc": version.id,
                "version": version.version,
                "sha256": version.sha256,
                "commit": version.commit,
                "filename": version.filename,
                "section": section,
                "href": f"{section}/{normalise_name(version.filename)}",
                "operation": "new",
                "title": version.title or version.filename,
                "modifies": None,
                "modifies_leaf": None,
                "added_at": "2026-01-01T00:00:00Z",
                "added_by": "older.release",
            }
        )
        vault.commit_files(
            {path: json.dumps(raw).encode()}, "an older release", {"Action": "package-add"}
        )
    return leaf_id


def files_of(zip_path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as z:
        return {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}


def leaves_of(index: bytes) -> list[dict[str, str]]:
    root = ElementTree.fromstring(index)
    found = []
    for leaf in root.iter("leaf"):
        found.append({k.replace(XLINK, "xlink:"): v for k, v in leaf.attrib.items()})
    return found


@pytest.fixture
def built(vp: Path, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """Sequence 0000 of the IND with two PDFs and a text file; its docs by name."""
    docs = {
        "spec": archive(vp, tmp_path, "Drug Product Specification (Rev 3).PDF", pdf("Spec")),
        "ba": archive(vp, tmp_path, "batch_analysis.pdf", pdf("Batch analysis", "L-0042")),
        "note": archive(vp, tmp_path, "Cover Letter.txt", b"Dear reviewer\n"),
    }
    new_sequence(vp, "0000")
    add(vp, "0000", docs["spec"], "m3/32p/32p5", "--title", "Specification")
    add(vp, "0000", docs["ba"], "m3/32p/32p5")
    add(vp, "0000", docs["note"], "m1/us")
    return vp, docs


# -- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Drug Product Specification (Rev 3).PDF", "drug-product-specification-rev-3.pdf"),
        ("batch_analysis.pdf", "batch-analysis.pdf"),
        ("Übersicht – Lot L-0042.pdf", "ubersicht-lot-l-0042.pdf"),
        ("..\\..\\etc\\passwd", "passwd"),
        ("../secret.pdf", "secret.pdf"),
        ("---.pdf", "document.pdf"),
        ("README", "readme"),
        (".hidden", "hidden"),
        ("x" * 100 + ".pdf", "x" * (MAX_NAME - 4) + ".pdf"),
    ],
)
def test_file_names_are_normalised(given: str, expected: str) -> None:
    name = normalise_name(given)
    assert name == expected
    assert len(name) <= MAX_NAME


# -- building -----------------------------------------------------------------------------


def test_build_lays_out_an_ectd_sequence(
    built: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    vp, docs = built
    result = ok_json(
        run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out"), "--json")
    )
    seq = tmp_path / "out" / "0000"
    assert result["output"] == str(seq)
    for module in ("m1", "m2", "m3", "m4", "m5"):
        assert (seq / module).is_dir()
    spec = seq / "m3/32p/32p5/drug-product-specification-rev-3.pdf"
    assert spec.read_bytes() == ok(run(vp, "get", docs["spec"])).stdout_bytes
    assert (seq / "m3/32p/32p5/batch-analysis.pdf").is_file()
    assert (seq / "m1/us/cover-letter.txt").read_bytes() == b"Dear reviewer\n"
    index = (seq / "index.xml").read_bytes()
    assert (seq / "index-md5.txt").read_text() == hashlib.md5(index).hexdigest()
    leaves = {leaf["xlink:href"]: leaf for leaf in leaves_of(index)}
    assert set(leaves) == {
        "m1/us/us-regional.xml",
        "m1/us/cover-letter.txt",
        "m3/32p/32p5/drug-product-specification-rev-3.pdf",
        "m3/32p/32p5/batch-analysis.pdf",
    }
    for href, leaf in leaves.items():
        assert leaf["checksum"] == hashlib.md5((seq / href).read_bytes()).hexdigest()
        assert leaf["checksum-type"] == "md5"
        assert leaf["operation"] == "new"
    manifest = (seq / "sha256-manifest.txt").read_text().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in manifest)
    on_disk = {p.relative_to(seq).as_posix() for p in seq.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {"sha256-manifest.txt"}
    for rel, digest in listed.items():
        assert hashlib.sha256((seq / rel).read_bytes()).hexdigest() == digest
    checks = {c["href"]: c for c in result["pdf_checks"]}
    assert set(checks) == {h for h in leaves if h.endswith(".pdf")}
    assert all(c["ok"] and c["pdf_version"] == "1.4" for c in checks.values())
    for path in [seq, *seq.rglob("*")]:
        rel = path.relative_to(seq.parent).as_posix()
        assert len(rel) <= 150
        assert all(len(part) <= MAX_NAME for part in rel.split("/"))
    text = ok(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "again"))).stdout
    assert "PDF checks" in text and "drug-product-specification-rev-3.pdf" in text


def test_zip_builds_are_byte_identical(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    vp, _docs = built
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    ok(run(vp, "package", "build", IND, "0000", "-o", str(first)))
    # Unrelated writes in between change nothing in the package.
    archive(vp, tmp_path, "unrelated.txt", b"not in the package\n")
    ok(run(vp, "package", "build", IND, "0000", "-o", str(second)))
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as z:
        infos = z.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert all(name.startswith("0000/") for name in names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos if not i.is_dir()} == {0o100644}
    assert "0000/m3/32p/32p5/batch-analysis.pdf" in names
    assert ok(run(None, "package", "verify", str(first))).exit_code == 0


def test_build_refuses_to_overwrite(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    vp, _docs = built
    ok(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out")))
    refused(
        run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out")), 1, "already exists"
    )
    refused(
        run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "nowhere" / "x.zip")),
        1,
        "no such folder",
    )


# -- verifying ----------------------------------------------------------------------------


def test_verify_names_a_changed_leaf_in_a_folder(
    built: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    vp, _docs = built
    ok(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out")))
    seq = tmp_path / "out" / "0000"
    ok(run(None, "package", "verify", str(seq)))
    leaf = seq / "m3/32p/32p5/batch-analysis.pdf"
    data = bytearray(leaf.read_bytes())
    data[len(data) // 2] ^= 0x01
    leaf.write_bytes(bytes(data))
    message = refused(run(None, "package", "verify", str(tmp_path / "out")), 3, "2 difference")
    assert "m3/32p/32p5/batch-analysis.pdf (leaf leaf-0002): MD5 differs from index.xml" in message
    assert "m3/32p/32p5/batch-analysis.pdf: SHA-256 differs from sha256-manifest.txt" in message
    report = json.loads(run(None, "package", "verify", str(seq), "--json").stdout)
    assert report["ok"] is False
    assert any("SHA-256 differs" in p and "batch-analysis.pdf" in p for p in report["problems"])


def test_verify_names_a_changed_leaf_in_a_zip(
    built: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    vp, _docs = built
    good = tmp_path / "good.zip"
    ok(run(vp, "package", "build", IND, "0000", "-o", str(good)))
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("cover-letter.txt"):
                data = data.replace(b"Dear", b"Deer")
            dst.writestr(info, data)
    message = refused(run(None, "package", "verify", str(bad)), 3)
    assert "m1/us/cover-letter.txt" in message


def test_verify_names_a_changed_index(built: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    vp, _docs = built
    ok(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out")))
    index = tmp_path / "out" / "0000" / "index.xml"
    index.write_bytes(index.read_bytes().replace(b"Specification", b"Specificatiom"))
    message = refused(run(None, "package", "verify", str(tmp_path / "out")), 3)
    assert "index.xml: its MD5 differs from index-md5.txt" in message
    assert "index.xml: SHA-256 differs" in message


def test_verify_names_a_changed_checksum_in_the_index(
    built: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    vp, _docs = built
    ok(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out")))
    seq = tmp_path / "out" / "0000"
    index = seq / "index.xml"
    href = "m3/32p/32p5/batch-analysis.pdf"
    real = hashlib.md5((seq / href).read_bytes()).hexdigest()
    changed = index.read_bytes().replace(real.encode(), b"0" * 32)
    index.write_bytes(changed)
    # Even with index-md5.txt and the manifest brought into line, the leaf disagrees.
    (seq / "index-md5.txt").write_text(hashlib.md5(changed).hexdigest())
    lines = [
        f"{hashlib.sha256(changed).hexdigest()}  index.xml"
        if line.endswith("  index.xml")
        else f"{hashlib.sha256((seq / 'index-md5.txt').read_bytes()).hexdigest()}  index-md5.txt"
        if line.endswith("  index-md5.txt")
        else line
        for line in (seq / "sha256-manifest.txt").read_text().splitlines()
    ]
    (seq / "sha256-manifest.txt").write_text("\n".join(lines) + "\n")
    message = refused(run(None, "package", "verify", str(seq)), 3, "1 difference")
    assert f"{href} (leaf leaf-0002): MD5 differs from index.xml" in message


def test_verify_names_missing_and_extra_files(
    built: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    vp, _docs = built
    ok(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out")))
    seq = tmp_path / "out" / "0000"
    (seq / "m1/us/cover-letter.txt").unlink()
    (seq / "m2" / "smuggled.pdf").write_bytes(b"%PDF-1.4\n")
    message = refused(run(None, "package", "verify", str(seq)), 3)
    assert "m1/us/cover-letter.txt (leaf leaf-0003): listed in index.xml but missing" in message
    assert "m2/smuggled.pdf: present but not in sha256-manifest.txt" in message
    refused(run(None, "package", "verify", str(tmp_path / "missing")), 1, "no such built package")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    refused(run(None, "package", "verify", str(tmp_path / "junk.zip")), 3, "not a readable zip")


def test_verify_refuses_entity_declarations(tmp_path: Path) -> None:
    seq = tmp_path / "0000"
    seq.mkdir()
    index = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
    (seq / "index.xml").write_bytes(index)
    report = verify_build(seq)
    assert any("declares entities" in p for p in report.problems)


# -- refusals -----------------------------------------------------------------------------


def test_a_sequence_number_is_used_once(vp: Path) -> None:
    new_sequence(vp, "0000")
    message = refused(
        run(vp, "package", "new", IND, "--sequence", "0000", "--type", "protocol-amendment"),
        1,
        "sequence 0000 of IND-012345 is already used",
    )
    assert "original" in message
    # Another application has its own numbering.
    new_sequence(vp, "0000", "bla-original", app=BLA)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--sequence", "1", "--type", "original"], 2, "four digits"),
        (["--sequence", "00001", "--type", "original"], 2, "four digits"),
        (["--sequence", "0001", "--type", "amendment"], 2, "amendment"),
        (["--sequence", "0001", "--type", "pas"], 1, "pas is a BLA submission"),
    ],
)
def test_package_new_checks_its_input(vp: Path, args: list[str], code: int, words: str) -> None:
    result = run(vp, "package", "new", IND, *args)
    assert result.exit_code == code, result.stderr
    assert words in result.stderr


def test_an_unknown_application_is_refused(vp: Path) -> None:
    refused(
        run(vp, "package", "new", "IND-099999", "--sequence", "0000", "--type", "original"),
        1,
        "no application IND-099999",
    )
    refused(run(vp, "package", "new", "../etc", "--sequence", "0000", "--type", "original"), 2)


def test_a_document_not_in_the_archive_is_refused(vp: Path, tmp_path: Path) -> None:
    doc = archive(vp, tmp_path, "spec.pdf", pdf("Spec"))
    new_sequence(vp, "0000")
    refused(
        run(vp, "package", "add", IND, "0000", "DOC-000099", "--section", "m3/32p"),
        1,
        "no document DOC-000099",
    )
    refused(
        run(vp, "package", "add", IND, "0000", f"{doc}@7", "--section", "m3/32p"),
        1,
        "there is no version 7",
    )
    refused(
        run(vp, "package", "add", IND, "0001", doc, "--section", "m3/32p"), 1, "no sequence 0001"
    )


@pytest.mark.parametrize(
    "section",
    ["m6/x", "m3/../../etc", "/m3/32p", "m3/32P", "m3/32p_1", "m3//32p", "m3/-a", "x"],
)
def test_sections_are_validated(vp: Path, tmp_path: Path, section: str) -> None:
    doc = archive(vp, tmp_path, "spec.pdf", pdf("Spec"))
    new_sequence(vp, "0000")
    result = run(vp, "package", "add", IND, "0000", doc, "--section", section, "--json")
    if section == "/m3/32p":  # surrounding slashes are trimmed, and the trimmed one stored
        leaf = ok_json(result)
        assert (leaf["section"], leaf["href"]) == ("m3/32p", "m3/32p/spec.pdf")
        (stored,) = ok_json(run(vp, "package", "show", IND, "0000", "--json"))["leaves"]
        assert (stored["section"], stored["href"]) == ("m3/32p", "m3/32p/spec.pdf")
        return
    refused(result, 2, "invalid section")
    assert ok_json(run(vp, "package", "show", IND, "0000", "--json"))["leaves"] == []


def test_file_names_that_collide_after_normalising_are_refused(vp: Path, tmp_path: Path) -> None:
    first = archive(vp, tmp_path, "Batch Analysis.pdf", pdf("one"))
    second = archive(vp, tmp_path, "batch_analysis.PDF", pdf("two"))
    new_sequence(vp, "0000")
    add(vp, "0000", first, "m3/32p/32p5")
    message = refused(
        run(vp, "package", "add", IND, "0000", second, "--section", "m3/32p/32p5"),
        1,
        "collide after normalising",
        first,
        second,
        "m3/32p/32p5/batch-analysis.pdf",
    )
    assert "'Batch Analysis.pdf'" in message and "'batch_analysis.PDF'" in message
    add(vp, "0000", second, "m3/32p/32p4")  # another section is fine


def test_a_build_rechecks_collisions_in_the_record(
    vp: Path, tmp_path: Path, settings: Settings
) -> None:
    """A record written by other means (an older tool, a hand edit) is checked again."""
    first = archive(vp, tmp_path, "Batch Analysis.pdf", pdf("one"))
    second = archive(vp, tmp_path, "batch-analysis.pdf", pdf("two"))
    new_sequence(vp, "0000")
    add(vp, "0000", first, "m3/32p")
    add(vp, "0000", second, "m3/32s")
    with Vault.open(settings, domains()) as vault:
        path = record_path(IND, "0000")
        package = Package.from_record(vault.read_file(path) or b"")
        leaves = [package.leaves[0], Package.from_record(package.record()).leaves[1]]
        moved = dict(leaves[1].to_json(), href=leaves[0].href, section="m3/32p")
        raw = json.loads(package.record())
        raw["leaves"][1] = moved
        vault.commit_files({path: json.dumps(raw).encode()}, "hand edit", {"Action": "test-edit"})
    refused(
        run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out")),
        1,
        "collide after normalising",
        first,
        second,
    )
    assert not (tmp_path / "out" / "0000").exists()


def test_paths_over_150_characters_are_refused(vp: Path, tmp_path: Path) -> None:
    doc = archive(vp, tmp_path, "x" * 60 + ".pdf", pdf("long"))
    new_sequence(vp, "0000")
    section = "m3/" + "/".join(["a" * 40] * 3)
    refused(
        run(vp, "package", "add", IND, "0000", doc, "--section", section),
        1,
        "the limit is 150",
    )


# -- PDF checks ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (pypdf_variant(pdf("Secret"), encrypt=True), "encrypted"),
        (pdf("Old", version="1.3"), "PDF version 1.3 (FDA accepts 1.4 to 1.7)"),
        (pdf("New", version="2.0"), "PDF version 2.0 (FDA accepts 1.4 to 1.7)"),
        (pypdf_variant(pdf("Script"), javascript=True), "contains JavaScript"),
        (b"plain text, not a PDF", "not a PDF"),
    ],
    ids=["encrypted", "pdf-1.3", "pdf-2.0", "javascript", "not-a-pdf"],
)
def test_pdfs_outside_fdas_specification_refuse_the_build(
    vp: Path, tmp_path: Path, settings: Settings, data: bytes, problem: str
) -> None:
    good = archive(vp, tmp_path, "good.pdf", pdf("Good"))
    bad = archive(vp, tmp_path, "Bad File.pdf", data)
    new_sequence(vp, "0000")
    add(vp, "0000", good, "m3/32p")
    # 'package add' refuses such a leaf now; a record an older release wrote may hold one.
    assert force_leaf(settings, "0000", bad, "m3/32s") == "leaf-0002"
    out = tmp_path / "pkg.zip"
    message = refused(
        run(vp, "package", "build", IND, "0000", "-o", str(out)),
        1,
        "does not meet FDA's PDF specification",
        "leaf-0002",
        "m3/32s/bad-file.pdf",
        f"{bad} v1",
        problem,
    )
    assert "good.pdf" not in message
    assert not out.exists()
    assert list(tmp_path.glob("*.partial")) == []
    refused(
        run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05"),
        1,
        "does not meet FDA's PDF specification",
    )


def test_an_encrypted_pdf_is_still_archived(vp: Path, tmp_path: Path) -> None:
    doc = archive(vp, tmp_path, "locked.pdf", pypdf_variant(pdf("Secret"), encrypt=True))
    shown = ok_json(run(vp, "show", doc, "--json"))
    assert shown["searchable"] is False


# -- finalising and lifecycle -------------------------------------------------------------


def test_a_finalised_sequence_is_frozen(
    built: tuple[Path, dict[str, str]], tmp_path: Path, settings: Settings
) -> None:
    vp, docs = built
    before = tmp_path / "before.zip"
    ok(run(vp, "package", "build", IND, "0000", "-o", str(before)))
    final = ok_json(
        run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05", "--json")
    )
    assert final["status"] == "submitted"
    assert final["submitted"] == "2026-01-05"
    assert final["tag"] == "seq/IND-012345/0000"
    assert final["calendar_event"] is None  # an IND original starts no supplement goal
    with Vault.open(settings, domains()) as vault:
        tags = vault.store.tags("seq/")
        assert set(tags) == {"seq/IND-012345/0000"}
        info = [i for i in vault.store.history() if i.sha == tags["seq/IND-012345/0000"]]
        assert info[0].trailers["Action"] == "package-finalise"
        assert info[0].trailers["Package"] == "IND-012345/0000"
    refused(
        run(vp, "package", "add", IND, "0000", docs["spec"], "--section", "m3/32s"),
        1,
        "sequence is finalised",
    )
    refused(
        run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-06"),
        1,
        "sequence is finalised",
    )
    # Revising an archived document does not change what was submitted.
    revised = tmp_path / "incoming" / "spec-r4.pdf"
    revised.write_bytes(pdf("Spec rev 4"))
    ok(run(vp, "add", str(revised), "--id", docs["spec"], "--reason", "rev 4"))
    after = tmp_path / "after.zip"
    ok(run(vp, "package", "build", IND, "0000", "-o", str(after)))
    assert before.read_bytes() == after.read_bytes()
    listed = ok_json(run(vp, "package", "ls", IND, "--json"))
    assert [(p["sequence"], p["status"], p["leaves"]) for p in listed] == [("0000", "submitted", 3)]


def test_changing_a_finalised_record_is_an_integrity_error(
    built: tuple[Path, dict[str, str]], tmp_path: Path, settings: Settings
) -> None:
    vp, _docs = built
    ok(run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05"))
    with Vault.open(settings, domains()) as vault:
        path = record_path(IND, "0000")
        raw = json.loads(vault.read_file(path) or b"")
        raw["leaves"][0]["title"] = "Quietly changed"
        vault.commit_files({path: json.dumps(raw).encode()}, "edit", {"Action": "test-edit"})
    refused(run(vp, "package", "show", IND, "0000"), 3, "no longer matches", "seq/IND-012345/0000")
    refused(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "x.zip")), 3)


def test_finalise_checks_its_date(built: tuple[Path, dict[str, str]]) -> None:
    vp, _docs = built
    refused(
        run(vp, "package", "finalise", IND, "0000", "--submitted", "05/01/2026"), 2, "YYYY-MM-DD"
    )
    refused(run(vp, "package", "finalise", IND, "0000", "--submitted", "2999-01-01"), 2, "future")
    new_sequence(vp, "0001", "protocol-amendment")
    refused(
        run(vp, "package", "finalise", IND, "0001", "--submitted", "2026-01-05"), 1, "no leaves"
    )


def test_lifecycle_operations_in_index_xml(vp: Path, tmp_path: Path) -> None:
    spec = archive(vp, tmp_path, "spec.pdf", pdf("Spec v1"))
    ba = archive(vp, tmp_path, "batch-analysis.pdf", pdf("BA"))
    stab = archive(vp, tmp_path, "stability.pdf", pdf("Stability"))
    new_sequence(vp, "0000")
    add(vp, "0000", spec, "m3/32p/32p5")
    add(vp, "0000", ba, "m3/32p/32p5")
    add(vp, "0000", stab, "m3/32p/32p8")
    new_sequence(vp, "0001", "information-amendment")
    # Only leaves of finalised, earlier sequences of the same application can be modified.
    refused(
        run(vp, "package", "add", IND, "0001", spec, "--section", "m3/32p/32p5",
            "--operation", "replace", "--modifies", f"{IND}/0000/m3/32p/32p5/spec.pdf"),
        1,
        "0000 is not finalised",
    )  # fmt: skip
    ok(run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05"))
    revised = tmp_path / "incoming" / "spec-v2.pdf"
    revised.write_bytes(pdf("Spec v2"))
    ok(run(vp, "add", str(revised), "--id", spec, "--reason", "tightened limits"))
    refused(
        run(
            vp,
            "package",
            "add",
            IND,
            "0001",
            spec,
            "--section",
            "m3/32p/32p5",
            "--operation",
            "replace",
        ),
        2,
        "needs --modifies",
    )
    refused(
        run(vp, "package", "add", IND, "0001", spec, "--section", "m3/32p/32p5",
            "--modifies", f"{IND}/0000/leaf-0001"),
        2,
        "applies to replace, append and delete",
    )  # fmt: skip
    refused(
        run(vp, "package", "add", IND, "0001", spec, "--section", "m3/32p/32p5",
            "--operation", "replace", "--modifies", f"{IND}/0000/m3/32p/32p5/nothing.pdf"),
        1,
        "has no leaf",
    )  # fmt: skip
    refused(
        run(vp, "package", "add", IND, "0001", spec, "--section", "m3/32p/32p5",
            "--operation", "replace", "--modifies", f"{BLA}/0000/leaf-0001"),
        1,
        "must name a leaf of IND-012345",
    )  # fmt: skip
    refused(
        run(vp, "package", "add", IND, "0001", spec, "--section", "m3/32p/32p5",
            "--operation", "replace", "--modifies", f"{IND}/0001/leaf-0001"),
        1,
        "earlier sequence",
    )  # fmt: skip
    replaced = add(vp, "0001", spec, "m3/32p/32p5", "--operation", "replace",
                   "--modifies", f"{IND}/0000/m3/32p/32p5/spec.pdf")  # fmt: skip
    assert replaced["version"] == 2
    assert replaced["modifies"] == f"{IND}/0000/m3/32p/32p5/spec.pdf"
    add(
        vp,
        "0001",
        f"{ba}@1",
        "m3/32p/32p5",
        "--operation",
        "delete",
        "--modifies",
        f"{IND}/0000/leaf-0002",
    )
    appended = archive(vp, tmp_path, "stability-update.pdf", pdf("12-month data"))
    add(vp, "0001", appended, "m3/32p/32p8", "--operation", "append",
        "--modifies", f"{IND}/0000/leaf-0003")  # fmt: skip
    out = tmp_path / "0001.zip"
    ok(run(vp, "package", "build", IND, "0001", "-o", str(out)))
    files = files_of(out)
    leaves = {leaf["ID"]: leaf for leaf in leaves_of(files["0001/index.xml"])}
    assert leaves["leaf-0001"]["operation"] == "replace"
    assert leaves["leaf-0001"]["modified-file"] == "../0000/index.xml#leaf-0001"
    assert leaves["leaf-0001"]["xlink:href"] == "m3/32p/32p5/spec-v2.pdf"
    md5 = hashlib.md5(files["0001/m3/32p/32p5/spec-v2.pdf"]).hexdigest()
    assert md5 == leaves["leaf-0001"]["checksum"]
    assert leaves["leaf-0002"]["operation"] == "delete"
    assert leaves["leaf-0002"]["modified-file"] == "../0000/index.xml#leaf-0002"
    assert "xlink:href" not in leaves["leaf-0002"] and "checksum" not in leaves["leaf-0002"]
    assert leaves["leaf-0003"]["operation"] == "append"
    assert leaves["leaf-0003"]["modified-file"] == "../0000/index.xml#leaf-0003"
    assert "0001/m3/32p/32p5/batch-analysis.pdf" not in files
    ok(run(None, "package", "verify", str(out)))
    # A submitted date before the sequence it modifies is refused.
    refused(
        run(vp, "package", "finalise", IND, "0001", "--submitted", "2026-01-04"),
        1,
        "after 2026-01-04",
    )
    ok(run(vp, "package", "finalise", IND, "0001", "--submitted", "2026-02-01"))
    shown = ok(run(vp, "package", "show", IND, "0001")).stdout
    assert "replace" in shown and "IND-012345/0000/m3/32p/32p5/spec.pdf" in shown


def test_status_moves_from_planned_to_acknowledged(built: tuple[Path, dict[str, str]]) -> None:
    vp, _docs = built
    new_sequence(vp, "0001", "annual-report")
    statuses = {
        p["sequence"]: p["status"] for p in ok_json(run(vp, "package", "ls", IND, "--json"))
    }
    assert statuses == {"0000": "in-preparation", "0001": "planned"}
    refused(
        run(vp, "package", "acknowledge", IND, "0000", "--on", "2026-01-06"), 1, "in-preparation"
    )
    ok(run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05"))
    refused(run(vp, "package", "acknowledge", IND, "0000", "--on", "2026-01-04"), 2, "before")
    done = ok_json(run(vp, "package", "acknowledge", IND, "0000", "--on", "2026-01-06", "--json"))
    assert (done["status"], done["acknowledged"]) == ("acknowledged", "2026-01-06")
    shown = ok_json(run(vp, "package", "show", IND, "0000", "--json"))
    assert shown["status"] == "acknowledged"
    assert [leaf["id"] for leaf in shown["leaves"]] == ["leaf-0001", "leaf-0002", "leaf-0003"]
    text = ok(run(vp, "package", "show", IND, "0000")).stdout
    assert "acknowledged" in text and "leaf-0003" in text
    log = ok_json(run(vp, "log", "--json"))
    assert [e["action"] for e in log if e["action"].startswith("package-")] == [
        "package-new", "package-add", "package-add", "package-add", "package-new",
        "package-finalise", "package-acknowledge",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("sub_type", "trigger"),
    [("pas", "pas-received"), ("cbe-30", "cbe30-submitted"), ("cbe-0", "cbe0-submitted")],
)
def test_a_finalised_supplement_feeds_the_calendar(
    vp: Path, tmp_path: Path, sub_type: str, trigger: str
) -> None:
    doc = archive(vp, tmp_path, "comparability.pdf", pdf("Comparability protocol"))
    new_sequence(vp, "0007", sub_type, app=BLA)
    add(vp, "0007", doc, "m3/32p/32p3", app=BLA)
    final = ok_json(
        run(vp, "package", "finalise", BLA, "0007", "--submitted", "2026-03-02", "--json")
    )
    events = ok_json(run(vp, "event", "ls", BLA, "--json"))
    ours = [e for e in (ev.get("event", ev) for ev in events) if e["trigger"] == trigger]
    assert len(ours) == 1
    assert ours[0]["on"] == "2026-03-02"
    assert final["calendar_event"] == ours[0]["id"]
    if sub_type == "pas":
        due = ok_json(
            run(
                vp, "calendar", "--app", BLA, "--from", "2026-01-01", "--to", "2026-12-31", "--json"
            )
        )
        assert any(m["rule"] == "PAS" and m["due"] == "2026-07-02" for m in due)


# -- item 6: ls, search and show by application and sequence ------------------------------


@pytest.mark.parametrize("engine", ["tantivy", "whoosh"])
def test_ls_search_and_show_by_application_and_sequence(tmp_path: Path, engine: str) -> None:
    vp = tmp_path / "vault"
    ok(run(vp, "init", "--index-engine", engine))
    ok(run(vp, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(vp, "app", "new", "bla", "125123", "--program", "CART-19"))
    spec = archive(vp, tmp_path, "spec.pdf", pdf("Potency assay specification"))
    other = archive(vp, tmp_path, "other.pdf", pdf("Potency trending report"))
    new_sequence(vp, "0000")
    add(vp, "0000", spec, "m3/32p/32p5")
    ok(run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05"))
    revised = tmp_path / "incoming" / "spec-v2.pdf"
    revised.write_bytes(pdf("Potency assay specification, revised"))
    ok(run(vp, "add", str(revised), "--id", spec, "--reason", "revised limits"))
    new_sequence(vp, "0001", "information-amendment")
    add(vp, "0001", spec, "m3/32p/32p5", "--operation", "replace",
        "--modifies", f"{IND}/0000/leaf-0001")  # fmt: skip
    new_sequence(vp, "0000", "bla-original", app=BLA)
    add(vp, "0000", f"{spec}@1", "m3/32p/32p5", app=BLA)

    def ls(*args: str) -> list[tuple[str, int]]:
        return [(r["id"], r["version"]) for r in ok_json(run(vp, "ls", *args, "--json"))]

    assert ls("--app", IND, "--sequence", "0000") == [(spec, 1)]
    assert ls("--app", IND, "--sequence", "0001") == [(spec, 2)]
    assert ls("--app", IND) == [(spec, 1), (spec, 2)]
    assert ls("--sequence", "0000") == [(spec, 1)]
    assert ls("--app", BLA) == [(spec, 1)]
    assert ls("--app", IND, "--sequence", "0002") == []
    assert ls("--app", IND, "--as-of", "2000-01-01") == []
    assert (other, 1) in ls()
    refused(run(vp, "ls", "--app", "IND-099999"), 1, "no application")
    refused(run(vp, "ls", "--sequence", "12"), 2, "four digits")

    def search(*args: str) -> list[tuple[str, int]]:
        found = ok_json(run(vp, "search", "potency", *args, "--json"))
        return sorted((h["id"], h["version"]) for h in found["hits"])

    assert search() == sorted([(other, 1), (spec, 2)])
    assert search("--app", IND, "--sequence", "0000") == [(spec, 1)]
    assert search("--app", IND, "--sequence", "0001") == [(spec, 2)]
    assert search("--app", IND) == [(spec, 1), (spec, 2)]
    assert search("--app", BLA) == [(spec, 1)]
    assert search("--app", BLA, "--sequence", "0001") == []

    shown = ok_json(run(vp, "show", spec, "--version", "1", "--json"))
    assert [(s["app"], s["sequence"], s["status"], s["submitted"]) for s in shown["sequences"]] == [
        (BLA, "0000", "in-preparation", None),
        (IND, "0000", "submitted", "2026-01-05"),
    ]
    text = ok(run(vp, "show", spec, "--version", "1")).stdout
    assert "IND-012345/0000 leaf-0001 new m3/32p/32p5/spec.pdf (submitted 2026-01-05)" in text
    latest = ok_json(run(vp, "show", spec, "--json"))
    assert [(s["app"], s["sequence"], s["operation"]) for s in latest["sequences"]] == [
        (IND, "0001", "replace")
    ]
    assert ok_json(run(vp, "show", other, "--json"))["sequences"] == []

    # The index is a projection: rebuilt from the repository alone, it answers the same.
    ok(run(vp, "rebuild"))
    assert search("--app", IND, "--sequence", "0000") == [(spec, 1)]
    assert search("--app", BLA) == [(spec, 1)]
