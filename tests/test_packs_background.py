"""Pack roll-ups run in the background: one at a time per repository (an flock the git
process holds, even past a writer killed with SIGKILL), reaped by the next write or
waited for when the store finishes; a failed one is reported then, never as a refused
write; fsck waits for one that runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.config import Settings
from atmpvault.errors import RepositoryFailure
from atmpvault.repository import packs
from atmpvault.repository.fastimport import NewCommit
from atmpvault.repository.git import GitStore, RepositoryError

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def write(store: GitStore, n: int) -> None:
    new = NewCommit({f"docs/{n}/content": os.urandom(2000)}, f"commit {n}", "qa", WHEN)
    store.commit_many([new], store.head())


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitStore:
    monkeypatch.setattr(packs, "PACK_LIMIT", 2)
    return GitStore.create(tmp_path / "repo.git")


def test_a_roll_up_is_started_after_a_write_and_reaped_by_the_store(store: GitStore) -> None:
    for n in range(3):
        write(store, n)
    assert store._rollup is not None  # started, not waited for

    store.finish_packing()

    assert store._rollup is None
    assert len(packs.rolling_packs(store.path)) < 3
    assert store.fsck() == []


def test_no_roll_up_starts_while_another_process_runs_one(store: GitStore) -> None:
    held = packs._lock(store.path, wait=False)  # as a roll-up of another process holds it
    assert held is not None
    try:
        for n in range(4):
            write(store, n)
        assert store._rollup is None
        assert len(packs.rolling_packs(store.path)) == 4
    finally:
        os.close(held)
    write(store, 4)
    assert store._rollup is not None
    store.finish_packing()


def test_a_failed_roll_up_refuses_no_write_and_is_reported_when_finishing(
    store: GitStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packs, "REPACK", ("repack", "--no-such-option"))
    for n in range(5):
        write(store, n)  # the commits are in: no error here

    with pytest.raises(RepositoryError, match="git repack failed"):
        store.finish_packing()
    assert store.count() == 5
    store.finish_packing()  # reported once


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from atmpvault.repository import packs
rollup = packs.start(Path(sys.argv[1]))
assert rollup is not None
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_roll_up_outliving_a_killed_writer_is_waited_for(store: GitStore) -> None:
    for n in range(6):
        write(store, n)
    store.finish_packing()
    for n in range(6, 12):
        write(store, n)
    store.finish_packing()

    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(store.path)], check=False)

    assert killed.returncode == -signal.SIGKILL
    assert store.fsck() == []  # after the orphaned roll-up, if it still ran
    held = packs._lock(store.path, wait=False)
    assert held is not None
    os.close(held)
    assert store.count() == 12


def test_a_vault_waits_for_its_roll_up_when_it_closes_and_reports_its_failure(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packs, "PACK_LIMIT", 0)  # the first write starts one
    monkeypatch.setattr(packs, "REPACK", ("repack", "--no-such-option"))

    with pytest.raises(RepositoryFailure, match="git repack failed"):
        with Vault.create(settings, domains()):
            pass  # the vault's first commit is written (and a roll-up started) on create

    assert GitStore(settings.vault / "repo.git").count() == 1
    held = packs._lock(settings.vault / "repo.git", wait=False)  # none running any more
    assert held is not None
    os.close(held)
