"""`verify`: git's own check, every commit replayed, and every projection compared.

The repository is the reference. The catalog's generic tables (records of every kind,
the audit trail) and the index are derived again from the repository alone and compared
row by row; each workflow adds its own checks (documents re-hash every version and
compare their tables). An edited catalog row, a changed byte in a stored object or a
missing commit in a projection is named.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from atmpvault.archive.core.catalog import _audit_row, _record_row
from atmpvault.archive.core.domain import hooks
from atmpvault.errors import IntegrityError, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.vault import Progress, Vault


class Checker(Protocol):
    """A workflow's verify hook returns one: fed every commit, then asked for problems."""

    def feed(self, commit: CommitChanges) -> None: ...

    def finish(self) -> list[str]: ...


def verify(
    vault: Vault,
    progress: Progress | None = None,
    warnings: list[dict[str, Any]] | None = None,
) -> list[str]:
    """Every problem found, one line each; empty when the vault is sound.

    A checker may also have `warnings()`: findings that are not damage (each a dict
    with at least "kind" and "message"); they are added to `warnings` when given.
    """
    problems = [f"git fsck: {line}" for line in vault.store.fsck()]
    try:
        vault.projections()
        vault.catch_up(wait=True)  # lagging is normal; what is compared is what they hold
    except IntegrityError:
        pass  # reported below, projection by projection
    checkers: list[Checker] = [make(vault) for make in hooks(vault.domains, "verify")]
    expected = _Expected()
    head = vault.store.head()
    try:
        count = 0
        for count, commit in enumerate(vault.replay(None, head), start=1):
            if progress and count % 100 == 0:
                progress(100)
            expected.feed(count, commit)
            for checker in checkers:
                checker.feed(commit)
        if progress:
            progress(count % 100)
    except VaultError as exc:
        problems.append(f"repository history cannot be read: {exc}")
    for checker in checkers:
        problems.extend(checker.finish())
        if warnings is not None and hasattr(checker, "warnings"):
            warnings.extend(checker.warnings())
    problems.extend(_compare_catalog(vault, head, expected))
    problems.extend(_compare_index(vault, head, expected.indexed))
    return problems


class _Expected:
    """The generic rows the catalog must hold, derived from history alone."""

    def __init__(self) -> None:
        self.audit: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []
        self.records: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.heads: dict[tuple[str, str], int] = {}
        self.indexed: set[tuple[str, int]] = set()

    def feed(self, seq: int, commit: CommitChanges) -> None:
        touched = []
        for change in commit.records:
            key = (change.kind.name, change.id)
            version = self.heads.get(key, 0) + 1
            self.heads[key] = version
            touched.append((change.kind.name, change.id, version))
            self.items.append({"seq": seq, "kind": key[0], "id": key[1], "version": version})
            if change.kind.generic:
                if version > 1 and (key[0], key[1], version - 1) in self.records:
                    self.records[(key[0], key[1], version - 1)]["latest"] = False
                self.records[(key[0], key[1], version)] = _record_row(change, version, seq, commit)
            if change.kind.indexed:
                self.indexed.add((change.id, version))
        self.audit.append(_audit_row(commit, seq, touched))


def _compare_rows(
    what: str, have: Iterator[dict[str, Any]], want: dict[Any, dict[str, Any]], key: Any
) -> Iterator[str]:
    """Each difference between rows the catalog holds and rows history gives."""
    found = set()
    for row in have:
        k = key(row)
        found.add(k)
        ref = want.get(k)
        if ref is None:
            yield f"catalog {what} row {_label(k)} is not in the repository"
            continue
        for name, value in ref.items():
            if row.get(name) != value:
                yield (
                    f"catalog {what} row {_label(k)} differs from the repository: "
                    f"{name} is {row.get(name)!r}, repository has {value!r}"
                )
    for k in sorted(set(want) - found, key=str):
        yield f"catalog is missing {what} row {_label(k)}"


def _label(key: Any) -> str:
    if isinstance(key, tuple):
        kind, rid, version = key
        return f"{kind} {rid} v{version}"
    return f"#{key}"


def _compare_catalog(vault: Vault, head: str | None, expected: _Expected) -> list[str]:
    from atmpvault.archive.core.catalog import records

    problems = []
    try:
        catalog = vault.catalog
    except IntegrityError as exc:
        return [f"catalog cannot be brought up to date: {exc}"]
    last = catalog.last_commit()
    if last != head:
        problems.append(f"catalog is at commit {str(last)[:12]}, repository at {str(head)[:12]}")
    with catalog.connect() as conn:
        rows = (dict(r._mapping) for r in conn.execute(records.select()))
        problems += _compare_rows(
            "record", rows, expected.records, lambda r: (r["kind"], r["id"], r["version"])
        )
    audit = {row["seq"]: row for row in expected.audit}
    problems += _compare_rows("audit", iter(catalog.audit_rows()), audit, lambda r: r["seq"])
    items = {(r["seq"], r["kind"], r["id"]): r for r in expected.items}
    for row in catalog.audit_items():
        ref = items.pop((row["seq"], row["kind"], row["id"]), None)
        if ref != row:
            problems.append(
                f"catalog audit item #{row['seq']} {row['kind']} {row['id']} v{row['version']} "
                "is not what the repository recorded"
            )
    for seq, kind, rid in sorted(items):
        problems.append(f"catalog is missing audit item #{seq} {kind} {rid}")
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
