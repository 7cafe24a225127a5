"""The audit trail answers an auditor's questions: what changed between two versions, what
each write was (its summary), and every write that concerns a document, including the
package-adds that put it into a submission; tables fit the terminal, JSON keeps it all."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import sqlite3
import struct
import subprocess
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core import values
from atmpvault.archive.core.pdf import make_pdf
from tests.conftest import CLI, cli_env, run

IND = "IND-012345"


def ok(vault: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = run(vault, *args, env=env)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def pdf(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(make_pdf([[text]], title=text))
    return path


@pytest.fixture
def dossier(tmp_path: Path) -> Path:
    """A vault: DOC-000001 (two versions, the second retitled), DOC-000002, an IND with a
    letter event recording DOC-000002, and a sequence pinning DOC-000001 v2."""
    vault = tmp_path / "vault"
    ok(vault, "init")
    spec = pdf(tmp_path, "spec.pdf", "Drug product specification")
    ok(vault, "add", str(spec), "--program", "CART-19", "--type", "report", "--title", "Spec",
       "--lot", "L-0042", "--meta", "site=Leiden", "--json")  # fmt: skip
    spec2 = pdf(tmp_path, "spec-rev.pdf", "Drug product specification, revised")
    ok(vault, "add", str(spec2), "--id", "DOC-000001", "--reason", "new potency limits",
       "--title", "Spec rev B", "--lot", "L-0043", "--meta", "site=Bern", "--meta",
       "owner=qa", "--json")  # fmt: skip
    letter = pdf(tmp_path, "letter.pdf", "FDA acknowledgement letter")
    ok(vault, "add", str(letter), "--program", "CART-19", "--type", "report", "--json")
    ok(vault, "app", "new", "ind", "012345", "--program", "CART-19", "--json")
    ok(vault, "event", "add", IND, "ind-received", "--on", "2026-01-05", "--doc", "DOC-000002",
       "--json")  # fmt: skip
    ok(vault, "event", "correct", "EV-000001", "--on", "2026-01-06", "--reason", "FDA date")
    ok(vault, "package", "new", IND, "--sequence", "0001", "--type", "protocol-amendment")
    ok(vault, "package", "add", IND, "0001", "DOC-000001", "--section", "m3/32p", "--json")
    ok(vault, "package", "add", IND, "0001", "DOC-000002", "--section", "m1/us", "--json")
    return vault


# -- history: what changed between versions -----------------------------------------------


def test_history_shows_each_metadata_change_old_to_new(dossier: Path) -> None:
    rows = ok(dossier, "history", "DOC-000001", "--json")
    assert rows[0]["changes"] == []
    assert rows[1]["changes"] == [
        {"field": "title", "old": "Spec", "new": "Spec rev B"},
        {"field": "lot", "old": "L-0042", "new": "L-0043"},
        {"field": "filename", "old": "spec.pdf", "new": "spec-rev.pdf"},
        {"field": "meta.owner", "old": None, "new": "qa"},
        {"field": "meta.site", "old": "Leiden", "new": "Bern"},
    ]
    text = ok(dossier, "history", "DOC-000001")
    assert "CHANGES" in text.splitlines()[0]
    second = text.splitlines()[2]
    assert "title: Spec \u2192 Spec rev B" in second
    assert "lot: L-0042 \u2192 L-0043" in second
    assert "meta.owner: (none) \u2192 qa" in second


def test_history_shows_a_withdrawal_as_a_status_change(dossier: Path) -> None:
    ok(dossier, "withdraw", "DOC-000002", "--reason", "superseded", "--json")
    rows = ok(dossier, "history", "DOC-000002", "--json")
    assert rows[1]["changes"] == [{"field": "status", "old": "active", "new": "withdrawn"}]


def test_history_never_shows_two_versions_at_the_same_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two versions within one second: cut to seconds, both would read 08:13:38.
    clock = iter(
        datetime(2026, 3, 1, 8, 13, 38, 100000, tzinfo=UTC) + timedelta(milliseconds=50 * i)
        for i in range(100)
    )
    monkeypatch.setattr(values, "now", lambda: next(clock))
    vault = tmp_path / "vault"
    ok(vault, "init")
    ok(vault, "add", str(pdf(tmp_path, "a.pdf", "a")), "--program", "CART-19", "--type",
       "report", "--json")  # fmt: skip
    ok(vault, "add", str(pdf(tmp_path, "b.pdf", "b")), "--id", "DOC-000001", "--reason", "fix",
       "--json")  # fmt: skip
    lines = ok(vault, "history", "DOC-000001").splitlines()[1:]
    shown = [line.split()[1] for line in lines]
    assert len(set(shown)) == 2, lines
    assert all(s.startswith("2026-03-01T08:13:38.") for s in shown)


# -- log: summaries, references ----------------------------------------------------------


def test_log_table_shows_what_each_record_write_was(dossier: Path) -> None:
    text = ok(dossier, "log", "--kind", "event")
    header, *rows = text.splitlines()
    assert "SUMMARY" in header
    assert "Record EV-000001 ind-received on 2026-01-05 for IND-012345" in rows[0]
    assert "Correct EV-000001 ind-received: 2026-01-05 -> 2026-01-06" in rows[1]


def test_log_of_a_document_lists_the_package_adds_that_pinned_it(dossier: Path) -> None:
    entries = ok(dossier, "log", "--doc", "DOC-000001", "--json")
    assert [(e["action"], e["kind"], e["id"]) for e in entries] == [
        ("add", "document", "DOC-000001"),
        ("revise", "document", "DOC-000001"),
        ("package-add", "package", "IND-012345/0001"),
    ]
    # The second package-add keeps DOC-000001's leaf but adds only DOC-000002's.
    assert entries[2]["refers_to"] == [{"kind": "document", "id": "DOC-000001", "version": 2}]
    assert entries[0]["refers_to"] == []
    text = ok(dossier, "log", "--doc", "DOC-000001")
    assert "package add DOC-000001 v2 to IND-012345/0001" in text


def test_log_of_a_letter_lists_the_event_that_recorded_it_once(dossier: Path) -> None:
    entries = ok(dossier, "log", "--doc", "DOC-000002", "--json")
    # The correction keeps the letter: it is not a new reference to it.
    assert [e["action"] for e in entries] == ["add", "event-add", "package-add"]
    assert entries[1]["id"] == "EV-000001"
    assert entries[1]["refers_to"] == [{"kind": "document", "id": "DOC-000002", "version": None}]
    events = ok(dossier, "log", "--doc", "EV-000001", "--json")
    assert [e["action"] for e in events] == ["event-add", "event-correct"]


def test_log_kind_lists_only_writes_to_that_kind(dossier: Path) -> None:
    entries = ok(dossier, "log", "--kind", "document", "--json")
    assert {e["action"] for e in entries} == {"add", "revise"}


def test_log_json_keeps_every_earlier_key(dossier: Path) -> None:
    entry = ok(dossier, "log", "--json")[-1]
    assert list(entry)[:10] == [
        "commit", "time", "user", "action", "reason", "doc", "kind", "id", "version", "summary",
    ]  # fmt: skip


# -- the projection: catch-up, rebuild and verify agree ------------------------------------


def refs(vault: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(vault / "catalog.sqlite") as conn:
        found = sorted(conn.execute("SELECT seq, kind, id, version FROM audit_refs"))
    conn.close()
    return found


def test_rebuild_gives_the_references_catch_up_gave(dossier: Path) -> None:
    before = refs(dossier)
    assert [r[1:] for r in before] == [
        ("document", "DOC-000002", None),
        ("document", "DOC-000001", 2),
        ("document", "DOC-000002", 1),
    ]
    ok(dossier, "rebuild")
    assert refs(dossier) == before
    assert "ok:" in ok(dossier, "verify")


@pytest.mark.parametrize(
    "edit",
    [
        "DELETE FROM audit_refs WHERE id = 'DOC-000001'",
        "UPDATE audit_refs SET version = 1 WHERE id = 'DOC-000001'",
        "INSERT INTO audit_refs VALUES (2, 'document', 'DOC-000002', 1)",
    ],
)
def test_verify_names_an_edited_reference(dossier: Path, edit: str) -> None:
    with sqlite3.connect(dossier / "catalog.sqlite") as conn:
        conn.execute(edit)
    conn.close()
    result = run(dossier, "verify")
    assert result.exit_code == 3
    assert "audit reference" in result.stdout


# -- tables fit the terminal ------------------------------------------------------------


def on_a_terminal(vault: Path, columns: int, *args: str) -> str:
    """What a real `atmpvault` process prints to a terminal `columns` wide."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in cli_env().items() if k not in ("COLUMNS", "LINES")}
    try:
        proc = subprocess.run(
            [*CLI, "--vault", str(vault), *args], stdout=follower, stderr=subprocess.PIPE,
            env=env, timeout=120, check=False,
        )  # fmt: skip
        os.close(follower)
        assert proc.returncode == 0, proc.stderr
        out = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal is closed once all is read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    return out.decode("utf-8").replace("\r\n", "\n")


def test_tables_fit_the_terminal_and_cut_only_text(dossier: Path) -> None:
    ok(dossier, "event", "correct", "EV-000001", "--on", "2026-01-07", "--reason",
       "the acknowledgement letter was dated a day later than the first reading " * 2)  # fmt: skip
    lines = on_a_terminal(dossier, 120, "log").splitlines()
    assert all(len(line) <= 120 for line in lines), [len(line) for line in lines]
    assert "\u2026" in "".join(lines)
    full = ok(dossier, "log", "--json")
    assert len(lines) == len(full) + 1
    for entry, line in zip(full, lines[1:], strict=True):
        assert entry["commit"][:12] in line  # ids, times and commits are never cut
        if entry["id"]:
            assert f" {entry['id']} " in line
    assert full[-1]["reason"].endswith("than the first reading")


def test_tables_in_a_pipe_are_never_cut(dossier: Path) -> None:
    text = ok(dossier, "log", env={"COLUMNS": "60"})
    assert "\u2026" not in text
    assert "package add DOC-000002 v1 to IND-012345/0001 as leaf-0002 (new)" in text


def test_a_narrow_table_keeps_its_columns_apart() -> None:
    from atmpvault.cli.base import fit

    headers = ["ID", "TITLE", "REASON"]
    cells = [["DOC-000001", "Batch record for lot L-0042, full", "corrected the potency table"]]
    widths = fit([10, 34, 27], headers, cells, 50)
    assert widths == [10, 18, 18]  # the widest text cut first: 10 + 18 + 18 + 2 gaps of 2
    assert fit([10, 34, 27], headers, cells, None) == [10, 34, 27]
    # Nothing left to cut: ids stay whole and the table is simply wider than asked.
    assert fit([10, 34, 27], headers, cells, 20) == [10, 10, 10]
