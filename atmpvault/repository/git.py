"""The vault's system of record: an append-only bare git repository.

The only module that imports GitPython. Reads go through GitPython's persistent
`git cat-file --batch`; writes go through `git fast-import`, which writes the new
blobs and only the trees along the changed paths, so the cost of a commit does not
grow with the repository (GitPython's index path grows from 38 ms to 382 ms per
commit between the 100th and 5,000th document). Packs are rolled up in packs.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    import git

    from atmpvault.repository.fastimport import NewCommit
    from atmpvault.repository.history import CommitInfo, Damage
    from atmpvault.repository.packs import Rollup

BRANCH = "main"
REF = f"refs/heads/{BRANCH}"
# What a git process may hold, whatever the size of the archive: its cache of delta
# bases (96 MB by default) and its memory-mapped windows on packs (1 GB windows, up to
# 8 GB). Unbounded, `git cat-file`, `git log` and `git fsck` of verify and rebuild each
# grew past 200 MB at 30,000 documents; bounded, about 60 MB (reading every object takes
# a third longer).
LIMITS = (
    "-c", "core.deltaBaseCacheLimit=16m",
    "-c", "core.packedGitWindowSize=4m",
    "-c", "core.packedGitLimit=32m",
)  # fmt: skip
STALE_LOCK_WAIT = 2.0  # seconds a ref lock of a dead writer's git process may linger


class RepositoryError(Exception):
    """git refused an operation or the repository cannot be read."""


class ObjectMissing(RepositoryError):
    """A path or object asked for does not exist at the given commit."""


class ObjectDamaged(RepositoryError):
    """An object history names is corrupt or gone: damage, never a path that is absent."""

    def __init__(self, message: str, oid: str | None, path: str, commit: str) -> None:
        super().__init__(message)
        self.oid = oid
        self.path = path
        self.commit = commit


def parse_trailers(message: str) -> dict[str, str]:
    """Return the `Key: value` trailers of the message's last paragraph."""
    paragraphs = message.strip().split("\n\n")
    trailers: dict[str, str] = {}
    if len(paragraphs) < 2:
        return trailers
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            trailers[key] = value
    return trailers


class GitStore:
    """A bare git repository holding the vault's history on one branch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._repo: git.Repo | None = None
        self._rollup: Rollup | None = None  # a pack roll-up this process started
        self._rollup_failed: RepositoryError | None = None

    # -- lifecycle ---------------------------------------------------------------

    @classmethod
    def create(cls, path: Path) -> GitStore:
        """Create an empty bare repository at `path`."""
        _run(["git", "init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(path)])
        return cls.configure(path)

    @classmethod
    def configure(cls, path: Path) -> GitStore:
        """A vault's repository settings (a new one's, or a clone's of an upstream)."""
        store = cls(path)
        for key, value in (
            ("core.logAllRefUpdates", "always"),  # a reflog, even in a bare repository
            ("receive.denyNonFastForwards", "true"),
            ("receive.denyDeletes", "true"),
            ("gc.auto", "0"),  # packing is ours to schedule, under the vault's lock
        ):
            store._git("config", key, value)
        return store

    @staticmethod
    def exists(path: Path) -> bool:
        """Whether `path` looks like a bare git repository."""
        return (path / "HEAD").is_file() and (path / "objects").is_dir()

    @property
    def repo(self) -> git.Repo:
        if self._repo is None:
            import git

            try:
                self._repo = git.Repo(self.path)
            except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError) as exc:
                raise RepositoryError(f"{self.path} is not a git repository") from exc
            self._repo.git.update_environment(**limits_env())
        return self._repo

    def close(self) -> None:
        """Stop the persistent git processes GitPython keeps."""
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    # -- refs --------------------------------------------------------------------

    def head(self) -> str | None:
        """The branch's current commit, read from the ref files (no git process)."""
        loose = self.path / REF
        try:
            sha = loose.read_text(encoding="ascii").strip()
            if sha:
                return sha
        except FileNotFoundError:
            pass
        try:
            packed = (self.path / "packed-refs").read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        for line in packed.splitlines():
            sha, _, name = line.partition(" ")
            if name == REF:
                return sha
        return None

    # -- writing -----------------------------------------------------------------

    def commit_many(
        self, commits: Iterable[NewCommit], parent: str | None, ref: str = REF
    ) -> list[str]:
        """Append `commits` in order on top of `parent`; return their shas. (`ref`: another
        ref to write them to, leaving the branch where it is.)

        The branch moves only if every commit was written (`feature done`): a stream
        cut short by a crash leaves the branch where it was. fast-import refuses to
        move the branch unless `parent` is still its tip, so a writer that lost a race
        fails instead of overwriting history.
        """
        from atmpvault.repository.fastimport import read_marks, write_commit  # writers only

        fd, marks_name = tempfile.mkstemp(prefix="atmpvault-marks-")
        os.close(fd)
        marks = Path(marks_name)
        try:
            proc = subprocess.Popen(
                [
                    "git",
                    f"--git-dir={self.path}",
                    *LIMITS,
                    # Always write a pack: exploding a small one into loose objects
                    # costs a second process per commit. Packs are rolled up below.
                    "-c",
                    "fastimport.unpackLimit=0",
                    "fast-import",
                    "--quiet",
                    "--done",
                    f"--export-marks={marks}",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            assert proc.stdin is not None
            count = 0
            try:
                for count, new in enumerate(commits, start=1):
                    write_commit(proc.stdin, new, count, parent if count == 1 else None, ref)
                proc.stdin.write(b"done\n")
                proc.stdin.close()
            except BrokenPipeError:
                pass
            err = proc.stderr.read() if proc.stderr else b""
            if proc.wait() != 0:
                raise RepositoryError(
                    "git fast-import failed: " + err.decode("utf-8", "replace").strip()
                )
            shas = read_marks(marks)
        finally:
            marks.unlink(missing_ok=True)
        result = [shas[n] for n in range(1, count + 1)]
        self.pack_if_needed()
        return result

    def move_branch(self, new: str, old: str | None, ref: str = REF) -> None:
        """Move a ref to `new` if it is still at `old` (None: if it does not exist yet)."""
        self._git("update-ref", ref, new, old or "0" * 40)

    def delete_ref(self, ref: str) -> None:
        self._git("update-ref", "-d", ref)

    def clear_stale_locks(self, wait: float = STALE_LOCK_WAIT) -> list[str]:
        """Remove ref lock files a writer killed mid-update left ("cannot lock ref").

        Only the holder of the vault's lock calls it: a lock file is a dead writer's git
        process still finishing (gone within `wait` s), or one that died with it (a
        power cut). Returns the files removed, relative to the repository."""
        import time

        def locks() -> list[Path]:
            found = [p for p in self.path.glob("*.lock") if p.name != "index.lock"]
            refs = self.path / "refs"
            return found + (sorted(refs.rglob("*.lock")) if refs.is_dir() else [])

        deadline = time.monotonic() + wait
        while locks() and time.monotonic() < deadline:
            time.sleep(0.05)
        removed = []
        for lock in locks():
            lock.unlink(missing_ok=True)
            removed.append(str(lock.relative_to(self.path)))
        return removed

    def commit(self, new: NewCommit, parent: str | None) -> str:
        """Append one commit on top of `parent`; return its sha."""
        return self.commit_many([new], parent)[0]

    def pack_if_needed(self) -> None:
        """Roll loose objects and small packs up once enough have gathered, in the
        background (see packs.py). A roll-up that failed is not a write refused (the
        commits are in): it is raised by finish_packing, and no other is started."""
        from atmpvault.repository.packs import pack_if_needed

        running, self._rollup = self._rollup, None
        if self._rollup_failed is None:
            try:
                self._rollup = pack_if_needed(self.path, running)
            except RepositoryError as exc:
                self._rollup_failed = exc

    def finish_packing(self) -> None:
        """Wait for the pack roll-up this process started, if any; raise if one failed."""
        running, self._rollup = self._rollup, None
        if running is not None:
            from atmpvault.repository.packs import finish

            try:
                finish(self.path, running)
            except RepositoryError as exc:
                self._rollup_failed = self._rollup_failed or exc
        failed, self._rollup_failed = self._rollup_failed, None
        if failed is not None:
            raise failed

    # -- reading -----------------------------------------------------------------

    def read(self, commit: str, path: str) -> bytes:
        """The bytes of `path` as of `commit`, checked against git's object id."""
        ref = f"{commit}:{path}"
        for attempt in (1, 2):
            try:
                sha, kind, size, data = self.repo.git.get_object_data(ref)
            except Exception as exc:
                error = self._unreadable(commit, path, exc)
                if attempt == 2 or isinstance(error, ObjectMissing):
                    raise error from exc
                continue  # the reader died on an earlier object: once more, afresh
            _check_kind(kind, commit, path)
            _check_object(sha, kind, size, data, commit, path, self)
            return data
        raise AssertionError("unreachable")

    def read_small(self, commit: str, path: str) -> bytes | None:
        """A small file as of `commit` without GitPython (the configuration and a user
        record, read by every command, even a fast search), or None if the tree has no
        such file. Read from the object files where it can be, since starting git costs
        more than the read (objects.py); through one `git cat-file` otherwise."""
        from atmpvault.repository.objects import NotReadHere, read_path

        try:
            return read_path(self.path, commit, path)
        except NotReadHere:
            pass
        result = subprocess.run(
            ["git", f"--git-dir={self.path}", "cat-file", "--batch"],
            input=f"{commit}:{path}\n".encode(), capture_output=True,
        )  # fmt: skip
        header, _, data = result.stdout.partition(b"\n")
        fields = header.decode("utf-8", "replace").split()
        if result.returncode != 0 or len(fields) != 3 or fields[1] != "blob":
            # "missing" is said for a path the tree lacks, and for an object it names that
            # is gone or cannot be inflated: read() tells them apart and names the damage.
            try:
                return self.read(commit, path)
            except ObjectMissing:
                return None
        data = data[: int(fields[2])]
        _check_object(fields[0], fields[1], int(fields[2]), data, commit, path, self)
        return data

    def stream(self, commit: str, path: str, out: IO[bytes], chunk: int = 1 << 20) -> int:
        """Copy `path` as of `commit` to `out`, checking git's object id at the end."""
        try:
            sha, kind, size, stream = self.repo.git.stream_object_data(f"{commit}:{path}")
        except Exception as exc:
            raise self._unreadable(commit, path, exc) from exc
        digest, written = hashlib.sha1(b"blob %d\0" % size), 0
        try:
            if _text(kind) == "blob":  # a reader that died on a damaged object gives b""
                while written < size and (block := stream.read(min(chunk, size - written))):
                    digest.update(block)
                    out.write(block)
                    written += len(block)
        except Exception as exc:
            raise self._unreadable(commit, path, exc) from exc
        finally:
            if stream._nbr != stream._size:  # cut short: drop the reader, now out of step,
                stream._nbr = stream._size  # and end the stream, whose finalizer would read
                self.close()  # the closed pipe at exit ("Exception ignored ... closed file")
        _check_kind(kind, commit, path)
        if written != size or digest.hexdigest() != _text(sha):
            raise ObjectDamaged(
                f"object {_text(sha)} ({path} at {commit[:12]}) is corrupt",
                _text(sha), path, commit,
            )  # fmt: skip
        return size

    def _unreadable(self, commit: str, path: str, exc: Exception) -> RepositoryError:
        """The error for an object git could not give; restarts git's reader.

        A corrupt object can kill the persistent `git cat-file` or leave it out of
        step, so the reader is started afresh for the next call.
        """
        self.close()
        if isinstance(exc, RepositoryError):
            return exc
        # cat-file says "missing" both for a path the tree lacks and for an object the
        # tree names but git cannot read; only the first is a file that is not there.
        oid = self._entry(commit, path)
        if isinstance(exc, ValueError) and "missing" in str(exc) and oid is None:
            return ObjectMissing(f"{path} does not exist at {commit[:12]}")
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "missing" in detail:
            detail = "corrupt or missing"
        name = f"object {oid} ({path} at {commit[:12]})" if oid else f"{path} at {commit[:12]}"
        return ObjectDamaged(f"{name} cannot be read: {detail}", oid, path, commit)

    def _entry(self, commit: str, path: str) -> str | None:
        """The object id the tree of `commit` names for `path`, or None if it names none."""
        result = subprocess.run(
            [
                "git",
                f"--git-dir={self.path}",
                *LIMITS,
                "rev-parse",
                "--verify",
                "-q",
                f"{commit}:{path}",
            ],
            capture_output=True,
        )
        found = result.stdout.decode("ascii", "replace").strip()
        return found if result.returncode == 0 and len(found) == 40 else None

    def history(self, since: str | None = None, until: str | None = None) -> Iterator[CommitInfo]:
        """Commits after `since` up to `until` (default: the tip), oldest first."""
        return (info for info, _paths in self._log(since, until, with_paths=False))

    def changes(
        self, since: str | None = None, until: str | None = None
    ) -> Iterator[tuple[CommitInfo, tuple[str, ...]]]:
        """Like `history`, each commit with the paths it added or changed."""
        return self._log(since, until, with_paths=True)

    def _log(
        self, since: str | None, until: str | None, with_paths: bool
    ) -> Iterator[tuple[CommitInfo, tuple[str, ...]]]:
        from atmpvault.repository.history import log

        tip = until or self.head()
        if tip is None:
            return iter(())
        return log(self.path, since, tip, with_paths)

    def paths(self, commit: str, prefix: str) -> list[str]:
        """Every file path under `prefix` (a folder, no trailing slash) as of `commit`."""
        result = subprocess.run(
            [
                "git",
                f"--git-dir={self.path}",
                *LIMITS,
                "ls-tree",
                "-r",
                "--name-only",
                "-z",
                commit,
                "--",
                prefix,
            ],
            capture_output=True,
        )
        if result.returncode != 0:
            err = result.stderr.decode("utf-8", "replace").strip()
            raise RepositoryError(f"git ls-tree failed: {err}")
        return [p for p in result.stdout.decode("utf-8").split("\0") if p]

    def tags(self, prefix: str = "") -> dict[str, str]:
        """Tag name -> the commit it points at, for tags starting with `prefix`."""
        result = subprocess.run(
            [
                "git",
                f"--git-dir={self.path}",
                *LIMITS,
                "for-each-ref",
                "--format=%(refname:short) %(*objectname)%(objectname)",
                f"refs/tags/{prefix}",
            ],
            capture_output=True,
        )
        tags = {}
        for line in result.stdout.decode("utf-8").splitlines():
            name, _, sha = line.partition(" ")
            tags[name] = sha[:40]
        return tags

    def tag(self, name: str, commit: str, message: str, actor: str, when: datetime) -> None:
        """An annotated tag; refused if the name is taken (tags are never moved)."""
        env = {
            **os.environ,
            "GIT_COMMITTER_NAME": actor,
            "GIT_COMMITTER_EMAIL": "",
            "GIT_COMMITTER_DATE": f"{int(when.timestamp())} +0000",
        }
        result = subprocess.run(
            [
                "git",
                f"--git-dir={self.path}",
                *LIMITS,
                "tag",
                "-a",
                "-m",
                message,
                "--",
                name,
                commit,
            ],
            capture_output=True,
            env=env,
        )
        if result.returncode != 0:
            err = result.stderr.decode("utf-8", "replace").strip()
            raise RepositoryError(f"cannot tag {name}: {err}")

    def count(self, since: str | None = None, until: str = REF) -> int:
        """How many commits the branch holds (first parents only), or `since`..`until`."""
        if self.head() is None and until == REF:
            return 0
        span = f"{since}..{until}" if since else until
        return int(self._git("rev-list", "--first-parent", "--count", span).strip())

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether `older` is in the history of `newer`."""
        result = subprocess.run(
            ["git", f"--git-dir={self.path}", *LIMITS, "merge-base", "--is-ancestor", older, newer],
            capture_output=True,
        )
        return result.returncode == 0

    def fsck(self) -> list[str]:
        """git's own integrity check; each problem it reports, one per line (once no pack
        roll-up runs, so that none of the packs it reads is deleted under it)."""
        from atmpvault.repository.packs import quiet

        self.finish_packing()
        with quiet(self.path):
            result = subprocess.run(
                ["git", f"--git-dir={self.path}", *LIMITS, "fsck", "--full", "--strict",
                 "--no-dangling"],
                capture_output=True,
            )  # fmt: skip
        text = (result.stdout + result.stderr).decode("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        lines = [line for line in lines if not line.startswith(("Checking", "notice:"))]
        if result.returncode != 0 and not lines:
            lines = [f"git fsck exited {result.returncode}"]
        return lines

    def damage(self, fsck: list[str] | None = None) -> list[Damage]:
        """Every object git fsck finds (or found: `fsck`) damaged, and where history uses it."""
        from atmpvault.repository.history import damage

        return damage(self.path, self.fsck() if fsck is None else fsck, self.head() is not None)

    def _git(self, *args: str) -> str:
        return _run(["git", f"--git-dir={self.path}", *LIMITS, *args])


def limits_env() -> dict[str, str]:
    """LIMITS as environment variables, for the git processes GitPython starts.

    Left out when the environment already passes configuration this way (its own
    GIT_CONFIG_COUNT), which they would replace.
    """
    if "GIT_CONFIG_COUNT" in os.environ:
        return {}
    pairs = [item.split("=", 1) for item in LIMITS[1::2]]
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for n, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{n}"], env[f"GIT_CONFIG_VALUE_{n}"] = key, value
    return env


def _text(value: str | bytes) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else value


def _check_kind(kind: str | bytes, commit: str, path: str) -> None:
    if _text(kind) != "blob":
        raise ObjectMissing(f"{path} at {commit[:12]} is a {_text(kind)}, not a file")


def _check_object(
    sha: str | bytes,
    kind: str | bytes,
    size: int,
    data: bytes,
    commit: str,
    path: str,
    store: GitStore,
) -> None:
    """Raise unless `data` hashes to the object id git named (so a damaged object is caught)."""
    actual = hashlib.sha1(b"%s %d\0" % (_text(kind).encode(), len(data)) + data).hexdigest()
    if len(data) != size or actual != _text(sha):
        store.close()
        raise ObjectDamaged(
            f"object {_text(sha)} ({path} at {commit[:12]}) is corrupt", _text(sha), path, commit
        )


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True)
    if result.returncode != 0:
        err = result.stderr.decode("utf-8", "replace").strip()
        raise RepositoryError(f"{' '.join(argv[:3])} failed: {err}")
    return result.stdout.decode("utf-8", "replace")
