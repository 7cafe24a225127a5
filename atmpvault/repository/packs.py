"""Keeping the repository packed without ever repacking all of it.

Every `git fast-import` stream writes a pack, so packs gather; they are rolled up
geometrically (`git repack --geometric=2`), like `git gc --auto` would, under the
vault's lock. pack-objects holds about 600 bytes per object it rewrites, so rolling
the whole history into one pack would need memory that grows with the archive (480 MB
at 100,000 documents). A pack that reaches KEEP_OBJECTS objects is marked kept (a
.keep file beside it, which git honours) and left out of later roll-ups: a roll-up
never handles much more than twice that, whatever the size of the archive. Document
files are left out of the roll-ups' delta search (rollup.attributes): it cost most of
their CPU, and each object is rewritten by about four roll-ups before it is kept.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from atmpvault.repository.git import LIMITS, RepositoryError

# Loose objects in the objects/17 fan-out directory before a pack roll-up; like
# `git gc --auto`, one directory stands for all 256. 8 is about 2,000 loose objects.
LOOSE_SAMPLE_LIMIT = 8
PACK_LIMIT = 24  # packs that are not kept, before a roll-up
KEEP_OBJECTS = 40_000
KEEP_NOTE = b"atmpvault: rolled up; left out of later roll-ups to bound their memory\n"
ATTRIBUTES = Path(__file__).with_name("rollup.attributes")  # what is not worth a delta search
_IDX_HEAD = 8 + 256 * 4  # version 2 index: magic, version, then the 256-entry fan-out


def pack_if_needed(repo: Path) -> None:
    """Roll loose objects and packs up once enough have gathered."""
    try:
        loose = len(os.listdir(repo / "objects" / "17"))
    except FileNotFoundError:
        loose = 0
    if loose >= LOOSE_SAMPLE_LIMIT or len(rolling_packs(repo)) > PACK_LIMIT:
        pack(repo)


def pack(repo: Path) -> None:
    """Roll up geometrically, then mark the packs that grew to KEEP_OBJECTS kept."""
    result = subprocess.run(
        ["git", f"--git-dir={repo}", *LIMITS, "-c", "pack.windowMemory=32m",
         "-c", "pack.deltaCacheSize=16m", "-c", f"core.attributesFile={ATTRIBUTES}",
         "repack", "-d", "-q", "--geometric=2"],
        capture_output=True,
    )  # fmt: skip
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip()
        raise RepositoryError(f"git repack failed: {err}")
    for found in rolling_packs(repo):
        if pack_objects(found) >= KEEP_OBJECTS:
            found.with_suffix(".keep").write_bytes(KEEP_NOTE)


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
