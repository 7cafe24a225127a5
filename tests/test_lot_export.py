"""The auditor bundle (`lot export`) and its offline check (`bundle verify`), on a lot
built through the CLI: two versions of its batch record and a closed deviation."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from atmpvault.archive.core import values
from atmpvault.archive.core.pdf import make_pdf
from tests.conftest import Clock, run

LOT = "L-0042"
OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REVISED = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
BEFORE_REVISION = "2026-03-04"


@dataclass(frozen=True)
class Lot:
    vault: Path
    v1: bytes
    v2: bytes
    doc: str
    dev: str


def ok(vault: Path, *args: str) -> str:
    result = run(vault, *args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def lot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lot]:
    """L-0042: started, its batch record added then revised, a deviation opened before
    the revision, then assigned, investigated and closed (a closure package archived).
    Built once for the module: the tests only read it."""
    tmp_path = tmp_path_factory.mktemp("lot")
    vault_path = tmp_path / "vault"
    v1 = make_pdf([["Batch record L-0042", "Viability 93%"]], title="BR L-0042")
    v2 = make_pdf([["Batch record L-0042 rev 2", "Viability 94%"]], title="BR L-0042")
    (tmp_path / "BR-0042.pdf").write_bytes(v1)
    (tmp_path / "BR-0042-r2.pdf").write_bytes(v2)
    with pytest.MonkeyPatch.context() as patch:
        clock = Clock(OPENED - timedelta(minutes=1))
        patch.setattr(values, "now", clock)
        ok(vault_path, "init")
        yield _build(vault_path, tmp_path, clock, v1, v2)


def _build(vault_path: Path, tmp_path: Path, clock: Clock, v1: bytes, v2: bytes) -> Lot:
    clock.at = OPENED
    ok(vault_path, "lot", "new", LOT, "--program", "CART-19", "--coi", "COI-7F3K-22")
    ok(vault_path, "lot", "start", LOT)
    added = json.loads(
        ok(vault_path, "add", str(tmp_path / "BR-0042.pdf"), "--program", "CART-19",
           "--type", "batch-record", "--lot", LOT, "--json")
    )  # fmt: skip
    ok(vault_path, "people", "set", "Dana Whitfield", "dana@example.com", "--reason", "r")
    opened = json.loads(
        ok(vault_path, "deviation", "open", "--lot", LOT, "--class", "major", "--title", "T",
           "--description", "D", "--json")
    )  # fmt: skip
    dev = opened["id"]
    clock.at = REVISED
    ok(vault_path, "add", str(tmp_path / "BR-0042-r2.pdf"), "--id", added["id"],
       "--reason", "QA review corrections")  # fmt: skip
    ok(vault_path, "deviation", "assign", dev, "--owner", "Dana Whitfield")
    ok(vault_path, "deviation", "investigate", dev, "--root-cause", "R", "--impact", "I")
    ok(vault_path, "deviation", "close", dev, "--summary", "S")
    return Lot(vault_path, v1, v2, added["id"], dev)


def export(lot: Lot, target: Path, *extra: str) -> dict[str, object]:
    return dict(
        json.loads(ok(lot.vault, "lot", "export", LOT, "-o", str(target), "--json", *extra))
    )


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def trail_rows(files: dict[str, bytes]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files["audit-trail.csv"].decode("utf-8"))))


def test_bundle_holds_every_version_record_and_a_right_manifest(lot: Lot, tmp_path: Path) -> None:
    result = export(lot, tmp_path / "bundle.zip")
    files = members(tmp_path / "bundle.zip")
    doc = lot.doc
    assert files[f"documents/{doc}/v1/BR-0042.pdf"] == lot.v1
    assert files[f"documents/{doc}/v2/BR-0042-r2.pdf"] == lot.v2
    packages = [n for n in files if n.startswith("documents/") and "closure-package" in n]
    assert len(packages) == 1 and files[packages[0]].startswith(b"%PDF")
    for version in (1, 2, 3, 4):
        body = json.loads(files[f"records/deviation/{lot.dev}/v{version}.json"])
        assert body["id"] == lot.dev and body["version"] == version
    assert json.loads(files[f"records/deviation/{lot.dev}/v2.json"])["owner"] == "Dana Whitfield"
    assert [json.loads(files[f"records/lot/{LOT}/v{n}.json"])["status"] for n in (1, 2)] == [
        "planned", "in-manufacturing",
    ]  # fmt: skip
    assert json.loads(files[f"records/document/{doc}/v2.json"])["reason"] == (
        "QA review corrections"
    )

    manifest = json.loads(files["manifest.json"])
    log = json.loads(ok(lot.vault, "log", "--json"))
    assert manifest["lot"] == LOT and manifest["generated_from"] == log[-1]["commit"]
    assert manifest["as_of"] == log[-1]["time"] == result["as_of"]
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(files) - {"manifest.json", "manifest.sha256"}
    for path, entry in listed.items():
        assert entry["sha256"] == hashlib.sha256(files[path]).hexdigest(), path
        assert entry["size"] == len(files[path]), path
    sums = dict(
        reversed(line.split("  ", 1)) for line in files["manifest.sha256"].decode().splitlines()
    )
    assert sums.pop("manifest.json") == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert sums == {path: entry["sha256"] for path, entry in listed.items()}
    assert result["files"] == len(files)


def test_the_same_archive_gives_the_same_bytes(lot: Lot, tmp_path: Path) -> None:
    export(lot, tmp_path / "a.zip")
    export(lot, tmp_path / "b.zip")
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {(2026, 3, 5, 9, 0, 0)}  # the last write's time
    assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_as_of_before_the_revision_gives_the_lot_as_it_stood(lot: Lot, tmp_path: Path) -> None:
    result = export(lot, tmp_path / "then.zip", "--as-of", BEFORE_REVISION)
    files = members(tmp_path / "then.zip")
    documents = sorted(n for n in files if n.startswith("documents/"))
    assert documents == [f"documents/{lot.doc}/v1/BR-0042.pdf"]
    deviation = sorted(n for n in files if n.startswith(f"records/deviation/{lot.dev}/"))
    assert deviation == [f"records/deviation/{lot.dev}/v1.json"]
    body = json.loads(files[deviation[0]])
    assert body["status"] == "open" and body["owner"] is None
    actions = {row["action"] for row in trail_rows(files)}
    assert {"lot-new", "lot-start", "add", "deviation-open"} == actions
    assert result["as_of"] == "2026-03-04T23:59:59.999999+00:00"
    assert json.loads(files["manifest.json"])["as_of"] == result["as_of"]
    assert ok(lot.vault, "bundle", "verify", str(tmp_path / "then.zip")).startswith("bundle OK")


def test_as_of_before_the_lot_existed_is_refused(lot: Lot, tmp_path: Path) -> None:
    target = tmp_path / "early.zip"
    result = run(lot.vault, "lot", "export", LOT, "-o", str(target), "--as-of", "2026-03-01")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and f"lot {LOT} did not exist yet" in result.stderr
    assert not target.exists()


def test_an_existing_file_is_replaced_only_with_force(lot: Lot, tmp_path: Path) -> None:
    target = tmp_path / "bundle.zip"
    target.write_bytes(b"keep me")
    result = run(lot.vault, "lot", "export", LOT, "-o", str(target))
    assert result.exit_code == 1 and "already exists; use --force" in result.stderr
    assert target.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    ok(lot.vault, "lot", "export", LOT, "-o", str(target), "--force")
    assert "manifest.json" in members(target)


def test_the_audit_trail_csv_has_old_and_new_with_actor_and_time(lot: Lot, tmp_path: Path) -> None:
    export(lot, tmp_path / "bundle.zip")
    rows = trail_rows(members(tmp_path / "bundle.zip"))
    owner = [r for r in rows if r["kind"] == "deviation" and r["field"] == "owner"]
    assert len(owner) == 1
    assert owner[0]["old"] == "" and owner[0]["new"] == "Dana Whitfield"
    assert owner[0]["action"] == "deviation-assign" and owner[0]["actor"] == "qa.tester"
    assert owner[0]["time"].startswith("2026-03-05T09:00:00") and owner[0]["version"] == "2"
    status = [r for r in rows if r["id"] == lot.dev and r["field"] == "status"]
    assert [(r["old"], r["new"]) for r in status] == [("", "open"), ("open", "closed")]
    revised = [r for r in rows if r["action"] == "revise"]
    assert {r["field"] for r in revised} >= {"filename", "sha256", "size"}
    assert {r["reason"] for r in revised} == {"QA review corrections"}
    assert {r["field"] for r in rows if r["action"] == "deviation-investigate"} >= {
        "investigation.root_cause", "investigation.impact",
    }  # fmt: skip
    closing = {r["id"] for r in rows if r["action"] == "deviation-close"}
    assert lot.dev in closing and any(i.startswith("DOC-") for i in closing)
    assert "set-person" not in {r["action"] for r in rows}  # not a write of this lot


def test_the_audit_trail_pdf_names_who_did_what(lot: Lot, tmp_path: Path) -> None:
    from pypdf import PdfReader

    export(lot, tmp_path / "bundle.zip")
    pdf = members(tmp_path / "bundle.zip")["audit-trail.pdf"]
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in (
        f"Audit trail of lot {LOT}", "lot-new", "lot-start", "revise", "deviation-open",
        "deviation-assign", "deviation-investigate", "deviation-close", "Dana Whitfield",
        "QA review corrections", "qa.tester",
    ):  # fmt: skip
        assert expected in text, expected


# -- bundle verify ---------------------------------------------------------------------------


def rewrite(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """A copy of a zip with members replaced (bytes), dropped (None) or added."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename not in change:
                new.writestr(info, old.read(info))
            elif change[info.filename] is not None:
                new.writestr(info, change[info.filename] or b"")
        for name, data in change.items():
            if name not in old.namelist() and data is not None:
                new.writestr(name, data)


@pytest.fixture(scope="module")
def bundle(lot: Lot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("bundle") / "bundle.zip"
    export(lot, target)
    return target


def test_verify_says_ok_offline(bundle: Path, tmp_path: Path) -> None:
    result = run(None, "bundle", "verify", str(bundle))
    assert result.exit_code == 0
    assert result.stdout == f"bundle OK: {len(members(bundle))} files\n"
    report = json.loads(run(None, "bundle", "verify", str(bundle), "--json").stdout)
    assert report["ok"] is True and report["lot"] == LOT and report["problems"] == []


def test_verify_names_each_tampered_file(lot: Lot, bundle: Path, tmp_path: Path) -> None:
    files = members(bundle)
    record = f"records/deviation/{lot.dev}/v2.json"
    document = f"documents/{lot.doc}/v1/BR-0042.pdf"
    manifest = json.loads(files["manifest.json"])
    manifest["lot"] = "L-0043"
    cases = {
        "changed": ({record: files[record].replace(b"Dana Whitfield", b"Dana Whitfielt")}, record),
        "missing": ({document: None}, document),
        "extra": ({"notes.txt": b"added later"}, "notes.txt"),
        "manifest mismatch": (
            {"manifest.json": json.dumps(manifest, indent=2).encode()}, "manifest.json",
        ),
    }  # fmt: skip
    for word, (change, named) in cases.items():
        copy = tmp_path / f"{word.replace(' ', '-')}.zip"
        rewrite(bundle, copy, change)
        result = run(None, "bundle", "verify", str(copy))
        assert result.exit_code == 3, word
        assert result.stdout.startswith(f"{word}: {named}"), result.stdout
        assert result.stdout.count("\n") == 1, result.stdout
        report = json.loads(run(None, "bundle", "verify", str(copy), "--json").stdout)
        assert report["ok"] is False and len(report["problems"]) == 1


def test_verify_names_a_hash_edited_into_the_manifest(bundle: Path, tmp_path: Path) -> None:
    files = members(bundle)
    manifest = json.loads(files["manifest.json"])
    readme = next(f for f in manifest["files"] if f["path"] == "README.txt")
    readme["sha256"] = hashlib.sha256(b"forged").hexdigest()
    rewrite(
        bundle, tmp_path / "forged.zip",
        {"README.txt": b"forged", "manifest.json": json.dumps(manifest).encode()},
    )  # fmt: skip
    result = run(None, "bundle", "verify", str(tmp_path / "forged.zip"))
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert "manifest mismatch: manifest.json was changed after manifest.sha256 was written" in lines
    assert any(line.startswith("manifest mismatch: README.txt") for line in lines)


def test_verify_a_damaged_member(bundle: Path, tmp_path: Path) -> None:
    data = bytearray(bundle.read_bytes())
    with zipfile.ZipFile(bundle) as archive:
        info = archive.getinfo("audit-trail.pdf")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 40
    data[start] ^= 0xFF  # inside the compressed bytes: the CRC no longer matches
    (tmp_path / "damaged.zip").write_bytes(bytes(data))
    result = run(None, "bundle", "verify", str(tmp_path / "damaged.zip"))
    assert result.exit_code == 3
    assert result.stdout.startswith("changed: audit-trail.pdf")


def test_verify_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    missing = run(None, "bundle", "verify", str(tmp_path / "nope.zip"))
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    (tmp_path / "notes.zip").write_bytes(b"not a zip at all")
    broken = run(None, "bundle", "verify", str(tmp_path / "notes.zip"))
    assert broken.exit_code == 3 and broken.stderr.count("\n") == 1
    assert "is not a readable zip" in broken.stderr


def test_verify_names_a_member_that_climbs_out(bundle: Path, tmp_path: Path) -> None:
    rewrite(bundle, tmp_path / "climbs.zip", {"../outside.txt": b"x"})
    result = run(None, "bundle", "verify", str(tmp_path / "climbs.zip"))
    assert result.exit_code == 3
    assert result.stdout == "unsafe member: '../outside.txt': climbs out of the archive ('..')\n"


def test_export_on_either_catalog(catalog_vault: Path, sample_pdf: Path, tmp_path: Path) -> None:
    """The trail's queries (the records a write touched, the last write at a time) on
    SQLite and on PostgreSQL."""
    ok(catalog_vault, "lot", "new", LOT, "--program", "CART-19")
    ok(catalog_vault, "add", str(sample_pdf), "--program", "CART-19", "--type", "batch-record",
       "--lot", LOT)  # fmt: skip
    ok(catalog_vault, "people", "set", "Dana Whitfield", "dana@example.com", "--reason", "r")
    dev = json.loads(
        ok(catalog_vault, "deviation", "open", "--lot", LOT, "--class", "minor", "--title", "T",
           "--description", "D", "--json")
    )["id"]  # fmt: skip
    ok(catalog_vault, "deviation", "assign", dev, "--owner", "Dana Whitfield")
    target = tmp_path / "bundle.zip"
    ok(catalog_vault, "lot", "export", LOT, "-o", str(target))
    rows = trail_rows(members(target))
    assert [r["action"] for r in rows if r["field"] in ("status", "owner")] == [
        "lot-new", "add", "deviation-open", "deviation-assign",
    ]  # fmt: skip
    assert ok(catalog_vault, "bundle", "verify", str(target)).startswith("bundle OK")
