"""Documents and their versions: the record kept beside each version's bytes."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from atmpvault.archive.core import values
from atmpvault.archive.documents.records import (
    ACTIVE,
    CONTENT,
    KIND,
    RECORD,
    TEXT,
    WITHDRAWN,
    DocumentVersion,
    doc_dir,
    doc_id_for,
)
from atmpvault.errors import AlreadyArchived, InvalidInput, NotFound, NothingChanged, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.tables import DocumentCatalog, Filters
    from atmpvault.indexer.extract import Extraction


def extract_text(data: bytes, filename: str) -> Extraction:
    """The searchable text of a file, or why there is none."""
    from atmpvault.indexer.extract import extract

    return extract(data, filename)


MB = 1 << 20


def max_bytes(vault: Vault) -> int:
    """The largest file this vault's add and import read (settings.max_file_mb)."""
    return vault.settings.max_file_mb * MB


@contextmanager
def open_regular(path: Path, limit: int) -> Iterator[IO[bytes]]:
    """A regular file of at most `limit` bytes opened for reading, or a clear error.

    Opened without blocking, then checked with fstat on the open file: a FIFO would
    block a plain open until some writer came, and a device (/dev/zero) never ends.
    """
    if path.is_dir():
        raise VaultError(f"{path} is a directory; archive one file at a time (or use import)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except OSError as exc:
        raise VaultError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise VaultError(f"{path} is {_not_regular(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise VaultError(too_large(path, info.st_size, limit))
        os.set_blocking(fd, True)
        yield handle


def too_large(path: Path, size: int, limit: int) -> str:
    """The refusal for a file over the size limit."""
    return (
        f"{path} is {size / MB:.1f} MB, over the {limit // MB} MB limit for one file "
        "(ATMPVAULT_MAX_FILE_MB)"
    )


def _not_regular(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a directory" if stat.S_ISDIR(mode) else "not a file"


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file to archive (at most `limit`), or a clear error."""
    with open_regular(path, limit) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise VaultError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:  # it grew after fstat
        raise VaultError(too_large(path, len(data), limit))
    return data


def sha256_of(path: Path, limit: int) -> str:
    """The SHA-256 of a regular file, read in blocks (never whole into memory)."""
    digest = hashlib.sha256()
    read = 0
    with open_regular(path, limit) as handle:
        try:
            while block := handle.read(MB):
                read += len(block)
                if read > limit:
                    raise VaultError(too_large(path, read, limit))
                digest.update(block)
        except OSError as exc:
            raise VaultError(f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()


def same_file(held: list[DocumentVersion], filename: str) -> DocumentVersion | None:
    """The document already holding these bytes under this file name, if any.

    Identical bytes under an identical name are the same file archived before (an
    import run again, or a second import racing the first); under another name they
    are a copy, archived again only on purpose.
    """
    return next((v for v in held if v.filename == filename), None)


def already_archived(holder: DocumentVersion) -> str:
    """The refusal for bytes another document already holds."""
    return (
        f"identical bytes are already archived as {holder.id} v{holder.version} "
        f"({holder.filename}); --allow-duplicate archives them anyway"
    )


def _filename(path: Path) -> str:
    name = path.name
    if values.text(name, "file name", 255) is None:
        raise InvalidInput(f"{path} has no usable file name")
    return name


class Documents:
    """Archiving and retrieving document versions."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    @property
    def catalog(self) -> DocumentCatalog:
        from atmpvault.archive.documents.tables import DocumentCatalog

        return DocumentCatalog(self.vault.catalog)

    # -- writing ---------------------------------------------------------------------

    def add(
        self,
        path: Path,
        program: str,
        type: str,
        title: str | None = None,
        lot: str | None = None,
        meta: dict[str, str] | None = None,
        actor: str | None = None,
        allow_duplicate: bool = False,
    ) -> DocumentVersion:
        """Archive a new document as version 1, unless another document has the same bytes."""
        vault = self.vault
        draft = DocumentVersion(
            id="",
            version=1,
            seq=0,
            program=values.program(program),
            type=vault.document_type(type),
            title=values.title(title),
            lot=values.lot(lot),
            filename=_filename(path),
            size=0,
            sha256="",
            status=ACTIVE,
            action="add",
            recorded_at="",
            user=values.user(actor) if actor else vault.actor,
            reason=None,
            meta=meta or {},
        )
        data = read_file(path, max_bytes(vault))
        digest = hashlib.sha256(data).hexdigest()
        catalog = self.catalog
        with vault.writing():
            held = catalog.holders([digest]).get(digest, [])
            holder = same_file(held, draft.filename) or (held[0] if held else None)
            if holder is not None and not allow_duplicate:
                raise AlreadyArchived(f"{path}: {already_archived(holder)}")
            seq = catalog.next_seq()
            draft = replace(
                draft, id=doc_id_for(seq), seq=seq, duplicate_of=holder.id if holder else None
            )
            return self._write(draft, data)

    def stage_new(
        self,
        unit: UnitOfWork,
        data: bytes,
        filename: str,
        program: str,
        type: str,
        title: str | None = None,
        lot: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> DocumentVersion:
        """Put a new document (version 1) into another workflow's unit of work, so it is
        archived in the same commit as the step that made it (a closure package)."""
        seq = self.next_seq(unit)
        draft = DocumentVersion(
            id=doc_id_for(seq), version=1, seq=seq, program=values.program(program),
            type=self.vault.document_type(type), title=values.title(title),
            lot=values.lot(lot), filename=filename, size=0, sha256="", status=ACTIVE,
            action="add", recorded_at="", user=unit.actor, reason=None, meta=meta or {},
        )  # fmt: skip
        subject, trailers = unit.subject, dict(unit.trailers)
        version = self.stage(unit, draft, data, extract_text(data, filename))
        unit.subject = subject or unit.subject  # the step names the commit, not its document
        unit.trailers.update(trailers)
        return version

    def next_seq(self, unit: UnitOfWork) -> int:
        """The sequence number the next document staged in `unit` gets, so a step can
        name its document before making it (a signed record that points to its package)."""
        seq = self.catalog.next_seq()
        return max([seq, *(int(i[4:]) + 1 for k, i, _v in unit.touched if k == KIND.name)])

    def stage_revision(
        self, unit: UnitOfWork, doc_id: str, data: bytes, filename: str, reason: str
    ) -> DocumentVersion:
        """Put the next version of a document into another workflow's unit of work (a
        re-issued certificate), in the same commit as the step that made it."""
        current = self._current(doc_id)
        if current.status == WITHDRAWN:
            raise VaultError(f"{doc_id} was withdrawn in version {current.version}")
        version = replace(
            current, version=current.version + 1, filename=filename, action="revise",
            user=unit.actor, reason=values.reason(reason), source_path=None,
            duplicate_of=None, commit="",
        )  # fmt: skip
        subject, trailers = unit.subject, dict(unit.trailers)
        version = self.stage(unit, version, data, extract_text(data, filename))
        unit.subject = subject or unit.subject
        unit.trailers.update(trailers)
        return version

    def revise(
        self,
        doc_id: str,
        path: Path,
        reason: str,
        title: str | None = None,
        lot: str | None = None,
        meta: dict[str, str] | None = None,
        actor: str | None = None,
    ) -> DocumentVersion:
        """Archive the next version of a document; its bytes must differ."""
        vault = self.vault
        doc_id = values.doc_id(doc_id)
        why = values.reason(reason)
        new_title, new_lot = values.title(title), values.lot(lot)
        who = values.user(actor) if actor else vault.actor
        filename = _filename(path)
        data = read_file(path, max_bytes(vault))
        with vault.writing():
            current = self._current(doc_id)
            if current.status == WITHDRAWN:
                raise VaultError(
                    f"{doc_id} was withdrawn in version {current.version}; it cannot be revised"
                )
            digest = hashlib.sha256(data).hexdigest()
            if digest == current.sha256:
                raise NothingChanged(
                    f"nothing changed: {path} is identical to {doc_id} version {current.version}"
                )
            merged = dict(current.meta)
            merged.update(meta or {})
            version = replace(
                current,
                version=current.version + 1,
                title=new_title or current.title,
                lot=new_lot or current.lot,
                filename=filename,
                action="revise",
                user=who,
                reason=why,
                meta=merged,
                source_path=None,  # new bytes, given to add --id, not imported
                duplicate_of=None,
                commit="",
            )
            return self._write(version, data)

    def withdraw(self, doc_id: str, reason: str, actor: str | None = None) -> DocumentVersion:
        """Record that a document is withdrawn, as a new version; nothing is deleted."""
        vault = self.vault
        doc_id = values.doc_id(doc_id)
        why = values.reason(reason)
        who = values.user(actor) if actor else vault.actor
        with vault.writing():
            current = self._current(doc_id)
            if current.status == WITHDRAWN:
                raise VaultError(f"{doc_id} is already withdrawn (version {current.version})")
            version = replace(
                current,
                version=current.version + 1,
                status=WITHDRAWN,
                action="withdraw",
                user=who,
                reason=why,
                commit="",
            )
            return self._write(version, None)

    def _write(self, version: DocumentVersion, data: bytes | None) -> DocumentVersion:
        """Commit one version as one unit of work, then bring the catalog to it."""
        extraction = extract_text(data, version.filename) if data is not None else None
        with self.vault.unit(version.action, "", reason=version.reason, actor=version.user) as unit:
            version = self.stage(unit, version, data, extraction)
        assert unit.commit is not None
        return replace(version, commit=unit.commit)

    def stage(
        self,
        unit: UnitOfWork,
        version: DocumentVersion,
        data: bytes | None,
        extraction: Extraction | None,
    ) -> DocumentVersion:
        """Put `version` into a unit of work: its bytes (None: unchanged), text and record."""
        where = doc_dir(version.id)
        files: dict[str, bytes | None] = {}
        if data is not None:
            assert extraction is not None
            version = replace(
                version,
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                searchable=extraction.searchable,
                unsearchable_reason=extraction.reason,
                pages=extraction.pages,
            )
            files[f"{where}/{CONTENT}"] = data
            if extraction.searchable:
                files[f"{where}/{TEXT}"] = extraction.text.encode("utf-8")
                unit.texts[version.id] = extraction.text
            elif version.version > 1:
                files[f"{where}/{TEXT}"] = None  # the old text no longer describes the bytes
            else:
                unit.texts[version.id] = ""
        from atmpvault.archive.core.changes import RecordChange  # writers only

        version = replace(version, recorded_at=values.iso(unit.when))
        raw = version.record()
        path = f"{where}/{RECORD}"
        unit.write(
            files,
            RecordChange(KIND, version.id, path, KIND.decode(raw, path), raw),
            version.version,
        )
        subject = f"{version.action} {version.id} v{version.version}"
        if version.title:
            subject += f": {version.title[:60]}"
        unit.subject = subject
        unit.trailers.update({"Document": version.id, "Version": str(version.version)})
        return version

    # -- reading ---------------------------------------------------------------------

    def _current(self, doc_id: str) -> DocumentVersion:
        found = self.catalog.version(doc_id)
        if found is None:
            raise NotFound(f"no document {doc_id} in this vault")
        return found

    def show(
        self, doc_id: str, version: int | None = None, as_of: str | None = None
    ) -> DocumentVersion:
        """One version: the latest, a numbered one, or the one current at a time."""
        doc_id = values.doc_id(doc_id)
        catalog = self.catalog
        found = catalog.version(doc_id, version, as_of)
        if found is not None:
            return found
        latest = self._current(doc_id)
        if version is not None:
            raise NotFound(
                f"{doc_id} has versions 1 to {latest.version}; there is no version {version}"
            )
        first = catalog.version(doc_id, 1)
        assert first is not None and as_of is not None
        raise NotFound(
            f"{doc_id} did not exist yet at {as_of}; its first version was recorded at "
            f"{first.recorded_at}"
        )

    def get(
        self, doc_id: str, out: IO[bytes], version: int | None = None, as_of: str | None = None
    ) -> DocumentVersion:
        """Write the exact archived bytes of one version to `out`."""
        found = self.show(doc_id, version, as_of)
        self.vault.store.stream(found.commit, f"{doc_dir(found.id)}/{CONTENT}", out)
        return found

    def history(self, doc_id: str) -> list[DocumentVersion]:
        """Every version of a document, oldest first."""
        doc_id = values.doc_id(doc_id)
        found = self.catalog.versions(doc_id)
        if not found:
            raise NotFound(f"no document {doc_id} in this vault")
        return found

    def ls(self, filters: Filters, as_of: str | None = None) -> list[DocumentVersion]:
        """The latest version of each document (as it stood at `as_of`)."""
        return self.catalog.latest(filters, as_of)


def signable(
    vault: Vault, kind: str, doc_id: str, version: int
) -> tuple[str, str, int, str, tuple[str, ...], int] | None:
    """A document version as a signature names it: the SHA-256 its record (read from the
    repository at the version's commit) gives for its bytes, which verify re-hashes."""
    if kind != KIND.name or not values.DOC_ID_RE.fullmatch(doc_id):
        return None
    documents = Documents(vault).catalog
    found, latest = documents.version(doc_id, version), documents.version(doc_id)
    if found is None or latest is None:
        return None
    raw = vault.read_file(f"{doc_dir(doc_id)}/{RECORD}", found.commit)
    stored = DocumentVersion.from_record(raw, found.commit) if raw is not None else None
    if stored is None or stored.version != version:
        return None
    lots = (stored.lot,) if stored.lot else ()
    return KIND.name, doc_id, version, stored.sha256, lots, latest.version
