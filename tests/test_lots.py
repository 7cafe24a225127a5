"""Lots: registry, statuses, the release gate, replacement lots, `lot show --as-of`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run


def ok(vault: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = run(vault, *args, env=env)
    assert result.exit_code == 0, (args, result.stderr)
    return result.stdout


def refused(vault: Path, code: int, *args: str, env: dict[str, str] | None = None) -> str:
    result = run(vault, *args, env=env)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stdout == ""
    if code != 2:  # a usage error is click's: usage, hint, then the one-line error
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def head(vault: Path) -> str:
    return json.loads(ok(vault, "log", "--json"))[-1]["commit"]


def test_lot_walks_from_planned_to_released(vault_path: Path) -> None:
    created = json.loads(
        ok(vault_path, "lot", "new", "L-0042", "--program", "CART-19", "--coi", "COI-7F3K-22",
           "--json")
    )  # fmt: skip
    assert (created["status"], created["kind"], created["coi"]) == (
        "planned", "autologous", "COI-7F3K-22",
    )  # fmt: skip
    refused(vault_path, 1, "lot", "complete", "L-0042")  # not started yet
    refused(vault_path, 1, "lot", "release", "L-0042", "--by", "Q. Approver")  # planned
    ok(vault_path, "lot", "start", "L-0042")
    ok(vault_path, "lot", "complete", "L-0042", "--comment", "filled")
    released = json.loads(
        ok(vault_path, "lot", "release", "L-0042", "--by", "Q. Approver", "--json")
    )
    assert released["status"] == "released"
    assert released["disposition"]["by"] == "Q. Approver"
    assert released["disposition"]["exceptional"] is False
    assert [s["status"] for s in released["statuses"]] == [
        "planned", "in-manufacturing", "pending-release", "released",
    ]  # fmt: skip
    assert "already released" in refused(vault_path, 1, "lot", "release", "L-0042", "--by", "X")
    assert "already released" in refused(
        vault_path, 1, "lot", "reject", "L-0042", "--by", "X", "--reason", "r"
    )
    listed = json.loads(ok(vault_path, "lot", "ls", "--status", "released", "--json"))
    assert [lot["id"] for lot in listed] == ["L-0042"]
    assert json.loads(ok(vault_path, "lot", "ls", "--status", "planned", "--json")) == []


def test_reject_records_the_reason(vault_path: Path) -> None:
    ok(vault_path, "lot", "new", "L-7", "--program", "CART-19")
    ok(vault_path, "lot", "start", "L-7")
    refused(vault_path, 2, "lot", "reject", "L-7", "--by", "Q")  # --reason is required
    rejected = json.loads(
        ok(vault_path, "lot", "reject", "L-7", "--by", "Q", "--reason", "sterility failure",
           "--json")
    )  # fmt: skip
    assert rejected["status"] == "rejected"
    assert rejected["disposition"]["reason"] == "sterility failure"
    entry = json.loads(ok(vault_path, "log", "--json"))[-1]
    assert (entry["action"], entry["reason"]) == ("lot-reject", "sterility failure")


def test_bad_lot_input_is_refused_and_writes_nothing(vault_path: Path) -> None:
    ok(vault_path, "lot", "new", "L-1", "--program", "CART-19", "--coi", "COI-AAA-1")
    before = head(vault_path)
    assert "unknown lot L-404" in refused(vault_path, 1, "lot", "show", "L-404")
    assert "unknown lot L-404" in refused(vault_path, 1, "lot", "start", "L-404")
    assert "already exists" in refused(vault_path, 1, "lot", "new", "L-1", "--program", "CART-19")
    refused(vault_path, 2, "lot", "new", "L/../x", "--program", "CART-19")
    # A patient's name is not a chain-of-identity id.
    assert "never a patient's name" in refused(
        vault_path, 2, "lot", "new", "L-2", "--program", "CART-19", "--coi", "Jane Doe"
    )
    refused(vault_path, 2, "lot", "new", "L-2", "--program", "CART-19", "--kind", "xeno")
    refused(vault_path, 2, "lot", "ls", "--status", "lost")
    assert "another patient's" in refused(
        vault_path, 1, "lot", "new", "L-2", "--program", "CART-19", "--coi", "COI-BBB-2",
        "--replaces", "L-1",
    )  # fmt: skip
    assert "did not exist yet" in refused(
        vault_path, 1, "lot", "show", "L-1", "--as-of", "2020-01-01"
    )
    assert head(vault_path) == before


def test_replacement_lot_refused_while_the_original_has_an_open_deviation(
    vault_path: Path,
) -> None:
    ok(vault_path, "lot", "new", "L-1", "--program", "CART-19", "--coi", "COI-AAA-1")
    ok(vault_path, "lot", "start", "L-1")
    dev = json.loads(
        ok(vault_path, "deviation", "open", "--lot", "L-1", "--class", "critical", "--title",
           "bag ruptured in transit", "--description", "cassette cracked", "--json")
    )["id"]  # fmt: skip
    message = refused(
        vault_path, 1, "lot", "new", "L-2", "--program", "CART-19", "--replaces", "L-1"
    )
    assert dev in message and "cannot replace L-1" in message
    ok(vault_path, "people", "set", "Dana Whitfield", "dana@example.com", "--reason", "QA")
    ok(vault_path, "deviation", "investigate", dev, "--root-cause", "carrier dropped it",
       "--impact", "lot lost")  # fmt: skip
    ok(vault_path, "deviation", "close", dev, "--summary", "replacement lot to be made")
    replacement = json.loads(
        ok(vault_path, "lot", "new", "L-2", "--program", "CART-19", "--replaces", "L-1", "--json")
    )
    # The replacement belongs to the same patient: it takes the original's identity.
    assert (replacement["replaces"], replacement["coi"]) == ("L-1", "COI-AAA-1")


def test_lot_show_answers_from_history(vault_path: Path, tmp_path: Path) -> None:
    ok(vault_path, "lot", "new", "L-0042", "--program", "CART-19", "--coi", "COI-7F3K-22")
    record = tmp_path / "batch-record.txt"
    record.write_text("Batch record L-0042, page 1\n")
    ok(vault_path, "add", str(record), "--program", "CART-19", "--type", "batch-record",
       "--lot", "L-0042")  # fmt: skip
    early = json.loads(ok(vault_path, "log", "--json"))[-1]["time"]
    record.write_text("Batch record L-0042, pages 1-2\n")
    ok(vault_path, "add", str(record), "--id", "DOC-000001", "--reason", "page 2 added")
    ok(vault_path, "lot", "start", "L-0042")
    ok(vault_path, "deviation", "open", "--lot", "L-0042", "--class", "minor", "--title",
       "label smudged", "--description", "relabelled")  # fmt: skip
    other = tmp_path / "other.txt"
    other.write_text("another lot's record\n")
    ok(vault_path, "add", str(other), "--program", "CART-19", "--type", "batch-record",
       "--lot", "L-0099")  # fmt: skip

    now = json.loads(ok(vault_path, "lot", "show", "L-0042", "--json"))
    assert now["lot"]["status"] == "in-manufacturing"
    assert [(d["id"], [v["version"] for v in d["versions"]]) for d in now["documents"]] == [
        ("DOC-000001", [1, 2])
    ]
    assert [(r["kind"], r["id"]) for r in now["records"]] == [("deviation", "DEV-2026-0001")]

    then = json.loads(ok(vault_path, "lot", "show", "L-0042", "--as-of", early, "--json"))
    assert then["lot"]["status"] == "planned"
    assert [(d["id"], [v["version"] for v in d["versions"]]) for d in then["documents"]] == [
        ("DOC-000001", [1])
    ]
    assert then["records"] == []
    text = ok(vault_path, "lot", "show", "L-0042")
    assert "DOC-000001" in text and "DEV-2026-0001" in text and "L-0099" not in text


def test_exceptional_release_lists_the_holds_it_overrode(vault_path: Path) -> None:
    ok(vault_path, "lot", "new", "L-5", "--program", "CART-19")
    ok(vault_path, "lot", "start", "L-5")
    dev = json.loads(
        ok(vault_path, "deviation", "open", "--lot", "L-5", "--class", "major", "--title",
           "late sample", "--description", "sterility sample late", "--json")
    )["id"]  # fmt: skip
    message = refused(vault_path, 1, "lot", "release", "L-5", "--by", "Q. Approver")
    assert dev in message and "no impact assessment" in message
    refused(vault_path, 2, "lot", "release", "L-5", "--by", "Q", "--exceptional")  # no reason
    released = json.loads(
        ok(vault_path, "lot", "release", "L-5", "--by", "Q. Approver", "--exceptional",
           "--reason", "patient in conditioning; no product impact", "--json")
    )  # fmt: skip
    assert released["disposition"]["exceptional"] is True
    assert any(dev in hold for hold in released["disposition"]["overridden"])
    entry = json.loads(ok(vault_path, "log", "--json"))[-1]
    assert entry["action"] == "lot-release"


def test_verify_names_a_lot_link_the_catalog_lost(vault_path: Path) -> None:
    import sqlite3

    ok(vault_path, "lot", "new", "L-1", "--program", "CART-19")
    ok(vault_path, "lot", "start", "L-1")
    ok(vault_path, "deviation", "open", "--lot", "L-1", "--class", "minor", "--title", "t",
       "--description", "d")  # fmt: skip
    with sqlite3.connect(vault_path / "catalog.sqlite") as db:
        db.execute("DELETE FROM record_lots WHERE kind = 'deviation'")
    result = run(vault_path, "verify")
    assert result.exit_code == 3
    assert "catalog is missing that deviation DEV-2026-0001 v1 concerns lot L-1" in result.stdout
    ok(vault_path, "rebuild")
    assert "DEV-2026-0001" in ok(vault_path, "deviation", "ls", "--lot", "L-1")
