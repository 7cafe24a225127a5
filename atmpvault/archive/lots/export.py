"""The auditor bundle: one lot's complete, versioned batch record as one zip, as the
archive stood at a moment (21 CFR 211.188, 211.192; Part 11 §11.10(b), (e)).

It holds every version of every document of the lot (its exact bytes; closed deviation
packages are documents of the lot), every stored version of every record of the lot
(the lot itself, its documents' records, deviations, CAPA ...), the audit trail of
every write that touched them (CSV, and a readable PDF), and a manifest of every file
with its SHA-256 (manifest.json, and manifest.sha256 for `sha256sum -c`), so an auditor
checks it without atmpvault. The same archive and moment always give the same bytes:
nothing in it comes from the clock, only from the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from atmpvault.archive.documents.records import RECORD, doc_dir
from atmpvault.archive.lots.bundle import (
    MANIFEST_JSON,
    MANIFEST_SHA256,
    README,
    TRAIL_CSV,
    TRAIL_PDF,
)
from atmpvault.archive.lots.records import LOT_KIND
from atmpvault.archive.lots.service import LotContents, contents
from atmpvault.archive.lots.trail import StoredVersion, TrailRow, template_rows, trail, trail_csv
from atmpvault.errors import IntegrityError, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.records import Record
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.core.zips import Content
    from atmpvault.archive.documents.records import DocumentVersion

BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle as its manifest lists it."""

    path: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class ExportResult:
    """What `lot export` wrote."""

    lot: str
    as_of: str
    commit: str
    output: Path
    files: int
    documents: int
    document_versions: int
    record_versions: int
    writes: int
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot, "as_of": self.as_of, "generated_from": self.commit,
            "output": str(self.output), "files": self.files, "documents": self.documents,
            "document_versions": self.document_versions,
            "record_versions": self.record_versions, "writes": self.writes, "size": self.size,
        }  # fmt: skip


def export(
    vault: Vault, lot: str, output: Path, as_of: str | None = None, force: bool = False
) -> ExportResult:
    """Write the auditor bundle of `lot` as it stood at `as_of` (the tip without it) to
    `output`, whole or not at all; an existing file is replaced only with `force`."""
    from atmpvault.archive.core.zips import write_members
    from atmpvault.files import atomic_write

    _check_output(output, force)
    tip = vault.catalog.last_write(as_of)
    if tip is None:
        contents(vault, lot, as_of)  # names why: the lot did not exist yet
        raise NotFound(f"the archive held nothing yet at {as_of}")
    until = as_of or tip["time"]
    found = contents(vault, lot, until)
    versions = _record_versions(vault, found, until)
    members: dict[str, Content] = {}
    listed: list[BundleFile] = []

    def add(path: str, data: bytes) -> None:
        members[path] = data
        listed.append(BundleFile(path, hashlib.sha256(data).hexdigest(), len(data)))

    for v in versions:
        add(f"records/{v.kind}/{_part(v.id)}/v{v.version}.json", v.raw)
    document_versions = 0
    for doc_versions in found.documents:
        for d in doc_versions:
            path = f"documents/{d.id}/v{d.version}/{_file_name(d.filename)}"
            members[path] = _streamed(vault, d)
            listed.append(BundleFile(path, d.sha256, d.size))
            document_versions += 1
    rows = trail(vault, versions, until)
    made = datetime.fromisoformat(tip["time"])
    context = _context(found, until, tip, rows)
    add(TRAIL_CSV, trail_csv(rows))
    add(TRAIL_PDF, _trail_pdf(found, context, made))
    add(README, _readme(context))
    manifest = _manifest(found, until, tip, listed)
    members[MANIFEST_JSON] = manifest
    members[MANIFEST_SHA256] = manifest_sha256(
        [*listed, BundleFile(MANIFEST_JSON, hashlib.sha256(manifest).hexdigest(), len(manifest))]
    )
    stamp = made.timetuple()[:6]
    try:
        with atomic_write(output) as out:
            write_members(out, members, stamp)
            size = out.tell()
    except OSError as exc:
        raise VaultError(f"cannot write {output}: {exc.strerror or exc}") from None
    return ExportResult(
        lot=found.lot.id, as_of=until, commit=tip["commit_sha"], output=output,
        files=len(members), documents=len(found.documents),
        document_versions=document_versions,
        record_versions=sum(1 for v in versions if v.kind != "document"),
        writes=len({r.commit for r in rows}), size=size,
    )  # fmt: skip


def _check_output(output: Path, force: bool) -> None:
    if output.is_dir():
        raise VaultError(f"{output} is a folder; give the bundle's file name, e.g. L-0042.zip")
    if output.exists() and not force:
        raise VaultError(f"{output} already exists; use --force to replace it")
    if not output.parent.is_dir():
        raise NotFound(f"no such folder: {output.parent}")


def _record_versions(vault: Vault, found: LotContents, until: str) -> list[StoredVersion]:
    """Every stored version up to `until` of the lot, its documents' records and its
    records, read from the repository byte for byte."""
    stored: list[StoredVersion] = []
    heads: list[Record] = [*found.records]
    lot_head = vault.catalog.record(LOT_KIND.name, found.lot.id, as_of=until)
    assert lot_head is not None  # contents() found the lot at `until`
    for head in [lot_head, *heads]:
        for r in vault.catalog.record_versions(head.kind, head.id):
            if r.version <= head.version:
                stored.append(
                    StoredVersion(
                        r.kind,
                        r.id,
                        r.version,
                        r.commit,
                        r.recorded_at,
                        r.actor,
                        _read(vault, r.path, r.commit),
                    )  # fmt: skip
                )
    for doc_versions in found.documents:
        for d in doc_versions:
            raw = _read(vault, f"{doc_dir(d.id)}/{RECORD}", d.commit)
            stored.append(
                StoredVersion("document", d.id, d.version, d.commit, d.recorded_at, d.user, raw)
            )
    return sorted(stored, key=lambda v: (v.kind, v.id, v.version))


def _read(vault: Vault, path: str, commit: str) -> bytes:
    raw = vault.read_file(path, commit)
    if raw is None:
        raise IntegrityError(
            f"{path} is missing from commit {commit[:12]}, which the catalog says wrote it; "
            "run 'atmpvault verify'"
        )
    return raw


def _streamed(vault: Vault, version: DocumentVersion) -> Callable[[IO[bytes]], object]:
    """Write a document version's exact bytes from the repository into a member, checking
    them against the SHA-256 recorded when they were archived."""
    from atmpvault.archive.documents.versions import Documents
    from atmpvault.repository.git import ObjectDamaged

    def write(out: IO[bytes]) -> None:
        sink = _Hashing(out)
        try:
            Documents(vault).get(version.id, sink, version.version)  # type: ignore[arg-type]
        except ObjectDamaged as exc:
            raise vault.repository_error(exc) from exc
        if sink.digest.hexdigest() != version.sha256 or sink.size != version.size:
            raise IntegrityError(
                f"{version.id} v{version.version}: the repository's bytes differ from the "
                f"SHA-256 recorded when they were archived; run 'atmpvault verify'"
            )

    return write


class _Hashing:
    """A writer passing bytes on while counting and hashing them."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, block: bytes) -> int:
        self.digest.update(block)
        self.size += len(block)
        return self.out.write(block)


def _part(value: str) -> str:
    """An id as one folder name (a record id may hold '/': IND-012345/0001)."""
    return value.replace("/", "_")


def _file_name(name: str) -> str:
    """A document's file name as one plain member name (its folder names the version)."""
    cleaned = "".join("_" if c in "/\\" or ord(c) < 32 or ord(c) == 127 else c for c in name)
    return "content" if cleaned.strip(".") == "" else cleaned


def _manifest(
    found: LotContents, until: str, tip: dict[str, Any], listed: list[BundleFile]
) -> bytes:
    data = {
        "format": BUNDLE_FORMAT,
        "lot": found.lot.id,
        "program": found.lot.program,
        "as_of": until,
        "generated_from": tip["commit_sha"],
        "generated_from_time": tip["time"],
        "files": [f.to_json() for f in sorted(listed, key=lambda f: f.path)],
    }
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def manifest_sha256(files: list[BundleFile]) -> bytes:
    """sha256sum lines for `files`, by path: `sha256sum -c manifest.sha256` checks them."""
    return "".join(f"{f.sha256}  {f.path}\n" for f in sorted(files, key=lambda f: f.path)).encode(
        "utf-8"
    )


def _context(
    found: LotContents, until: str, tip: dict[str, Any], rows: list[TrailRow]
) -> dict[str, Any]:
    """What the PDF and the README show."""
    documents = [
        {
            "id": d.id, "version": d.version, "type": d.type, "filename": d.filename,
            "at": d.recorded_at[:19].replace("T", " "), "user": d.user,
            "action": d.action, "reason": d.reason or "", "status": d.status,
            "sha256": d.sha256, "size": d.size,
        }
        for versions in found.documents
        for d in versions
    ]  # fmt: skip
    records = [
        {"kind": r.kind, "id": r.id, "versions": r.version, "status": r.columns.status or "",
         "at": r.recorded_at[:19].replace("T", " ")}
        for r in found.records
    ]  # fmt: skip
    return {
        "lot": found.lot.to_json(),
        "as_of": until[:19].replace("T", " "),
        "commit": tip["commit_sha"],
        "commit_time": tip["time"][:19].replace("T", " "),
        "documents": documents,
        "records": records,
        "signatures": found.signatures,
        "trail": template_rows(rows),
        "writes": len({r.commit for r in rows}),
    }


def _trail_pdf(found: LotContents, context: dict[str, Any], made: datetime) -> bytes:
    from atmpvault.archive.core.pdf import html_pdf
    from atmpvault.archive.core.render import render

    html = render("lots/audit-trail.html.j2", context)
    return html_pdf(html, title=f"Audit trail of lot {found.lot.id}", created=made, landscape=True)


def _readme(context: dict[str, Any]) -> bytes:
    from atmpvault.archive.core.render import render

    return render("lots/bundle-readme.txt.j2", context).encode("utf-8")
