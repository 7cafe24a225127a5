"""Tests for one-line changes the rest of the suite let through (issue 8, item 16).

Each test fails when one line of verify, import, the search projection or the calendar
is changed: those of verify, import and search were checked by making the change by
hand, the calendar's were found by mutmut (see the README's Tests section). Damage is
made on real vaults, with git's own plumbing or through the index engine, never by
mocking a store.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core.catalog import sqlite_damage
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.records import CONTENT, doc_dir
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.derivation import derive
from atmpvault.config import Settings
from tests.conftest import run
from tests.test_hardening_verify import add, behind_with_damage, damage_sha256_index, sha256_of
from tests.test_records import edit_catalog
from tests.test_rules import RULES, D, application, due_dates, event
from tests.test_verify import flip_byte, git

ARGS = ("--program", "CART-19", "--type", "batch-record")


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def ok(vault: Path, *args: str) -> Any:
    result = run(vault, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def problems(vault: Path) -> tuple[int, list[str]]:
    """`verify`'s exit code and the problems it names."""
    result = run(vault, "verify", "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.exit_code, json.loads(result.stdout)["problems"]


def make_vault(path: Path, tmp_path: Path, engine: str = "tantivy") -> Path:
    """Two batch records, neither revised."""
    assert run(path, "init", "--index-engine", engine).exit_code == 0
    for n in (1, 2):
        src = write(tmp_path / "src" / f"BR-{n:04d}.txt", f"Batch record L-{n:04d} viability 9{n}%")
        ok(path, "add", str(src), *ARGS, "--lot", f"L-{n:04d}")
    return path


# -- verify compares every version's bytes with its record ----------------------------------


def commit_tree_with(vault: Path, files: dict[str, bytes], message: str) -> str:
    """A commit on the branch tip whose tree is the tip's with `files` written, made with
    git plumbing (hash-object, a scratch index, write-tree, commit-tree, update-ref)."""
    repo = vault / "repo.git"
    tip = git(vault, "rev-parse", "refs/heads/main")
    env = {**os.environ, "GIT_INDEX_FILE": str(vault / "scratch-index")}

    def plumb(*args: str, data: bytes | None = None) -> str:
        return subprocess.run(
            ["git", f"--git-dir={repo}", *args],
            input=data, capture_output=True, check=True, env=env,
        ).stdout.decode().strip()  # fmt: skip

    plumb("read-tree", tip)
    for path, data in files.items():
        oid = plumb("hash-object", "-w", "--stdin", data=data)
        plumb("update-index", "--add", "--cacheinfo", f"100644,{oid},{path}")
    tree = plumb("write-tree")
    commit = plumb("commit-tree", tree, "-p", tip, "-m", message)
    plumb("update-ref", "refs/heads/main", commit, tip)
    (vault / "scratch-index").unlink()
    return commit


def test_a_version_whose_bytes_disagree_with_its_record_is_named(tmp_path: Path) -> None:
    # git finds nothing wrong here: every object is sound. Only the SHA-256 that
    # record.json gives, compared with the bytes stored beside it, tells.
    vault = make_vault(tmp_path / "vault", tmp_path)
    folder = doc_dir("DOC-000001")
    record = json.loads(git(vault, "show", f"main:{folder}/record.json"))
    content = git(vault, "show", f"main:{folder}/{CONTENT}").encode()
    swapped = content.replace(b"91%", b"19%")
    assert swapped != content and len(swapped) == len(content) == record["size"]
    when = "2026-11-30T12:00:00.000000+00:00"
    record.update(version=2, action="revise", reason="periodic review", recorded_at=when)
    commit_tree_with(
        vault,
        {
            f"{folder}/{CONTENT}": swapped,
            f"{folder}/text": swapped,
            f"{folder}/record.json": json.dumps(record, indent=1, sort_keys=True).encode(),
        },
        "revise DOC-000001 v2: BR-0001\n\nAction: revise\nDocument: DOC-000001\nVersion: 2\n"
        f"Actor: qa.tester\nReason: periodic review\nRecorded-At: {when}\n",
    )
    assert ok(vault, "history", "DOC-000001")[-1]["version"] == 2  # a valid commit

    code, found = problems(vault)

    assert code == 3, found
    assert len(found) == 1, found
    assert found[0].startswith("DOC-000001 v2 (commit ")
    assert (
        f"content SHA-256 is {hashlib.sha256(swapped).hexdigest()}, recorded {record['sha256']}"
        in found[0]
    )


# -- verify compares the index with history -------------------------------------------------


def test_content_changed_without_a_new_version_is_named(tmp_path: Path) -> None:
    # A later commit rewrites a document's bytes and leaves record.json alone: `get`
    # still serves the recorded version's bytes, but the branch (what a clone or a
    # backup takes) holds bytes nobody recorded.
    vault = make_vault(tmp_path / "vault", tmp_path)
    folder = doc_dir("DOC-000002")
    tampered = commit_tree_with(
        vault, {f"{folder}/{CONTENT}": b"Batch record L-0002 viability 99%"}, "tidy up\n"
    )
    code, found = problems(vault)
    assert code == 3
    assert found == [
        f"DOC-000002: its content was changed in commit {tampered[:12]} without a new version; "
        "the recorded bytes are those of its last version"
    ]


def remove_index_entry(vault: Path, engine: str, doc_id: str, version: int) -> None:
    """Delete one version from the index through its engine, leaving STATE.json as is."""
    from atmpvault.indexer.engines import open_engine

    eng: Any = open_engine(engine, vault / "index" / engine, create=False)
    key = f"{doc_id}@{version}"
    writer = eng.index.writer()
    if engine == "tantivy":
        writer.delete_documents_by_term("key", key)
        writer.commit()
        writer.wait_merging_threads()
    else:
        writer.delete_by_term("key", key)
        writer.commit()
    eng.close()


@pytest.mark.parametrize("engine", ["tantivy", "whoosh"])
def test_an_index_entry_removed_is_named(tmp_path: Path, engine: str) -> None:
    vault = make_vault(tmp_path / "vault", tmp_path, engine)
    assert problems(vault) == (0, [])
    remove_index_entry(vault, engine, "DOC-000002", 1)
    assert ok(vault, "search", "L-0002")["hits"] == []  # the index really lost it

    code, found = problems(vault)

    assert (code, found) == (3, ["index is missing DOC-000002 v1"])


@pytest.mark.parametrize("engine", ["tantivy", "whoosh"])
def test_an_index_entry_with_no_version_behind_it_is_named(tmp_path: Path, engine: str) -> None:
    vault = make_vault(tmp_path / "vault", tmp_path, engine)
    settings = Settings(vault=vault, user="qa.tester", lock_timeout=10)
    with Vault.open(settings, domains()) as opened:
        index = opened.search_projection.index
        stray = index.fetch("DOC-000002", 1)
        assert stray is not None
        index.add([replace(stray, id="DOC-000009")])
        index.commit(str(index.last_commit()))
    assert sorted(h["id"] for h in ok(vault, "search", "L-0002")["hits"]) == [
        "DOC-000002",
        "DOC-000009",
    ]  # equal scores: in the engine's order

    code, found = problems(vault)

    assert (code, found) == (3, ["index has DOC-000009 v1, which is not in the repository"])


# -- verify names every kind of damage at once, each once -----------------------------------


def test_a_sound_history_of_several_kinds_and_revisions_verifies_clean(tmp_path: Path) -> None:
    # In-process, so a mutation tool sees it: the rows history gives (versions, latest
    # flags, audit items and references) must equal the catalog's exactly.
    vault = make_vault(tmp_path / "vault", tmp_path)
    src = write(tmp_path / "src" / "BR-0002-r2.txt", "Batch record L-0002 viability 95%")
    ok(vault, "add", str(src), "--id", "DOC-000002", "--reason", "periodic review")
    ok(vault, "app", "new", "ind", "012345", "--program", "CART-19")
    ok(vault, "event", "add", "IND-012345", "ind-effective", "--on", "2022-01-10")
    ok(vault, "search", "viability")

    assert problems(vault) == (0, [])


def test_git_damage_and_a_damaged_catalog_file_are_all_named(tmp_path: Path) -> None:
    # A record.json blob damaged in a commit neither projection has read, and two
    # entries of an index of the catalog file changed: git's lines, the damaged object
    # (once, with its record), every line of SQLite's integrity check and both
    # projections that cannot catch up are all named; nothing about the damaged
    # version's rows is.
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    for n in range(1, 4):
        add(vault, tmp_path / f"d{n}.txt", f"sterility viability report {n}\n", f"SOP {n}")
    assert run(vault, "search", "sterility").exit_code == 0
    shas = [sha256_of(vault, doc_id) for doc_id in ("DOC-000002", "DOC-000003")]
    oid = behind_with_damage(vault, tmp_path, "record.json")
    for sha in shas:
        damage_sha256_index(vault, sha)
    sqlite_lines = sqlite_damage(f"sqlite:///{vault / 'catalog.sqlite'}")
    assert len(sqlite_lines) >= 2  # SQLite itself names each damaged entry

    code, found = problems(vault)

    assert code == 3
    assert any(p.startswith("git fsck: ") and oid in p for p in found), found
    damaged = [p for p in found if p.startswith("damaged object ") and oid in p]
    assert len(damaged) == 1 and "document DOC-000004" in damaged[0], found
    assert [p for p in found if p.startswith("catalog integrity check: ")] == [
        f"catalog integrity check: {line}" for line in sqlite_lines
    ]
    for name in ("catalog", "index"):
        assert any(
            p.startswith(f"{name} cannot be brought up to date: ") and oid in p for p in found
        ), found
    assert not [p for p in found if "DOC-000004 v" in p], found
    assert not [p for p in found if any(f"DOC-00000{n}" in p for n in (1, 2, 3))], found


def test_a_damaged_object_git_fsck_names_only_by_pack_offset_is_named_with_its_record(
    tmp_path: Path,
) -> None:
    # git fsck reports a damaged packed object as "cannot unpack <id> from <pack>",
    # which names no use of it; the replay that fails to read it names it, once, with
    # the record it belongs to.
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    for n in range(1, 4):
        add(vault, tmp_path / f"d{n}.txt", f"sterility viability report {n}\n", f"SOP {n}")
    git(vault, "repack", "-a", "-d", "-q")
    oid = git(vault, "rev-parse", f"refs/heads/main:{doc_dir('DOC-000002')}/record.json")
    pack = next((vault / "repo.git" / "objects" / "pack").glob("*.pack"))
    listing = git(vault, "verify-pack", "-v", str(pack.with_suffix(".idx")))
    size, start = next(
        (int(f[3]), int(f[4])) for f in map(str.split, listing.splitlines()) if f[0] == oid
    )
    flip_byte(pack, start + size - 3)  # in the zlib checksum of its stored bytes

    code, found = problems(vault)

    assert code == 3
    damaged = [p for p in found if p.startswith("damaged object ") and oid in p]
    assert len(damaged) == 1 and damaged[0].endswith("(document DOC-000002)"), found


# -- import stays inside what it was given --------------------------------------------------


def test_a_manifest_path_through_a_symbolic_link_out_of_its_folder_is_refused(
    vault_path: Path, tmp_path: Path
) -> None:
    legacy = tmp_path / "legacy"
    write(legacy / "BR-0042.txt", "batch record L-0042")
    secret = write(tmp_path / "elsewhere" / "BR-0099.txt", "outside the manifest's folder")
    (legacy / "linked-folder").symlink_to(secret.parent, target_is_directory=True)
    (legacy / "link.txt").symlink_to(secret)
    rows = ["path", "BR-0042.txt", "linked-folder/BR-0099.txt", "link.txt"]
    manifest = write(legacy / "manifest.csv", "\n".join(rows) + "\n")

    result = run(vault_path, "import", "--manifest", str(manifest), *ARGS, "--json")

    assert result.exit_code == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["imported"] == 1
    assert summary["refused"] == [
        {
            "path": "linked-folder/BR-0099.txt",
            "error": "manifest.csv line 3: path 'linked-folder/BR-0099.txt' "
            "leads outside the manifest's folder",
        },
        {
            "path": "link.txt",
            "error": "manifest.csv line 4: path 'link.txt' leads outside the manifest's folder",
        },
    ]
    assert [d["filename"] for d in ok(vault_path, "ls")] == ["BR-0042.txt"]


def test_a_manifest_import_records_where_each_file_was_and_names_refusals_by_line(
    vault_path: Path, tmp_path: Path
) -> None:
    legacy = tmp_path / "legacy"
    write(legacy / "records" / "BR-0042.txt", "batch record L-0042")
    write(legacy / "copy-of-BR-0042.txt", "batch record L-0042")
    rows = ["path", "records/BR-0042.txt", "copy-of-BR-0042.txt"]
    manifest = write(legacy / "manifest.csv", "\n".join(rows) + "\n")

    result = run(vault_path, "import", "--manifest", str(manifest), *ARGS, "--json")

    assert result.exit_code == 1, result.stderr
    summary = json.loads(result.stdout)
    assert summary["refused"] == [
        {
            "path": str(legacy / "copy-of-BR-0042.txt"),
            "error": "manifest.csv line 3: identical bytes are already archived as "
            "DOC-000001 v1 (BR-0042.txt); --allow-duplicate archives them anyway",
        }
    ]
    assert [(d["id"], d["source_path"]) for d in ok(vault_path, "ls")] == [
        ("DOC-000001", "records/BR-0042.txt")
    ]


# -- the withdrawn status reaches the index -------------------------------------------------


def test_search_by_status_finds_a_withdrawn_document_and_only_it(
    vault_path: Path, tmp_path: Path
) -> None:
    for n in (1, 2):
        src = write(tmp_path / f"BR-{n:04d}.txt", f"Batch record L-{n:04d} viability")
        ok(vault_path, "add", str(src), *ARGS)
    ok(vault_path, "withdraw", "DOC-000002", "--reason", "entered against the wrong lot")

    for _ in ("as written", "after a rebuild"):
        withdrawn = ok(vault_path, "search", "status:withdrawn")["hits"]
        assert [(h["id"], h["version"], h["status"]) for h in withdrawn] == [
            ("DOC-000002", 2, "withdrawn")
        ]
        active = ok(vault_path, "search", "status:active")["hits"]
        assert [(h["id"], h["status"]) for h in active] == [("DOC-000001", "active")]
        text = run(vault_path, "search", "viability")
        assert "DOC-000002 v2  [WITHDRAWN]" in text.stdout
        ok(vault_path, "rebuild")


def test_a_document_put_in_a_sequence_is_found_by_its_application_and_sequence(
    vault_path: Path, tmp_path: Path
) -> None:
    # The version was indexed before it was put in the package: only the re-indexing
    # of versions whose tags changed makes it findable by them.
    for n in (1, 2):
        src = write(tmp_path / f"BR-{n:04d}.txt", f"Batch record L-{n:04d} viability")
        ok(vault_path, "add", str(src), *ARGS)
    ok(vault_path, "app", "new", "bla", "125123", "--program", "CART-19")
    ok(vault_path, "package", "new", "BLA-125123", "--sequence", "0001", "--type", "pas")
    assert ok(vault_path, "search", "app:BLA-125123")["hits"] == []

    ok(vault_path, "package", "add", "BLA-125123", "0001", "DOC-000002", "--section", "m3/32p")

    for query in ("app:BLA-125123", "sequence:0001", "viability app:BLA-125123"):
        hits = ok(vault_path, "search", query)["hits"]
        assert [(h["id"], h["version"]) for h in hits] == [("DOC-000002", 1)], query


# -- yearly reports: the cycle of today's anniversary, and a window reaching back -----------


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        # every cycle begun by today stays owed until closed, and the next one is listed
        ("2026-01-09", [(1, "2023-03-11"), (2, "2024-03-10"), (3, "2025-03-11"),
                        (4, "2026-03-11")]),
        ("2026-01-10", [(1, "2023-03-11"), (2, "2024-03-10"), (3, "2025-03-11"),
                        (4, "2026-03-11"), (5, "2027-03-11")]),  # the anniversary itself
        ("2026-01-11", [(1, "2023-03-11"), (2, "2024-03-10"), (3, "2025-03-11"),
                        (4, "2026-03-11"), (5, "2027-03-11")]),
    ],
)  # fmt: skip
def test_the_current_annual_report_starts_on_the_anniversary(
    today: str, expected: list[tuple[int, str]]
) -> None:
    # 21 CFR 312.33: the annual report is due within 60 days of the anniversary of the
    # IND going into effect; on the anniversary itself that cycle is the current one.
    found = derive(application(), [event(1, "ind-effective", "2022-01-10")], RULES, D(today))
    assert [(m.cycle, m.due.isoformat()) for m in found if m.rule == "IND_ANNUAL"] == expected


@pytest.mark.parametrize("end", ["2026-12-31", "2025-03-11", "2025-03-10"])
def test_a_window_reaching_back_lists_past_annual_reports_due_inside_it(end: str) -> None:
    # Every cycle begun by today (a report stays owed until closed) and the next one are
    # derived whatever the window; the calendar filters by due date (test below).
    expected = ["2023-03-11", "2024-03-10", "2025-03-11", "2026-03-11", "2027-03-11"]
    found = derive(
        application(),
        [event(1, "ind-effective", "2022-01-10")],
        RULES,
        D("2026-03-01"),
        start=D("2024-03-10"),  # the due date of cycle 2 exactly
        end=D(end),
    )
    assert due_dates(found, "IND_ANNUAL") == expected


def test_calendar_from_a_past_date_lists_the_annual_reports_due_since(vault_path: Path) -> None:
    ok(vault_path, "app", "new", "ind", "012345", "--program", "CART-19")
    ok(vault_path, "event", "add", "IND-012345", "ind-effective", "--on", "2022-01-10")
    window = ("--today", "2026-03-01", "--from", "2024-03-10", "--to", "2026-12-31")

    rows = ok(vault_path, "calendar", *window)

    assert [(m["rule"], m["cycle"], m["due"]) for m in rows] == [
        ("IND_ANNUAL", 2, "2024-03-10"),
        ("IND_ANNUAL", 3, "2025-03-11"),
        ("IND_ANNUAL", 4, "2026-03-11"),
    ]


def test_app_show_lists_its_own_open_milestones_only(vault_path: Path) -> None:
    ok(vault_path, "app", "new", "ind", "012345", "--program", "CART-19")
    ok(vault_path, "app", "new", "bla", "125123", "--program", "CART-19")
    ok(vault_path, "event", "add", "IND-012345", "ind-received", "--on", "2026-01-05")
    ok(vault_path, "event", "add", "IND-012345", "fatal-safety-case", "--on", "2026-01-20")
    ok(vault_path, "event", "add", "BLA-125123", "pas-received", "--on", "2026-01-20")

    shown = ok(vault_path, "app", "show", "IND-012345", "--today", "2026-02-04")

    # Open: due today or later, or an obligation past due; none of the BLA's.
    assert [(m["app"], m["rule"], m["due"]) for m in shown["milestones"]] == [
        ("IND-012345", "SAFETY_7D", "2026-01-27"),
        ("IND-012345", "IND_EFFECTIVE", "2026-02-04"),
        ("IND-012345", "SAFETY_15D", "2026-02-04"),
        ("IND-012345", "IND_ANNUAL", "2027-04-05"),
    ]


# -- verify compares the audit trail's references and every version's latest flag ----------


def sequence_vault(path: Path, tmp_path: Path) -> Path:
    """A document put in a sequence (an audit reference) and an event corrected (two
    versions of a generic record): verified clean first."""
    from tests.test_packages import pdf

    assert run(path, "init").exit_code == 0
    src = write(tmp_path / "src" / "cover.pdf", pdf("Cover letter"))
    doc = ok(path, "add", str(src), *ARGS)["id"]
    ok(path, "app", "new", "ind", "012345", "--program", "CART-19")
    ok(path, "package", "new", "IND-012345", "--sequence", "0000", "--type", "original")
    ok(path, "package", "add", "IND-012345", "0000", doc, "--section", "m1/us")
    ok(path, "event", "add", "IND-012345", "ind-received", "--on", "2025-01-06")
    ok(path, "event", "correct", "EV-000001", "--on", "2025-01-07", "--reason", "letter date")
    assert problems(path) == (0, [])
    return path


def test_an_audit_reference_removed_or_changed_is_named(tmp_path: Path) -> None:
    vault = sequence_vault(tmp_path / "vault", tmp_path)
    with sqlite3.connect(vault / "catalog.sqlite") as conn:
        [(seq,)] = conn.execute("SELECT seq FROM audit_refs").fetchall()
    conn.close()
    edit_catalog(vault, f"UPDATE audit_refs SET version = 9 WHERE seq = {seq}")
    assert problems(vault) == (3, [
        f"catalog audit reference #{seq} document DOC-000001 is not what the repository recorded"
    ])  # fmt: skip
    edit_catalog(vault, f"DELETE FROM audit_refs WHERE seq = {seq}")
    assert problems(vault) == (
        3,
        [f"catalog is missing audit reference #{seq} document DOC-000001"],
    )


def test_an_earlier_version_marked_latest_is_named(tmp_path: Path) -> None:
    vault = sequence_vault(tmp_path / "vault", tmp_path)
    edit_catalog(vault, "UPDATE records SET latest = 1 WHERE kind = 'event' AND version = 1")
    code, found = problems(vault)
    assert code == 3
    # The flag itself, and what the calendar projection made of two "latest" versions.
    assert found[-1] == (
        "catalog record row event EV-000001 v1 differs from the repository: latest is True, "
        "repository has False"
    )
    assert all("EV-000001" in p for p in found), found
