"""The aging report (`deviation aging`): buckets, classes, overdue first, CSV, JSON, PDF,
configured settings; built through the CLI on a real vault."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from pypdf import PdfReader

from atmpvault.archive.core.configuration import CONFIG_PATH, commit_config
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.config import Settings
from tests.conftest import CLI, Clock, cli_env, run

TODAY = "2026-04-10"
OWNER = "Dana Whitfield"


def ok(vault: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = run(vault, *args, env=env)
    assert result.exit_code == 0, (args, result.stderr)
    return result


def ok_json(vault: Path, *args: str) -> Any:
    return json.loads(ok(vault, *args, "--json").stdout)


def lot(vault: Path, name: str) -> None:
    ok(vault, "lot", "new", name, "--program", "CART-19")
    ok(vault, "lot", "start", name)


def deviation(vault: Path, lot_id: str, cls: str, title: str, discovered: date) -> str:
    body = ok_json(
        vault, "deviation", "open", "--lot", lot_id, "--class", cls, "--title", title,
        "--description", f"{title}, found on the line", "--discovered", discovered.isoformat(),
    )  # fmt: skip
    return str(body["id"])


def aged(days: int) -> date:
    """The discovery day of a deviation `days` old on TODAY."""
    return date.fromisoformat(TODAY) - timedelta(days=days)


@pytest.fixture
def standup(clock: Clock, tmp_path: Path) -> dict[str, Any]:
    """A vault with open deviations at the bucket boundaries, a CAPA, and closed items.

    | age | class    | days to due on TODAY |
    | 40  | minor    | closed               |
    | 31  | major    | -1 (overdue)         |
    | 30  | critical | -15 (overdue)        |
    | 15  | major    | +15                  |
    | 14  | critical | +1                   |
    | 8   | major    | +22                  |
    | 7   | minor    | +23                  |
    A CAPA of the 15-day one (major), opened 2026-04-02 (age 8), due 2026-04-08: -2
    (overdue); a CAPA of the 8-day one, done: not listed.
    """
    vault = tmp_path / "vault"
    ok(vault, "init")
    clock.at = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
    ok(vault, "people", "set", OWNER, "dana@example.org", "--reason", "QA investigator")
    lot(vault, "L-0001")
    lot(vault, "L-0002")
    ids = {}
    for age, cls, title in (
        (40, "minor", "logbook entry late"),
        (31, "major", "operator gowning breach"),
        (30, "critical", "LN2 freezer excursion"),
        (15, "major", "port weld leak"),
        (14, "critical", "sterility sample lost"),
        (8, "major", "cryo bag label torn"),
    ):
        ids[age] = deviation(vault, "L-0001" if age < 30 else "L-0002", cls, title, aged(age))
    ok(vault, "deviation", "affect", ids[15], "--lot", "L-0002", "--comment", "same weld batch")
    ok(vault, "deviation", "assign", ids[31], "--owner", OWNER)
    capa = ok_json(
        vault, "deviation", "capa", "add", ids[15], "--action", "requalify the welder",
        "--owner", OWNER, "--due", "2026-04-08",
    )  # fmt: skip
    done = ok_json(
        vault, "deviation", "capa", "add", ids[8], "--action", "new label stock",
        "--owner", OWNER, "--due", "2026-04-20",
    )  # fmt: skip
    clock.at = datetime(2026, 4, 3, 9, 0, tzinfo=UTC)  # a date typed means its end: not before
    ids[7] = deviation(vault, "L-0001", "minor", "late environmental monitoring sample", aged(7))
    evidence = tmp_path / "label-qualification.txt"
    evidence.write_text("label stock qualified")
    doc = ok_json(vault, "add", str(evidence), "--program", "CART-19", "--type", "sop")
    ok(vault, "deviation", "capa", "done", done["id"], "--evidence", doc["id"])
    ok(vault, "deviation", "investigate", ids[40], "--root-cause", "shift change",
       "--impact", "none")  # fmt: skip
    ok(vault, "deviation", "close", ids[40], "--summary", "retrained")
    return {"vault": vault, "ids": ids, "capa": capa["id"], "done": done["id"]}


def report(vault: Path, *args: str) -> Any:
    return ok_json(vault, "deviation", "aging", "--today", TODAY, *args)


def test_buckets_at_their_boundaries_overdue_first(standup: dict[str, Any]) -> None:
    found = report(standup["vault"])
    ids = standup["ids"]
    rows = {r["id"]: r for r in found["rows"]}
    assert ids[40] not in rows and standup["done"] not in rows  # closed, done
    expected = {
        ids[7]: ("0-7", 7, 23), ids[8]: ("8-14", 8, 22), ids[14]: ("8-14", 14, 1),
        ids[15]: ("15-30", 15, 15), ids[30]: ("15-30", 30, -15), ids[31]: (">30", 31, -1),
        standup["capa"]: ("8-14", 8, -2),
    }  # fmt: skip
    assert {i: (r["bucket"], r["age_days"], r["days_to_due"]) for i, r in rows.items()} == expected
    # overdue first, most overdue first; then the soonest due
    assert [r["id"] for r in found["rows"]] == [
        ids[30], standup["capa"], ids[31], ids[14], ids[15], ids[8], ids[7],
    ]  # fmt: skip
    capa = rows[standup["capa"]]
    assert capa["kind"] == "capa" and capa["class"] == "major"  # its deviation's class
    assert capa["deviation"] == ids[15] and capa["title"] == "requalify the welder"
    assert capa["lots"] == ["L-0001", "L-0002"] and capa["owner"] == OWNER
    assert rows[ids[31]]["owner"] == OWNER and rows[ids[30]]["owner"] is None
    assert rows[ids[30]]["overdue"] and not rows[ids[14]]["overdue"]


def test_json_counts_by_bucket_and_class(standup: dict[str, Any]) -> None:
    found = report(standup["vault"])
    assert found["today"] == TODAY
    assert found["buckets"] == ["0-7", "8-14", "15-30", ">30"]
    assert found["classes"] == ["minor", "major", "critical"]
    assert (found["total"], found["overdue"], found["due_soon"]) == (7, 3, 1)
    counts = {(c["bucket"], c["class"]): c["count"] for c in found["counts"]}
    assert len(found["counts"]) == 12  # every bucket and class, zeros included
    assert {k: v for k, v in counts.items() if v} == {
        ("0-7", "minor"): 1, ("8-14", "major"): 2, ("8-14", "critical"): 1,
        ("15-30", "major"): 1, ("15-30", "critical"): 1, (">30", "major"): 1,
    }  # fmt: skip
    assert set(found["rows"][0]) == {
        "id", "kind", "deviation", "class", "program", "lots", "title", "owner", "due",
        "days_to_due", "overdue", "began", "age_days", "bucket",
    }  # fmt: skip


def test_table_for_people(standup: dict[str, Any]) -> None:
    out = ok(standup["vault"], "deviation", "aging", "--today", TODAY).stdout
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "KIND", "CLASS", "LOTS", "TITLE/ACTION", "OWNER", "DUE", "DAYS", "TO", "DUE",
        "AGE", "BUCKET",
    ]  # fmt: skip
    assert lines[1].startswith(standup["ids"][30]) and "-15" in lines[1]
    assert "7 open, 3 overdue, 1 due within 5 days" in out
    total = next(line for line in lines if line.startswith("total"))
    assert total.split() == ["total", "1", "4", "2", "7"]


def test_csv_columns_and_rows(standup: dict[str, Any], tmp_path: Path) -> None:
    vault = standup["vault"]
    out = ok(vault, "deviation", "aging", "--today", TODAY, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "id", "kind", "deviation", "class", "lots", "title", "owner", "due", "days_to_due",
        "age_days", "bucket",
    ]  # fmt: skip
    assert [r["id"] for r in rows] == [r["id"] for r in report(vault)["rows"]]
    capa = next(r for r in rows if r["kind"] == "capa")
    assert (capa["lots"], capa["days_to_due"], capa["bucket"]) == ("L-0001 L-0002", "-2", "8-14")
    target = tmp_path / "aging.csv"
    ok(vault, "deviation", "aging", "--today", TODAY, "--format", "csv", "-o", str(target))
    assert target.read_text().replace("\r\n", "\n") == out.replace("\r\n", "\n")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_report(standup: dict[str, Any], tmp_path: Path) -> None:
    vault = standup["vault"]
    target = tmp_path / "standup.pdf"
    result = ok(vault, "deviation", "aging", "--today", TODAY, "--format", "pdf", "-o", str(target))
    assert str(target) in result.stderr and result.stdout == ""
    text = pdf_text(target.read_bytes())
    assert f"Deviation and CAPA aging, as of {TODAY}" in text
    assert "Open deviations and CAPAs by age (days) and class" in text  # the chart
    for word in ("minor", "major", "critical", "0-7", "8-14", "15-30", ">30"):
        assert word in text, word
    assert "7 open items: 3 overdue, 1 due within 5 days." in text
    for key in (*standup["ids"].values(), standup["capa"]):
        assert (key in text) == (key != standup["ids"][40]), key
    for title in ("LN2 freezer excursion", "requalify the welder", "operator gowning breach"):
        assert title in text
    assert text.index(standup["ids"][30]) < text.index(standup["ids"][7])  # overdue first
    assert "Counts by age and class" in text and "Open items, overdue first" in text
    assert PdfReader(str(target)).metadata.title == f"Deviation and CAPA aging, as of {TODAY}"
    # to a pipe (not a terminal) the PDF goes to stdout
    piped = ok(vault, "deviation", "aging", "--today", TODAY, "--format", "pdf")
    assert piped.stdout_bytes.startswith(b"%PDF-")
    assert f"as of {TODAY}" in pdf_text(piped.stdout_bytes)


def test_empty_vault_report(vault_path: Path, tmp_path: Path) -> None:
    found = report(vault_path)
    assert found["rows"] == [] and found["total"] == 0
    assert all(c["count"] == 0 for c in found["counts"])
    target = tmp_path / "empty.pdf"
    ok(vault_path, "deviation", "aging", "--today", TODAY, "--format", "pdf", "-o", str(target))
    assert "Nothing is open" in pdf_text(target.read_bytes())


def test_existing_file_needs_force(standup: dict[str, Any], tmp_path: Path) -> None:
    vault = standup["vault"]
    target = tmp_path / "aging.csv"
    target.write_text("keep me")
    args = ["deviation", "aging", "--today", TODAY, "--format", "csv", "-o", str(target)]
    refused = run(vault, *args)
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert refused.stderr.count("\n") == 1 and target.read_text() == "keep me"
    ok(vault, *args, "--force")
    assert target.read_text().startswith("id,kind,deviation,class")


def test_a_pdf_is_not_written_to_a_terminal(vault_path: Path) -> None:
    primary, secondary = pty.openpty()
    try:
        done = subprocess.run(
            [*CLI, "--vault", str(vault_path), "deviation", "aging", "--format", "pdf"],
            stdout=secondary, stderr=subprocess.PIPE, env=cli_env(), timeout=60,
        )  # fmt: skip
    finally:
        os.close(secondary)
        os.close(primary)
    assert done.returncode == 1
    assert b"-o FILE" in done.stderr and done.stderr.count(b"\n") == 1


def head(vault: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(vault / "repo.git"), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--format", "xml"], "--format 'xml' is not one of table, csv, pdf"),
        (["--today", "next tuesday"], "--today 'next tuesday' is not a date"),
        (["--today", "2026-02-30"], "is not a date"),
        (["--format", "pdf", "--json"], "cannot be given with --format pdf"),
        (["-o", "x.csv"], "-o writes a file"),
    ],
)
def test_bad_input_is_one_line_exit_2(vault_path: Path, args: list[str], fragment: str) -> None:
    before = head(vault_path)
    result = run(vault_path, "deviation", "aging", *args)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.count("\n") == 1 and fragment in result.stderr, result.stderr
    assert result.stdout == "" and head(vault_path) == before
    assert not Path("x.csv").exists()


def set_quality(vault: Path, section: Any) -> None:
    """Commit a "quality" section into config/vault.json as edited by hand (`config set`
    refuses a broken one)."""
    with Vault.open(Settings(vault=vault, user="qa.tester"), domains()) as v, v.writing():
        raw = json.loads(v.read_file(CONFIG_PATH) or b"{}")
        raw["quality"] = section
        commit_config(v, raw, "Quality settings for the site", {"Action": "set-config"},
                      "site SOP QA-014", None)  # fmt: skip


def test_configured_buckets_and_classes_change_the_report(
    standup: dict[str, Any], clock: Clock, tmp_path: Path
) -> None:
    vault = standup["vault"]
    ids = standup["ids"]
    clock.at = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
    for key, value in (
        ("quality.classes", '{"minor": 30, "major": 30, "critical": 15, "observation": 60}'),
        ("quality.buckets", "[10, 20]"),
        ("quality.warning_days", "2"),
    ):
        ok(vault, "config", "set", key, value, "--reason", "site SOP QA-014")
    extra = deviation(vault, "L-0001", "observation", "label font small", aged(3))
    found = report(vault)
    assert found["buckets"] == ["0-10", "11-20", ">20"]
    assert found["classes"] == ["minor", "major", "critical", "observation"]
    rows = {r["id"]: r for r in found["rows"]}
    assert rows[extra]["bucket"] == "0-10" and rows[extra]["days_to_due"] == 57
    assert [rows[ids[a]]["bucket"] for a in (7, 8, 14, 15, 30, 31)] == [
        "0-10", "0-10", "11-20", "11-20", ">20", ">20",
    ]  # fmt: skip
    assert found["due_soon"] == 1 and found["warning_days"] == 2
    counts = {(c["bucket"], c["class"]): c["count"] for c in found["counts"]}
    assert len(counts) == 12 and counts[("0-10", "observation")] == 1
    target = tmp_path / "configured.pdf"
    ok(vault, "deviation", "aging", "--today", TODAY, "--format", "pdf", "-o", str(target))
    text = pdf_text(target.read_bytes())
    assert "observation" in text and "11-20" in text and "15-30" not in text
    assert "due within 2 days" in text


def test_a_broken_quality_section_is_refused(standup: dict[str, Any]) -> None:
    set_quality(standup["vault"], {"buckets": [30, 7]})
    result = run(standup["vault"], "deviation", "aging", "--today", TODAY)
    assert result.exit_code == 1 and '"buckets" must be increasing' in result.stderr


def test_age_counts_days_in_the_vault_time_zone(clock: Clock, tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    ok(vault, "init")
    ok(vault, "config", "set", "timezone", "America/New_York", "--reason", "site in New York")
    clock.at = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    lot(vault, "L-0001")
    # 23:30 in New York on 1 March is already 2 March in UTC: it is 1 March's deviation
    dev = deviation(vault, "L-0001", "minor", "late sample", date(2026, 3, 1))
    ok(vault, "deviation", "open", "--lot", "L-0001", "--class", "major", "--title", "evening",
       "--description", "d", "--discovered", "2026-03-01T23:30")  # fmt: skip
    rows = {
        r["title"]: r for r in ok_json(vault, "deviation", "aging", "--today", "2026-03-09")["rows"]
    }
    assert rows["late sample"]["id"] == dev
    assert (rows["evening"]["began"], rows["evening"]["age_days"]) == ("2026-03-01", 8)
    assert rows["evening"]["bucket"] == "8-14"


def test_many_closed_deviations_are_not_read(clock: Clock, tmp_path: Path) -> None:
    """Open items come from the catalog's status column: a closed deviation's body is never
    decoded, so a vault of thousands mostly closed reads only its open ones."""
    from atmpvault.archive.quality.aging import open_items

    vault = tmp_path / "vault"
    ok(vault, "init")
    clock.at = datetime(2026, 4, 10, 9, 0, tzinfo=UTC)
    lot(vault, "L-0001")
    first = deviation(vault, "L-0001", "minor", "closed one", aged(20))
    ok(vault, "deviation", "investigate", first, "--root-cause", "c", "--impact", "none")
    ok(vault, "deviation", "close", first, "--summary", "done")
    second = deviation(vault, "L-0001", "minor", "open one", aged(2))
    with Vault.open(Settings(vault=vault, user="qa.tester"), domains()) as v:
        statements: list[str] = []
        import sqlalchemy as sa

        sa.event.listen(v.catalog.engine, "before_cursor_execute",
                        lambda *a: statements.append(a[2]))  # fmt: skip
        items = open_items(v, date.fromisoformat(TODAY))
    assert [i.id for i in items] == [second]
    assert len(statements) == 2 and all("status" in s for s in statements)
