"""The audit trail: every write of every record kind, answered from the catalog's audit
table (a projection of git history that `verify` checks row by row). A write concerns the
records it touched and those it newly refers to (a package-add: the document it pins)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.record_tables import audit, touched_filter
from atmpvault.archive.core.records import Reference

if TYPE_CHECKING:
    from atmpvault.archive.core.catalog import Catalog


@dataclass(frozen=True)
class AuditEntry:
    """One write, as git history records it."""

    commit: str
    time: str
    user: str
    action: str
    reason: str | None
    doc: str | None
    version: int | None
    summary: str
    kind: str | None = None
    id: str | None = None
    refers_to: tuple[Reference, ...] = ()  # records this write newly refers to

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "time": self.time,
            "user": self.user,
            "action": self.action,
            "reason": self.reason,
            "doc": self.doc,
            "kind": self.kind,
            "id": self.id,
            "version": self.version,
            "summary": self.summary,
            "refers_to": [
                {"kind": r.kind, "id": r.id, "version": r.version} for r in self.refers_to
            ],
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntry:
        return cls(
            commit=row["commit_sha"],
            time=row["time"],
            user=row["actor"],
            action=row["action"],
            reason=row["reason"],
            doc=row["doc"],
            version=row["version"],
            summary=row["summary"],
            kind=row["kind"],
            id=row["id"],
        )


def entries(
    catalog: Catalog,
    since: datetime | None = None,
    until: datetime | None = None,
    user: str | None = None,
    kind: str | None = None,
    record_id: str | None = None,
) -> list[AuditEntry]:
    """Every write, oldest first, filtered; `kind`/`record_id` match any record a write touched."""
    where = []
    if since is not None:
        where.append(audit.c.time >= values.iso(since))
    if until is not None:
        where.append(audit.c.time <= values.iso(until))
    if user is not None:
        where.append(audit.c.actor == user)
    if kind is not None or record_id is not None:
        where.append(touched_filter(kind, record_id))
    refs: dict[int, list[Reference]] = {}
    for row in catalog.audit_refs(where):
        refs.setdefault(row["seq"], []).append(Reference(row["kind"], row["id"], row["version"]))
    return [
        replace(AuditEntry.from_row(row), refers_to=tuple(refs.get(row["seq"], ())))
        for row in catalog.audit_rows(where)
    ]
