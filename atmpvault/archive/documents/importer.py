"""Bulk import: a folder or a CSV manifest, one document per file, resumable.

Text extraction runs in worker processes on every core while the parent writes:
each batch becomes a run of commits in one `git fast-import` stream (one commit per
document, so every document keeps its own history), then one catalog transaction and
one index commit. Files already archived with the same SHA-256 are skipped, so an
interrupted import is resumed by running it again. File contents and texts are held
only a few batches at a time; the list of files and their hashes (under 1 KB a file)
is held for the whole import.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.changes import UnitOfWork
from atmpvault.archive.documents.records import ACTIVE, DocumentVersion, doc_id_for
from atmpvault.archive.documents.versions import Documents
from atmpvault.errors import InvalidInput, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.indexer.extract import Extraction

BATCH = 256
INDEX_COMMIT_EVERY = 2048  # documents between engine commits (uncommitted ones are held in memory)
CHUNK = 16  # files per task sent to a worker
MANIFEST_COLUMNS = ("path", "program", "type", "title", "lot")


@dataclass(frozen=True)
class ImportItem:
    """One file to import, with the metadata it will be archived under."""

    path: Path
    program: str
    type: str
    title: str | None = None
    lot: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    label: str = ""  # how problems name it: the path, or "manifest line N"


@dataclass
class ImportReport:
    """What an import did; `refused` files never stopped the rest."""

    imported: int = 0
    skipped: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    unsearchable: list[dict[str, str]] = field(default_factory=list)

    def refuse(self, item: ImportItem | str, error: str) -> None:
        path = str(item.path) if isinstance(item, ImportItem) else item
        label = item.label if isinstance(item, ImportItem) else ""
        self.refused.append({"path": path, "error": f"{label}: {error}" if label else error})

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "skipped": self.skipped,
            "refused": self.refused,
            "unsearchable": self.unsearchable,
        }


# -- planning ----------------------------------------------------------------------------


def plan_folder(
    vault: Vault, root: Path, program: str | None, doc_type: str | None, report: ImportReport
) -> list[ImportItem]:
    """Every regular file under `root`, in a stable order, archived under one program and type."""
    if program is None or doc_type is None:
        raise InvalidInput("importing a folder needs --program and --type (or use --manifest)")
    program = values.program(program)
    doc_type = vault.document_type(doc_type)
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.is_symlink():
                report.refuse(str(path), "symbolic links are not imported; archive the file itself")
                continue
            items.append(ImportItem(path=path, program=program, type=doc_type, label=str(path)))
    return items


def plan_manifest(
    vault: Vault,
    manifest: Path,
    program: str | None,
    doc_type: str | None,
    report: ImportReport,
) -> list[ImportItem]:
    """The rows of a CSV manifest; a malformed row is refused with its line number."""
    base = manifest.parent.resolve()
    try:
        handle = manifest.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise VaultError(f"cannot read manifest {manifest}: {exc.strerror}") from None
    items = []
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        required = ["path"] + [
            name for name, default in (("program", program), ("type", doc_type)) if default is None
        ]
        missing = [c for c in required if c not in columns]
        if missing:
            raise InvalidInput(
                f"manifest {manifest} line 1: missing column(s) {', '.join(missing)}; "
                f"expected {', '.join(MANIFEST_COLUMNS)} and optional meta.* columns"
            )
        unknown = [c for c in columns if c not in MANIFEST_COLUMNS and not c.startswith("meta.")]
        if unknown:
            raise InvalidInput(
                f"manifest {manifest} line 1: unknown column(s) {', '.join(unknown)}"
            )
        try:
            for row in reader:
                line = reader.line_num
                label = f"{manifest.name} line {line}"
                raw_path = (row.get("path") or "").strip()
                try:
                    path = _manifest_path(base, raw_path)
                    item = ImportItem(
                        path=path,
                        program=values.program((row.get("program") or program or "").strip()),
                        type=vault.document_type((row.get("type") or doc_type or "").strip()),
                        title=values.title(row.get("title")),
                        lot=values.lot((row.get("lot") or "").strip() or None),
                        meta=values.meta(
                            [
                                f"{k[5:]}={v}"
                                for k, v in row.items()
                                if k and k.startswith("meta.") and v and v.strip()
                            ]
                        ),
                        label=label,
                    )
                except VaultError as exc:
                    report.refused.append({"path": raw_path, "error": f"{label}: {exc}"})
                    continue
                items.append(item)
        except csv.Error as exc:
            raise InvalidInput(f"manifest {manifest} line {reader.line_num}: {exc}") from None
    return items


def _manifest_path(base: Path, raw: str) -> Path:
    if not raw:
        raise InvalidInput("path is empty")
    if "\x00" in raw:
        raise InvalidInput("path contains a NUL character")
    candidate = Path(raw)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise InvalidInput(
            f"path {raw!r} must stay inside the manifest's folder (no '..' or absolute paths)"
        )
    path = base / candidate
    if not path.resolve().is_relative_to(base):
        raise InvalidInput(f"path {raw!r} leads outside the manifest's folder")
    if not path.is_file():
        raise InvalidInput(f"no such file: {raw}")
    return path


# -- running -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    sha256: str
    size: int
    extraction: Extraction | None
    error: str | None


def _prepare(paths: list[str]) -> list[_Prepared]:
    """Hash and extract a chunk of files (runs in a worker process)."""
    from atmpvault.indexer.extract import extract

    out = []
    for name in paths:
        try:
            data = Path(name).read_bytes()
        except OSError as exc:
            out.append(_Prepared("", 0, None, f"cannot read: {exc.strerror}"))
            continue
        out.append(
            _Prepared(
                hashlib.sha256(data).hexdigest(), len(data), extract(data, Path(name).name), None
            )
        )
    return out


def _prepared(
    items: list[ImportItem], workers: int
) -> Iterator[list[tuple[ImportItem, _Prepared]]]:
    """Batches of items with their hashes and text, extracted ahead in worker processes."""
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    per_batch = max(1, BATCH // CHUNK)
    if workers <= 1:
        for start in range(0, len(chunks), per_batch):
            group = [c for chunk in chunks[start : start + per_batch] for c in chunk]
            yield list(zip(group, _prepare([str(i.path) for i in group]), strict=True))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[list[ImportItem], Future[list[_Prepared]]]] = []
        position = 0
        ahead = per_batch * 2
        while position < len(chunks) or pending:
            while position < len(chunks) and len(pending) < ahead:
                chunk = chunks[position]
                pending.append((chunk, pool.submit(_prepare, [str(i.path) for i in chunk])))
                position += 1
            batch: list[tuple[ImportItem, _Prepared]] = []
            while pending and len(batch) < BATCH:
                chunk, future = pending.pop(0)
                batch.extend(zip(chunk, future.result(), strict=True))
            yield batch


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _unarchived(
    vault: Vault,
    items: list[ImportItem],
    report: ImportReport,
    progress: Callable[[int], None] | None,
) -> list[ImportItem]:
    """The items whose bytes are not archived yet (nor repeated earlier in this import).

    Hashing first makes re-running an interrupted import cost one read per file
    instead of a text extraction.
    """
    fresh: list[ImportItem] = []
    seen: set[str] = set()
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        hashed = []
        for item in batch:
            try:
                hashed.append((item, _sha256(item.path)))
            except OSError as exc:
                report.refuse(item, f"cannot read: {exc.strerror}")
        known = Documents(vault).catalog.known_hashes([digest for _, digest in hashed])
        repeated = 0
        for item, digest in hashed:
            if digest in known or digest in seen:
                repeated += 1
                continue
            seen.add(digest)
            fresh.append(item)
        report.skipped += repeated
        if progress and repeated:
            progress(repeated)
    return fresh


def run_import(
    vault: Vault,
    items: list[ImportItem],
    report: ImportReport,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Archive `items`, skipping files already archived with the same SHA-256."""
    actor = vault.actor
    since_flush = 0
    fresh = _unarchived(vault, items, report, progress)
    for batch in _prepared(fresh, workers or os.cpu_count() or 1):
        ready = []
        for item, prepared in batch:
            if prepared.error:
                report.refuse(item, prepared.error)
            else:
                ready.append((item, prepared))
        if ready:
            since_flush += len(ready)
            flush = since_flush >= INDEX_COMMIT_EVERY
            _write_batch(vault, ready, actor, report, flush)
            since_flush = 0 if flush else since_flush
        if progress:
            progress(len(batch))
    with vault.writing(catch_up=False):
        vault.search_projection.flush()
    return report


def _write_batch(
    vault: Vault,
    batch: Iterable[tuple[ImportItem, _Prepared]],
    actor: str,
    report: ImportReport,
    flush: bool,
) -> None:
    """One lock, one fast-import stream, one catalog transaction, one index commit."""
    with vault.writing():
        documents = Documents(vault)
        seq = documents.catalog.next_seq()
        units: list[UnitOfWork] = []
        for item, prepared in batch:
            try:
                data = item.path.read_bytes()
            except OSError as exc:
                report.refuse(item, f"cannot read: {exc.strerror}")
                continue
            if hashlib.sha256(data).hexdigest() != prepared.sha256:
                report.refuse(item, "the file changed while it was being imported; run again")
                continue
            extraction = prepared.extraction
            assert extraction is not None
            draft = DocumentVersion(
                id=doc_id_for(seq),
                version=1,
                seq=seq,
                program=item.program,
                type=item.type,
                title=item.title
                or extraction.info.get("pdf_title")
                or extraction.info.get("title")
                or None,
                lot=item.lot,
                filename=item.path.name,
                size=0,
                sha256="",
                status=ACTIVE,
                action="import",
                recorded_at="",
                user=actor,
                reason=None,
                meta=item.meta,
            )
            unit = UnitOfWork(vault, "import", actor, None)
            version = documents.stage(unit, draft, data, extraction)
            seq += 1
            units.append(unit)
            if not extraction.searchable:
                report.unsearchable.append(
                    {"path": str(item.path), "id": version.id, "reason": extraction.reason or ""}
                )
        if not units:
            return
        commits = vault.commit_units(units)
        vault.search_projection.apply_deferred(
            commits, commits[-1].sha, units[0].parent, defer=not flush
        )
        report.imported += len(units)
