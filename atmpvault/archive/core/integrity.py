"""`verify`: git's own check, every commit replayed, and every projection compared.

The repository is the reference. The catalog's generic tables (records of every kind,
the audit trail) and the index are derived again from the repository alone and compared
row by row; each workflow adds its own checks (documents re-hash every version and
compare their tables). An edited catalog row, a changed byte in a stored object or a
missing commit in a projection is named. The database's own integrity check runs too:
a damaged SQLite index reads as intact rows yet answers lookups wrongly. Nothing stops
the run early: every damaged object is named with the record it belongs to.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from atmpvault.archive.core.audit_rows import audit_row, reference_rows
from atmpvault.archive.core.catalog import DATABASE_ERRORS, _record_row, sqlite_damage
from atmpvault.archive.core.domain import hooks
from atmpvault.archive.core.records import RecordKind, kind_for, new_references
from atmpvault.errors import IntegrityError, VaultError
from atmpvault.repository.git import ObjectDamaged, RepositoryError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.vault import Progress, Vault
    from atmpvault.repository.history import Damage

# What a projection or a check may fail with while the archive is damaged: each is
# reported as a problem and the run goes on.
_FAILURES: tuple[type[Exception], ...] = (VaultError, RepositoryError, *DATABASE_ERRORS)
# Commits whose audit trail is compared, then forgotten, at a time: what verify holds of
# the trail does not grow with the history.
TRAIL_CHUNK = 2000


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
    fsck = vault.store.fsck()
    problems = [f"git fsck: {line}" for line in fsck]
    damage = vault.store.damage(fsck)
    problems += [f"damaged object {line}" for line in describe(vault.kinds, damage)]
    problems += [f"catalog integrity check: {line}" for line in _catalog_damage(vault)]
    # Lagging is normal; what is compared below is what each projection holds.
    for name, bring in (("catalog", _open_catalog), ("index", _open_index)):
        try:
            bring(vault)
        except _FAILURES as exc:
            problems.append(f"{name} cannot be brought up to date: {exc}")
    checkers: list[Checker] = [make(vault) for make in hooks(vault.domains, "verify")]
    expected = _Expected()
    head = vault.store.head()
    known = {d.oid for d in damage}

    def unreadable(exc: ObjectDamaged) -> None:
        expected.skip(vault.kinds, exc.path)
        if exc.oid not in known:  # fsck named it already, with where it is used
            whose = owner(vault.kinds, exc.path)
            problems.append(f"damaged object {exc}{f' ({whose})' if whose else ''}")

    try:
        count = 0
        for count, commit in enumerate(vault.replay(None, head, unreadable), start=1):
            if progress and count % 100 == 0:
                progress(100)
            expected.feed(count, commit)
            for checker in checkers:
                checker.feed(commit)
            if count % TRAIL_CHUNK == 0:
                expected.compare_trail(vault)
        if progress:
            progress(count % 100)
    except _FAILURES as exc:
        problems.append(f"repository history cannot be read: {exc}")
    for checker in checkers:
        try:
            found = checker.finish()
        except _FAILURES as exc:
            found = [f"a workflow's checks could not finish: {exc}"]
        problems += [p for p in found if not _mentions(p, expected.unchecked)]
        if warnings is not None and hasattr(checker, "warnings"):
            warnings.extend(checker.warnings())
    for compare in (_compare_catalog, _compare_index):
        try:
            found = compare(vault, head, expected)
        except _FAILURES as exc:
            found = [f"projection cannot be read: {exc}"]
        problems += [p for p in found if not _mentions(p, expected.unchecked)]
    try:
        problems += _access_problems(vault)
    except _FAILURES as exc:
        problems.append(f"signatures cannot be checked: {exc}")
    return problems


def _access_problems(vault: Vault) -> list[str]:
    """Every signature checked (signatures.py); users in a vault whose configuration no
    longer says it is access-controlled (edited outside atmpvault) named."""
    from atmpvault.archive.core.signatures import Signatures
    from atmpvault.archive.core.users import USER_KIND

    problems = []
    if not vault.controlled and vault.catalog.records(USER_KIND.name):
        problems.append(
            "the vault has users but config/vault.json no longer marks it access-controlled"
        )
    return problems + Signatures(vault).problems()


def _mentions(problem: str, labels: set[str]) -> bool:
    """Whether a problem is about a version already reported as damaged ("DOC-1 v2")."""
    return any(re.search(re.escape(label) + r"(?!\d)", problem) for label in labels)


def owner(kinds: tuple[RecordKind, ...], path: str) -> str | None:
    """The record a repository path belongs to ("document DOC-000004"), if any."""
    match = kind_for(kinds, path)
    if match is None:
        folder = posixpath.dirname(path)
        for kind in kinds:
            if kind.filename is not None:
                match = kind_for((kind,), f"{folder}/{kind.filename}")
                if match is not None:
                    break
    return None if match is None else f"{match[0].name} {match[1]}"


def damaged_error(kinds: tuple[RecordKind, ...], exc: ObjectDamaged) -> IntegrityError:
    """The error for a damaged object: what it is, what it belongs to, what to do."""
    whose = owner(kinds, exc.path)
    return IntegrityError(
        f"{exc}{f' ({whose})' if whose else ''}; run 'atmpvault verify' "
        "and restore the object from a clone or backup"
    )


def describe(kinds: tuple[RecordKind, ...], damage: list[Damage]) -> list[str]:
    """One line per damaged object: its id, where history uses it and whose it is."""
    lines = []
    for item in damage:
        uses = []
        for commit, path, _paths in item.places:
            whose = owner(kinds, path) if path else None
            what = path or "the commit itself"
            uses.append(f"{what} at commit {commit[:12]}{f', {whose}' if whose else ''}")
        where = "; ".join(uses) if uses else "not used by the branch's history"
        lines.append(f"{item.oid} ({where}): {item.problem}")
    return lines


def damage_report(vault: Vault) -> list[str]:
    """Every damaged object of the repository, described (empty when git finds none)."""
    return describe(vault.kinds, vault.store.damage())


def _catalog_damage(vault: Vault) -> list[str]:
    """What SQLite's own integrity check finds in the catalog file (PostgreSQL: nothing)."""
    return sqlite_damage(_catalog_url(vault))


def _catalog_url(vault: Vault) -> str:
    from atmpvault.archive.core.vault import CATALOG_FILE

    return vault.settings.catalog_url or f"sqlite:///{vault.path / CATALOG_FILE}"


def repair_catalog(vault: Vault) -> None:
    """Before a rebuild: a damaged SQLite catalog file is set aside so a new one is made.

    Emptying tables through a damaged index can fail or keep the damage; a new file
    cannot. The old one is kept beside it (`.damaged`) for whoever investigates.
    """
    from atmpvault.archive.core.catalog import sqlite_file

    found = sqlite_damage(_catalog_url(vault))
    path = sqlite_file(_catalog_url(vault))
    if not found or path is None:
        return
    vault.close_catalog()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    path.replace(path.with_name(path.name + ".damaged"))
    vault.say(
        f"the catalog file is damaged ({found[0]}); it was set aside as "
        f"{path.name}.damaged and is made anew"
    )


def _open_catalog(vault: Vault) -> None:
    vault.catch_up(wait=True, only=vault.catalog)


def _open_index(vault: Vault) -> None:
    vault.catch_up(wait=True, only=vault.search_projection)


class _Expected:
    """The generic rows the catalog must hold, derived from history alone."""

    def __init__(self) -> None:
        self.audit: list[dict[str, Any]] = []
        self.items: list[dict[str, Any]] = []
        self.refs: list[dict[str, Any]] = []
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}  # newest, of kinds with refs
        # Commits whose references cannot be derived: an earlier version is damaged.
        self.refs_unknown: set[int] = set()
        self.records: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.heads: dict[tuple[str, str], int] = {}
        self.indexed: set[tuple[str, int]] = set()
        self.lots: set[tuple[str, str, int, str, str]] = set()  # record_lots rows
        self.unchecked: set[str] = set()  # "ID vN" of versions whose record is damaged
        self._skipped: list[tuple[str, str]] = []
        self.trail_problems: list[str] = []
        self.compared = 0  # the last commit (seq) whose audit trail was compared
        self.trail_error: str | None = None

    def compare_trail(self, vault: Vault, to_end: bool = False) -> None:
        """Compare the audit rows, items and references of the commits fed since the last
        call with the catalog's, then forget them; `to_end` also names catalog rows of
        commits history does not have."""
        if self.trail_error is not None:
            return
        first = self.compared + 1
        last = None if to_end else (self.audit[-1]["seq"] if self.audit else self.compared)
        try:
            self.trail_problems += _compare_trail(vault.catalog, self, first, last)
        except _FAILURES as exc:
            self.trail_error = f"projection cannot be read: {exc}"
        self.compared = last or self.compared
        self.audit, self.items, self.refs = [], [], []

    def skip(self, kinds: tuple[RecordKind, ...], path: str) -> None:
        """A record of the next commit cannot be read: its version counts, unchecked."""
        match = kind_for(kinds, path)
        if match is not None:
            self._skipped.append((match[0].name, match[1]))

    def feed(self, seq: int, commit: CommitChanges) -> None:
        touched = []
        refs: dict[tuple[str, str], dict[str, Any]] = {}
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
                self.lots.update(
                    (key[0], key[1], version, lot, commit.recorded_at)
                    for lot in change.kind.lots_of(change.body)
                )
            if change.kind.indexed:
                self.indexed.add((change.id, version))
            if change.kind.references is not None:
                if version > 1 and key not in self.bodies:
                    self.refs_unknown.add(seq)
                before = self.bodies.get(key)
                reference_rows(seq, new_references(change.kind, change.body, before), refs)
                self.bodies[key] = change.body
        for key in self._skipped:  # its version and the audit trail are known; its row is not
            version = self.heads.get(key, 0) + 1
            self.heads[key] = version
            touched.append((key[0], key[1], version))
            self.items.append({"seq": seq, "kind": key[0], "id": key[1], "version": version})
            if (key[0], key[1], version - 1) in self.records:
                self.records[(key[0], key[1], version - 1)]["latest"] = False
            self.unchecked.add(f"{key[1]} v{version}")
            self.bodies.pop(key, None)
            self.refs_unknown.add(seq)
        self._skipped = []
        self.audit.append(audit_row(commit, seq, touched))
        self.refs += [refs[key] for key in sorted(refs)]


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
    from atmpvault.archive.core.record_tables import record_lots, records

    problems = []
    try:
        catalog = vault.catalog
    except VaultError as exc:
        return [f"catalog cannot be brought up to date: {exc}"]
    last = catalog.last_commit()
    if last != head:
        problems.append(f"catalog is at commit {str(last)[:12]}, repository at {str(head)[:12]}")
    with catalog.connect() as conn:
        rows = (dict(r._mapping) for r in conn.execute(records.select()))
        problems += _compare_rows(
            "record", rows, expected.records, lambda r: (r["kind"], r["id"], r["version"])
        )
        lots = {
            (r.kind, r.id, r.version, r.lot, r.recorded_at)
            for r in conn.execute(record_lots.select())
        }
    for kind, rid, version, lot, _at in sorted(lots - expected.lots):
        problems.append(
            f"catalog says {kind} {rid} v{version} concerns lot {lot}; the repository does not"
        )
    for kind, rid, version, lot, _at in sorted(expected.lots - lots):
        problems.append(f"catalog is missing that {kind} {rid} v{version} concerns lot {lot}")
    expected.compare_trail(vault, to_end=True)
    problems += expected.trail_problems
    if expected.trail_error is not None:
        problems.append(expected.trail_error)
    return problems


def _compare_trail(catalog: Any, expected: _Expected, first: int, last: int | None) -> list[str]:
    """The audit trail of commits `first`..`last` (None: to the end) against history's."""
    from atmpvault.archive.core.record_tables import audit as audit_table

    problems: list[str] = []
    span = [audit_table.c.seq >= first]
    if last is not None:
        span.append(audit_table.c.seq <= last)
    audit = {row["seq"]: row for row in expected.audit}
    problems += _compare_rows("audit", iter(catalog.audit_rows(span)), audit, lambda r: r["seq"])
    items = {(r["seq"], r["kind"], r["id"]): r for r in expected.items}
    for row in catalog.audit_items(first, last):
        ref = items.pop((row["seq"], row["kind"], row["id"]), None)
        if ref != row:
            problems.append(
                f"catalog audit item #{row['seq']} {row['kind']} {row['id']} v{row['version']} "
                "is not what the repository recorded"
            )
    for seq, kind, rid in sorted(items):
        problems.append(f"catalog is missing audit item #{seq} {kind} {rid}")
    refs = {(r["seq"], r["kind"], r["id"]): r for r in expected.refs}
    for row in catalog.audit_refs(span):
        ref = refs.pop((row["seq"], row["kind"], row["id"]), None)
        if ref != row and row["seq"] not in expected.refs_unknown:
            problems.append(
                f"catalog audit reference #{row['seq']} {row['kind']} {row['id']} "
                "is not what the repository recorded"
            )
    for seq, kind, rid in sorted(refs):
        if seq not in expected.refs_unknown:
            problems.append(f"catalog is missing audit reference #{seq} {kind} {rid}")
    return problems


def _compare_index(vault: Vault, head: str | None, expected: _Expected) -> list[str]:
    index = vault.search_projection.index
    problems = []
    last = index.last_commit()
    if last != head:
        problems.append(f"index is at commit {str(last)[:12]}, repository at {str(head)[:12]}")
    have = index.entries()
    for doc_id, number in sorted(expected.indexed - have):
        problems.append(f"index is missing {doc_id} v{number}")
    for doc_id, number in sorted(have - expected.indexed):
        problems.append(f"index has {doc_id} v{number}, which is not in the repository")
    return problems
