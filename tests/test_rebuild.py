"""A `git clone --bare` of the repository plus `rebuild` is the whole vault again."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, run

TABLES = ("versions", "documents", "catalog_state")


def cli(vault: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATMPVAULT_")}
    env["ATMPVAULT_USER"] = "qa.tester"
    return subprocess.run(
        [*CLI, "--vault", str(vault), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def ok(vault: Path, *args: str) -> str:
    result = run(vault, *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def dump(vault: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every catalog table, sorted, nothing excluded."""
    conn = sqlite3.connect(vault / "catalog.sqlite")
    try:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}
    finally:
        conn.close()


def clone(source: Path, target: Path) -> Path:
    target.mkdir()
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(source / "repo.git"), str(target / "repo.git")],
        check=True,
    )
    return target


@pytest.fixture
def original(tmp_path: Path) -> Path:
    """A vault with two programs, lots, metadata, a revision and a withdrawal."""
    vault = tmp_path / "original"
    ok(vault, "init")
    files = tmp_path / "files"
    files.mkdir()
    specs = [
        ("CART-19", "batch-record", "L-0042", "Executed batch record L-0042", ["site=PHL"]),
        ("CART-19", "deviation-package", "L-0042", "DEV-0007 package", []),
        ("AAV9-SMA", "sop", None, "Vector thaw SOP", ["owner=qa"]),
        ("AAV9-SMA", "certificate-of-analysis", "L-0100", None, []),
    ]
    for n, (program, doc_type, lot, title, meta) in enumerate(specs, start=1):
        src = files / f"doc-{n}.bin"
        src.write_bytes(bytes(range(256)) * n + f"document {n}\n".encode())
        args = ["add", str(src), "--program", program, "--type", doc_type]
        args += ["--lot", lot] if lot else []
        args += ["--title", title] if title else []
        for pair in meta:
            args += ["--meta", pair]
        ok(vault, *args)
    revised = files / "doc-1-r2.bin"
    revised.write_bytes(b"corrected batch record\n" * 100)
    ok(
        vault,
        "add",
        str(revised),
        "--id",
        "DOC-000001",
        "--reason",
        "QA review corrections",
        "--meta",
        "reviewed=yes",
        "--title",
        "Executed batch record L-0042 (corrected)",
    )
    ok(vault, "withdraw", "DOC-000003", "--reason", "superseded by SOP rev 4")
    return vault


def answers(vault: Path) -> dict[str, object]:
    """Everything a user can ask the vault, as JSON and bytes."""
    listed = json.loads(ok(vault, "ls", "--json"))
    found: dict[str, object] = {
        "ls": listed,
        "ls --program": json.loads(ok(vault, "ls", "--program", "CART-19", "--json")),
        "ls --type": json.loads(ok(vault, "ls", "--type", "sop", "--json")),
        "ls --lot": json.loads(ok(vault, "ls", "--lot", "L-0042", "--json")),
        "log": json.loads(ok(vault, "log", "--json")),
    }
    first = min(v["recorded_at"] for v in listed)
    found["ls --as-of"] = json.loads(ok(vault, "ls", "--as-of", first, "--json"))
    for doc in listed:
        doc_id = doc["id"]
        history = json.loads(ok(vault, "history", doc_id, "--json"))
        found[f"history {doc_id}"] = history
        found[f"show {doc_id}"] = json.loads(ok(vault, "show", doc_id, "--json"))
        for entry in history:
            number = str(entry["version"])
            found[f"show {doc_id} v{number}"] = json.loads(
                ok(vault, "show", doc_id, "--version", number, "--json")
            )
            found[f"show {doc_id} as-of v{number}"] = json.loads(
                ok(vault, "show", doc_id, "--as-of", entry["recorded_at"], "--json")
            )
            found[f"get {doc_id} v{number}"] = run(
                vault, "get", doc_id, "--version", number
            ).stdout_bytes
    return found


def test_a_bare_clone_rebuilt_answers_like_the_original(original: Path, tmp_path: Path) -> None:
    copy = clone(original, tmp_path / "copy")

    result = cli(copy, "rebuild", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["versions"] == 6
    assert (
        report["commit"]
        == subprocess.run(
            ["git", f"--git-dir={original / 'repo.git'}", "rev-parse", "refs/heads/main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    want, got = answers(original), answers(copy)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], key
    verified = cli(copy, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_rebuild_makes_the_same_catalog_as_incremental_catch_up(
    original: Path, tmp_path: Path
) -> None:
    incremental = dump(original)  # applied write by write as the vault was used
    caught_up = clone(original, tmp_path / "caught-up")
    ok(caught_up, "ls")  # opening replays every commit into an empty catalog
    rebuilt = clone(original, tmp_path / "rebuilt")
    ok(rebuilt, "rebuild")

    assert dump(caught_up) == incremental
    assert dump(rebuilt) == incremental
    ok(original, "rebuild")
    assert dump(original) == incremental


def test_rebuild_is_idempotent(original: Path, tmp_path: Path) -> None:
    copy = clone(original, tmp_path / "copy")
    ok(copy, "rebuild")
    first = dump(copy)
    ok(copy, "rebuild")
    assert dump(copy) == first
    ok(copy, "rebuild")
    assert dump(copy) == first == dump(original)


def test_rebuild_repairs_an_edited_catalog(original: Path) -> None:
    before = dump(original)
    conn = sqlite3.connect(original / "catalog.sqlite")
    with conn:
        conn.execute("UPDATE versions SET title = 'x', sha256 = 'y' WHERE doc_id = 'DOC-000002'")
        conn.execute("DELETE FROM versions WHERE doc_id = 'DOC-000004'")
    conn.close()
    assert run(original, "verify").exit_code == 3

    ok(original, "rebuild")

    assert dump(original) == before
    assert run(original, "verify").exit_code == 0


def test_rebuild_repairs_a_catalog_that_forgot_its_commit(original: Path) -> None:
    # Rows present, state row gone: catching up would replay what is already there.
    before = dump(original)
    conn = sqlite3.connect(original / "catalog.sqlite")
    with conn:
        conn.execute("DELETE FROM catalog_state")
    conn.close()

    result = run(original, "rebuild")

    assert result.exit_code == 0, result.stderr
    assert dump(original) == before


def test_rebuild_replaces_a_catalog_from_another_history(original: Path, tmp_path: Path) -> None:
    # The catch-up refuses a catalog built from commits this repository does not have
    # and tells the user to run rebuild; rebuild must then work.
    other = tmp_path / "other"
    ok(other, "init")
    src = tmp_path / "other.bin"
    src.write_bytes(b"another vault's document\n")
    ok(other, "add", str(src), "--program", "X-1", "--type", "sop")
    before = dump(original)
    for suffix in ("", "-wal", "-shm"):
        (original / f"catalog.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copy(other / "catalog.sqlite", original / "catalog.sqlite")

    refused = run(original, "ls")
    assert refused.exit_code == 3
    assert "rebuild" in refused.stderr

    result = run(original, "rebuild")

    assert result.exit_code == 0, result.stderr
    assert dump(original) == before
