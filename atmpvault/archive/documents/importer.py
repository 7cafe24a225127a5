"""Bulk import: a folder or a CSV manifest, one document per file, resumable.

Text extraction runs in worker processes on every core while the parent writes:
each batch becomes a run of commits in one `git fast-import` stream (one commit per
document, so every document keeps its own history), then one catalog transaction and
one index commit. A file whose bytes are already archived under the same file name is
skipped, so an interrupted import is resumed by running it again; the same bytes under
another name are refused unless duplicates are allowed. That check is made again for
every batch under the write lock, against what is committed, so two imports of one
folder racing each other archive each file once. File contents and texts are held
only a few batches at a time; the list of files and their hashes (under 1 KB a file)
is held for the whole import.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.changes import UnitOfWork
from atmpvault.archive.documents.records import ACTIVE, DocumentVersion, doc_id_for
from atmpvault.archive.documents.versions import (
    Documents,
    already_archived,
    max_bytes,
    read_file,
    same_file,
    sha256_of,
)
from atmpvault.errors import InvalidInput, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.indexer.extract import Extraction

BATCH = 256
INDEX_COMMIT_EVERY = 2048  # documents between engine commits (uncommitted ones are held in memory)
GROUP_SECONDS = 5.0  # longest an import holds the lock before letting other writers in
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
    source_path: str | None = None  # relative to the import root, as recorded


def _relative(path: Path, root: Path) -> str:
    """`path` relative to the import root, with forward slashes on every system."""
    return path.relative_to(root).as_posix()


@dataclass
class ImportReport:
    """What an import did; `refused` files never stopped the rest."""

    imported: int = 0
    skipped: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    unsearchable: list[dict[str, str]] = field(default_factory=list)
    documents: list[dict[str, str]] = field(default_factory=list)  # path, id, title
    already_archived: list[dict[str, str]] = field(default_factory=list)  # path, id
    symlinks_skipped: list[str] = field(default_factory=list)

    def skip(self, item: ImportItem, holder: DocumentVersion) -> None:
        self.skipped += 1
        self.already_archived.append({"path": str(item.path), "id": holder.id})

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
            "documents": self.documents,
            "already_archived": self.already_archived,
            "symlinks_skipped": self.symlinks_skipped,
        }


# -- planning ----------------------------------------------------------------------------


def plan_folder(
    vault: Vault, root: Path, program: str | None, doc_type: str | None, report: ImportReport
) -> list[ImportItem]:
    """Every regular file under `root` (or `root` itself, a file), in a stable order.

    Dotfiles and symbolic links are skipped (listed in the report, not refused);
    named pipes, sockets and devices are refused.
    """
    if program is None or doc_type is None:
        raise InvalidInput("importing a folder needs --program and --type (or use --manifest)")
    program = values.program(program)
    doc_type = vault.document_type(doc_type)
    if not root.is_dir():
        return [
            ImportItem(
                path=root, program=program, type=doc_type, label=str(root), source_path=root.name
            )
        ]
    items = []
    for dirpath, dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        report.symlinks_skipped.extend(
            str(folder / d) for d in sorted(dirnames) if (folder / d).is_symlink()
        )
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (folder / d).is_symlink()
        )
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = folder / name
            try:
                mode = path.lstat().st_mode
            except OSError as exc:
                report.refuse(str(path), f"cannot read: {exc.strerror}")
                continue
            if stat.S_ISLNK(mode):
                report.symlinks_skipped.append(str(path))
                continue
            if not stat.S_ISREG(mode):
                report.refuse(str(path), "not a regular file (a named pipe, socket or device)")
                continue
            items.append(
                ImportItem(
                    path=path,
                    program=program,
                    type=doc_type,
                    label=str(path),
                    source_path=_relative(path, root),
                )
            )
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
    items = []
    with io.StringIO(_manifest_text(manifest), newline="") as handle:
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
                        source_path=_relative(path, base),
                    )
                except VaultError as exc:
                    report.refused.append({"path": raw_path, "error": f"{label}: {exc}"})
                    continue
                items.append(item)
        except csv.Error as exc:
            raise InvalidInput(f"manifest {manifest} line {reader.line_num}: {exc}") from None
    return items


def _manifest_text(manifest: Path) -> str:
    """The manifest's text: UTF-8 (with or without a BOM) or UTF-16 with a BOM.

    Anything else (Latin-1, Windows-1252, UTF-16 without a BOM) is refused as a whole,
    naming the first line that is not text in that encoding: guessing would archive
    documents under titles and paths nobody wrote.
    """
    try:
        data = manifest.read_bytes()
    except OSError as exc:
        raise VaultError(f"cannot read manifest {manifest}: {exc.strerror}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, name = "utf-16", "UTF-16"
    else:
        encoding, name = "utf-8", "UTF-8"
        data = data.removeprefix(codecs.BOM_UTF8)
    advice = "save it as UTF-8, or UTF-16 with a byte order mark"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].decode(encoding, "replace").count("\n") + 1
        raise InvalidInput(
            f"manifest {manifest} line {line}: not {name} text "
            f"(byte 0x{data[exc.start]:02x}); {advice}"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InvalidInput(
            f"manifest {manifest} line {line}: contains a NUL character "
            f"(UTF-16 without a byte order mark?); {advice}"
        )
    return text.removeprefix("\ufeff")


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
    items: list[ImportItem], workers: int, limit: int
) -> Iterator[list[tuple[ImportItem, _Prepared]]]:
    """Batches of items with their hashes and text, extracted ahead in worker processes."""
    chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
    per_batch = max(1, BATCH // CHUNK)
    if workers <= 1:
        for start in range(0, len(chunks), per_batch):
            group = [c for chunk in chunks[start : start + per_batch] for c in chunk]
            yield list(zip(group, _prepare([str(i.path) for i in group], limit), strict=True))
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: list[tuple[list[ImportItem], Future[list[_Prepared]]]] = []
        position = 0
        ahead = per_batch * 2
        while position < len(chunks) or pending:
            while position < len(chunks) and len(pending) < ahead:
                chunk = chunks[position]
                pending.append((chunk, pool.submit(_prepare, [str(i.path) for i in chunk], limit)))
                position += 1
            batch: list[tuple[ImportItem, _Prepared]] = []
            while pending and len(batch) < BATCH:
                chunk, future = pending.pop(0)
                batch.extend(zip(chunk, future.result(), strict=True))
            yield batch


def _unarchived(
    vault: Vault,
    items: list[ImportItem],
    report: ImportReport,
    progress: Callable[[int], None] | None,
    allow_duplicate: bool,
) -> list[ImportItem]:
    """The items whose bytes were not archived when the import started.

    Hashing first makes re-running an interrupted import cost one read per file
    instead of a text extraction. This is only a first pass, without the lock: each
    batch is checked again under it (see `_write_batch`), which is what makes the skip
    safe when two imports run at once, and what catches copies within this import.
    """
    fresh: list[ImportItem] = []
    limit = max_bytes(vault)
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
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
                fresh.append(item)
            else:
                done += 1
        if progress and done:
            progress(done)
    return fresh


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
    items: list[ImportItem],
    report: ImportReport,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    allow_duplicate: bool = False,
) -> ImportReport:
    """Archive `items`; files already archived under the same name are skipped.

    Files whose bytes another document holds under another name are refused, or with
    `allow_duplicate` archived anyway (recording which document they duplicate).
    """
    actor = vault.actor
    limit = max_bytes(vault)
    fresh = _unarchived(vault, items, report, progress, allow_duplicate)
    # The lock is held for a group of batches, so the index commits once a group (an
    # engine commit costs as much as indexing thousands of documents); releasing it
    # commits the index and lets other writers in, at the latest after GROUP_SECONDS so
    # an `add` beside a long import waits seconds, not its lock timeout.
    held = ExitStack()
    in_group, since = 0, 0.0
    with held:
        for batch in _prepared(fresh, workers or os.cpu_count() or 1, limit):
            ready = []
            for item, prepared in batch:
                if prepared.error:
                    report.refuse(item, prepared.error)
                else:
                    ready.append((item, prepared))
            if ready:
                if in_group == 0:
                    held.enter_context(vault.writing())
                    since = time.monotonic()
                _write_batch(vault, ready, actor, report, allow_duplicate)
                in_group += len(ready)
                if in_group >= INDEX_COMMIT_EVERY or time.monotonic() - since > GROUP_SECONDS:
                    held.close()
                    in_group = 0
            if progress:
                progress(len(batch))
    return report


def _write_batch(
    vault: Vault,
    batch: Iterable[tuple[ImportItem, _Prepared]],
    actor: str,
    report: ImportReport,
    allow_duplicate: bool,
) -> None:
    """One fast-import stream, one catalog transaction, its index entries (committed when
    the lock is let go).

    Under the lock, with the catalog brought to the last commit, every file is checked
    again against what is archived now (another import may have written it while this
    one waited) and against the files before it in this batch.
    """
    limit = max_bytes(vault)
    with vault.writing():
        documents = Documents(vault)
        known = documents.catalog.holders(prepared.sha256 for _, prepared in batch)
        seq = documents.catalog.next_seq()
        units: list[UnitOfWork] = []
        staged: list[dict[str, str]] = []
        for item, prepared in batch:
            held = known.get(prepared.sha256, [])
            if _verdict(item, held, report, allow_duplicate) != "archive":
                continue
            try:
                data = read_file(item.path, limit)
            except VaultError as exc:
                report.refuse(item, str(exc))
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
                or _stem_title(item.path),
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
                source_path=item.source_path,
                duplicate_of=held[0].id if held else None,
            )
            unit = UnitOfWork(vault, "import", actor, None)
            version = documents.stage(unit, draft, data, extraction)
            seq += 1
            units.append(unit)
            known.setdefault(version.sha256, []).append(version)
            staged.append({"path": str(item.path), "id": version.id, "title": version.title or ""})
            if not extraction.searchable:
                report.unsearchable.append(
                    {"path": str(item.path), "id": version.id, "reason": extraction.reason or ""}
                )
        if not units:
            return
        commits = vault.commit_units(units)
        vault.search_projection.apply_deferred(
            commits, commits[-1].sha, units[0].parent, defer=True
        )
        report.imported += len(units)
        report.documents.extend(staged)


def _stem_title(path: Path) -> str | None:
    """The file name without its extension: the title when none is given or embedded."""
    try:
        return values.title(path.stem)
    except VaultError:
        return None  # a name no title may carry (control characters): no title
