"""Crash consistency with real processes: a writer killed anywhere loses nothing it reported.

Each test runs the real CLI in a child process and kills it with SIGKILL, at a named
crash point (ATMPVAULT_FAULT) or after a random delay, then checks that the vault
opens, the catalog caught up with the repository, `verify` is clean and every add that
printed its JSON is still retrievable byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLI, cli_env, run

TIMEOUT = 60


def cli(vault: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """Run the real `atmpvault` in a child process; it must finish within TIMEOUT."""
    return subprocess.run(
        [*CLI, "--vault", str(vault), *args],
        capture_output=True,
        env=cli_env(**env),
        timeout=TIMEOUT,
        check=False,
    )


def head(vault: Path) -> str:
    return subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "rev-parse", "refs/heads/main"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()


def catalog_commit(vault: Path) -> str | None:
    with sqlite3.connect(vault / "catalog.sqlite") as conn:
        row = conn.execute("SELECT value FROM catalog_state WHERE key = 'last_commit'").fetchone()
    conn.close()
    return (row[0] or None) if row else None  # "": nothing applied yet


def new_file(directory: Path, name: str, rng: random.Random, size: int = 3000) -> Path:
    path = directory / name
    path.write_bytes(rng.randbytes(size))
    return path


def add_args(path: Path) -> list[str]:
    return ["add", str(path), "--program", "CART-19", "--type", "batch-record", "--json"]


def assert_retrievable(vault: Path, done: dict[str, bytes]) -> None:
    """Every (id -> bytes) reported done is listed and comes back byte-identical."""
    listed = json.loads(run(vault, "ls", "--json").stdout)
    by_id = {d["id"]: d for d in listed}
    for doc_id, data in done.items():
        assert doc_id in by_id, f"{doc_id} was reported archived but is not listed"
        got = run(vault, "get", doc_id)
        assert got.exit_code == 0, got.stderr
        assert got.stdout_bytes == data, f"{doc_id} does not come back byte-identical"


def assert_verify_clean(vault: Path) -> None:
    result = cli(vault, "verify")
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, dict[str, bytes], random.Random]:
    """A vault with two documents whose adds reported success through the real CLI."""
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    rng = random.Random(20260101)
    done: dict[str, bytes] = {}
    for n in (1, 2):
        path = new_file(tmp_path, f"br-{n}.bin", rng)
        result = run(vault, *add_args(path))
        assert result.exit_code == 0, result.stderr
        done[json.loads(result.stdout)["id"]] = path.read_bytes()
    return vault, done, rng


@pytest.mark.parametrize(
    ("point", "kept"),
    [("before-commit", False), ("after-commit", True), ("after-catalog", True)],
)
def test_add_killed_at_crash_point_loses_nothing_reported(
    seeded: tuple[Path, dict[str, bytes], random.Random], tmp_path: Path, point: str, kept: bool
) -> None:
    vault, done, rng = seeded
    before = head(vault)
    path = new_file(tmp_path, "br-crash.bin", rng)

    crashed = cli(vault, *add_args(path), ATMPVAULT_FAULT=point)

    assert crashed.returncode == -signal.SIGKILL
    assert crashed.stdout == b"", "a killed add must not have reported success"
    assert (head(vault) != before) is kept

    listed = run(vault, "ls", "--json")
    assert listed.exit_code == 0, listed.stderr
    ids = [d["id"] for d in json.loads(listed.stdout)]
    # Opening the vault brought the catalog up to the repository's tip.
    assert catalog_commit(vault) == head(vault)
    if kept:
        # The commit was the point of no return: the document exists, as DOC-000003.
        assert ids == ["DOC-000001", "DOC-000002", "DOC-000003"]
        shown = json.loads(run(vault, "show", "DOC-000003", "--json").stdout)
        assert shown["version"] == 1
        assert shown["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        got = run(vault, "get", "DOC-000003")
        assert got.stdout_bytes == path.read_bytes()
        history = json.loads(run(vault, "history", "DOC-000003", "--json").stdout)
        assert [h["version"] for h in history] == [1]
    else:
        assert ids == ["DOC-000001", "DOC-000002"]
        missing = run(vault, "show", "DOC-000003", "--json")
        assert missing.exit_code == 1
        assert "no document DOC-000003" in missing.stderr
    for doc_id in done:
        assert run(vault, "show", doc_id, "--json").exit_code == 0

    assert_verify_clean(vault)
    assert_retrievable(vault, done)

    # The next add takes the next free id: nothing is reused after the crash.
    after = run(vault, *add_args(new_file(tmp_path, "br-next.bin", rng)))
    assert after.exit_code == 0, after.stderr
    assert json.loads(after.stdout)["id"] == ("DOC-000004" if kept else "DOC-000003")


def test_revision_killed_after_commit_is_kept(
    seeded: tuple[Path, dict[str, bytes], random.Random], tmp_path: Path
) -> None:
    vault, done, rng = seeded
    path = new_file(tmp_path, "br-1-r2.bin", rng)

    crashed = cli(
        vault,
        "add",
        str(path),
        "--id",
        "DOC-000001",
        "--reason",
        "QA corrections",
        "--json",
        ATMPVAULT_FAULT="after-commit",
    )

    assert crashed.returncode == -signal.SIGKILL
    shown = json.loads(run(vault, "show", "DOC-000001", "--json").stdout)
    assert (shown["version"], shown["reason"]) == (2, "QA corrections")
    listed = {d["id"]: d["version"] for d in json.loads(run(vault, "ls", "--json").stdout)}
    assert listed == {"DOC-000001": 2, "DOC-000002": 1}
    assert run(vault, "get", "DOC-000001").stdout_bytes == path.read_bytes()
    assert run(vault, "get", "DOC-000001", "--version", "1").stdout_bytes == done["DOC-000001"]
    assert_verify_clean(vault)


def test_killed_writer_does_not_leave_the_lock_stuck(
    seeded: tuple[Path, dict[str, bytes], random.Random], tmp_path: Path
) -> None:
    vault, done, rng = seeded
    # Killed inside the locked section, after its commit and before releasing the lock.
    crashed = cli(
        vault, *add_args(new_file(tmp_path, "a.bin", rng)), ATMPVAULT_FAULT="after-commit"
    )
    assert crashed.returncode == -signal.SIGKILL

    # A stuck lock would make this writer give up after 2 s with "vault is busy".
    path = new_file(tmp_path, "b.bin", rng)
    after = cli(vault, *add_args(path), ATMPVAULT_LOCK_TIMEOUT="2")

    assert after.returncode == 0, after.stderr.decode()
    assert json.loads(after.stdout)["id"] == "DOC-000004"
    done["DOC-000004"] = path.read_bytes()
    assert_retrievable(vault, done)


def lock_holders(vault: Path) -> set[int]:
    """The processes holding the vault's write lock now (Linux /proc/locks)."""
    inode = (vault / "lock").stat().st_ino
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and "->" not in fields and fields[-3].endswith(f":{inode}"):
            holders.add(int(fields[-4]))
    return holders


def wait_for_lock(vault: Path, proc: subprocess.Popen[bytes]) -> bool:
    """Wait until `proc` holds the write lock (True), or has ended without it (False)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.pid in lock_holders(vault):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.0005)
    raise AssertionError("the writer never took the write lock")


def start_add(vault: Path, path: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "--vault", str(vault), *add_args(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(ATMPVAULT_LOCK_TIMEOUT="20", **env),
        start_new_session=True,
    )


def test_adds_killed_at_random_moments_lose_nothing_reported(tmp_path: Path) -> None:
    """Kills at random moments inside the write (the lock is seen held when they land),
    mixed with kills at each named crash point."""
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    rng = random.Random(1729)
    done: dict[str, bytes] = {}

    # How long one add holds the write lock, to aim the kills inside that window.
    path = new_file(tmp_path, "first.bin", rng)
    proc = start_add(vault, path)
    assert wait_for_lock(vault, proc)
    taken = time.monotonic()
    while proc.pid in lock_holders(vault):
        time.sleep(0.0005)
    locked = time.monotonic() - taken
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err.decode()
    done[json.loads(out)["id"]] = path.read_bytes()

    points = ["before-commit", "after-commit", "after-catalog"]
    landed = 0
    for n in range(18):
        path = new_file(tmp_path, f"doc-{n}.bin", rng, size=rng.randrange(1, 200_000))
        before = head(vault)
        if n % 3 == 2:  # a kill at a named crash point, each point in turn
            point = points[n // 3 % 3]
            proc = start_add(vault, path, ATMPVAULT_FAULT=point)
            out, err = proc.communicate(timeout=TIMEOUT)
            assert (proc.returncode, out) == (-signal.SIGKILL, b""), (point, err.decode())
            assert (head(vault) != before) is (point != "before-commit"), point
            continue
        proc = start_add(vault, path)
        assert wait_for_lock(vault, proc), proc.communicate()[1].decode()
        time.sleep(rng.uniform(0, locked * 0.8))
        mid_write = proc.pid in lock_holders(vault)
        # A power cut: the writer and any git process it started die together.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode in (0, -signal.SIGKILL), err.decode()
        if proc.returncode == 0:
            doc_id = json.loads(out)["id"]
            assert doc_id not in done, f"{doc_id} was handed out twice"
            done[doc_id] = path.read_bytes()
        elif mid_write:
            assert out == b"", "a writer killed mid-write must not have reported success"
            landed += 1
    # Most random kills must land inside the write, or this test proves little.
    assert landed >= 6, f"only {landed} of 12 random kills landed while the lock was held"

    assert_verify_clean(vault)
    assert_retrievable(vault, done)
    assert catalog_commit(vault) == head(vault)
    last = run(vault, *add_args(new_file(tmp_path, "last.bin", rng)))
    assert last.exit_code == 0, last.stderr
    assert json.loads(last.stdout)["id"] not in done


def test_a_ref_lock_left_by_a_power_cut_does_not_block_the_next_write(tmp_path: Path) -> None:
    # A power cut while git moved the branch leaves its lock files; git itself would
    # refuse every later write ("cannot lock ref 'HEAD'") until someone removed them.
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    (tmp_path / "a.bin").write_bytes(b"first batch record")
    (tmp_path / "b.bin").write_bytes(b"second batch record")
    first = run(vault, *add_args(tmp_path / "a.bin"))
    assert first.exit_code == 0, first.stderr
    repo = vault / "repo.git"
    left = [repo / "HEAD.lock", repo / "refs" / "heads" / "main.lock"]
    for lock in left:
        lock.write_text("0000000000000000000000000000000000000000\n")
    second = run(vault, *add_args(tmp_path / "b.bin"))
    assert second.exit_code == 0, second.stderr
    assert not any(lock.exists() for lock in left)
    assert [d["id"] for d in json.loads(run(vault, "ls", "--json").stdout)] == [
        json.loads(first.stdout)["id"],
        json.loads(second.stdout)["id"],
    ]
    assert_verify_clean(vault)
