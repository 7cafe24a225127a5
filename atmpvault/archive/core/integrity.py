"""`verify`: every stored version re-hashed, git's own check, and the projections compared.

The repository is the reference. Everything the catalog says is derived again from
the repository alone and compared field by field, so an edited catalog row, a changed
byte in a stored object or a missing commit in the catalog is named.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import TYPE_CHECKING

from atmpvault.archive.documents.versions import CONTENT, DocumentVersion, doc_dir
from atmpvault.errors import IntegrityError
from atmpvault.repository.git import RepositoryError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Progress, Vault


def verify(vault: Vault, progress: Progress | None = None) -> list[str]:
    """Every problem found, one line each; empty when the vault is sound."""
    problems = [f"git fsck: {line}" for line in vault.store.fsck()]
    try:
        vault.projections()
        vault.catch_up(wait=True)  # lagging is normal; what is compared is what they hold
    except IntegrityError:
        pass  # reported below, projection by projection
    expected: dict[tuple[str, int], DocumentVersion] = {}
    head = vault.store.head()
    try:
        count = 0
        for count, (info, version) in enumerate(vault.replay(None, head), start=1):
            if progress and count % 100 == 0:
                progress(100)
            if version is None:
                continue
            problems.extend(_check_version(vault, info.trailers, version, expected))
            expected[(version.id, version.version)] = version
        if progress:
            progress(count % 100)
    except (RepositoryError, ValueError, KeyError) as exc:
        problems.append(f"repository history cannot be read: {exc}")
    problems.extend(_compare_catalog(vault, head, expected))
    problems.extend(_compare_index(vault, head, set(expected)))
    return problems


def _compare_index(vault: Vault, head: str | None, expected: set[tuple[str, int]]) -> list[str]:
    index = vault.search_projection.index
    problems = []
    last = index.last_commit()
    if last != head:
        problems.append(f"index is at commit {str(last)[:12]}, repository at {str(head)[:12]}")
    have = index.entries()
    for doc_id, number in sorted(expected - have):
        problems.append(f"index is missing {doc_id} v{number}")
    for doc_id, number in sorted(have - expected):
        problems.append(f"index has {doc_id} v{number}, which is not in the repository")
    return problems


def _check_version(
    vault: Vault,
    trailers: dict[str, str],
    version: DocumentVersion,
    seen: dict[tuple[str, int], DocumentVersion],
) -> list[str]:
    label = f"{version.id} v{version.version} (commit {version.commit[:12]})"
    problems = []
    if trailers.get("Version") != str(version.version):
        problems.append(f"{label}: commit trailer says version {trailers.get('Version')}")
    if version.version > 1 and (version.id, version.version - 1) not in seen:
        problems.append(f"{label}: version {version.version - 1} is missing from history")
    try:
        data = vault.store.read(version.commit, f"{doc_dir(version.id)}/{CONTENT}")
    except RepositoryError as exc:
        return [*problems, f"{label}: content cannot be read: {exc}"]
    digest = hashlib.sha256(data).hexdigest()
    if digest != version.sha256:
        problems.append(f"{label}: content SHA-256 is {digest}, recorded {version.sha256}")
    if len(data) != version.size:
        problems.append(f"{label}: content is {len(data)} bytes, recorded {version.size}")
    return problems


def _compare_catalog(
    vault: Vault, head: str | None, expected: dict[tuple[str, int], DocumentVersion]
) -> list[str]:
    problems = []
    try:
        catalog = vault.catalog
    except IntegrityError as exc:
        return [f"catalog cannot be brought up to date: {exc}"]
    last = catalog.last_commit()
    if last != head:
        problems.append(f"catalog is at commit {str(last)[:12]}, repository at {str(head)[:12]}")
    found: set[tuple[str, int]] = set()
    for row in catalog.dump():
        key = (row.id, row.version)
        found.add(key)
        want = expected.get(key)
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
    for doc_id, number in sorted(set(expected) - found):
        problems.append(f"catalog is missing {doc_id} v{number}")
    latest: dict[str, int] = {}
    for doc_id, number in expected:
        latest[doc_id] = max(number, latest.get(doc_id, 0))
    listed = catalog.latest_map()
    for doc_id in sorted(set(latest) | set(listed)):
        if listed.get(doc_id) != latest.get(doc_id):
            problems.append(
                f"catalog says the latest version of {doc_id} is {listed.get(doc_id)}, "
                f"repository has {latest.get(doc_id)}"
            )
    return problems
