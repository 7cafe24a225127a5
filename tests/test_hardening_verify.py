"""Hardening of verify, rebuild and search: damaged catalogs and objects, times, queries.

Real vaults, real git, real SQLite: a byte is changed in an index page of the catalog
or in an object a projection has not read yet, and each command must say so.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from datetime import UTC
from pathlib import Path

import pytest

from atmpvault.archive.core import values
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.records import doc_dir
from atmpvault.archive.documents.tables import DocumentCatalog
from atmpvault.archive.domains import domains
from atmpvault.config import Settings
from tests.conftest import CLI, cli_env, run
from tests.test_verify import explode_packs, flip_byte, git


def cli(vault: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A real process, with a timeout, so damage that makes git wait fails the test."""
    return subprocess.run(
        [*CLI, "--vault", str(vault), *args],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )


def add(vault: Path, src: Path, text: str, title: str) -> None:
    src.write_text(text, encoding="utf-8")
    result = run(vault, "add", str(src), "--program", "CART-19", "--type", "sop", "--title", title)
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """Three documents, catalog and index current."""
    path = tmp_path / "vault"
    assert run(path, "init").exit_code == 0
    for n in range(1, 4):
        add(path, tmp_path / f"d{n}.txt", f"sterility viability report {n}\n", f"SOP {n}")
    assert run(path, "search", "sterility").exit_code == 0  # the index catches up
    return path


# -- (2) catalog damage that reads as intact rows ---------------------------------------


def sha256_of(vault: Path, doc_id: str) -> str:
    return str(json.loads(run(vault, "show", doc_id, "--json").stdout)["sha256"])


def damage_sha256_index(vault: Path, sha: str) -> None:
    """Change one hex digit of `sha` inside the index on versions.sha256, not the table."""
    db = vault / "catalog.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    (root,) = conn.execute(
        "SELECT rootpage FROM sqlite_master WHERE type = 'index' AND tbl_name = 'versions' "
        "AND sql LIKE '%sha256%'"
    ).fetchone()
    conn.close()
    data = bytearray(db.read_bytes())
    start = (root - 1) * page_size
    page = bytes(data[start : start + page_size])
    at = page.find(sha.encode("ascii"))
    assert at >= 0, "the hash should be in the index's one page"
    offset = start + at + 10
    data[offset] = ord("0") if data[offset] != ord("0") else ord("1")
    db.write_bytes(bytes(data))


def test_damaged_catalog_index_is_named_by_verify_and_rebuild_repairs_it(vault: Path) -> None:
    sha = sha256_of(vault, "DOC-000002")
    damage_sha256_index(vault, sha)
    settings = Settings(vault=vault, user="qa.tester", lock_timeout=10)
    with Vault.open(settings, domains()) as opened:
        # The defect: rows read fine, but the lookup import relies on misses the hash.
        assert DocumentCatalog(opened.catalog).holders([sha]) == {}

    result = cli(vault, "verify")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "catalog integrity check:" in result.stdout
    assert "ix_versions_sha256" in result.stdout

    rebuilt = cli(vault, "rebuild")

    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "catalog file is damaged" in rebuilt.stderr
    assert (vault / "catalog.sqlite.damaged").is_file()
    assert cli(vault, "verify").returncode == 0
    with Vault.open(settings, domains()) as opened:
        assert set(DocumentCatalog(opened.catalog).holders([sha])) == {sha}


def test_unreadable_catalog_file_is_named_not_a_traceback(vault: Path) -> None:
    db = vault / "catalog.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db.read_bytes())
    data[100 : len(data)] = bytes(len(data) - 100)  # every page after the header zeroed
    db.write_bytes(bytes(data))

    result = cli(vault, "verify")

    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "catalog integrity check:" in result.stdout
    rebuilt = cli(vault, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert cli(vault, "verify").returncode == 0


# -- (3) a damaged object the projections have not read yet -----------------------------


def behind_with_damage(vault: Path, tmp_path: Path, name: str) -> str:
    """DOC-000004 written while catalog and index stay behind; one of its objects damaged."""
    saved = tmp_path / "saved"
    saved.mkdir()
    for item in [*vault.glob("catalog.sqlite*"), vault / "index"]:
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, saved / item.name)
    add(vault, tmp_path / "d4.txt", "sterility potency four\n", "SOP 4")
    for item in [*vault.glob("catalog.sqlite*"), vault / "index"]:
        shutil.rmtree(item) if item.is_dir() else item.unlink()
    for item in saved.iterdir():
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, vault / item.name)
    explode_packs(vault)
    oid = git(vault, "rev-parse", f"refs/heads/main:{doc_dir('DOC-000004')}/{name}")
    flip_byte(vault / "repo.git" / "objects" / oid[:2] / oid[2:])
    return oid


@pytest.mark.parametrize("name", ["text", "record.json"])
def test_damaged_object_not_yet_projected(vault: Path, tmp_path: Path, name: str) -> None:
    oid = behind_with_damage(vault, tmp_path, name)

    verified = cli(vault, "verify")

    assert verified.returncode == 3, verified.stdout + verified.stderr
    assert "Traceback" not in verified.stderr
    problems = [line for line in verified.stdout.splitlines() if line.startswith("PROBLEM")]
    assert any(
        "damaged object" in line and oid in line and "DOC-000004" in line for line in problems
    ), verified.stdout
    assert not [p for p in problems if any(d in p for d in ("DOC-000001", "DOC-000003"))]
    # Only the damage is named: the version whose record cannot be read is not also
    # reported as bytes changed without a version, or as missing from the repository.
    assert not [p for p in problems if "without a new version" in p or "has None" in p], problems

    found = cli(vault, "search", "sterility")

    assert found.returncode == 0, found.stderr
    assert "DOC-000001" in found.stdout and "DOC-000003" in found.stdout
    warnings = found.stderr.strip().splitlines()
    assert len(warnings) == 1 and "warning: the index is behind" in warnings[0]
    assert oid in warnings[0] and "DOC-000004" in warnings[0]
    catalog_before = (vault / "catalog.sqlite").read_bytes()
    state_before = (vault / "index" / "STATE.json").read_bytes()

    rebuilt = cli(vault, "rebuild")

    assert rebuilt.returncode == 3, rebuilt.stdout + rebuilt.stderr
    assert "rebuild refused, nothing changed" in rebuilt.stderr
    assert oid in rebuilt.stderr and "document DOC-000004" in rebuilt.stderr
    assert "Traceback" not in rebuilt.stderr
    assert (vault / "catalog.sqlite").read_bytes() == catalog_before
    assert (vault / "index" / "STATE.json").read_bytes() == state_before


def test_damaged_object_is_not_a_missing_file(vault: Path) -> None:
    """A blob the tree names but git cannot read is damage (exit 3), never 'absent'."""
    explode_packs(vault)
    oid = git(vault, "rev-parse", f"refs/heads/main:{doc_dir('DOC-000002')}/content")
    flip_byte(vault / "repo.git" / "objects" / oid[:2] / oid[2:])

    result = cli(vault, "get", "DOC-000002", "-o", str(vault.parent / "out.bin"))

    assert result.returncode == 3, result.stdout + result.stderr
    assert oid in result.stderr
    assert "does not exist" not in result.stderr


# -- (7) a time copied from a listing names that write ----------------------------------


def test_as_of_a_time_shown_to_the_second_finds_that_version(vault: Path, tmp_path: Path) -> None:
    add(vault, tmp_path / "d2b.txt", "sterility viability report 2, revised\n", "SOP 2")
    history = json.loads(run(vault, "history", "DOC-000003", "--json").stdout)
    stored = history[0]["recorded_at"]
    shown = stored[:19]  # what `history` prints
    assert stored > shown  # stored with microseconds

    result = run(vault, "show", "DOC-000003", "--as-of", shown, "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["version"] == 1


@pytest.mark.parametrize(
    ("typed", "end", "start"),
    [
        ("2026-03-01T08:13:38", "08:13:38.999999", "08:13:38.000000"),
        ("2026-03-01T08:13:38.46", "08:13:38.469999", "08:13:38.460000"),
        ("2026-03-01T08:13:38.460123", "08:13:38.460123", "08:13:38.460123"),
        ("2026-03-01 08:13", "08:13:59.999999", "08:13:00.000000"),
        ("2026-03-01T09:13:38+01:00", "08:13:38.999999", "08:13:38.000000"),
        ("2026-03-01", "23:59:59.999999", "00:00:00.000000"),
    ],
)
def test_a_typed_time_names_all_of_its_precision(typed: str, end: str, start: str) -> None:
    assert values.iso(values.when(typed, UTC))[11:26] == end
    assert values.iso(values.when(typed, UTC, start_of_day=True))[11:26] == start


def test_log_never_shows_two_writes_at_the_same_time() -> None:
    from atmpvault.cli.base import distinct_times

    same_second = ["2026-03-01T08:13:38.100000+00:00", "2026-03-01T08:13:38.460000+00:00"]
    assert distinct_times(same_second) == ["2026-03-01T08:13:38.100", "2026-03-01T08:13:38.460"]
    apart = ["2026-03-01T08:13:37.100000+00:00", "2026-03-01T08:13:38.460000+00:00"]
    assert distinct_times(apart) == ["2026-03-01T08:13:37", "2026-03-01T08:13:38"]


def test_log_until_a_shown_second_includes_that_write(vault: Path) -> None:
    entries = json.loads(run(vault, "log", "--json").stdout)
    last = entries[-1]["time"]

    result = run(vault, "log", "--until", last[:19], "--json")

    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == len(entries)


# -- (11) queries: depth bounded, empty refused, several words joined --------------------


@pytest.mark.parametrize("query", ["(" * 300 + "sterility" + ")" * 300, "NOT " * 2000 + "x"])
def test_deeply_nested_query_is_refused_as_bad_input(vault: Path, query: str) -> None:
    result = run(vault, "search", query)

    assert result.exit_code == 2, result.stderr
    assert "nests deeper than" in result.stderr


@pytest.mark.parametrize("args", [[], [""], ["  "]])
def test_empty_query_is_bad_input(vault: Path, args: list[str]) -> None:
    result = run(vault, "search", *args)

    assert result.exit_code == 2, result.output
    assert "query is empty" in result.stderr


def test_several_words_are_one_query(vault: Path) -> None:
    result = run(vault, "search", "viability", "report", "--json")

    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["query"] == "viability report"
    assert found["total"] == 3
