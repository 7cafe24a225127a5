"""Records as projected citizens: versions as of any time, rebuild equal to catch-up, one
user action as one commit (killed before it: nothing; after it: everything), the audit
trail and records checked by verify, formats checked on read."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core import values
from atmpvault.archive.core.pdf import make_pdf
from atmpvault.repository.fastimport import NewCommit
from atmpvault.repository.git import GitStore
from tests.conftest import CLI, cli_env, run

IND, BLA = "IND-012345", "BLA-125123"


def ok(vault: Path, *args: str) -> Any:
    result = run(vault, *args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def git(vault: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", *args],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def dump(vault: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every catalog table, sorted, nothing excluded."""
    with sqlite3.connect(vault / "catalog.sqlite") as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        found = {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall()) for t in tables}
    conn.close()
    return found


@pytest.fixture
def regulatory(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A vault with applications, events (one corrected), a finalised PAS and a notice."""
    vault = tmp_path / "vault"
    ok(vault, "init")
    spec = tmp_path / "spec.pdf"
    spec.write_bytes(make_pdf([["Drug product specification", "potency"]], title="Spec"))
    ok(vault, "add", str(spec), "--program", "CART-19", "--type", "report", "--json")
    ok(vault, "app", "new", "ind", "012345", "--program", "CART-19", "--json")
    ok(vault, "event", "add", IND, "ind-received", "--on", "2026-01-05", "--json")
    marks = {"before_correction": values.iso(values.now())}
    time.sleep(0.01)
    ok(vault, "app", "new", "bla", "125123", "--program", "CART-19", "--json")
    time.sleep(0.01)
    ok(vault, "event", "correct", "EV-000001", "--on", "2026-01-06", "--reason", "FDA date")
    marks["after_correction"] = values.iso(values.now())
    ok(vault, "event", "add", BLA, "bla-received", "--on", "2026-02-01", "--review", "standard",
       "--json")  # fmt: skip
    ok(vault, "package", "new", BLA, "--sequence", "0001", "--type", "pas", "--json")
    ok(vault, "package", "add", BLA, "0001", "DOC-000001", "--section", "m3/32p", "--json")
    return vault, marks


# -- as of ------------------------------------------------------------------------------


def test_records_as_of_any_time(regulatory: tuple[Path, dict[str, str]]) -> None:
    vault, marks = regulatory
    now = ok(vault, "app", "show", IND, "--json", "--today", "2026-01-10")
    assert [e["on"] for e in now["events"]] == ["2026-01-06"]
    before = ok(vault, "app", "show", IND, "--as-of", marks["before_correction"], "--json",
                "--today", "2026-01-10")  # fmt: skip
    assert [(e["on"], e["version"]) for e in before["events"]] == [("2026-01-05", 1)]
    # The milestones are derived from the event as it stood then.
    effective = [m for m in before["milestones"] if m["rule"] == "IND_EFFECTIVE"]
    assert [m["due"] for m in effective] == ["2026-02-04"]
    gone = run(vault, "app", "show", BLA, "--as-of", marks["before_correction"])
    assert gone.exit_code == 1 and "no application BLA-125123" in gone.stderr


def test_app_show_lists_events_and_open_milestones(regulatory: tuple[Path, dict[str, str]]) -> None:
    vault, _ = regulatory
    shown = ok(vault, "app", "show", BLA, "--json", "--today", "2026-02-10")
    assert shown["application"]["id"] == BLA
    assert [e["trigger"] for e in shown["events"]] == ["bla-received"]
    assert shown["milestones"] and all(
        m["due"] >= "2026-02-10" or m["kind"] in ("sponsor-due", "fda-due")
        for m in shown["milestones"]
    )
    text = ok(vault, "app", "show", BLA, "--today", "2026-02-10")
    assert "bla-received on 2026-02-01" in text and "open milestones" in text


# -- rebuild equals catch-up -------------------------------------------------------------


def test_rebuild_and_catch_up_give_the_same_catalog(
    regulatory: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    vault, _ = regulatory
    ok(vault, "package", "finalise", BLA, "0001", "--submitted", "2026-03-02", "--json")
    ok(vault, "lists", "set", "regulatory-leadership", "ra@example.com", "--reason", "RA")
    ok(vault, "alerts", "--send", "--today", "2026-03-10")
    incremental = dump(vault)
    assert incremental["records"] and incremental["audit"] and incremental["audit_items"]
    # A copy whose catalog is gone catches up from nothing when it is opened.
    copy = tmp_path / "copy"
    shutil.copytree(vault, copy)
    (copy / "catalog.sqlite").unlink()
    ok(copy, "ls")
    assert dump(copy) == incremental
    ok(vault, "rebuild")
    assert dump(vault) == incremental
    assert run(vault, "verify").exit_code == 0


# -- one action, one commit --------------------------------------------------------------


def test_finalise_is_one_commit_with_its_event_and_tag(
    regulatory: tuple[Path, dict[str, str]],
) -> None:
    vault, _ = regulatory
    before = int(git(vault, "rev-list", "--count", "main"))
    done = ok(vault, "package", "finalise", BLA, "0001", "--submitted", "2026-03-02", "--json")
    assert int(git(vault, "rev-list", "--count", "main")) == before + 1
    head = git(vault, "rev-parse", "main")
    assert git(vault, "rev-parse", f"seq/{BLA}/0001^{{commit}}") == head
    changed = git(vault, "show", "--name-only", "--format=", head).splitlines()
    assert sorted(changed) == [
        f"regulatory/events/{BLA}/EV-000003.json",
        f"regulatory/packages/{BLA}/0001.json",
    ]
    message = git(vault, "log", "-1", "--format=%B", head)
    assert f"Records: package {BLA}/0001 v3, event EV-000003 v1" in message
    assert done["calendar_event"] == "EV-000003"
    entry = ok(vault, "log", "--json")[-1]
    assert (entry["action"], entry["kind"], entry["id"], entry["version"]) == (
        "package-finalise", "package", f"{BLA}/0001", 3,
    )  # fmt: skip
    # Both records the commit touched find it.
    assert ok(vault, "log", "--id", "EV-000003", "--json")[-1]["commit"] == head
    assert ok(vault, "log", "--kind", "event", "--json")[-1]["commit"] == head


def finalise_killed(vault: Path, point: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, "--vault", str(vault), "package", "finalise", BLA, "0001", "--submitted",
         "2026-03-02", "--json"],
        capture_output=True, env=cli_env(ATMPVAULT_FAULT=point), timeout=60,
    )  # fmt: skip


def test_unit_of_work_killed_before_its_commit_leaves_nothing(
    regulatory: tuple[Path, dict[str, str]],
) -> None:
    vault, _ = regulatory
    head, tags = git(vault, "rev-parse", "main"), git(vault, "tag")
    crashed = finalise_killed(vault, "before-commit")
    assert crashed.returncode == -signal.SIGKILL and crashed.stdout == b""
    assert git(vault, "rev-parse", "main") == head and git(vault, "tag") == tags
    package = ok(vault, "package", "show", BLA, "0001", "--json")
    assert package["status"] == "in-preparation" and package["calendar_event"] is None
    assert [e["id"] for e in ok(vault, "event", "ls", BLA, "--json")] == ["EV-000002"]
    assert run(vault, "verify").exit_code == 0


@pytest.mark.parametrize("point", ["after-commit", "after-catalog"])
def test_unit_of_work_killed_after_its_commit_leaves_everything(
    regulatory: tuple[Path, dict[str, str]], point: str
) -> None:
    vault, _ = regulatory
    crashed = finalise_killed(vault, point)
    assert crashed.returncode == -signal.SIGKILL and crashed.stdout == b""
    head = git(vault, "rev-parse", "main")
    assert git(vault, "rev-parse", f"seq/{BLA}/0001^{{commit}}") == head
    # The next open replays what the catalog missed: the package and its event, both.
    package = ok(vault, "package", "show", BLA, "0001", "--json")
    assert package["status"] == "submitted" and package["calendar_event"] == "EV-000003"
    events = ok(vault, "event", "ls", BLA, "--json")
    assert [e["id"] for e in events] == ["EV-000002", "EV-000003"]
    assert ok(vault, "log", "--json")[-1]["commit"] == head
    assert run(vault, "verify").exit_code == 0


# -- verify ------------------------------------------------------------------------------


def edit_catalog(vault: Path, sql: str) -> None:
    with sqlite3.connect(vault / "catalog.sqlite") as conn:
        assert conn.execute(sql).rowcount == 1
    conn.close()


def test_verify_names_a_changed_record_row(regulatory: tuple[Path, dict[str, str]]) -> None:
    vault, _ = regulatory
    edit_catalog(
        vault,
        "UPDATE records SET body = replace(body, '2026-02-01', '2026-02-11') "
        "WHERE kind = 'event' AND id = 'EV-000002'",
    )
    result = run(vault, "verify")
    assert result.exit_code == 3
    assert "catalog record row event EV-000002 v1 differs from the repository: body" in (
        result.stdout
    )


def test_verify_names_a_changed_audit_row(regulatory: tuple[Path, dict[str, str]]) -> None:
    vault, _ = regulatory
    edit_catalog(vault, "UPDATE audit SET actor = 'mallory' WHERE action = 'event-correct'")
    result = run(vault, "verify", "--json")
    assert result.exit_code == 3
    problems = json.loads(result.stdout)["problems"]
    assert any(
        p.startswith("catalog audit row #") and "actor is 'mallory'" in p for p in problems
    ), problems


def test_verify_names_a_dropped_audit_item(regulatory: tuple[Path, dict[str, str]]) -> None:
    vault, _ = regulatory
    edit_catalog(vault, "DELETE FROM audit_items WHERE kind = 'application' AND id = 'BLA-125123'")
    result = run(vault, "verify")
    assert result.exit_code == 3 and "missing audit item" in result.stdout


# -- formats -----------------------------------------------------------------------------


def sneak_record(vault: Path, path: str, body: dict[str, Any]) -> None:
    """A commit made around atmpvault (as a newer release or a hand edit might)."""
    store = GitStore(vault / "repo.git")
    try:
        data = (json.dumps(body) + "\n").encode()
        store.commit(NewCommit({path: data}, "newer release\n", "future", values.now()),
                     store.head())  # fmt: skip
    finally:
        store.close()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"format": 9}, ["format 9", "this atmpvault reads format 1"]),
        ({"format": 1, "id": "EV-000099", "colour": "red"}, ["unknown event field(s) colour"]),
    ],
)
def test_a_record_of_unknown_format_is_refused_cleanly(
    regulatory: tuple[Path, dict[str, str]], body: dict[str, Any], words: list[str]
) -> None:
    vault, _ = regulatory
    sneak_record(vault, f"regulatory/events/{IND}/EV-000099.json", body)
    for args in (("ls",), ("event", "ls", IND), ("verify",)):
        result = run(vault, *args)
        assert result.exit_code in (1, 3), (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        shown = result.stderr + result.stdout
        for word in words:
            assert word in shown, (args, shown)


def test_writing_a_record_the_code_cannot_read_back_is_refused(
    regulatory: tuple[Path, dict[str, str]],
) -> None:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.domains import domains
    from atmpvault.config import Settings
    from atmpvault.errors import RecordFormatError

    vault_path, _ = regulatory
    head = git(vault_path, "rev-parse", "main")
    with Vault.open(Settings(vault=vault_path, user="qa"), domains()) as vault:
        with pytest.raises(RecordFormatError), vault.unit("edit", "hand edit") as unit:
            unit.files[f"regulatory/events/{IND}/EV-000042.json"] = b'{"format": 7}\n'
    assert git(vault_path, "rev-parse", "main") == head


def test_log_filters_by_kind_and_id(regulatory: tuple[Path, dict[str, str]]) -> None:
    vault, _ = regulatory
    events = ok(vault, "log", "--kind", "event", "--json")
    assert [(e["action"], e["id"], e["version"]) for e in events] == [
        ("event-add", "EV-000001", 1),
        ("event-correct", "EV-000001", 2),
        ("event-add", "EV-000002", 1),
    ]
    docs = ok(vault, "log", "--doc", "DOC-000001", "--json")
    assert [(e["doc"], e["kind"], e["version"]) for e in docs] == [
        ("DOC-000001", "document", 1),
        (None, "package", 2),  # the package-add that pinned it
    ]
    apps = ok(vault, "log", "--kind", "application", "--json")
    assert [e["id"] for e in apps] == [IND, BLA]
    bad = run(vault, "log", "--kind", "spaceship")
    assert bad.exit_code == 2 and "unknown record kind 'spaceship'" in bad.stderr


def test_verify_names_a_changed_milestone_row(regulatory: tuple[Path, dict[str, str]]) -> None:
    """The projected calendar is checked against what the records derive now."""
    vault, _ = regulatory
    calendar = ok(vault, "calendar", "--json", "--app", IND, "--today", "2026-01-10")
    assert "IND_EFFECTIVE" in {m["rule"] for m in calendar}
    edit_catalog(vault, "UPDATE milestones SET due = '2027-01-01' WHERE rule = 'IND_EFFECTIVE'")
    result = run(vault, "verify")
    assert result.exit_code == 3
    assert f"catalog milestones row {IND} IND_EFFECTIVE EV-000001 is not what" in result.stdout
    ok(vault, "rebuild")
    assert ok(vault, "calendar", "--json", "--app", IND, "--today", "2026-01-10") == calendar
