"""The Vault façade: one repository (the system of record) and its projections.

Every write is a git commit first; the catalog is then brought up to that commit.
A crash between the two loses nothing: the next open replays what the catalog missed.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from atmpvault.archive.core import values
from atmpvault.archive.documents.versions import DocumentVersion, doc_dir
from atmpvault.config import DEFAULT_DOCUMENT_TYPES, Settings
from atmpvault.errors import (
    IntegrityError,
    InvalidInput,
    NotAVault,
    VaultBusy,
    VaultError,
    VaultExists,
)
from atmpvault.repository.git import CommitInfo, GitStore, NewCommit, RepositoryError
from atmpvault.repository.lock import LockTimeout, WriteLock

if TYPE_CHECKING:
    from atmpvault.archive.core.catalog import Catalog
    from atmpvault.archive.core.search import SearchProjection
    from atmpvault.archive.documents.versions import Documents
    from atmpvault.indexer.index import SearchFilters, SearchResult


class Projection(Protocol):
    """A store derived from the repository that remembers the last commit it applied."""

    def last_commit(self) -> str | None: ...

    def apply(self, batch: Iterable[DocumentVersion], head: str, expected: str | None) -> None: ...

    def reset(self) -> None: ...


REPO_DIR = "repo.git"
CATALOG_FILE = "catalog.sqlite"
CONFIG_PATH = "config/vault.json"
CONFIG_FORMAT = 1
_CATCH_UP_BATCH = 2000
_PROGRESS_EVERY = 100  # commits between progress reports

Progress = Callable[[int], None]  # told how many more units of work are done


@dataclass(frozen=True)
class VaultConfig:
    """The vault's own configuration, versioned in the repository."""

    document_types: tuple[str, ...]
    index_engine: str = "tantivy"
    # list name -> e-mail addresses, for notices (see archive/notices.py)
    distribution_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def default(cls) -> VaultConfig:
        return cls(document_types=DEFAULT_DOCUMENT_TYPES)

    @classmethod
    def parse(cls, raw: bytes) -> VaultConfig:
        data = json.loads(raw)
        return cls(
            document_types=tuple(data.get("document_types", DEFAULT_DOCUMENT_TYPES)),
            index_engine=data.get("index", {}).get("engine", "tantivy"),
            distribution_lists={
                str(name): tuple(addresses)
                for name, addresses in data.get("distribution_lists", {}).items()
            },
        )

    def serialise(self) -> bytes:
        data = {
            "format": CONFIG_FORMAT,
            "document_types": list(self.document_types),
            "index": {"engine": self.index_engine},
        }
        if self.distribution_lists:
            data["distribution_lists"] = {
                name: list(addresses) for name, addresses in sorted(self.distribution_lists.items())
            }
        return (json.dumps(data, indent=2) + "\n").encode("utf-8")


@dataclass(frozen=True)
class Change:
    """One commit to write: files, a subject line and the audit trailers."""

    files: dict[str, bytes | None]
    subject: str
    trailers: dict[str, str]
    actor: str
    reason: str | None
    when: datetime

    def as_commit(self) -> NewCommit:
        lines = dict(self.trailers)
        lines["Actor"] = self.actor
        if self.reason:
            lines["Reason"] = self.reason
        lines["Recorded-At"] = values.iso(self.when)
        body = "\n".join(f"{k}: {v}" for k, v in lines.items())
        return NewCommit(self.files, f"{self.subject}\n\n{body}\n", self.actor, self.when)


@dataclass(frozen=True)
class AuditEntry:
    """One write, as git history records it."""

    commit: str
    time: str
    user: str
    action: str
    reason: str | None
    doc: str | None
    version: int | None
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "time": self.time,
            "user": self.user,
            "action": self.action,
            "reason": self.reason,
            "doc": self.doc,
            "version": self.version,
            "summary": self.summary,
        }


class Vault:
    """An open vault: its repository, its catalog and the lock that serialises writers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.vault
        self.store = GitStore(self.path / REPO_DIR)
        self._lock = WriteLock(self.path / "lock", settings.lock_timeout)
        self._catalog: Catalog | None = None
        self._search: SearchProjection | None = None
        self._rebuilding = False

    # -- opening -------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings) -> Vault:
        """Open an existing vault; the catalog catches up lazily, on first use."""
        path = settings.vault
        if not path.is_dir() or not GitStore.exists(path / REPO_DIR):
            raise NotAVault(
                f"{path} is not an atmpvault vault (no {REPO_DIR} inside); "
                "run 'atmpvault init' or pass --vault"
            )
        return cls(settings)

    @classmethod
    def create(
        cls, settings: Settings, actor: str | None = None, index_engine: str = "tantivy"
    ) -> Vault:
        """Create a new, empty vault at settings.vault."""
        from atmpvault.indexer.index import ENGINE_NAMES

        if index_engine not in ENGINE_NAMES:
            raise InvalidInput(
                f"unknown index engine {index_engine!r}; choose one of: {', '.join(ENGINE_NAMES)}"
            )
        path = settings.vault
        if GitStore.exists(path / REPO_DIR):
            raise VaultExists(f"a vault already exists at {path}")
        if path.exists() and not path.is_dir():
            raise VaultError(f"{path} exists and is not a directory")
        if path.is_dir() and any(path.iterdir()):
            raise VaultError(f"{path} is not empty; choose a new or empty directory")
        path.mkdir(parents=True, exist_ok=True)
        vault = cls(settings)
        vault.store = GitStore.create(path / REPO_DIR)
        who = values.user(actor) if actor else vault.actor
        with vault.writing():
            vault.commit(
                files={
                    CONFIG_PATH: replace(
                        VaultConfig.default(), index_engine=index_engine
                    ).serialise()
                },
                subject="Initialise the vault",
                trailers={"Action": "init"},
                actor=who,
                reason="vault created",
            )
        # The projections are created now, so the first writers do not race to create them.
        vault.projections()
        return vault

    def close(self) -> None:
        self.store.close()
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None
        if self._search is not None:
            self._search.close()
            self._search = None

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- configuration and identity ----------------------------------------------------

    @cached_property
    def actor(self) -> str:
        """Who is acting: --user, else ATMPVAULT_USER, else git's user.name, else the login."""
        if self.settings.user:
            return values.user(self.settings.user)
        result = subprocess.run(["git", "config", "user.name"], capture_output=True)
        name = result.stdout.decode("utf-8", "replace").strip()
        return values.user(name or getpass.getuser())

    @cached_property
    def config(self) -> VaultConfig:
        head = self.store.head()
        if head is None:
            return VaultConfig.default()
        return VaultConfig.parse(self.store.read(head, CONFIG_PATH))

    def document_type(self, value: str) -> str:
        """A document type from the vault's controlled vocabulary."""
        if value not in self.config.document_types:
            raise InvalidInput(
                f"unknown document type {value!r}; valid types: "
                + ", ".join(self.config.document_types)
            )
        return value

    @cached_property
    def documents(self) -> Documents:
        from atmpvault.archive.documents.versions import Documents

        return Documents(self)

    # -- projections: catalog and index --------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog, brought up to the repository's tip if no writer is busy."""
        if self._catalog is None:
            from atmpvault.archive.core.catalog import Catalog

            url = self.settings.catalog_url or f"sqlite:///{self.path / CATALOG_FILE}"
            self._catalog = Catalog(url)
            self._catch_up(self._catalog, wait=False)
        return self._catalog

    @property
    def search_projection(self) -> SearchProjection:
        """The full-text index, brought up to the repository's tip if no writer is busy."""
        if self._search is None:
            from atmpvault.archive.core.search import INDEX_DIR, SearchProjection
            from atmpvault.indexer.index import Index

            index = Index.open(self.path / INDEX_DIR, self.config.index_engine)
            self._search = SearchProjection(index, self.store)
            self._catch_up(self._search, wait=False)
        return self._search

    def projections(self) -> list[Projection]:
        """The catalog and the index, opened and current."""
        return [self.catalog, self.search_projection]

    def catch_up(self, wait: bool = True) -> None:
        """Bring every open projection up to the repository's tip."""
        for projection in [p for p in (self._catalog, self._search) if p is not None]:
            self._catch_up(projection, wait)

    def _catch_up(self, projection: Projection, wait: bool) -> None:
        """Replay the commits `projection` has not applied yet.

        Only the lock holder writes projections. A reader that finds a writer busy reads
        the projection as it is; the writer brings it up to date when it finishes.
        """
        head = self.store.head()
        if self._rebuilding or head is None or projection.last_commit() == head:
            return
        if self._lock.held:
            self._replay_into([projection], head)
            return
        if not self._acquire(blocking=wait):
            return
        try:
            self._replay_into([projection], head)
        finally:
            self._lock.release()

    def _replay_into(
        self, targets: list[Projection], head: str, progress: Progress | None = None
    ) -> None:
        """Replay into projections that all stand at the same commit."""
        last = targets[0].last_commit()
        assert all(t.last_commit() == last for t in targets)
        if last == head:
            return
        if last is not None and not self.store.is_ancestor(last, head):
            raise IntegrityError(
                f"a projection was built from commit {last[:12]}, which is not in this "
                "repository's history; run 'atmpvault rebuild'"
            )
        batch: list[DocumentVersion] = []
        expected, upto = last, last
        count = 0
        for count, (info, version) in enumerate(self.replay(last, head), start=1):
            upto = info.sha
            if version is not None:
                batch.append(version)
            if progress and count % _PROGRESS_EVERY == 0:
                progress(_PROGRESS_EVERY)
            if len(batch) >= _CATCH_UP_BATCH:
                for target in targets:
                    target.apply(batch, upto, expected)
                expected, batch = upto, []
        if upto is not None and upto != expected:
            for target in targets:
                target.apply(batch, upto, expected)
        if progress:
            progress(count % _PROGRESS_EVERY)

    def replay(
        self, since: str | None, until: str | None = None
    ) -> Iterator[tuple[CommitInfo, DocumentVersion | None]]:
        """Each commit after `since`, with the document version it recorded, if any."""
        for info in self.store.history(since, until):
            doc = info.trailers.get("Document")
            if doc is None:
                yield info, None
                continue
            raw = self.store.read(info.sha, f"{doc_dir(doc)}/record.json")
            yield info, DocumentVersion.from_record(raw, info.sha)

    def commit_count(self) -> int:
        """How many commits the branch holds (the length of a replay from the start)."""
        return self.store.count()

    def rebuild(self, progress: Progress | None = None) -> int:
        """Rebuild the catalog and the index from the repository alone; return versions applied."""
        self._rebuilding = True
        try:
            targets = self.projections()
            with self.writing(catch_up=False):
                for target in targets:
                    target.reset()
                head = self.store.head()
                if head is not None:
                    self._replay_into(targets, head, progress)
        finally:
            self._rebuilding = False
        return self.catalog.count_versions()

    def search(
        self, query: str, filters: SearchFilters, limit: int = 20, facets: bool = False
    ) -> SearchResult:
        """Full-text search; a current index is answered without GitPython or SQLAlchemy."""
        from atmpvault.archive.core.search import INDEX_DIR, is_current

        if self._search is None and is_current(self.path / INDEX_DIR, self.store.head()):
            from atmpvault.archive.core.search import SearchProjection
            from atmpvault.indexer.index import Index, read_state

            state = read_state(self.path / INDEX_DIR) or {}
            engine = str(state.get("engine") or "tantivy")
            self._search = SearchProjection(Index.open(self.path / INDEX_DIR, engine), self.store)
        return self.search_projection.index.search(query, filters, limit=limit, facets=facets)

    # -- writing ---------------------------------------------------------------------------

    def _acquire(self, blocking: bool) -> bool:
        try:
            return self._lock.acquire(blocking=blocking)
        except LockTimeout:
            raise VaultBusy(
                f"vault is busy: another writer held {self.path} for "
                f"{self.settings.lock_timeout:g} s; try again"
            ) from None

    @contextmanager
    def writing(self, catch_up: bool = True) -> Iterator[None]:
        """Hold the write lock, with the catalog current, for one write."""
        if self._lock.held:
            yield
            return
        self._acquire(blocking=True)
        try:
            if catch_up:
                self.catch_up()
            yield
        finally:
            self._lock.release()

    def commit(
        self,
        files: dict[str, bytes | None],
        subject: str,
        trailers: dict[str, str],
        actor: str,
        reason: str | None,
        when: datetime | None = None,
    ) -> tuple[str, str | None]:
        """Write one commit on the branch; return (new commit, previous tip).

        The caller holds the write lock. The commit is the point of no return.
        """
        change = Change(files, subject, trailers, actor, reason, when or values.now())
        shas, parent = self.commit_changes([change])
        return shas[0], parent

    def commit_changes(self, changes: Iterable[Change]) -> tuple[list[str], str | None]:
        """Write one commit per change, all or none; return (commits, previous tip)."""
        assert self._lock.held, "commits need the write lock"
        parent = self.store.head()
        self.fault("before-commit")
        try:
            shas = self.store.commit_many((c.as_commit() for c in changes), parent)
        except RepositoryError as exc:
            raise VaultError(f"the repository refused the write: {exc}") from exc
        self.fault("after-commit")
        return shas, parent

    def commit_records(
        self,
        files: dict[str, bytes | None],
        subject: str,
        trailers: dict[str, str],
        reason: str | None = None,
        actor: str | None = None,
    ) -> str:
        """Commit records other than documents (applications, events, notices...).

        Takes the write lock; `trailers` must name the Action. Returns the commit.
        """
        assert "Action" in trailers and "Document" not in trailers
        with self.writing():
            sha, _parent = self.commit(files, subject, trailers, actor or self.actor, reason)
        return sha

    def read_records(self, prefix: str, at: str | None = None) -> dict[str, bytes]:
        """Every file under `prefix` in the repository, as of commit `at` (default: the tip)."""
        commit = at or self.store.head()
        if commit is None:
            return {}
        return {path: self.store.read(commit, path) for path in self.store.paths(commit, prefix)}

    def fault(self, point: str) -> None:
        """Die here, as a power cut would, when a crash test asks for this point."""
        if self.settings.fault == point:
            os.kill(os.getpid(), signal.SIGKILL)

    # -- audit trail -----------------------------------------------------------------------

    def log(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        user: str | None = None,
        doc: str | None = None,
    ) -> list[AuditEntry]:
        """Every write, oldest first, read from git history alone."""
        entries = []
        for info in self.store.history():
            t = info.trailers
            recorded = t.get("Recorded-At") or values.iso(datetime.fromtimestamp(info.time, UTC))
            moment = datetime.fromisoformat(recorded)
            if since and moment < since or until and moment > until:
                continue
            if user and t.get("Actor") != user or doc and t.get("Document") != doc:
                continue
            entries.append(
                AuditEntry(
                    commit=info.sha,
                    time=recorded,
                    user=t.get("Actor", ""),
                    action=t.get("Action", ""),
                    reason=t.get("Reason"),
                    doc=t.get("Document"),
                    version=int(t["Version"]) if "Version" in t else None,
                    summary=info.message.split("\n", 1)[0],
                )
            )
        return entries

    # -- integrity -----------------------------------------------------------------------

    def verify(self, progress: Progress | None = None) -> list[str]:
        """Every disagreement between the repository, its objects and the catalog."""
        from atmpvault.archive.core.integrity import verify

        return verify(self, progress)
