"""Reading the branch's history oldest first, a chunk of commits at a time.

`git log --reverse` walks the whole history before it prints the first commit and keeps
every commit it walked (139 MB at 30,000 commits, growing with the archive). Here
`git rev-list --reverse` lists the commits (an id each), and `git log --no-walk` shows
them a chunk at a time, so what a replay (catch-up, rebuild, verify) holds does not
grow with the history. A damaged object is found here too, with where history uses it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from atmpvault.repository.git import LIMITS, REF, RepositoryError, parse_trailers

FIELD = "\x1f"
RECORD = "\x1e"
CHUNK = 1000  # commits shown by one `git log --no-walk`
# How git fsck names an object that is damaged (not one that merely points at it).
_DAMAGED_RE = re.compile(
    r"missing (?:blob|tree|commit|tag) ([0-9a-f]{40})"
    r"|([0-9a-f]{40}): object corrupt or missing"
    r"|(?:hash|sha1) mismatch for .*\(expected ([0-9a-f]{40})\)"
    r"|(?:blob|tree|commit|tag) ([0-9a-f]{40}): (?:object|hash|sha1)"
)


@dataclass(frozen=True)
class CommitInfo:
    """A commit read back from history, with its trailers parsed."""

    sha: str
    time: int
    message: str
    trailers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Damage:
    """A damaged object and where the branch's history uses it (empty: nowhere)."""

    oid: str
    problem: str
    places: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (commit, path, commit's paths)


def log(
    repo: Path, since: str | None, tip: str, with_paths: bool
) -> Iterator[tuple[CommitInfo, tuple[str, ...]]]:
    """Commits after `since` up to `tip`, oldest first, with the paths each changed."""
    span = f"{since}..{tip}" if since else tip
    revs = subprocess.Popen(
        ["git", f"--git-dir={repo}", *LIMITS, "rev-list", "--first-parent", "--reverse", span],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert revs.stdout is not None
    try:
        shas = (line.strip() for line in revs.stdout)
        while chunk := list(islice(shas, CHUNK)):
            yield from _show(repo, chunk, with_paths)
    finally:
        revs.stdout.close()
        err = revs.stderr.read().decode("utf-8", "replace") if revs.stderr else ""
        code = revs.wait()
    if code != 0:
        raise RepositoryError(f"git rev-list failed: {err.strip()}")


def _show(
    repo: Path, shas: list[bytes], with_paths: bool
) -> Iterator[tuple[CommitInfo, tuple[str, ...]]]:
    paths = ["--no-renames", "--name-only"] if with_paths else []
    result = subprocess.run(
        [
            "git", f"--git-dir={repo}", *LIMITS, "-c", "core.quotePath=false", "log",
            "--no-walk=unsorted", "--stdin", *paths,
            f"--format={RECORD}%H{FIELD}%ct{FIELD}%B{FIELD}",
        ],
        input=b"\n".join(shas) + b"\n",
        capture_output=True,
    )  # fmt: skip
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip()
        raise RepositoryError(f"git log failed: {err}")
    for entry in result.stdout.decode("utf-8", "replace").split(RECORD):
        if entry:
            yield _commit_paths(entry)


def _commit_info(entry: str) -> CommitInfo:
    entry = entry.lstrip("\n")
    sha, time, message = entry.split(FIELD, 2)
    return CommitInfo(sha=sha, time=int(time), message=message, trailers=parse_trailers(message))


def _commit_paths(entry: str) -> tuple[CommitInfo, tuple[str, ...]]:
    head, _, names = entry.rpartition(FIELD)
    paths = tuple(line for line in names.splitlines() if line)
    return _commit_info(head), paths


def places(repo: Path, oids: set[str]) -> dict[str, list[tuple[str, str, tuple[str, ...]]]]:
    """Where each object was written on the branch: (commit, path, that commit's paths)."""
    found: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {}
    result = subprocess.run(
        [
            "git", f"--git-dir={repo}", *LIMITS, "-c", "core.quotePath=false", "log",
            "--first-parent", "--no-renames", "--raw", "--no-abbrev", "-z",
            f"--format={RECORD}%H", REF,
        ],
        capture_output=True,
    )  # fmt: skip
    for entry in result.stdout.decode("utf-8", "replace").split(RECORD):
        fields = [f.strip("\n") for f in entry.split("\0")]
        sha, rest = fields[0], [f for f in fields[1:] if f]
        changed = [
            (meta.split()[3], name)
            for meta, name in zip(rest[::2], rest[1::2], strict=False)
            if meta.startswith(":") and len(meta.split()) > 3
        ]
        paths = tuple(name for _oid, name in changed)
        for oid, name in changed:
            if oid in oids:
                found.setdefault(oid, []).append((sha, name, paths))
        if sha in oids:
            found.setdefault(sha, []).append((sha, "", paths))
    return found


def damage(repo: Path, fsck: list[str], has_history: bool) -> list[Damage]:
    """Every object git fsck's lines name as damaged, and where history uses it."""
    oids: dict[str, str] = {}
    for line in fsck:
        for match in _DAMAGED_RE.finditer(line):
            oid = next(g for g in match.groups() if g)
            if oid not in oids or "corrupt" in line:  # the more telling of git's lines
                oids[oid] = line.removeprefix("error: ")
    if not oids:
        return []
    found = places(repo, set(oids)) if has_history else {}
    return [Damage(oid, problem, tuple(found.get(oid, ()))) for oid, problem in oids.items()]
