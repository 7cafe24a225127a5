"""Every command, through the CLI, with JSON output: what users and scripts rely on."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from atmpvault.cli import cli
from tests.conftest import AFTER_MIDNIGHT, Clock, day_of, run

SHOW_KEYS = {
    "id",
    "version",
    "program",
    "type",
    "title",
    "lot",
    "filename",
    "size",
    "sha256",
    "recorded_at",
    "user",
    "reason",
    "commit",
    "meta",
    "signatures",  # the version's electronic signatures ([] when none)
}
HISTORY_KEYS = {
    "version",
    "recorded_at",
    "user",
    "reason",
    "sha256",
    "size",
    "commit",
    "signatures",
}
LOG_KEYS = {"commit", "time", "user", "action", "reason", "doc"}


# -- helpers ------------------------------------------------------------------------------


def ok_json(result: Result) -> Any:
    """The JSON a successful command printed; stdout must be JSON and nothing else."""
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def add(
    vault: Path, file: Path, *args: str, program: str = "CART-19", doc_type: str = "batch-record"
) -> dict[str, Any]:
    return ok_json(
        run(vault, "add", str(file), "--program", program, "--type", doc_type, *args, "--json")
    )


def revise(vault: Path, file: Path, doc_id: str, reason: str, *args: str) -> dict[str, Any]:
    return ok_json(
        run(vault, "add", str(file), "--id", doc_id, "--reason", reason, *args, "--json")
    )


def show(vault: Path, doc_id: str, *args: str) -> dict[str, Any]:
    return ok_json(run(vault, "show", doc_id, *args, "--json"))


def midpoint(earlier: str, later: str) -> str:
    a, b = datetime.fromisoformat(earlier), datetime.fromisoformat(later)
    assert a < b
    return (a + (b - a) / 2).isoformat()


@pytest.fixture
def two_versions(vault_path: Path, tmp_path: Path) -> dict[str, Any]:
    """DOC-000001 with two versions of known bytes."""
    v1 = write(tmp_path, "br-v1.pdf", b"%PDF-1.4 version one\n")
    v2 = write(tmp_path, "br-v2.pdf", b"%PDF-1.4 version two, QA corrections\n")
    first = add(vault_path, v1, "--lot", "L-0042", "--title", "Executed batch record")
    second = revise(vault_path, v2, first["id"], "QA review corrections")
    return {"id": first["id"], "v1": v1, "v2": v2, "first": first, "second": second}


# -- init ---------------------------------------------------------------------------------


def test_init_creates_a_vault_that_verifies_clean(tmp_path: Path) -> None:
    path = tmp_path / "new-vault"
    result = run(path, "init")
    assert result.exit_code == 0, result.stderr
    assert (path / "repo.git").is_dir()
    assert ok_json(run(path, "ls", "--json")) == []
    assert ok_json(run(path, "verify", "--json")) == {"ok": True, "problems": []}


def test_second_init_is_refused_with_a_clear_message(vault_path: Path) -> None:
    result = run(vault_path, "init")
    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(ok_json(run(vault_path, "log", "--json"))) == 1


# -- add ----------------------------------------------------------------------------------


def test_add_prints_exactly_id_version_sha256_commit(vault_path: Path, sample_pdf: Path) -> None:
    added = add(vault_path, sample_pdf)
    assert set(added) == {"id", "version", "sha256", "commit"}
    assert added["version"] == 1
    assert added["id"] == "DOC-000001"
    assert added["sha256"] == hashlib.sha256(sample_pdf.read_bytes()).hexdigest()
    assert len(added["commit"]) == 40
    assert show(vault_path, added["id"])["commit"] == added["commit"]


def test_add_stores_title_lot_and_meta(vault_path: Path, sample_pdf: Path) -> None:
    added = add(
        vault_path,
        sample_pdf,
        "--title",
        "Executed batch record L-0042",
        "--lot",
        "L-0042",
        "--meta",
        "site=PHL",
        "--meta",
        "operator.id=op-7",
    )
    record = show(vault_path, added["id"])
    assert record["title"] == "Executed batch record L-0042"
    assert record["lot"] == "L-0042"
    assert record["meta"] == {"site": "PHL", "operator.id": "op-7"}
    assert record["program"] == "CART-19"
    assert record["type"] == "batch-record"
    assert record["filename"] == sample_pdf.name
    assert record["size"] == len(sample_pdf.read_bytes())
    assert record["version"] == 1


def test_add_numbers_documents_in_order(vault_path: Path, tmp_path: Path) -> None:
    ids = [
        add(vault_path, write(tmp_path, f"d{i}.txt", f"doc {i}".encode()))["id"] for i in range(3)
    ]
    assert ids == ["DOC-000001", "DOC-000002", "DOC-000003"]


# -- add --id (new versions) -------------------------------------------------------------


def test_add_with_id_and_reason_makes_version_2(two_versions: dict[str, Any]) -> None:
    second = two_versions["second"]
    assert set(second) == {"id", "version", "sha256", "commit"}
    assert second["id"] == two_versions["id"]
    assert second["version"] == 2
    assert second["sha256"] == hashlib.sha256(two_versions["v2"].read_bytes()).hexdigest()
    assert second["commit"] != two_versions["first"]["commit"]


def test_new_version_keeps_program_type_title_lot_meta_and_records_reason(
    vault_path: Path, tmp_path: Path
) -> None:
    v1 = write(tmp_path, "a.txt", b"one")
    first = add(vault_path, v1, "--title", "T1", "--lot", "L-1", "--meta", "site=PHL")
    revise(
        vault_path,
        write(tmp_path, "b.txt", b"two"),
        first["id"],
        "typo fixed",
        "--meta",
        "reviewer=jr",
    )
    record = show(vault_path, first["id"])
    assert record["version"] == 2
    assert record["reason"] == "typo fixed"
    assert (record["program"], record["type"], record["title"], record["lot"]) == (
        "CART-19",
        "batch-record",
        "T1",
        "L-1",
    )
    assert record["meta"] == {"site": "PHL", "reviewer": "jr"}
    assert record["filename"] == "b.txt"


def test_identical_bytes_are_refused_as_nothing_changed(
    two_versions: dict[str, Any], vault_path: Path, tmp_path: Path
) -> None:
    same = write(tmp_path, "copy.pdf", two_versions["v2"].read_bytes())
    before = run(vault_path, "log", "--json").stdout
    result = run(vault_path, "add", str(same), "--id", two_versions["id"], "--reason", "again")
    assert result.exit_code == 1
    assert "nothing changed" in result.stderr
    assert run(vault_path, "log", "--json").stdout == before
    assert show(vault_path, two_versions["id"])["version"] == 2


def test_new_version_without_reason_is_a_usage_error(
    vault_path: Path, sample_pdf: Path, tmp_path: Path
) -> None:
    first = add(vault_path, sample_pdf)
    result = run(vault_path, "add", str(write(tmp_path, "n.pdf", b"new")), "--id", first["id"])
    assert result.exit_code == 2
    assert "--reason" in result.stderr
    assert show(vault_path, first["id"])["version"] == 1


# -- show ---------------------------------------------------------------------------------


def test_show_json_has_the_documented_keys(two_versions: dict[str, Any], vault_path: Path) -> None:
    record = show(vault_path, two_versions["id"])
    assert SHOW_KEYS <= set(record)
    assert record["version"] == 2
    assert record["user"] == "qa.tester"
    assert record["reason"] == "QA review corrections"
    assert record["sha256"] == two_versions["second"]["sha256"]
    assert record["filename"] == "br-v2.pdf"
    datetime.fromisoformat(record["recorded_at"])


def test_show_version_n(two_versions: dict[str, Any], vault_path: Path) -> None:
    record = show(vault_path, two_versions["id"], "--version", "1")
    assert record["version"] == 1
    assert record["sha256"] == two_versions["first"]["sha256"]
    assert record["commit"] == two_versions["first"]["commit"]
    assert record["reason"] is None
    assert record["filename"] == "br-v1.pdf"


def test_show_as_of_between_versions_returns_version_1(
    two_versions: dict[str, Any], vault_path: Path
) -> None:
    doc = two_versions["id"]
    t1 = show(vault_path, doc, "--version", "1")["recorded_at"]
    t2 = show(vault_path, doc, "--version", "2")["recorded_at"]
    assert show(vault_path, doc, "--as-of", t1)["version"] == 1
    assert show(vault_path, doc, "--as-of", midpoint(t1, t2))["version"] == 1
    assert show(vault_path, doc, "--as-of", t2)["version"] == 2


def test_show_as_of_the_latest_versions_day_returns_it(
    two_versions: dict[str, Any], vault_path: Path
) -> None:
    doc = two_versions["id"]
    day = day_of(show(vault_path, doc, "--version", "2")["recorded_at"])
    assert show(vault_path, doc, "--as-of", day.isoformat())["version"] == 2


def test_show_as_of_a_date_means_the_end_of_that_day(clock: Clock, tmp_path: Path) -> None:
    # Version 1 a moment before midnight UTC, version 2 a moment after: one day each.
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    doc = add(vault, write(tmp_path, "v1.pdf", b"v1"))["id"]
    clock.at = AFTER_MIDNIGHT
    revise(vault, write(tmp_path, "v2.pdf", b"v2"), doc, "fix")
    first = day_of(show(vault, doc, "--version", "1")["recorded_at"])
    second = day_of(show(vault, doc, "--version", "2")["recorded_at"])
    assert second == first + timedelta(days=1)
    assert show(vault, doc, "--as-of", first.isoformat())["version"] == 1
    assert show(vault, doc, "--as-of", second.isoformat())["version"] == 2


def test_show_as_of_with_an_offset_is_converted_to_utc(
    two_versions: dict[str, Any], vault_path: Path
) -> None:
    doc = two_versions["id"]
    t1 = show(vault_path, doc, "--version", "1")["recorded_at"]
    t2 = show(vault_path, doc, "--version", "2")["recorded_at"]
    india = timezone(timedelta(hours=5, minutes=30))
    between = datetime.fromisoformat(midpoint(t1, t2)).astimezone(india)
    assert show(vault_path, doc, "--as-of", between.isoformat())["version"] == 1


# -- get ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_get_to_a_file_writes_the_exact_bytes(
    two_versions: dict[str, Any], vault_path: Path, tmp_path: Path, version: int
) -> None:
    out = tmp_path / "out" / "copy.bin"
    out.parent.mkdir()
    result = run(vault_path, "get", two_versions["id"], "--version", str(version), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == two_versions[f"v{version}"].read_bytes()
    assert result.stdout == ""
    assert not list(out.parent.glob(".*partial"))


@pytest.mark.parametrize("version", [1, 2])
def test_get_to_stdout_writes_the_exact_bytes(
    two_versions: dict[str, Any], vault_path: Path, version: int
) -> None:
    result = run(vault_path, "get", two_versions["id"], "--version", str(version))
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == two_versions[f"v{version}"].read_bytes()


def test_get_without_version_writes_the_latest(
    two_versions: dict[str, Any], vault_path: Path
) -> None:
    result = run(vault_path, "get", two_versions["id"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == two_versions["v2"].read_bytes()


def test_get_as_of_writes_the_version_current_then(
    two_versions: dict[str, Any], vault_path: Path
) -> None:
    t1 = show(vault_path, two_versions["id"], "--version", "1")["recorded_at"]
    result = run(vault_path, "get", two_versions["id"], "--as-of", t1)
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == two_versions["v1"].read_bytes()


@pytest.mark.parametrize("version", [1, 2])
def test_get_into_an_existing_directory_uses_the_original_filename(
    two_versions: dict[str, Any], vault_path: Path, tmp_path: Path, version: int
) -> None:
    outdir = tmp_path / "restore"
    outdir.mkdir()
    result = run(
        vault_path, "get", two_versions["id"], "--version", str(version), "-o", str(outdir)
    )
    assert result.exit_code == 0, result.stderr
    original = two_versions[f"v{version}"]
    assert [p.name for p in outdir.iterdir()] == [original.name]
    assert (outdir / original.name).read_bytes() == original.read_bytes()


def test_get_binary_content_round_trips(vault_path: Path, tmp_path: Path) -> None:
    data = bytes(range(256)) * 64 + b"\r\n\x00\xff"
    added = add(vault_path, write(tmp_path, "blob.bin", data))
    result = run(vault_path, "get", added["id"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == data


# -- history ------------------------------------------------------------------------------


def test_history_lists_every_version_oldest_first(
    two_versions: dict[str, Any], vault_path: Path, tmp_path: Path
) -> None:
    revise(
        vault_path,
        write(tmp_path, "v3.pdf", b"three"),
        two_versions["id"],
        "third pass",
        "--user",
        "qa.lead",
    )
    rows = ok_json(run(vault_path, "history", two_versions["id"], "--json"))
    assert isinstance(rows, list)
    assert [r["version"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert HISTORY_KEYS <= set(row)
    assert [r["reason"] for r in rows] == [None, "QA review corrections", "third pass"]
    assert [r["user"] for r in rows] == ["qa.tester", "qa.tester", "qa.lead"]
    assert [r["sha256"] for r in rows[:2]] == [
        two_versions["first"]["sha256"],
        two_versions["second"]["sha256"],
    ]
    assert rows[2]["size"] == 5
    assert [r["commit"] for r in rows[:2]] == [
        two_versions["first"]["commit"],
        two_versions["second"]["commit"],
    ]
    times = [r["recorded_at"] for r in rows]
    assert times == sorted(times)


# -- ls -----------------------------------------------------------------------------------


@pytest.fixture
def catalogue(vault_path: Path, tmp_path: Path) -> dict[str, str]:
    """Four documents across two programs, types and lots."""
    docs = {
        "br42": add(vault_path, write(tmp_path, "br42.pdf", b"br 42"), "--lot", "L-0042")["id"],
        "dev42": add(
            vault_path,
            write(tmp_path, "dev42.pdf", b"dev 42"),
            "--lot",
            "L-0042",
            doc_type="deviation-package",
        )["id"],
        "br43": add(vault_path, write(tmp_path, "br43.pdf", b"br 43"), "--lot", "L-0043")["id"],
        "sop": add(
            vault_path, write(tmp_path, "sop.pdf", b"sop"), program="AAV9-SMA", doc_type="sop"
        )["id"],
    }
    return docs


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in rows]


def test_ls_lists_the_latest_version_of_every_document(
    catalogue: dict[str, str], vault_path: Path, tmp_path: Path
) -> None:
    revise(vault_path, write(tmp_path, "br42b.pdf", b"br 42 b"), catalogue["br42"], "fix")
    rows = ok_json(run(vault_path, "ls", "--json"))
    assert ids(rows) == [catalogue[k] for k in ("br42", "dev42", "br43", "sop")]
    versions = {r["id"]: r["version"] for r in rows}
    assert versions[catalogue["br42"]] == 2
    assert versions[catalogue["sop"]] == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--program", "CART-19"), ["br42", "dev42", "br43"]),
        (("--program", "AAV9-SMA"), ["sop"]),
        (("--program", "NOPE-1"), []),
        (("--type", "batch-record"), ["br42", "br43"]),
        (("--type", "deviation-package"), ["dev42"]),
        (("--type", "capa"), []),
        (("--lot", "L-0042"), ["br42", "dev42"]),
        (("--lot", "L-0043"), ["br43"]),
        (("--program", "CART-19", "--type", "batch-record", "--lot", "L-0042"), ["br42"]),
    ],
)
def test_ls_filters(
    catalogue: dict[str, str], vault_path: Path, args: tuple[str, ...], expected: list[str]
) -> None:
    rows = ok_json(run(vault_path, "ls", *args, "--json"))
    assert ids(rows) == [catalogue[k] for k in expected]


def test_ls_as_of_shows_the_archive_as_it_stood(vault_path: Path, tmp_path: Path) -> None:
    early = add(vault_path, write(tmp_path, "a1.pdf", b"a one"))
    t_early = show(vault_path, early["id"])["recorded_at"]
    revise(vault_path, write(tmp_path, "a2.pdf", b"a two"), early["id"], "revised")
    later = add(vault_path, write(tmp_path, "b1.pdf", b"b one"))

    then = ok_json(run(vault_path, "ls", "--as-of", t_early, "--json"))
    assert ids(then) == [early["id"]]
    assert then[0]["version"] == 1
    assert then[0]["sha256"] == early["sha256"]

    now = ok_json(run(vault_path, "ls", "--json"))
    assert ids(now) == [early["id"], later["id"]]
    assert now[0]["version"] == 2

    before_anything = ok_json(run(vault_path, "ls", "--as-of", "2000-01-01", "--json"))
    assert before_anything == []


def test_ls_as_of_with_a_filter(catalogue: dict[str, str], vault_path: Path) -> None:
    day = day_of(show(vault_path, catalogue["sop"])["recorded_at"]).isoformat()
    rows = ok_json(run(vault_path, "ls", "--program", "AAV9-SMA", "--as-of", day, "--json"))
    assert ids(rows) == [catalogue["sop"]]


# -- log ----------------------------------------------------------------------------------


def test_log_has_one_entry_per_write_including_init(vault_path: Path, tmp_path: Path) -> None:
    first = add(vault_path, write(tmp_path, "a.pdf", b"a"))
    revise(vault_path, write(tmp_path, "b.pdf", b"b"), first["id"], "corrected")
    ok_json(run(vault_path, "withdraw", first["id"], "--reason", "superseded", "--json"))
    entries = ok_json(run(vault_path, "log", "--json"))
    assert [e["action"] for e in entries] == ["init", "add", "revise", "withdraw"]
    for entry in entries:
        assert LOG_KEYS <= set(entry)
        assert entry["user"] == "qa.tester"
    assert [e["doc"] for e in entries] == [None, first["id"], first["id"], first["id"]]
    assert [e["reason"] for e in entries[2:]] == ["corrected", "superseded"]
    assert entries[1]["commit"] == first["commit"]
    assert len({e["commit"] for e in entries}) == 4
    times = [e["time"] for e in entries]
    assert times == sorted(times)


def test_log_filters_by_user_and_doc(vault_path: Path, tmp_path: Path) -> None:
    a = add(vault_path, write(tmp_path, "a.pdf", b"a"), "--user", "j.rivera")
    b = add(vault_path, write(tmp_path, "b.pdf", b"b"))
    revise(vault_path, write(tmp_path, "a2.pdf", b"a2"), a["id"], "fix", "--user", "qa.lead")

    by_rivera = ok_json(run(vault_path, "log", "--user", "j.rivera", "--json"))
    assert [(e["action"], e["doc"]) for e in by_rivera] == [("add", a["id"])]

    by_tester = ok_json(run(vault_path, "log", "--user", "qa.tester", "--json"))
    assert [e["action"] for e in by_tester] == ["init", "add"]
    assert by_tester[1]["doc"] == b["id"]

    on_a = ok_json(run(vault_path, "log", "--doc", a["id"], "--json"))
    assert [(e["action"], e["user"]) for e in on_a] == [("add", "j.rivera"), ("revise", "qa.lead")]

    assert ok_json(run(vault_path, "log", "--user", "nobody", "--json")) == []
    assert ok_json(run(vault_path, "log", "--doc", "DOC-999999", "--json")) == []


def test_log_since_and_until(vault_path: Path, tmp_path: Path) -> None:
    add(vault_path, write(tmp_path, "a.pdf", b"a"))
    add(vault_path, write(tmp_path, "b.pdf", b"b"))
    entries = ok_json(run(vault_path, "log", "--json"))
    times = [e["time"] for e in entries]
    assert len(times) == 3

    since = ok_json(run(vault_path, "log", "--since", times[1], "--json"))
    assert [e["time"] for e in since] == times[1:]
    until = ok_json(run(vault_path, "log", "--until", times[1], "--json"))
    assert [e["time"] for e in until] == times[:2]
    window = ok_json(run(vault_path, "log", "--since", times[1], "--until", times[1], "--json"))
    assert [e["time"] for e in window] == [times[1]]
    between = midpoint(times[0], times[1])
    assert len(ok_json(run(vault_path, "log", "--since", between, "--json"))) == 2


def test_log_since_and_until_as_dates_cover_whole_days(clock: Clock, tmp_path: Path) -> None:
    # init a moment before midnight UTC, the add a moment after: one day each.
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    clock.at = AFTER_MIDNIGHT
    add(vault, write(tmp_path, "a.pdf", b"a"))
    first, second = (day_of(e["time"]) for e in ok_json(run(vault, "log", "--json")))
    assert second == first + timedelta(days=1)

    def actions(option: str, day: date) -> list[str]:
        return [e["action"] for e in ok_json(run(vault, "log", option, day.isoformat(), "--json"))]

    assert actions("--since", first) == ["init", "add"]
    assert actions("--until", second) == ["init", "add"]
    assert actions("--since", second) == ["add"]  # from the very start of the day
    assert actions("--until", first) == ["init"]  # to the very end of the day
    assert actions("--since", second + timedelta(days=1)) == []
    assert actions("--until", first - timedelta(days=1)) == []


# -- withdraw -----------------------------------------------------------------------------


def test_withdraw_records_a_new_version_and_keeps_the_content(
    two_versions: dict[str, Any], vault_path: Path
) -> None:
    doc = two_versions["id"]
    out = ok_json(run(vault_path, "withdraw", doc, "--reason", "superseded by BR rev 4", "--json"))
    assert out["id"] == doc
    assert out["version"] == 3
    assert out["status"] == "withdrawn"

    record = show(vault_path, doc)
    assert record["version"] == 3
    assert record["status"] == "withdrawn"
    assert record["reason"] == "superseded by BR rev 4"
    assert show(vault_path, doc, "--version", "2")["status"] == "active"

    for version in ("1", "2"):
        got = run(vault_path, "get", doc, "--version", version)
        assert got.exit_code == 0, got.stderr
        assert got.stdout_bytes == two_versions[f"v{version}"].read_bytes()
    latest = run(vault_path, "get", doc)
    assert latest.exit_code == 0, latest.stderr
    assert latest.stdout_bytes == two_versions["v2"].read_bytes()

    listed = ok_json(run(vault_path, "ls", "--json"))
    assert [(r["id"], r["status"]) for r in listed] == [(doc, "withdrawn")]
    history = ok_json(run(vault_path, "history", doc, "--json"))
    assert [r["version"] for r in history] == [1, 2, 3]


def test_a_withdrawn_document_cannot_be_revised_or_withdrawn_again(
    two_versions: dict[str, Any], vault_path: Path, tmp_path: Path
) -> None:
    doc = two_versions["id"]
    ok_json(run(vault_path, "withdraw", doc, "--reason", "superseded", "--json"))
    before = run(vault_path, "log", "--json").stdout

    revised = run(
        vault_path,
        "add",
        str(write(tmp_path, "v4.pdf", b"four")),
        "--id",
        doc,
        "--reason",
        "try again",
    )
    assert revised.exit_code == 1
    assert "withdrawn" in revised.stderr

    again = run(vault_path, "withdraw", doc, "--reason", "twice")
    assert again.exit_code == 1
    assert "withdrawn" in again.stderr

    assert run(vault_path, "log", "--json").stdout == before


@pytest.mark.parametrize("reason_args", [(), ("--reason", ""), ("--reason", "   ")])
def test_withdraw_requires_a_reason(
    two_versions: dict[str, Any], vault_path: Path, reason_args: tuple[str, ...]
) -> None:
    result = run(vault_path, "withdraw", two_versions["id"], *reason_args)
    assert result.exit_code == 2
    assert "reason" in result.stderr
    assert show(vault_path, two_versions["id"])["status"] == "active"


# -- verify and rebuild -------------------------------------------------------------------


def test_verify_a_clean_vault(two_versions: dict[str, Any], vault_path: Path) -> None:
    result = run(vault_path, "verify", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


def test_verify_a_clean_vault_for_people(vault_path: Path) -> None:
    result = run(vault_path, "verify")
    assert result.exit_code == 0
    assert result.stdout.startswith("ok")


def test_rebuild_changes_nothing_a_user_can_see(
    two_versions: dict[str, Any], vault_path: Path, tmp_path: Path
) -> None:
    doc = two_versions["id"]
    other = add(
        vault_path,
        write(tmp_path, "sop.pdf", b"sop"),
        "--meta",
        "site=BOS",
        program="AAV9-SMA",
        doc_type="sop",
    )
    ok_json(run(vault_path, "withdraw", other["id"], "--reason", "obsolete", "--json"))

    def snapshot() -> tuple[Any, ...]:
        return (
            ok_json(run(vault_path, "ls", "--json")),
            ok_json(run(vault_path, "history", doc, "--json")),
            ok_json(run(vault_path, "history", other["id"], "--json")),
            show(vault_path, doc),
            show(vault_path, doc, "--version", "1"),
            show(vault_path, other["id"]),
            ok_json(run(vault_path, "log", "--json")),
        )

    before = snapshot()
    result = run(vault_path, "rebuild", "--json")
    out = ok_json(result)
    assert out["versions"] == 4
    assert out["commit"] == before[-1][-1]["commit"]
    assert snapshot() == before
    assert ok_json(run(vault_path, "verify", "--json")) == {"ok": True, "problems": []}


def test_rebuild_after_the_catalog_is_lost(two_versions: dict[str, Any], vault_path: Path) -> None:
    before = ok_json(run(vault_path, "ls", "--json"))
    history = ok_json(run(vault_path, "history", two_versions["id"], "--json"))
    (vault_path / "catalog.sqlite").unlink()
    for extra in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (vault_path / extra).unlink(missing_ok=True)
    assert run(vault_path, "rebuild").exit_code == 0
    assert ok_json(run(vault_path, "ls", "--json")) == before
    assert ok_json(run(vault_path, "history", two_versions["id"], "--json")) == history


# -- who acts, where the vault is ---------------------------------------------------------


def test_user_flag_is_recorded(vault_path: Path, sample_pdf: Path) -> None:
    added = add(vault_path, sample_pdf, "--user", "J. Rivera")
    assert show(vault_path, added["id"])["user"] == "J. Rivera"
    entries = ok_json(run(vault_path, "log", "--doc", added["id"], "--json"))
    assert [e["user"] for e in entries] == ["J. Rivera"]


def test_atmpvault_user_environment_is_recorded(vault_path: Path, sample_pdf: Path) -> None:
    result = run(
        vault_path,
        "add",
        str(sample_pdf),
        "--program",
        "CART-19",
        "--type",
        "sop",
        "--json",
        env={"ATMPVAULT_USER": "env.user"},
    )
    added = ok_json(result)
    assert show(vault_path, added["id"])["user"] == "env.user"
    assert ok_json(run(vault_path, "log", "--user", "env.user", "--json"))[0]["doc"] == added["id"]


def test_user_flag_wins_over_the_environment(vault_path: Path, sample_pdf: Path) -> None:
    result = run(
        vault_path,
        "add",
        str(sample_pdf),
        "--program",
        "CART-19",
        "--type",
        "sop",
        "--user",
        "flag.user",
        "--json",
        env={"ATMPVAULT_USER": "env.user"},
    )
    assert show(vault_path, ok_json(result)["id"])["user"] == "flag.user"


def test_user_on_init_and_withdraw_is_recorded(tmp_path: Path, sample_pdf: Path) -> None:
    path = tmp_path / "v"
    assert run(path, "init", "--user", "admin.one").exit_code == 0
    added = add(path, sample_pdf)
    ok_json(run(path, "withdraw", added["id"], "--reason", "void", "--user", "qa.lead", "--json"))
    entries = ok_json(run(path, "log", "--json"))
    assert [(e["action"], e["user"]) for e in entries] == [
        ("init", "admin.one"),
        ("add", "qa.tester"),
        ("withdraw", "qa.lead"),
    ]


def test_atmpvault_home_names_the_vault(tmp_path: Path, sample_pdf: Path) -> None:
    path = tmp_path / "home-vault"
    env = {"ATMPVAULT_HOME": str(path)}
    assert run(None, "init", env=env).exit_code == 0
    assert (path / "repo.git").is_dir()
    added = ok_json(
        run(
            None, "add", str(sample_pdf), "--program", "CART-19", "--type", "sop", "--json", env=env
        )
    )
    assert ids(ok_json(run(None, "ls", "--json", env=env))) == [added["id"]]
    assert ids(ok_json(run(path, "ls", "--json"))) == [added["id"]]


def test_vault_flag_wins_over_atmpvault_home(tmp_path: Path, sample_pdf: Path) -> None:
    flagged, home = tmp_path / "flagged", tmp_path / "home"
    assert run(flagged, "init").exit_code == 0
    assert run(home, "init").exit_code == 0
    env = {"ATMPVAULT_HOME": str(home)}
    ok_json(
        run(
            flagged,
            "add",
            str(sample_pdf),
            "--program",
            "CART-19",
            "--type",
            "sop",
            "--json",
            env=env,
        )
    )
    assert len(ok_json(run(flagged, "ls", "--json"))) == 1
    assert ok_json(run(home, "ls", "--json")) == []


# -- help and JSON hygiene -----------------------------------------------------------------


def test_top_level_help_lists_every_command() -> None:
    result = run(None, "--help")
    assert result.exit_code == 0
    for name in (
        "init",
        "add",
        "show",
        "get",
        "history",
        "ls",
        "log",
        "withdraw",
        "verify",
        "rebuild",
    ):
        assert name in result.stdout


@pytest.mark.parametrize("command", sorted(cli.load_all()))
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = run(None, command, "--help")
    assert result.exit_code == 0, result.stderr
    assert "atmpvault" in result.stdout
    assert result.stdout.startswith("Usage:")


def test_help_needs_no_vault(tmp_path: Path) -> None:
    result = run(tmp_path / "does-not-exist", "ls", "--help")
    assert result.exit_code == 0
    assert not (tmp_path / "does-not-exist").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("show", "DOC-000001", "--json"),
        ("show", "DOC-000001", "--version", "1", "--json"),
        ("history", "DOC-000001", "--json"),
        ("ls", "--json"),
        ("ls", "--program", "CART-19", "--json"),
        ("log", "--json"),
        ("verify", "--json"),
        ("rebuild", "--json"),
    ],
)
def test_json_output_is_json_only(
    two_versions: dict[str, Any], vault_path: Path, args: tuple[str, ...]
) -> None:
    result = run(vault_path, *args)
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)
    assert result.stderr == ""


def test_json_output_of_writes_is_json_only(vault_path: Path, tmp_path: Path) -> None:
    results = [
        run(
            vault_path,
            "add",
            str(write(tmp_path, "a.pdf", b"a")),
            "--program",
            "CART-19",
            "--type",
            "sop",
            "--json",
        )
    ]
    results.append(
        run(
            vault_path,
            "add",
            str(write(tmp_path, "b.pdf", b"b")),
            "--id",
            "DOC-000001",
            "--reason",
            "r",
            "--json",
        )
    )
    results.append(run(vault_path, "withdraw", "DOC-000001", "--reason", "w", "--json"))
    for result in results:
        assert result.exit_code == 0, result.stderr
        assert isinstance(json.loads(result.stdout), dict)
        assert result.stderr == ""


def test_non_ascii_text_round_trips_through_json(vault_path: Path, sample_pdf: Path) -> None:
    added = add(
        vault_path,
        sample_pdf,
        "--title",
        "Protocole de libération – lot µ-7",
        "--meta",
        "site=Zürich",
    )
    record = show(vault_path, added["id"])
    assert record["title"] == "Protocole de libération – lot µ-7"
    assert record["meta"] == {"site": "Zürich"}


def test_h_is_help_and_vault_may_follow_the_command(vault_path: Path, tmp_path: Path) -> None:
    for args in (["-h"], ["ls", "-h"], ["package", "add", "-h"]):
        shown = run(None, *args)
        assert shown.exit_code == 0 and shown.stdout.startswith("Usage: "), args
    before = ok_json(run(vault_path, "ls", "--json"))
    after = run(None, "ls", "--json", "--vault", str(vault_path))
    assert after.exit_code == 0, after.stderr
    assert json.loads(after.stdout) == before
    equals = run(None, "log", f"--vault={vault_path}", "--json")
    assert equals.exit_code == 0 and json.loads(equals.stdout)[0]["action"] == "init"


def test_lazy_commands_are_listed_with_their_own_help() -> None:
    """A workflow's commands are imported when used; until then `--help` lists them with
    the help their Domain declares, which must be their own first paragraph."""
    import inspect
    import subprocess
    import sys

    import click

    from atmpvault.archive.core.domain import load
    from atmpvault.archive.domains import domains
    from tests.conftest import cli_env

    for domain in domains():
        if not domain.command_help:
            continue
        group = click.Group("probe")
        load(domain.commands)(group)
        real = {
            name: " ".join(inspect.cleandoc(cmd.help or "").split("\n\n")[0].split())
            for name, cmd in group.commands.items()
        }
        assert dict(domain.command_help) == real, domain.name
    from atmpvault.cli import CORE_LAZY

    for register, declared in CORE_LAZY:
        group = click.Group("probe")
        load(register)(group)
        real = {
            name: " ".join(inspect.cleandoc(cmd.help or "").split("\n\n")[0].split())
            for name, cmd in group.commands.items()
        }
        assert dict(declared) == real, register
    listed = run(None, "--help").stdout
    for domain in domains():
        for name, _help in domain.command_help:
            assert f"\n  {name} " in listed
    # `ls --help` imports none of the lazily loaded workflows' command modules.
    code = (
        "import sys; from atmpvault.cli import main; sys.argv = ['atmpvault', 'ls', '--help'];"
        "\ntry: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('atmpvault.cli.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=cli_env(), check=True).stdout.splitlines()[-1]  # fmt: skip
    for lazy in ("quality", "custody", "dosing", "lots", "regulatory", "users", "team"):
        assert f"atmpvault.cli.{lazy}'" not in loaded, loaded


def test_a_write_beaten_by_another_workstation_runs_again_until_the_time_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A lost push is built again on the new tip, with a note once it happens repeatedly;
    the command gives up (exit 1, one line) only when RETRY_SECONDS have gone by, not
    after a fixed count that a busy colleague could exhaust."""
    import click
    from click.testing import CliRunner

    from atmpvault.cli import base
    from atmpvault.errors import UpstreamBusy

    monkeypatch.setattr(base, "wait_a_little", lambda attempt: None)
    attempts: list[int] = []
    lose = {"times": 12}

    group = base.VaultGroup("probe")

    @group.command("write")
    @click.argument("name")
    def write(name: str) -> None:
        attempts.append(1)
        if len(attempts) <= lose["times"]:
            raise UpstreamBusy("another workstation wrote first (stale info)")
        click.echo(f"written {name}")

    done = CliRunner().invoke(group, ["write", "DOC-1"])
    assert done.exit_code == 0, done.output
    assert len(attempts) == 13  # twelve lost races, more than the eight of old, then written
    assert "written DOC-1" in done.stdout
    assert done.stderr.count("other workstations are writing to the upstream") == 1

    attempts.clear()
    lose["times"] = 10**9
    monkeypatch.setattr(base, "RETRY_SECONDS", 0.2)
    gave_up = CliRunner().invoke(group, ["write", "DOC-2"])
    assert gave_up.exit_code == 1
    assert gave_up.stderr.strip().splitlines()[-1] == (
        "atmpvault: another workstation wrote first (stale info)"
    )
    assert len(attempts) > 1
