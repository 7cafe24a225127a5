"""Documents' part of `verify`: every version re-hashed, and the document tables compared
field by field with what the repository records; suspected duplicates listed as warnings."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from atmpvault.archive.documents.records import ACTIVE, CONTENT, KIND, DocumentVersion, doc_dir
from atmpvault.errors import IntegrityError
from atmpvault.repository.git import RepositoryError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.vault import Vault


class DocumentChecks:
    """Fed every commit of history; then names every disagreement."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.expected: dict[tuple[str, int], DocumentVersion] = {}
        self.problems: list[str] = []

    def feed(self, commit: CommitChanges) -> None:
        recorded = set()
        for change in commit.records:
            if change.kind.name != KIND.name:
                continue
            version = DocumentVersion.from_body(change.body, commit.sha)
            self.problems.extend(self._check(commit.trailers, version))
            self.expected[(version.id, version.version)] = version
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

    def _check(self, trailers: dict[str, str], version: DocumentVersion) -> list[str]:
        label = f"{version.id} v{version.version} (commit {version.commit[:12]})"
        problems = []
        if trailers.get("Version") != str(version.version):
            problems.append(f"{label}: commit trailer says version {trailers.get('Version')}")
        if version.version > 1 and (version.id, version.version - 1) not in self.expected:
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

    def finish(self) -> list[str]:
        from atmpvault.archive.documents.tables import DocumentCatalog

        try:
            catalog = DocumentCatalog(self.vault.catalog)
        except IntegrityError as exc:
            return [*self.problems, f"catalog cannot be brought up to date: {exc}"]
        problems = self.problems
        found: set[tuple[str, int]] = set()
        for row in catalog.dump():
            key = (row.id, row.version)
            found.add(key)
            want = self.expected.get(key)
            if want is None:
                problems.append(f"catalog row {row.id} v{row.version} is not in the repository")
                continue
            have, ref = asdict(row), asdict(want)
            for name in ref:
                if have[name] != ref[name]:
                    problems.append(
                        f"catalog row {row.id} v{row.version} differs from the repository: "
                        f"{name} is {have[name]!r}, repository has {ref[name]!r}"
                    )
        for doc_id, number in sorted(set(self.expected) - found):
            problems.append(f"catalog is missing {doc_id} v{number}")
        latest: dict[str, int] = {}
        for doc_id, number in self.expected:
            latest[doc_id] = max(number, latest.get(doc_id, 0))
        listed = catalog.latest_map()
        for doc_id in sorted(set(latest) | set(listed)):
            if listed.get(doc_id) != latest.get(doc_id):
                problems.append(
                    f"catalog says the latest version of {doc_id} is {listed.get(doc_id)}, "
                    f"repository has {latest.get(doc_id)}"
                )
        return problems

    def warnings(self) -> list[dict[str, Any]]:
        """Active documents whose current bytes and file name are identical: suspected duplicates.

        Two imports of one folder racing each other (before atmpvault checked under the
        lock) left exactly this trace. It is not damage: every version is intact and
        the bytes may have been archived twice on purpose, so it is a warning, not a
        problem. A document archived with --allow-duplicate records that choice and is
        left out; withdrawing all but one settles a group.
        """
        latest: dict[str, DocumentVersion] = {}
        for version in self.expected.values():
            current = latest.get(version.id)
            if current is None or version.version > current.version:
                latest[version.id] = version
        groups: dict[tuple[str, str], list[str]] = {}
        for version in latest.values():
            if version.status == ACTIVE and version.duplicate_of is None:
                groups.setdefault((version.sha256, version.filename), []).append(version.id)
        found = []
        for (digest, filename), ids in sorted(groups.items()):
            if len(ids) < 2:
                continue
            ids.sort()
            found.append(
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
            )
        return found


def verify(vault: Vault) -> DocumentChecks:
    """The documents' checker for one `verify` run."""
    return DocumentChecks(vault)
