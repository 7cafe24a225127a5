"""The shared upstream: a bare git repository on any git server, named by a URL.

A team shares one history: a bare repository on a file share, over SSH, served by `git
daemon` or a hosted git service. Its own configuration refuses anything but growth
(non-fast-forward pushes and ref deletions). A workstation's vault fetches its tip into
`refs/remotes/upstream/main`, writes its commit beside its branch, and pushes it with a
compare-and-swap on the upstream branch; its own branch moves only after the push.
Everything here runs the git command line (no GitPython), with a timeout.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from atmpvault.repository.git import BRANCH, REF, RepositoryError

UPSTREAM_REF = f"refs/remotes/upstream/{BRANCH}"
PENDING_REF = "refs/atmpvault/pending"  # a write's commit until the upstream has it
TIMEOUT = 60.0  # seconds a fetch or push may take before the upstream counts as unreachable
_RACE = ("stale info", "non-fast-forward", "fetch first", "cannot lock ref")


class UpstreamUnreachable(RepositoryError):
    """The upstream could not be reached or refused to talk; nothing was written."""

    def __init__(self, message: str, said: str = "") -> None:
        super().__init__(message)
        self.said = said  # all git printed: a push's rejection is not among its last lines


class UpstreamMoved(RepositoryError):
    """Another workstation pushed first: the write is built again on the new tip."""


def init_shared(path: Path) -> None:
    """A new, empty bare repository whose history can only grow."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise RepositoryError(f"{path} exists and is not an empty directory")
    _git(["init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(path)])
    for key, value in (
        ("receive.denyNonFastForwards", "true"),
        ("receive.denyDeletes", "true"),
        ("receive.fsckObjects", "true"),  # a corrupt object is refused at the door
        ("core.logAllRefUpdates", "always"),
        ("gc.auto", "0"),
        ("daemon.receivepack", "true"),  # `git daemon` may take pushes (its own switch too)
    ):
        _git(["--git-dir", str(path), "config", key, value])


def fetch(repo: Path, url: str) -> str | None:
    """Fetch the upstream tip into UPSTREAM_REF; the tip, or None for an empty upstream.

    The tracking ref is forced: that the upstream's history still contains ours is
    checked by the caller, which refuses loudly when it does not."""
    heads = _remote(["ls-remote", "--quiet", url, REF], repo)
    if not heads.strip():
        return None
    _remote(["fetch", "--quiet", "--no-tags", url, f"+{REF}:{UPSTREAM_REF}"], repo)
    _remote(["fetch", "--quiet", url, "+refs/tags/*:refs/tags/*"], repo)
    return _git(["--git-dir", str(repo), "rev-parse", "--verify", "-q", UPSTREAM_REF]).strip()


def push(repo: Path, url: str, commit: str, expected: str | None, tags: list[str]) -> None:
    """Make `commit` the upstream branch if it is still at `expected` (None: empty), with
    its tags, all or nothing. UpstreamMoved when another push came first."""
    lease = f"--force-with-lease={REF}:{expected or ''}"
    refs = [f"{commit}:{REF}", *(f"refs/tags/{t}:refs/tags/{t}" for t in tags)]
    try:
        _remote(["push", "--quiet", "--atomic", "--porcelain", lease, url, *refs], repo)
    except UpstreamUnreachable as exc:
        lines = exc.said.splitlines() or [str(exc)]
        raced = [line.strip() for line in lines if any(word in line for word in _RACE)]
        if raced:
            raise UpstreamMoved("; ".join(raced)) from None
        raise


def _remote(args: list[str], repo: Path) -> str:
    """A git command that talks to the upstream; UpstreamUnreachable if it fails."""
    try:
        result = subprocess.run(
            ["git", "--git-dir", str(repo), *args],
            capture_output=True, timeout=TIMEOUT,
            env=_quiet_env(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UpstreamUnreachable(f"no answer within {TIMEOUT:g} s") from None
    if result.returncode != 0:
        said = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
        lines = [line for line in said.splitlines() if line.strip()]
        raise UpstreamUnreachable("; ".join(lines[-3:]) or f"git {args[0]} failed", said)
    return result.stdout.decode("utf-8", "replace")


def _git(args: list[str]) -> str:
    result = subprocess.run(["git", *args], capture_output=True)
    if result.returncode != 0:
        raise RepositoryError(result.stderr.decode("utf-8", "replace").strip())
    return result.stdout.decode("utf-8", "replace")


def _quiet_env() -> dict[str, str]:
    """Never ask a person for credentials in the middle of a write: fail instead."""
    import os

    return {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": os.environ.get(
        "GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=15")}  # fmt: skip


def push_all(repo: Path, url: str) -> None:
    """Push the branch and every tag to an upstream that has none of them yet."""
    _remote(["push", "--quiet", "--atomic", url, f"{REF}:{REF}", "refs/tags/*:refs/tags/*"], repo)


def clone_bare(url: str, repo: Path) -> None:
    """A bare copy of the upstream at `repo` (its branch and tags)."""
    try:
        result = subprocess.run(
            ["git", "clone", "--quiet", "--bare", "--no-local", url, str(repo)],
            capture_output=True, timeout=TIMEOUT * 10, env=_quiet_env(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UpstreamUnreachable(f"no answer within {TIMEOUT * 10:g} s") from None
    if result.returncode != 0:
        said = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UpstreamUnreachable("; ".join(said[-3:]) or "git clone failed")
