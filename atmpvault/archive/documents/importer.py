"""Bulk import: a folder or a CSV manifest, one document per file, resumable.

Everything is streamed, so the memory an import needs is bounded by its batches, not
by the size of the source or of the archive: the source is walked lazily (see
import_plan.py), a batch at a time; each batch is first checked against the catalog
(files already archived are skipped without extracting them, which makes a re-run of
an interrupted import cheap); text extraction runs in worker processes on every core,
a bounded number of batches ahead of the parent, which writes. Each batch becomes a run
of commits in one `git fast-import` stream (one commit per document, so every document
keeps its own history), then one catalog transaction and its index entries.

A file whose bytes are already archived under the same file name is skipped, so an
interrupted import is resumed by running it again; the same bytes under another name
are refused unless duplicates are allowed. That check is made again for every batch
under the write lock, against what is committed, so two imports of one folder racing
each other archive each file once. What is reported per file goes to a spool on disk.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from atmpvault.archive.documents.import_plan import (
    MANIFEST_COLUMNS,
    ImportItem,
    ImportPlan,
    ImportReport,
    plan_folder,
    plan_manifest,
)
from atmpvault.archive.documents.import_writer import BatchWriter
from atmpvault.archive.documents.records import DocumentVersion
from atmpvault.archive.documents.versions import (
    Documents,
    already_archived,
    max_bytes,
    read_file,
    same_file,
    sha256_of,
)
from atmpvault.errors import VaultError
from atmpvault.heap import bound_heap

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.indexer.extract import Extraction

__all__ = [
    "MANIFEST_COLUMNS",
    "ImportItem",
    "ImportPlan",
    "ImportReport",
    "plan_folder",
    "plan_manifest",
    "run_import",
]

BATCH = 256
CHUNK = 16  # files per task sent to a worker
AHEAD = 6  # batches extracted ahead of the one being written: workers stay busy, memory bounded

T = TypeVar("T")


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size`, taken as they come."""
    source = iter(items)
    while batch := list(islice(source, size)):
        yield batch


@dataclass(frozen=True)
class _Prepared:
    sha256: str
    size: int
    extraction: Extraction | None
    error: str | None


def _prepare(paths: list[str], limit: int) -> list[_Prepared]:
    """Hash and extract a chunk of files (runs in a worker process)."""
    from atmpvault.indexer.extract import extract

    out = []
    for name in paths:
        try:
            data = read_file(Path(name), limit)
        except VaultError as exc:
            out.append(_Prepared("", 0, None, str(exc)))
            continue
        out.append(
            _Prepared(
                hashlib.sha256(data).hexdigest(), len(data), extract(data, Path(name).name), None
            )
        )
    return out


def _prepared(
    items: Iterator[ImportItem], workers: int, limit: int
) -> Iterator[list[tuple[ImportItem, _Prepared]]]:
    """Batches of items with their hashes and text, extracted ahead in worker processes.

    At most AHEAD batches are in the workers' hands or waiting for the parent, so what
    is held does not depend on how many files there are.
    """
    if workers <= 1:
        for group in _batches(items, BATCH):
            yield list(zip(group, _prepare([str(i.path) for i in group], limit), strict=True))
        return
    chunks = _batches(items, CHUNK)
    limit_pending = max(1, BATCH // CHUNK) * AHEAD
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: deque[tuple[list[ImportItem], Future[list[_Prepared]]]] = deque()
        while True:
            while len(pending) < limit_pending and (chunk := next(chunks, None)) is not None:
                pending.append((chunk, pool.submit(_prepare, [str(i.path) for i in chunk], limit)))
            if not pending:
                return
            batch: list[tuple[ImportItem, _Prepared]] = []
            while pending and len(batch) < BATCH:
                chunk, future = pending.popleft()
                batch.extend(zip(chunk, future.result(), strict=True))
            yield batch


def _unarchived(
    vault: Vault,
    items: Iterable[ImportItem],
    report: ImportReport,
    progress: Callable[[int], None] | None,
    allow_duplicate: bool,
) -> Iterator[ImportItem]:
    """The items whose bytes are not archived yet, checked a batch at a time.

    Hashing first makes re-running an interrupted import cost one read per file
    instead of a text extraction. This is only a first pass, without the lock: each
    batch is checked again under it (see `_write_batch`), which is what makes the skip
    safe when two imports run at once, and what catches copies within this import.
    """
    limit = max_bytes(vault)
    for batch in _batches(items, BATCH):
        hashed = []
        for item in batch:
            try:
                hashed.append((item, sha256_of(item.path, limit)))
            except VaultError as exc:
                report.refuse(item, str(exc))
        known = Documents(vault).catalog.holders(digest for _, digest in hashed)
        done = len(batch) - len(hashed)
        for item, digest in hashed:
            if _verdict(item, known.get(digest, []), report, allow_duplicate) == "archive":
                yield item
            else:
                done += 1
        if progress and done:
            progress(done)


def _verdict(
    item: ImportItem, held: list[DocumentVersion], report: ImportReport, allow_duplicate: bool
) -> str:
    """ "archive", or "skip" (already archived under its name) or "refuse" (a copy), reported."""
    if not held:
        return "archive"
    holder = same_file(held, item.path.name)
    if holder is not None:
        report.skip(item, holder)
        return "skip"
    if allow_duplicate:
        return "archive"
    report.refuse(item, already_archived(held[0]))
    return "refuse"


def run_import(
    vault: Vault,
    items: Iterable[ImportItem],
    report: ImportReport,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    allow_duplicate: bool = False,
) -> ImportReport:
    """Archive `items`; files already archived under the same name are skipped.

    Files whose bytes another document holds under another name are refused, or with
    `allow_duplicate` archived anyway (recording which document they duplicate).
    """
    bound_heap()  # before the index writer's threads and the workers start
    fresh = _unarchived(vault, items, report, progress, allow_duplicate)
    workers = workers or os.cpu_count() or 1

    def verdict(item: ImportItem, held: list[DocumentVersion]) -> str:
        return _verdict(item, held, report, allow_duplicate)

    with BatchWriter(vault, report, verdict) as writer:
        for batch in _prepared(fresh, workers, max_bytes(vault)):
            ready = []
            for item, prepared in batch:
                if prepared.error:
                    report.refuse(item, prepared.error)
                else:
                    ready.append((item, prepared))
            if ready:
                writer.write(ready)
            if progress:
                progress(len(batch))
    return report
