"""Deviations and CAPA: a full campaign through the CLI, and every refusal path."""

from __future__ import annotations

import email
import io
import json
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.test_lots import head, ok, refused

OWNER = "Dana Whitfield"


@pytest.fixture
def campaign(vault_path: Path) -> Path:
    """A vault with two lots in manufacturing and a QA investigator in the directory."""
    for lot in ("L-0042", "L-0043"):
        ok(vault_path, "lot", "new", lot, "--program", "CART-19")
        ok(vault_path, "lot", "start", lot)
    ok(vault_path, "people", "set", OWNER, "dana.whitfield@example.com", "--reason", "QA")
    return vault_path


def open_deviation(vault: Path, *extra: str) -> str:
    args = ["deviation", "open", "--lot", "L-0042", "--class", "major", "--title",
            "port weld leak", "--description", "bag port weld leaked during thaw",
            "--discovered", "2026-11-02T09:30", *extra, "--json"]  # fmt: skip
    return str(json.loads(ok(vault, *args))["id"])


def evidence(vault: Path, tmp_path: Path, text: str) -> str:
    path = tmp_path / f"{abs(hash(text))}.txt"
    path.write_text(text)
    out = ok(vault, "add", str(path), "--program", "CART-19", "--type", "capa", "--lot", "L-0042")
    return out.split()[0]


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_full_campaign_open_to_release(campaign: Path, tmp_path: Path) -> None:
    vault = campaign
    dev = open_deviation(vault, "--lot", "L-0043")
    assert dev == "DEV-2026-0001"
    shown = json.loads(ok(vault, "deviation", "show", dev, "--json"))
    # The class's due days (major: 30) from the day it was discovered.
    assert (shown["due"], shown["lots"], shown["status"]) == (
        "2026-12-02", ["L-0042", "L-0043"], "open",
    )  # fmt: skip
    for lot in ("L-0042", "L-0043"):  # every lot named is held
        assert dev in refused(vault, 1, "lot", "release", lot, "--by", "Q. Approver")

    before = head(vault)
    ok(vault, "deviation", "assign", dev, "--owner", OWNER)
    # One action, one commit: the assignment and the notice to the owner.
    commits = subprocess.run(
        ["git", "-C", str(vault / "repo.git"), "rev-list", f"{before}..HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert len(commits) == 1
    [sent] = list((vault / "outbox").glob("*.eml"))
    message = email.message_from_bytes(sent.read_bytes())
    assert message["To"] == "dana.whitfield@example.com"
    assert dev in message["Subject"] and "2026-12-02" in message["Subject"]

    ok(vault, "deviation", "extend", dev, "--to", "2026-12-20", "--reason",
       "awaiting supplier weld analysis", "--approved-by", "Head of QA")  # fmt: skip
    ok(vault, "deviation", "investigate", dev, "--root-cause", "sealer temperature drift",
       "--impact", "one bag; product sterile", "--product-impact", "no",
       "--patient-impact", "no")  # fmt: skip
    capa = json.loads(
        ok(vault, "deviation", "capa", "add", dev, "--action", "recalibrate the sealer",
           "--owner", OWNER, "--due", "2027-01-15", "--effectiveness-check", "2027-04-15",
           "--json")
    )["id"]  # fmt: skip
    assert capa == "CAPA-2026-0001"
    done = evidence(vault, tmp_path, "sealer calibration certificate")
    ok(vault, "deviation", "capa", "done", capa, "--evidence", done)
    check = evidence(vault, tmp_path, "three months without a weld failure")
    ineffective = json.loads(
        ok(vault, "deviation", "capa", "verify", capa, "--effective", "no", "--evidence", check,
           "--json")
    )  # fmt: skip
    assert ineffective["status"] == "open"  # "no" reopens the CAPA
    ok(vault, "deviation", "capa", "done", capa, "--evidence", f"{done}@1")
    verified = json.loads(
        ok(vault, "deviation", "capa", "verify", capa, "--effective", "yes", "--evidence", check,
           "--json")
    )  # fmt: skip
    assert verified["status"] == "verified" and len(verified["checks"]) == 2

    photo = tmp_path / "weld-photo.txt"
    photo.write_text("photo of the failed port weld")
    attached = json.loads(ok(vault, "deviation", "attach", dev, str(photo), "--json"))
    assert attached["document"]["lot"] == "L-0042"
    assert attached["document"]["meta"] == {"deviation": dev, "role": "attachment"}

    closed = json.loads(
        ok(vault, "deviation", "close", dev, "--summary", "root cause fixed; CAPA effective",
           "--json")
    )  # fmt: skip
    package = closed["package"]
    assert (closed["status"], package["type"], package["lot"]) == (
        "closed", "deviation-package", "L-0042",
    )  # fmt: skip
    entry = json.loads(ok(vault, "log", "--json"))[-1]
    assert entry["action"] == "deviation-close"  # the package is in the closing commit
    assert package["commit"] == entry["commit"]

    out = tmp_path / "package.pdf"
    ok(vault, "get", package["id"], "-o", str(out))
    text = pdf_text(out.read_bytes())
    for expected in (
        f"Closed deviation package: {dev}", "port weld leak", "L-0042, L-0043",
        "sealer temperature drift", "one bag; product sterile", "recalibrate the sealer",
        capa, "2026-12-02", "2026-12-20", "awaiting supplier weld analysis", "Head of QA",
        "weld-photo.txt", "root cause fixed; CAPA effective", "Full history", "assign",
        "investigate", "close", OWNER, "qa.tester",
    ):  # fmt: skip
        assert expected in text, expected

    # The history lists every change with old -> new values.
    history = json.loads(ok(vault, "deviation", "show", dev, "--json"))["history"]
    assert [h["action"] for h in history] == [
        "open", "assign", "extend", "investigate", "capa-add", "attach", "close",
    ]  # fmt: skip
    extend = history[2]
    assert {"field": "due", "old": "2026-12-02", "new": "2026-12-20"} in extend["changes"]
    assert extend["reason"] is None and history[1]["actor"] == "qa.tester"

    hits = json.loads(ok(vault, "search", "port weld", "--type", "deviation-package", "--json"))
    assert package["id"] in {h["id"] for h in hits["hits"]}
    found = json.loads(ok(vault, "search", dev, "--json"))
    assert dev in {h["id"] for h in found["hits"]}

    for lot in ("L-0042", "L-0043"):
        assert json.loads(
            ok(vault, "lot", "release", lot, "--by", "Q. Approver", "--json")
        )["status"] == "released"  # fmt: skip
    assert ok(vault, "verify").startswith("ok: ")


def test_refusals_write_nothing(campaign: Path, tmp_path: Path) -> None:
    vault = campaign
    dev = open_deviation(vault)
    before = head(vault)
    assert "unknown lot L-404" in refused(vault, 1, "deviation", "open", "--lot", "L-404",
        "--class", "major", "--title", "t", "--description", "d")  # fmt: skip
    assert "unknown class" in refused(vault, 2, "deviation", "open", "--lot", "L-0042",
        "--class", "cosmetic", "--title", "t", "--description", "d")  # fmt: skip
    assert "unknown deviation DEV-2026-0404" in refused(
        vault, 1, "deviation", "show", "DEV-2026-0404"
    )
    refused(vault, 2, "deviation", "show", "DEV-1")
    assert "unknown CAPA" in refused(
        vault, 1, "deviation", "capa", "done", "CAPA-2026-0404", "--evidence", "DOC-000001"
    )
    assert "before DEV-2026-0001 was discovered" in refused(
        vault, 1, "deviation", "assign", dev, "--owner", OWNER, "--due", "2026-11-01"
    )
    assert "not in the vault's directory" in refused(
        vault, 1, "deviation", "assign", dev, "--owner", "Nobody Known"
    )
    assert "is in the future" in refused(vault, 2, "deviation", "open", "--lot", "L-0042",
        "--class", "major", "--title", "t", "--description", "d", "--discovered", "2031-01-01")  # fmt: skip
    assert "not after" in refused(vault, 1, "deviation", "extend", dev, "--to", "2026-11-20",
        "--reason", "r", "--approved-by", "Head of QA")  # fmt: skip
    assert "root cause and impact assessment are missing" in refused(
        vault, 1, "deviation", "close", dev, "--summary", "s"
    )
    refused(vault, 1, "deviation", "attach", dev, str(tmp_path))  # a directory
    refused(vault, 1, "deviation", "attach", dev, str(tmp_path / "missing.pdf"))
    refused(vault, 2, "deviation", "investigate", dev, "--root-cause", "r", "--impact", "i",
        "--product-impact", "maybe")  # fmt: skip
    assert "before the CAPA's due date" in refused(vault, 1, "deviation", "capa", "add", dev,
        "--action", "a", "--owner", OWNER, "--due", "2027-01-10",
        "--effectiveness-check", "2027-01-01")  # fmt: skip
    assert head(vault) == before

    ok(vault, "deviation", "assign", dev, "--owner", OWNER)
    assert "changes only by" in refused(
        vault, 1, "deviation", "assign", dev, "--owner", OWNER, "--due", "2026-12-25"
    )
    ok(vault, "deviation", "investigate", dev, "--root-cause", "r", "--impact", "i")
    ok(vault, "deviation", "close", dev, "--summary", "s")
    after_close = head(vault)
    assert "was closed" in refused(vault, 1, "deviation", "close", dev, "--summary", "again")
    assert "was closed" in refused(vault, 1, "deviation", "capa", "add", dev, "--action", "a",
        "--owner", OWNER, "--due", "2027-01-10")  # fmt: skip
    assert "was closed" in refused(vault, 1, "deviation", "affect", dev, "--lot", "L-0043",
        "--comment", "c")  # fmt: skip
    assert head(vault) == after_close


def test_listing_filters_by_sql(campaign: Path) -> None:
    vault = campaign
    first = open_deviation(vault)
    second = json.loads(
        ok(vault, "deviation", "open", "--lot", "L-0043", "--class", "critical", "--title",
           "cassette cracked", "--description", "in transit", "--json")
    )["id"]  # fmt: skip
    ok(vault, "deviation", "affect", second, "--lot", "L-0042", "--comment", "same shipper")
    ok(vault, "deviation", "assign", first, "--owner", OWNER)
    ok(vault, "deviation", "investigate", first, "--root-cause", "r", "--impact", "i")
    ok(vault, "deviation", "close", first, "--summary", "s")

    def ids(*args: str) -> list[str]:
        return [d["id"] for d in json.loads(ok(vault, "deviation", "ls", *args, "--json"))]

    assert ids() == [first, second]
    assert ids("--open") == [second]
    assert ids("--lot", "L-0042") == [first, second]
    assert ids("--lot", "L-0043", "--open") == [second]
    assert ids("--class", "critical") == [second]
    assert ids("--owner", OWNER) == [first]
    assert "cassette cracked" in ok(vault, "deviation", "ls", "--open")
    assert "unknown lot L-404" in refused(vault, 1, "deviation", "ls", "--lot", "L-404")


def test_quality_settings_live_in_the_vault_configuration(campaign: Path) -> None:
    vault = campaign
    ok(vault, "config", "set", "quality.classes", '{"minor": 45, "major": 20, "critical": 7}',
       "--reason", "SOP-QA-012 rev 4")  # fmt: skip
    shown = json.loads(ok(vault, "config", "show", "--json"))["quality"]
    assert shown["classes"] == {"minor": 45, "major": 20, "critical": 7}
    assert shown["buckets"] == [7, 14, 30]  # the default, untouched
    dev = open_deviation(vault)  # discovered 2026-11-02, major: 20 days
    assert json.loads(ok(vault, "deviation", "show", dev, "--json"))["due"] == "2026-11-22"
    before = head(vault)
    assert "increasing" in refused(vault, 2, "config", "set", "quality.buckets", "[30, 7]",
        "--reason", "r")  # fmt: skip
    assert "unknown setting" in refused(vault, 2, "config", "set", "quality.colour", "1",
        "--reason", "r")  # fmt: skip
    assert head(vault) == before
    entry = json.loads(ok(vault, "log", "--json"))[-2]
    assert (entry["action"], entry["reason"]) == ("set-config", "SOP-QA-012 rev 4")


def test_lots_and_deviations_on_both_catalogs(catalog_vault: Path, tmp_path: Path) -> None:
    """The lot queries (record_lots, as-of joins) on SQLite and on PostgreSQL."""
    vault = catalog_vault
    for lot in ("L-0042", "L-0043"):
        ok(vault, "lot", "new", lot, "--program", "CART-19")
        ok(vault, "lot", "start", lot)
    ok(vault, "people", "set", OWNER, "dana.whitfield@example.com", "--reason", "QA")
    early = json.loads(ok(vault, "log", "--json"))[-1]["time"]
    dev = open_deviation(vault, "--lot", "L-0043")
    ok(vault, "deviation", "assign", dev, "--owner", OWNER)
    ok(vault, "deviation", "investigate", dev, "--root-cause", "r", "--impact", "i")
    ok(vault, "deviation", "close", dev, "--summary", "s")
    for lot in ("L-0042", "L-0043"):
        shown = json.loads(ok(vault, "lot", "show", lot, "--json"))
        assert [(r["kind"], r["id"], r["status"]) for r in shown["records"]] == [
            ("deviation", dev, "closed")
        ]
        then = json.loads(ok(vault, "lot", "show", lot, "--as-of", early, "--json"))
        assert then["records"] == [] and then["lot"]["status"] == "in-manufacturing"
    assert [
        d["id"] for d in json.loads(ok(vault, "deviation", "ls", "--lot", "L-0043", "--json"))
    ] == [dev]
    ok(vault, "lot", "release", "L-0043", "--by", "Q. Approver")
    assert ok(vault, "verify").startswith("ok: ")
