"""The Vault façade: one repository (the system of record) and its projections.

Every write is a git commit first; the catalog is then brought up to that commit.
A crash between the two loses nothing: the next open replays what the catalog missed.
The vault is handed the workflows' Domain descriptors; it never imports a workflow.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from atmpvault.archive.core.domain import Domain, check, record_kinds
from atmpvault.config import CONFIG_PATH, Settings
from atmpvault.errors import (
    IntegrityError,
    InvalidInput,
    NotAVault,
    RepositoryFailure,
    SignatureRefused,
    VaultBusy,
    VaultError,
    VaultExists,
)
from atmpvault.repository.git import GitStore, ObjectDamaged, ObjectMissing, RepositoryError
from atmpvault.repository.lock import LockTimeout, WriteLock

if TYPE_CHECKING:
    from atmpvault.archive.core.catalog import Catalog
    from atmpvault.archive.core.changes import Change, CommitChanges, RecordChange, UnitOfWork
    from atmpvault.archive.core.configuration import VaultConfig
    from atmpvault.archive.core.records import RecordKind
    from atmpvault.archive.core.search import SearchProjection
    from atmpvault.archive.core.upstream import Upstream
    from atmpvault.indexer.index import SearchFilters, SearchResult


class Projection(Protocol):
    """A store derived from the repository that remembers the last commit it applied."""

    def last_commit(self) -> str | None: ...

    def apply(self, commits: list[CommitChanges], head: str, expected: str | None) -> None: ...

    def reset(self) -> None: ...


REPO_DIR = "repo.git"
CATALOG_FILE = "catalog.sqlite"
_CATCH_UP_BATCH = 2000
_PROGRESS_EVERY = 100  # commits between progress reports

Progress = Callable[[int], None]  # told how many more units of work are done


class Vault:
    """An open vault: its repository, its catalog and the lock that serialises writers."""

    def __init__(
        self,
        settings: Settings,
        domains: tuple[Domain, ...],
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.path = settings.vault
        self.domains = check(domains)
        self.say = say or (lambda _message: None)  # one-line notices for the user
        self.store = GitStore(self.path / REPO_DIR)
        self._lock = WriteLock(self.path / "lock", settings.lock_timeout)
        self._catalog: Catalog | None = None
        self._search: SearchProjection | None = None
        self._rebuilding = False

    @classmethod
    def open(
        cls,
        settings: Settings,
        domains: tuple[Domain, ...],
        say: Callable[[str], None] | None = None,
    ) -> Vault:
        """Open an existing vault; the catalog catches up lazily, on first use."""
        path = settings.vault
        if not path.is_dir() or not GitStore.exists(path / REPO_DIR):
            raise NotAVault(
                f"{path} is not an atmpvault vault (no {REPO_DIR} inside); "
                "run 'atmpvault init' or pass --vault"
            )
        return cls(settings, domains, say)

    @classmethod
    def create(
        cls,
        settings: Settings,
        domains: tuple[Domain, ...],
        actor: str | None = None,
        index_engine: str = "tantivy",
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
        vault = cls(settings, domains)
        vault.store = GitStore.create(path / REPO_DIR)
        from atmpvault.archive.core import values
        from atmpvault.archive.core.configuration import VaultConfig

        config = replace(VaultConfig.default(domains), index_engine=index_engine)
        with vault.unit(
            "init", "Initialise the vault", reason="vault created",
            actor=values.user(actor) if actor else None,
        ) as unit:  # fmt: skip
            unit.files[CONFIG_PATH] = config.serialise()
        vault.forget_config()  # read before the first commit: the default
        # The projections are created now, so the first writers do not race to create them.
        vault.projections()
        return vault

    def close(self) -> None:
        self.store.close()
        self.close_catalog()
        if self._search is not None:
            self._search.close()
            self._search = None
        self.store.finish_packing()  # last: waits for a pack roll-up still running (may raise)

    def close_catalog(self) -> None:
        """Let go of the catalog (it is opened again, caught up, on next use)."""
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        """Close the vault; git's own errors leave it as a VaultError (exit 1, one line), a
        damaged object as an integrity problem (exit 3) named with what it belongs to."""
        try:
            self.close()
        except RepositoryError as failed:  # a pack roll-up failed (reported if nothing else)
            exc = exc or failed
        if isinstance(exc, RepositoryError):
            raise self.repository_error(exc) from exc

    @cached_property
    def kinds(self) -> tuple[RecordKind, ...]:
        """Every kind of record: the core's own, then each workflow's (clashes refused)."""
        from atmpvault.archive.core.records import CORE_KINDS
        from atmpvault.archive.core.signatures import SIGNATURE_KIND, USER_KIND

        return CORE_KINDS + (USER_KIND, SIGNATURE_KIND) + record_kinds(self.domains)

    @cached_property
    def controlled(self) -> bool:
        """Whether the vault has users: then who acts, and may, is checked (access.py);
        from the configuration's raw JSON, so that a fast search parses nothing more."""
        raw = json.loads(self._config_bytes or b"{}") if self.store.head() else {}
        return bool((raw.get("access") or {}).get("controlled"))

    @cached_property
    def _config_bytes(self) -> bytes | None:
        return self.read_small(CONFIG_PATH)

    def forget_config(self) -> None:
        """After a write to the configuration: read it again on next use."""
        for name in ("config", "_config_bytes", "controlled", "actor"):
            self.__dict__.pop(name, None)

    @cached_property
    def actor(self) -> str:
        """Who is acting (see access.acting)."""
        from atmpvault.archive.core.access import acting

        return acting(self)

    @cached_property
    def config(self) -> VaultConfig:
        from atmpvault.archive.core.configuration import VaultConfig

        if self.store.head() is None:
            return VaultConfig.default(self.domains)
        return VaultConfig.parse(self._config_bytes or b"{}")

    def document_type(self, value: str) -> str:
        """A document type from the vault's controlled vocabulary."""
        if value not in self.config.document_types:
            raise InvalidInput(
                f"unknown document type {value!r}; valid types: "
                + ", ".join(self.config.document_types)
            )
        return value

    def record_id(self, value: str) -> str:
        """The id of a document or of a record of any kind; InvalidInput if it is neither."""
        from atmpvault.archive.core.values import MAX_CODE

        if len(value) > MAX_CODE or not any(k.is_id(value) for k in self.kinds if k.distinctive):
            raise InvalidInput(
                f"invalid document id {value[:40]!r}: use a document's id such as DOC-000042, "
                "or a record's such as EV-000007 or IND-012345/0001"
            )
        return value

    def read_file(self, path: str, at: str | None = None) -> bytes | None:
        """One file of the repository as of commit `at` (default: the tip), or None."""
        commit = at or self.store.head()
        if commit is None:
            return None
        try:
            return self.store.read(commit, path)
        except ObjectMissing:
            return None
        except RepositoryError as exc:
            raise self.repository_error(exc) from exc

    def read_small(self, path: str) -> bytes | None:
        """A small file at the tip, read without GitPython (see GitStore.read_small)."""
        try:
            return self.store.read_small(head, path) if (head := self.store.head()) else None
        except RepositoryError as exc:  # damage is never taken for "no such file"
            raise self.repository_error(exc) from exc

    # -- projections: catalog and index --------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The catalog, brought up to the repository's tip if no writer is busy."""
        if self._catalog is None:
            from atmpvault.archive.core.catalog import Catalog

            url = self.settings.catalog_url or f"sqlite:///{self.path / CATALOG_FILE}"
            shared = self.shared_catalog and not self._rebuilding
            self._catalog = Catalog(url, self.domains, self.store, shared=shared)
            if self._catalog.rebuilt_because:
                self.say(f"{self._catalog.rebuilt_because}: rebuilding it from the repository")
            self._catch_up(self._catalog, wait=self._catalog.rebuilt_because is not None)
        return self._catalog

    @property
    def search_projection(self) -> SearchProjection:
        """The full-text index, brought up to the repository's tip if no writer is busy."""
        if self._search is None:
            from atmpvault.archive.core.search import INDEX_DIR, SearchProjection
            from atmpvault.indexer.index import Index

            index = Index.open(self.path / INDEX_DIR, self.config.index_engine, self.tag_fields)
            self._search = SearchProjection(index, self)
            if index.discarded:
                self.say(f"{index.discarded}: rebuilding the index from the repository")
            self._catch_up(self._search, wait=index.discarded is not None)
        return self._search

    @property
    def tag_fields(self) -> tuple[str, ...]:
        """The keyword tags workflows contribute to the index (usable in queries)."""
        return tuple(name for d in self.domains for name in d.tag_fields)

    def projections(self) -> list[Projection]:
        """The catalog and the index, opened and current."""
        return [self.catalog, self.search_projection]

    def catch_up(self, wait: bool = True, only: Projection | None = None) -> None:
        """Bring every open projection (or `only` that one) up to the repository's tip."""
        for projection in [p for p in (self._catalog, self._search) if p is not None]:
            if only is None or projection is only:
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
            # The tip read above may predate a writer that finished meanwhile (and moved
            # the projection past it): only the tip read under the lock is the one to reach.
            head = self.store.head()
            if head is not None and projection.last_commit() != head:
                self._replay_into([projection], head)
        finally:
            self._unlock()

    def _replay_into(
        self, targets: list[Projection], head: str, progress: Progress | None = None
    ) -> None:
        """Replay into projections that all stand at the same commit."""
        lasts = [t.last_commit() for t in targets]  # once: a shared catalog moves under us
        last = lasts[0]
        assert all(other == last for other in lasts)
        if last == head:
            return
        if last is not None and not self.store.is_ancestor(last, head):
            if self.settings.upstream:  # a shared catalog: another workstation went ahead
                return
            raise IntegrityError(
                f"a projection was built from commit {last[:12]}, which is not in this "
                "repository's history; run 'atmpvault rebuild'"
            )
        try:
            self._replay_batches(targets, last, head, progress)
        except ObjectDamaged as exc:
            raise self.repository_error(exc) from exc

    def _replay_batches(
        self, targets: list[Projection], last: str | None, head: str, progress: Progress | None
    ) -> None:
        batch: list[CommitChanges] = []
        expected, upto, count = last, last, 0
        for count, commit in enumerate(self.replay(last, head), start=1):
            upto = commit.sha
            batch.append(commit)
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
        self,
        since: str | None,
        until: str | None = None,
        on_damage: Callable[[ObjectDamaged], None] | None = None,
    ) -> Iterator[CommitChanges]:
        """Each commit after `since`, with the records it wrote, read back and format-checked.

        A record whose object is damaged stops the replay (IntegrityError), unless
        `on_damage` is given: then it is told, and the commit is given without it.
        """
        from atmpvault.archive.core.changes import CommitChanges, RecordChange
        from atmpvault.archive.core.records import kind_for

        try:
            for info, paths in self.store.changes(since, until):
                found = []
                for path in sorted(paths):
                    match = kind_for(self.kinds, path)
                    if match is None:
                        continue
                    kind, record_id = match
                    try:
                        raw = self.store.read(info.sha, path)
                    except ObjectDamaged as exc:
                        if on_damage is None:
                            raise
                        on_damage(exc)
                        continue
                    where = f"{path} at commit {info.sha[:12]}"
                    found.append(RecordChange(kind, record_id, path, kind.decode(raw, where), raw))
                yield CommitChanges(
                    info.sha, info.time, info.message, info.trailers, paths, tuple(found)
                )
        except RepositoryError as exc:
            raise self.repository_error(exc) from exc

    def repository_error(self, exc: RepositoryError) -> VaultError:
        """git's error as the vault reports it: a damaged object as an integrity problem
        (exit 3) naming what it belongs to and what to do; any other in one line (exit 1)."""
        if not isinstance(exc, ObjectDamaged):
            return RepositoryFailure(f"repository error: {exc}")
        from atmpvault.archive.core.integrity import damaged_error

        return damaged_error(self.kinds, exc)

    @cached_property
    def upstream(self) -> Upstream:
        """The shared upstream this vault publishes to (settings.json "upstream")."""
        from atmpvault.archive.core.upstream import Upstream

        return Upstream(self)

    @property
    def shared_catalog(self) -> bool:
        """Whether the catalog is the team's (a database URL in a vault with an upstream)."""
        return bool(self.settings.upstream and self.settings.catalog_url)

    def rebuild(
        self, progress: Progress | None = None, shared: bool = False, index_only: bool = False
    ) -> int:
        """Rebuild the catalog and the index from the repository alone; return versions applied.

        Refused, changing nothing, while an object of the repository is damaged: the
        rebuild would stop at it with the projections emptied; and for a team's shared
        catalog unless `shared` says it is meant (every workstation reads it).
        """
        from atmpvault.archive.core.integrity import damage_report, repair_catalog

        if self.shared_catalog and not shared and not index_only:
            raise VaultError(
                "this vault's catalog is shared with the team; 'atmpvault rebuild --shared' "
                "rebuilds it for everyone (this workstation's index alone: 'atmpvault "
                "rebuild --index')"
            )

        damage = damage_report(self)
        if damage:
            raise IntegrityError(
                f"rebuild refused, nothing changed: {len(damage)} damaged object(s) in the "
                f"repository: {'; '.join(damage)}; restore them from a clone or backup"
            )
        if not index_only:
            repair_catalog(self)
        self._rebuilding = True
        try:
            targets: list[Projection] = (
                [self.search_projection] if index_only else self.projections()
            )
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
        from atmpvault.archive.core.search import search

        return search(self, query, filters, limit, facets)

    # -- writing ---------------------------------------------------------------------------

    def _acquire(self, blocking: bool) -> bool:
        try:
            return self._lock.acquire(blocking=blocking)
        except LockTimeout:
            held = f"{self.path} for {self.settings.lock_timeout:g} s"
            raise VaultBusy(f"vault is busy: another writer held {held}; try again") from None

    @contextmanager
    def writing(self, catch_up: bool = True) -> Iterator[None]:
        """Hold the write lock, with the catalog current, for one write."""
        if self._lock.held:
            yield
            return
        self._acquire(blocking=True)
        try:
            if self.settings.upstream:  # validate against the team's tip (upstream.py)
                self.upstream.sync()
            if catch_up:
                self.catch_up()
            yield
        finally:
            self._unlock()

    def _unlock(self) -> None:
        """Let the next writer in: the index's pending work committed, its writer let go
        (an index writer outliving the lock would lock every other process out of it)."""
        try:
            if self._search is not None:
                self._search.release()
        finally:
            self._lock.release()

    @contextmanager
    def unit(
        self,
        action: str,
        subject: str,
        reason: str | None = None,
        actor: str | None = None,
        trailers: dict[str, str] | None = None,
    ) -> Iterator[UnitOfWork]:
        """One user action as one commit, on exit; the lock held throughout, with the catalog
        current, so what it reads is what it writes on. An error inside writes nothing."""
        with self.writing():
            from atmpvault.archive.core.changes import UnitOfWork

            who = self.actor if self.controlled else (actor or self.actor)
            unit = UnitOfWork(self, action, who, reason)
            unit.subject = subject
            unit.trailers.update(trailers or {})
            try:
                yield unit
            except SignatureRefused as refused:  # nothing of the unit is written but this
                from atmpvault.archive.core.users import record_refusal

                raise record_refusal(self, refused) from None
            if unit.files:
                self.commit_units([unit])

    def commit_units(self, units: list[UnitOfWork]) -> list[CommitChanges]:
        """One commit per unit, all or none (the point of no return; the caller holds the
        write lock), then the catalog brought to the last."""
        commits, parent = self.write_units(units)
        self.apply_units(commits, parent)
        return commits

    def write_units(self, units: list[UnitOfWork]) -> tuple[list[CommitChanges], str | None]:
        """The git half of `commit_units` (only the repository: an import runs it in a thread
        while the catalog takes the batch before); `apply_units` must follow, in order."""
        written = [self._records_of(unit) for unit in units]  # a bad record stops it here
        shas, parent = self.commit_changes(u.change() for u in units)
        for unit, sha in zip(units, shas, strict=True):
            unit.commit, unit.parent = sha, parent
        return [u.committed(sha, r) for u, sha, r in zip(units, shas, written, strict=True)], parent

    def apply_units(self, commits: list[CommitChanges], parent: str | None) -> None:
        """The catalog half of `commit_units`: bring the catalog to the last of `commits`."""
        self.catalog.apply(commits, commits[-1].sha, parent)
        self.fault("after-catalog")

    def _records_of(self, unit: UnitOfWork) -> tuple[RecordChange, ...]:
        """Every record a unit writes, as a replay would read it back (format-checked)."""
        from atmpvault.archive.core.changes import RecordChange
        from atmpvault.archive.core.records import kind_for

        found = []
        for path, raw in sorted(unit.files.items()):  # in git's order, as a replay reads them
            match = kind_for(self.kinds, path) if raw is not None else None
            if match is None or raw is None:
                continue
            kind, record_id = match
            staged = unit.records.get((kind.name, record_id))
            if staged is not None and staged.path == path:
                found.append(staged)
            else:
                found.append(RecordChange(kind, record_id, path, kind.decode(raw, path), raw))
        return tuple(found)

    def commit_changes(self, changes: Iterable[Change]) -> tuple[list[str], str | None]:
        """Write one commit per change, all or none; return (commits, previous tip)."""
        assert self._lock.held, "commits need the write lock"
        self.store.clear_stale_locks()  # a writer killed mid ref update left its lock
        parent = self.store.head()
        self.fault("before-commit")
        new = [c.as_commit() for c in changes]
        try:  # with an upstream, pushed there first (upstream.py)
            up = self.settings.upstream
            shas = self.upstream.publish(new, parent) if up else self.store.commit_many(new, parent)
        except RepositoryError as exc:
            raise VaultError(f"the repository refused the write: {exc}") from exc
        self.fault("after-commit")
        return shas, parent

    def commit_files(
        self,
        files: dict[str, bytes | None],
        subject: str,
        trailers: dict[str, str],
        reason: str | None = None,
        actor: str | None = None,
    ) -> str:
        """Commit files that are not records (the vault's configuration) as one unit."""
        action = trailers["Action"]
        extra = {k: v for k, v in trailers.items() if k != "Action"}
        with self.unit(action, subject, reason=reason, actor=actor, trailers=extra) as unit:
            unit.files.update(files)
        assert unit.commit is not None
        self.forget_config()  # the cached configuration may now be stale
        return unit.commit

    def fault(self, point: str) -> None:
        """Die here, as a power cut would, when a crash test asks for this point."""
        if self.settings.fault == point:
            os.kill(os.getpid(), signal.SIGKILL)

    def verify(self, progress: Progress | None = None) -> list[str]:
        """Every disagreement between the repository, its objects and the projections."""
        from atmpvault.archive.core.integrity import verify

        return verify(self, progress)
