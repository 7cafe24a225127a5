"""A lot's audit trail: every write that touched the lot, its documents or its records,
each as one row per changed field (old -> new from consecutive stored versions), for
the auditor bundle's CSV and PDF."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core.differences import EMPTY, field_changes, shown_change

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

COLUMNS = (
    "time", "actor", "action", "kind", "id", "version", "reason", "field", "old", "new",
    "commit",
)  # fmt: skip
# What every version carries (who, when, why, which) and the trail shows in its own
# columns: not a change of the record's content.
BOOKKEEPING = frozenset(
    {"format", "id", "version", "seq", "recorded_at", "user", "action", "comment", "reason"}
)


@dataclass(frozen=True)
class StoredVersion:
    """One version of a record of the lot (a document's record too), as the repository
    stores it: its exact bytes and the body they hold."""

    kind: str
    id: str
    version: int
    commit: str
    recorded_at: str
    actor: str
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        found = json.loads(self.raw)
        return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class TrailRow:
    """One changed field of one record in one write (or the write alone, when it changed
    none of the lot's records but referred to one: a package pinning a document)."""

    time: str
    actor: str
    action: str
    kind: str
    id: str
    version: int | None
    reason: str | None
    field: str
    old: Any
    new: Any
    commit: str
    first_of_write: bool
    first_of_record: bool

    def cells(self) -> list[str]:
        """The row as CSV cells: text as typed, None empty, anything else as JSON."""
        return [
            self.time, self.actor, self.action, self.kind, self.id,
            "" if self.version is None else str(self.version), self.reason or "",
            self.field, as_cell(self.old), as_cell(self.new), self.commit,
        ]  # fmt: skip


def as_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def changes(before: dict[str, Any] | None, body: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """The fields a version changed, old -> new (a first version: every field it set); a
    mapping field by its keys, in name order."""
    keys = set(body) | set(before or {})
    names = sorted(keys - BOOKKEEPING)
    found = field_changes(before or {}, body, names)
    if before is None:
        found = [c for c in found if c.new not in EMPTY]
    return [(c.name, c.old, c.new) for c in found]


def trail(vault: Vault, versions: Sequence[StoredVersion], until: str) -> list[TrailRow]:
    """Every write up to `until` that wrote, or newly referred to, a record of `versions`,
    oldest first, one row per changed field."""
    from atmpvault.archive.core.record_tables import audit, touching

    previous: dict[tuple[str, str], dict[str, Any]] = {}
    written: dict[str, list[tuple[StoredVersion, dict[str, Any] | None]]] = {}
    for v in sorted(versions, key=lambda v: (v.kind, v.id, v.version)):
        body = v.body
        written.setdefault(v.commit, []).append((v, previous.get((v.kind, v.id))))
        previous[(v.kind, v.id)] = body
    keys = {(v.kind, v.id) for v in versions}
    rows: list[TrailRow] = []
    for entry in vault.catalog.audit_rows([touching(keys), audit.c.time <= until]):
        first = True
        for v, before in written.get(entry["commit_sha"], []):
            body = v.body
            why = entry["reason"] or body.get("comment") or body.get("reason")
            found = changes(before, body) or [("", None, None)]
            for number, (name, old, new) in enumerate(found):
                rows.append(
                    TrailRow(
                        entry["time"],
                        entry["actor"],
                        entry["action"],
                        v.kind,
                        v.id,
                        v.version,
                        why,
                        name,
                        old,
                        new,
                        entry["commit_sha"],
                        first,
                        number == 0,
                    )  # fmt: skip
                )
                first = False
        if first:  # a write that only referred to one of them
            rows.append(
                TrailRow(
                    entry["time"],
                    entry["actor"],
                    entry["action"],
                    entry["kind"] or "",
                    entry["id"] or "",
                    entry["version"],
                    entry["reason"],
                    "",
                    None,
                    None,
                    entry["commit_sha"],
                    True,
                    True,
                )  # fmt: skip
            )
    return rows


def trail_csv(rows: Sequence[TrailRow]) -> bytes:
    """The trail as CSV (UTF-8, a header row, RFC 4180 quoting and line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(row.cells() for row in rows)
    return out.getvalue().encode("utf-8")


def template_rows(rows: Sequence[TrailRow]) -> list[dict[str, str]]:
    """The trail as rows of the PDF's table: who, when, what and why once per write, the
    record once per record, then each field's old -> new."""
    shaped = []
    for row in rows:
        old, new = shown_change(row.old, row.new) if row.field else ("", "")
        shaped.append(
            {
                "at": row.time[:19].replace("T", " ") if row.first_of_write else "",
                "actor": row.actor if row.first_of_write else "",
                "action": row.action if row.first_of_write else "",
                "record": (
                    f"{row.kind} {row.id}" + (f" v{row.version}" if row.version else "")
                    if row.first_of_record
                    else ""
                ),
                "why": (row.reason or "") if row.first_of_record else "",
                "field": row.field,
                "old": old,
                "new": new,
            }
        )
    return shaped
