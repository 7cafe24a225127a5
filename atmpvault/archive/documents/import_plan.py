"""What a bulk import is given and what it reports: the files to archive, found lazily.

A folder is walked one directory at a time and a manifest read row by row, so the list
of files is never held whole: an import of a million files holds a few batches of them.
What the import reports per file (which file became which document, which were already
archived) goes to a spool on disk and is read back once, when the report is written.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.errors import InvalidInput, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.records import DocumentVersion

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


class Spool:
    """A list of report entries kept in a temporary file, not in memory.

    An import of 100,000 files would otherwise hold 100,000 entries (about 50 MB) until
    the end. The file is unlinked on creation, so nothing is left behind, even by a
    killed import.
    """

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self._count = 0

    def append(self, entry: dict[str, str]) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._count += 1

    def extend(self, entries: list[dict[str, str]]) -> None:
        for entry in entries:
            self.append(entry)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[dict[str, str]]:
        if self._file is None:
            return
        self._file.flush()
        with open(self._file.fileno(), encoding="utf-8", closefd=False) as reader:
            reader.seek(0)
            for line in reader:
                yield json.loads(line)

    def __getitem__(self, index: int) -> dict[str, str]:
        return list(self)[index]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class ImportReport:
    """What an import did; `refused` files never stopped the rest."""

    imported: int = 0
    skipped: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    unsearchable: list[dict[str, str]] = field(default_factory=list)
    documents: Spool = field(default_factory=Spool)  # path, id, title
    already_archived: Spool = field(default_factory=Spool)  # path, id
    symlinks_skipped: list[str] = field(default_factory=list)

    def skip(self, item: ImportItem, holder: DocumentVersion) -> None:
        self.skipped += 1
        self.already_archived.append({"path": str(item.path), "id": holder.id})

    def refuse(self, item: ImportItem | str, error: str) -> None:
        path = str(item.path) if isinstance(item, ImportItem) else item
        label = item.label if isinstance(item, ImportItem) else ""
        self.refused.append({"path": path, "error": f"{label}: {error}" if label else error})

    def to_json(self) -> dict[str, Any]:
        """The report as one dictionary (every spooled entry read back into memory)."""
        return {
            name: list(value) if isinstance(value, Spool) else value
            for name, value in self._fields()
        }

    def write_json(self, out: IO[str]) -> None:
        """The report as `to_json` would print it (indented), spooled entries streamed."""
        fields = self._fields()
        out.write("{\n")
        for n, (name, value) in enumerate(fields, start=1):
            out.write(f"  {json.dumps(name)}: ")
            if isinstance(value, Spool) and value:
                out.write("[")
                for k, entry in enumerate(value):
                    text = json.dumps(entry, indent=2, ensure_ascii=False)
                    out.write(("," if k else "") + "\n    " + text.replace("\n", "\n    "))
                out.write("\n  ]")
            else:
                shown = [] if isinstance(value, Spool) else value
                text = json.dumps(shown, indent=2, ensure_ascii=False)
                out.write(text.replace("\n", "\n  "))
            out.write(",\n" if n < len(fields) else "\n")
        out.write("}\n")

    def _fields(self) -> list[tuple[str, Any]]:
        return [
            ("imported", self.imported),
            ("skipped", self.skipped),
            ("refused", self.refused),
            ("unsearchable", self.unsearchable),
            ("documents", self.documents),
            ("already_archived", self.already_archived),
            ("symlinks_skipped", self.symlinks_skipped),
        ]

    def close(self) -> None:
        """Let go of the spools' temporary files."""
        self.documents.close()
        self.already_archived.close()


# -- planning ----------------------------------------------------------------------------


class ImportPlan:
    """The files to import, found as they are asked for (a walk, or a manifest's rows).

    Problems found on the way (a named pipe, a malformed row) go to the report as the
    files are reached. `count` walks once more, reporting nothing, for a progress bar.
    """

    def __init__(self, walk: Callable[[ImportReport], Iterator[ImportItem]], report: ImportReport):
        self._walk = walk
        self._report = report

    def __iter__(self) -> Iterator[ImportItem]:
        return self._walk(self._report)

    def count(self) -> int:
        """How many files the import will be handed (a second walk, without reporting)."""
        scratch = ImportReport()
        try:
            return sum(1 for _ in self._walk(scratch))
        finally:
            scratch.close()


def plan_folder(
    vault: Vault, root: Path, program: str | None, doc_type: str | None, report: ImportReport
) -> ImportPlan:
    """Every regular file under `root` (or `root` itself, a file), in a stable order.

    Dotfiles and symbolic links are skipped (listed in the report, not refused);
    named pipes, sockets and devices are refused.
    """
    if program is None or doc_type is None:
        raise InvalidInput("importing a folder needs --program and --type (or use --manifest)")
    program = values.program(program)
    doc_type = vault.document_type(doc_type)
    if not root.is_dir():
        one = ImportItem(
            path=root, program=program, type=doc_type, label=str(root), source_path=root.name
        )
        return ImportPlan(lambda _report: iter([one]), report)
    return ImportPlan(lambda found: _walk(root, program, doc_type, found), report)


def _walk(root: Path, program: str, doc_type: str, report: ImportReport) -> Iterator[ImportItem]:
    """The files under `root`, one directory at a time, each directory in name order."""
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
            yield ImportItem(
                path=path,
                program=program,
                type=doc_type,
                label=str(path),
                source_path=_relative(path, root),
            )


def plan_manifest(
    vault: Vault,
    manifest: Path,
    program: str | None,
    doc_type: str | None,
    report: ImportReport,
) -> ImportPlan:
    """The rows of a CSV manifest; a malformed row is refused with its line number.

    The header, and that the whole file is well-formed CSV, are checked now: a manifest
    that cannot be read is refused before anything is archived.
    """
    text = _manifest_text(manifest)
    with io.StringIO(text, newline="") as handle:
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
            for _row in reader:
                pass
        except csv.Error as exc:
            raise InvalidInput(f"manifest {manifest} line {reader.line_num}: {exc}") from None
    return ImportPlan(
        lambda found: _manifest_rows(vault, manifest, text, program, doc_type, found), report
    )


def _manifest_rows(
    vault: Vault,
    manifest: Path,
    text: str,
    program: str | None,
    doc_type: str | None,
    report: ImportReport,
) -> Iterator[ImportItem]:
    base = manifest.parent.resolve()
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
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
            yield item


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
