"""The writing half of a bulk import: batches under the vault's lock, in two overlapping
stages.

Each batch is one `git fast-import` stream (one commit per document), then one catalog
transaction and its index entries. The stream of batch N+1 is written by a thread
while the catalog and the index take batch N, so git's process, the catalog and the
index keep the cores busy together instead of in turn. The commits are the point of no
return, as in every write: a process killed between the two stages leaves the catalog
behind the repository, and the next open replays what it missed.

Before a batch is staged, every file is checked again, under the lock, against what
is archived now (another import may have written it while this one waited), against
the batch still being applied, and against the files before it in the batch.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from atmpvault.archive.core import values
from atmpvault.archive.core.changes import UnitOfWork
from atmpvault.archive.documents.records import ACTIVE, DocumentVersion, doc_id_for
from atmpvault.archive.documents.versions import Documents, max_bytes, read_file
from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.import_plan import ImportItem, ImportReport
    from atmpvault.indexer.extract import Extraction

INDEX_COMMIT_EVERY = 2048  # documents between engine commits (uncommitted ones are held in memory)
GROUP_SECONDS = 5.0  # longest an import holds the lock before letting other writers in


class Prepared(Protocol):
    """A file hashed and extracted by a worker (importer._Prepared)."""

    @property
    def sha256(self) -> str: ...

    @property
    def extraction(self) -> Extraction | None: ...


# "archive", "skip" or "refuse" a file that these documents already hold (reported)
Verdict = Callable[["ImportItem", list[DocumentVersion]], str]


@dataclass
class _Batch:
    """A batch staged as units of work, and what to report once its commits are written."""

    units: list[UnitOfWork] = field(default_factory=list)
    versions: list[DocumentVersion] = field(default_factory=list)
    documents: list[dict[str, str]] = field(default_factory=list)
    unsearchable: list[dict[str, str]] = field(default_factory=list)
    next_seq: int = 0


class BatchWriter:
    """Writes staged batches; `close` (or leaving the `with`) applies the last and lets go."""

    def __init__(self, vault: Vault, report: ImportReport, verdict: Verdict) -> None:
        self.vault = vault
        self.actor = vault.actor
        self.report = report
        self.verdict = verdict
        self.limit = max_bytes(vault)
        self._git = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atmpvault-git")
        self._applying: tuple[_Batch, list[CommitChanges], str | None] | None = None
        self._held = ExitStack()
        self._in_group, self._since = 0, 0.0

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        try:
            if exc is None:
                self._apply()
        finally:
            self._applying = None
            self._held.close()
            self._git.shutdown()
        if exc is None:  # the import ends when its last pack roll-up has
            self.vault.store.finish_packing()

    def write(self, ready: Sequence[tuple[ImportItem, Prepared]]) -> None:
        """Stage and write one batch; the one before it is applied while git writes."""
        if self._in_group == 0:
            # The lock is held for a group of batches, so the index commits once a group
            # (an engine commit costs as much as indexing thousands of documents);
            # letting it go commits the index and lets other writers in, at the latest
            # after GROUP_SECONDS so an `add` beside a long import waits seconds.
            self._held.enter_context(self.vault.writing())
            self._since = time.monotonic()
            # Opened (and caught up) before this group's commits exist, so they are indexed
            # from the batches in memory, not read back from git by a catch-up.
            self.vault.projections()
        batch = self._stage(ready)
        written: Future[tuple[list[CommitChanges], str | None]] | None = None
        if batch.units:
            written = self._git.submit(self.vault.write_units, batch.units)
        try:
            self._apply()
        finally:
            if written is not None:
                commits, parent = written.result()  # the commits are the point of no return
                self._applying = (batch, commits, parent)
                self.report.imported += len(batch.units)
                self.report.documents.extend(batch.documents)
                self.report.unsearchable.extend(batch.unsearchable)
        self._in_group += len(ready)
        if self._in_group >= INDEX_COMMIT_EVERY or time.monotonic() - self._since > GROUP_SECONDS:
            self._apply()
            self._held.close()
            self._in_group = 0

    def _apply(self) -> None:
        """The catalog transaction and index entries of the batch written last."""
        if self._applying is None:
            return
        _batch, commits, parent = self._applying
        self._applying = None
        self.vault.apply_units(commits, parent)
        self.vault.search_projection.apply_deferred(commits, commits[-1].sha, parent, defer=True)

    def _stage(self, ready: Sequence[tuple[ImportItem, Prepared]]) -> _Batch:
        documents = Documents(self.vault)
        known = documents.catalog.holders(prepared.sha256 for _, prepared in ready)
        batch = _Batch(next_seq=documents.catalog.next_seq())
        if self._applying is not None:  # written, not yet in the catalog
            before = self._applying[0]
            batch.next_seq = before.next_seq
            for version in before.versions:
                known.setdefault(version.sha256, []).append(version)
        for item, prepared in ready:
            held = known.get(prepared.sha256, [])
            if self.verdict(item, held) != "archive":
                continue
            staged = self._stage_one(documents, batch, item, prepared, held)
            if staged is not None:
                known.setdefault(staged.sha256, []).append(staged)
        return batch

    def _stage_one(
        self,
        documents: Documents,
        batch: _Batch,
        item: ImportItem,
        prepared: Prepared,
        held: list[DocumentVersion],
    ) -> DocumentVersion | None:
        try:
            data = read_file(item.path, self.limit)
        except VaultError as exc:
            self.report.refuse(item, str(exc))
            return None
        if hashlib.sha256(data).hexdigest() != prepared.sha256:
            self.report.refuse(item, "the file changed while it was being imported; run again")
            return None
        extraction = prepared.extraction
        assert extraction is not None
        seq = batch.next_seq
        draft = DocumentVersion(
            id=doc_id_for(seq),
            version=1,
            seq=seq,
            program=item.program,
            type=item.type,
            title=item.title
            or extraction.info.get("pdf_title")
            or extraction.info.get("title")
            or _stem_title(item.path),
            lot=item.lot,
            filename=item.path.name,
            size=0,
            sha256="",
            status=ACTIVE,
            action="import",
            recorded_at="",
            user=self.actor,
            reason=None,
            meta=item.meta,
            source_path=item.source_path,
            duplicate_of=held[0].id if held else None,
        )
        unit = UnitOfWork(self.vault, "import", self.actor, None)
        version = documents.stage(unit, draft, data, extraction)
        batch.next_seq = seq + 1
        batch.units.append(unit)
        batch.versions.append(version)
        batch.documents.append(
            {"path": str(item.path), "id": version.id, "title": version.title or ""}
        )
        if not extraction.searchable:
            batch.unsearchable.append(
                {"path": str(item.path), "id": version.id, "reason": extraction.reason or ""}
            )
        return version


def _stem_title(path: Path) -> str | None:
    """The file name without its extension: the title when none is given or embedded."""
    try:
        return values.title(path.stem)
    except VaultError:
        return None  # a name no title may carry (control characters): no title
