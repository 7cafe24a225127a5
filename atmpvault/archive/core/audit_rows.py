"""How one commit becomes rows of the audit trail.

Catch-up (core/catalog.py) and verify (core/integrity.py) both derive the rows here, so
the catalog and history alone always give the same trail.
"""

from __future__ import annotations

from typing import Any

from atmpvault.archive.core.changes import RECORDS_TRAILER, CommitChanges
from atmpvault.archive.core.records import Reference


def audit_row(
    commit: CommitChanges, seq: int, touched: list[tuple[str, str, int]]
) -> dict[str, Any]:
    """The commit's row: who, when, what, why, and the record the write is about."""
    t = commit.trailers
    kind, rid, version = primary(t, touched)
    if version is None and "Version" in t:
        version = int(t["Version"])
    return {
        "seq": seq,
        "commit_sha": commit.sha,
        "time": commit.recorded_at,
        "actor": commit.actor,
        "action": t.get("Action", ""),
        "reason": t.get("Reason"),
        "summary": commit.subject,
        "kind": kind,
        "id": rid,
        "version": version,
        "doc": t.get("Document"),
    }


def primary(
    trailers: dict[str, str], touched: list[tuple[str, str, int]]
) -> tuple[str | None, str | None, int | None]:
    """The record a write is about: the first its Records trailer lists, else the only one."""
    if not touched:
        return None, None, None
    listed = trailers.get(RECORDS_TRAILER, "").split(",")[0].split()
    for kind, rid, version in touched:
        if listed[:2] == [kind, rid]:
            return kind, rid, version
    return touched[0]


def reference_rows(
    seq: int, found: list[Reference], rows: dict[tuple[str, str], dict[str, Any]]
) -> None:
    """Add a commit's new references to `rows`: one per record referred to, its highest version."""
    for ref in found:
        known = rows.get((ref.kind, ref.id))
        if known is None or (ref.version or 0) > (known["version"] or 0):
            rows[(ref.kind, ref.id)] = {
                "seq": seq, "kind": ref.kind, "id": ref.id, "version": ref.version
            }  # fmt: skip
