"""Documents and their versions: the record kept beside each version's bytes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from atmpvault.archive.core import values
from atmpvault.archive.core.records import RecordChange
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
from atmpvault.errors import InvalidInput, NotFound, NothingChanged, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.tables import DocumentCatalog, Filters
    from atmpvault.indexer.extract import Extraction


def extract_text(data: bytes, filename: str) -> Extraction:
    """The searchable text of a file, or why there is none."""
    from atmpvault.indexer.extract import extract

    return extract(data, filename)


def read_file(path: Path) -> bytes:
    """The bytes of a file to archive, or a clear error."""
    if path.is_dir():
        raise VaultError(f"{path} is a directory; archive one file at a time (or use import)")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except OSError as exc:
        raise VaultError(f"cannot read {path}: {exc.strerror}") from None


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
    ) -> DocumentVersion:
        """Archive a new document as version 1."""
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
        data = read_file(path)
        catalog = self.catalog
        with vault.writing():
            seq = catalog.next_seq()
            return self._write(replace(draft, id=doc_id_for(seq), seq=seq), data)

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
        data = read_file(path)
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
