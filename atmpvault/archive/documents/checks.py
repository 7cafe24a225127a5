"""Documents' part of `verify`: every version re-hashed, and the document tables compared
field by field with what the repository records; suspected duplicates listed as warnings."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core.catalog import DATABASE_ERRORS
from atmpvault.archive.documents.records import CONTENT, KIND, DocumentVersion, doc_dir
from atmpvault.errors import VaultError
from atmpvault.repository.git import RepositoryError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.tables import DocumentCatalog


CHUNK = 1000  # versions compared with the catalog at a time
_FAILURES: tuple[type[Exception], ...] = (VaultError, *DATABASE_ERRORS)


class DocumentChecks:
    """Fed every commit of history; then names every disagreement.

    Versions are compared with the catalog a chunk at a time, so what is held is the
    latest version number of each document, not every version.
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.latest: dict[str, int] = {}  # document -> its newest version in history
        self.pending: list[DocumentVersion] = []
        self.problems: list[str] = []
        self._catalog: DocumentCatalog | None = None
        self._catalog_error: str | None = None

    def feed(self, commit: CommitChanges) -> None:
        recorded = set()
        for change in commit.records:
            if change.kind.name != KIND.name:
                continue
            version = DocumentVersion.from_body(change.body, commit.sha)
            self.problems.extend(self._check(commit.trailers, version))
            self.latest[version.id] = max(version.version, self.latest.get(version.id, 0))
            self.pending.append(version)
            recorded.add(version.id)
        # Bytes changed without a new version: what `get` serves (the recorded commit's)
        # and what the branch holds (what a clone or a backup takes) no longer agree. A
        # record written in the same commit, even one that cannot be read (named on its
        # own), is a new version.
        mine = [p.rpartition("/") for p in commit.paths if p.startswith(KIND.root + "/")]
        recorded |= {f.rpartition("/")[2] for f, _, name in mine if name == KIND.filename}
        for folder, _, name in mine:
            doc_id = folder.rpartition("/")[2]
            if name == CONTENT and doc_id not in recorded:
                self.problems.append(
                    f"{doc_id}: its content was changed in commit {commit.sha[:12]} without a "
                    "new version; the recorded bytes are those of its last version"
                )
        if len(self.pending) >= CHUNK:
            self._compare()

    def _check(self, trailers: dict[str, str], version: DocumentVersion) -> list[str]:
        label = f"{version.id} v{version.version} (commit {version.commit[:12]})"
        problems = []
        if trailers.get("Version") != str(version.version):
            problems.append(f"{label}: commit trailer says version {trailers.get('Version')}")
        if version.version > 1 and self.latest.get(version.id, 0) < version.version - 1:
            problems.append(f"{label}: version {version.version - 1} is missing from history")
        try:
            data = self.vault.store.read(version.commit, f"{doc_dir(version.id)}/{CONTENT}")
        except RepositoryError as exc:
            return [*problems, f"{label}: content cannot be read: {exc}"]
        digest = hashlib.sha256(data).hexdigest()
        if digest != version.sha256:
            problems.append(f"{label}: content SHA-256 is {digest}, recorded {version.sha256}")
        if len(data) != version.size:
            problems.append(f"{label}: content is {len(data)} bytes, recorded {version.size}")
        return problems

    def catalog(self) -> DocumentCatalog | None:
        """The document tables, brought up to date once; None if they cannot be."""
        from atmpvault.archive.documents.tables import DocumentCatalog

        if self._catalog is None and self._catalog_error is None:
            try:
                self._catalog = DocumentCatalog(self.vault.catalog)
            except _FAILURES as exc:
                self._catalog_error = f"catalog cannot be brought up to date: {exc}"
        return self._catalog

    def _compare(self) -> None:
        """The versions fed since the last call against the catalog's rows; then forgotten."""
        pending, self.pending = self.pending, []
        catalog = self.catalog()
        if catalog is None:
            return
        try:
            found = catalog.versions_of([(v.id, v.version) for v in pending])
        except DATABASE_ERRORS as exc:
            self._catalog, self._catalog_error = None, f"catalog cannot be read: {exc}"
            return
        for want in pending:
            row = found.get((want.id, want.version))
            if row is None:
                self.problems.append(f"catalog is missing {want.id} v{want.version}")
                continue
            have, ref = asdict(row), asdict(want)
            for name in ref:
                if have[name] != ref[name]:
                    self.problems.append(
                        f"catalog row {row.id} v{row.version} differs from the repository: "
                        f"{name} is {have[name]!r}, repository has {ref[name]!r}"
                    )

    def finish(self) -> list[str]:
        self._compare()
        catalog = self.catalog()
        if catalog is None:
            return [*self.problems, str(self._catalog_error)]
        problems = self.problems
        for doc_id, number in catalog.keys():
            if number > self.latest.get(doc_id, 0):
                problems.append(f"catalog row {doc_id} v{number} is not in the repository")
        listed = catalog.latest_map()
        for doc_id in sorted(set(self.latest) | set(listed)):
            if listed.get(doc_id) != self.latest.get(doc_id):
                problems.append(
                    f"catalog says the latest version of {doc_id} is {listed.get(doc_id)}, "
                    f"repository has {self.latest.get(doc_id)}"
                )
        return problems

    def warnings(self) -> list[dict[str, Any]]:
        """Active documents whose current bytes and file name are identical: suspected duplicates.

        Two imports of one folder racing each other (before atmpvault checked under the
        lock) left exactly this trace. It is not damage: every version is intact and
        the bytes may have been archived twice on purpose, so it is a warning, not a
        problem. A document archived with --allow-duplicate records that choice and is
        left out; withdrawing all but one settles a group. Asked of the catalog, which
        `finish` has just compared with history.
        """
        catalog = self.catalog()
        if catalog is None:
            return []
        try:
            found = catalog.identical_latest()
        except DATABASE_ERRORS:
            return []  # named as a problem already
        return [
            {
                "kind": "suspected_duplicate",
                "message": (
                    f"suspected duplicates: {', '.join(ids)} have identical bytes "
                    f"(SHA-256 {digest[:12]}) and the same file name {filename}; if they "
                    "are one record archived twice, withdraw all but one"
                ),
                "documents": ids,
                "sha256": digest,
                "filename": filename,
            }
            for digest, filename, ids in found
        ]


def verify(vault: Vault) -> DocumentChecks:
    """The documents' checker for one `verify` run."""
    return DocumentChecks(vault)
