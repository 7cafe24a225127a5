"""Keeping the repository packed without ever repacking all of it.

Every `git fast-import` stream writes a pack, so packs gather; they are rolled up
geometrically (`git repack --geometric=2`), like `git gc --auto` would, in the
background (one at a time; the writer that started one waits for it before it exits).
pack-objects holds about 600 bytes per object it rewrites, so rolling the whole history
into one pack would need memory that grows with the archive (480 MB at 100,000
documents). A pack that reaches KEEP_OBJECTS objects is marked kept (a
.keep file beside it, which git honours) and left out of later roll-ups: a roll-up
never handles much more than twice that, whatever the size of the archive. Document
files are left out of the roll-ups' delta search (rollup.attributes): it cost most of
their CPU, and each object is rewritten by about four roll-ups before it is kept.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from atmpvault.repository.git import LIMITS, RepositoryError

# Loose objects in the objects/17 fan-out directory before a pack roll-up; like
# `git gc --auto`, one directory stands for all 256. 8 is about 2,000 loose objects.
LOOSE_SAMPLE_LIMIT = 8
PACK_LIMIT = 24  # packs that are not kept, before a roll-up
KEEP_OBJECTS = 40_000
KEEP_NOTE = b"atmpvault: rolled up; left out of later roll-ups to bound their memory\n"
# flock'd while a roll-up runs; not named *.lock, which GitStore.clear_stale_locks removes
ROLLUP_LOCK = "atmpvault-rollup"
REPACK = ("repack", "-d", "-q", "--geometric=2")
ATTRIBUTES = Path(__file__).with_name("rollup.attributes")  # what is not worth a delta search
_IDX_HEAD = 8 + 256 * 4  # version 2 index: magic, version, then the 256-entry fan-out


def pack_if_needed(repo: Path, running: Rollup | None = None) -> Rollup | None:
    """Start a roll-up in the background once enough loose objects or packs have gathered;
    return the roll-up running, if any. `running`, this process's last one: if it is still
    going nothing is started (one at a time); if it has ended it is reaped first."""
    if running is not None:
        if running.proc.poll() is None:
            return running
        finish(repo, running)
    try:
        loose = len(os.listdir(repo / "objects" / "17"))
    except FileNotFoundError:
        loose = 0
    if loose >= LOOSE_SAMPLE_LIMIT or len(rolling_packs(repo)) > PACK_LIMIT:
        return start(repo)
    return None


@dataclass
class Rollup:
    """A `git repack` running in the background, and where its errors go."""

    proc: subprocess.Popen[bytes]
    errors: IO[bytes]


def start(repo: Path) -> Rollup | None:
    """Roll up geometrically, in the background; None if another process's roll-up runs.

    The roll-up holds ROLLUP_LOCK (an flock, passed on to git) until it ends, even if the
    process that started it is killed: no two run at once, the packs are marked kept only
    while none runs, and fsck waits for it. Writers go on meanwhile: git lets new packs be
    written while a repack runs (it deletes only the packs it rolled up, once their objects
    are in the new one), as under `git gc --auto`.
    """
    fd = _lock(repo, wait=False)
    if fd is None:
        return None
    try:
        mark_kept(repo)  # the packs the last roll-up made, before this one reads the .keep files
        errors = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            ["git", f"--git-dir={repo}", *LIMITS, "-c", "pack.windowMemory=32m",
             "-c", "pack.deltaCacheSize=16m", "-c", f"core.attributesFile={ATTRIBUTES}",
             *REPACK],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, pass_fds=(fd,),
        )  # fmt: skip
    finally:
        os.close(fd)
    return Rollup(proc, errors)


def pack(repo: Path) -> None:
    """A roll-up, waited for (none if another process's is running)."""
    rollup = start(repo)
    if rollup is not None:
        finish(repo, rollup)


def finish(repo: Path, rollup: Rollup) -> None:
    """Wait for a roll-up to end; mark the packs that grew to KEEP_OBJECTS kept (unless
    another process's roll-up has started since); raise if git failed."""
    code = rollup.proc.wait()
    rollup.errors.seek(0)
    err = rollup.errors.read().decode("utf-8", "replace").strip()
    rollup.errors.close()
    if code != 0:
        raise RepositoryError(f"git repack failed: {err}")
    fd = _lock(repo, wait=False)
    if fd is not None:
        try:
            mark_kept(repo)
        finally:
            os.close(fd)


@contextmanager
def quiet(repo: Path) -> Iterator[None]:
    """Hold off roll-ups, waiting first for one that runs (even a killed process's)."""
    fd = _lock(repo, wait=True)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def mark_kept(repo: Path) -> None:
    """Mark the packs that reached KEEP_OBJECTS kept (only while no roll-up runs)."""
    for found in rolling_packs(repo):
        if pack_objects(found) >= KEEP_OBJECTS:
            found.with_suffix(".keep").write_bytes(KEEP_NOTE)


def _lock(repo: Path, wait: bool) -> int | None:
    """ROLLUP_LOCK, held through the returned descriptor; None if taken (and not `wait`)
    or if the repository cannot be written."""
    try:
        fd = os.open(repo / ROLLUP_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def rolling_packs(repo: Path) -> list[Path]:
    """The packs a roll-up may merge: those not marked kept."""
    folder = repo / "objects" / "pack"
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    kept = {n.removesuffix(".keep") for n in names if n.endswith(".keep")}
    return [folder / n for n in sorted(names) if n.endswith(".pack") and n[:-5] not in kept]


def pack_objects(pack_file: Path) -> int:
    """How many objects a pack holds: the last entry of its index's fan-out."""
    try:
        with pack_file.with_suffix(".idx").open("rb") as fh:
            head = fh.read(_IDX_HEAD)
    except OSError:
        return 0
    if len(head) < _IDX_HEAD or head[:4] != b"\xfftOc":
        return 0
    return int.from_bytes(head[-4:], "big")
