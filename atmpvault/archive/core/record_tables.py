"""The core's catalog tables: every version of every generic record, the lots each
concerns, the audit trail (a row per commit, the records each touched and each newly
referred to); and the audit WHERE clauses built on them. Made on first use, beside the
state table (tables.py), on the same metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from atmpvault.archive.core.tables import metadata

records = sa.Table(
    "records",
    metadata,
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("latest", sa.Boolean, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # the audit row of the commit that wrote it
    sa.Column("commit_sha", sa.String(64), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("program", sa.String(40)),
    sa.Column("lot", sa.String(64)),
    sa.Column("status", sa.String(40)),
    sa.Column("due", sa.String(10)),
    sa.Column("ref", sa.String(250)),
    sa.Column("body", sa.Text, nullable=False),
    sa.Index("records_kind_latest", "kind", "latest"),
    sa.Index("records_kind_ref", "kind", "ref"),
    sa.Index("records_kind_due", "kind", "due"),
)

# Every lot a version of a record concerns (a deviation may affect several), so a lot's
# records are found by SQL: `lot show`, `deviation ls --lot`.
record_lots = sa.Table(
    "record_lots",
    metadata,
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("lot", sa.String(64), primary_key=True),
    sa.Column("recorded_at", sa.String(32), nullable=False),
    sa.Index("record_lots_lot", "lot"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("commit_sha", sa.String(64), nullable=False, unique=True),
    sa.Column("time", sa.String(32), nullable=False, index=True),
    sa.Column("actor", sa.String(100), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("kind", sa.String(40)),
    sa.Column("id", sa.String(100)),
    sa.Column("version", sa.Integer),
    sa.Column("doc", sa.String(100)),
)

audit_items = sa.Table(
    "audit_items",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("audit_items_kind_id", "kind", "id"),
)

# The records a commit's writes newly refer to (a package-add: the document version it
# pins), so the trail of a document lists the writes that put it into a package.
audit_refs = sa.Table(
    "audit_refs",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer),  # None: the record as a whole
    sa.Index("audit_refs_kind_id", "kind", "id"),
)


def touched_filter(kind: str | None, record_id: str | None) -> Any:
    """An audit WHERE clause: the commit touched a record of this kind and/or id, or (an id
    given) newly referred to it: a package-add concerns the document it pins."""
    found = []
    for table in (audit_items, audit_refs) if record_id is not None else (audit_items,):
        items = sa.select(table.c.seq)
        if kind is not None:
            items = items.where(table.c.kind == kind)
        if record_id is not None:
            items = items.where(table.c.id == record_id)
        found.append(audit.c.seq.in_(items))
    return sa.or_(*found)


def touching(keys: Iterable[tuple[str, str]]) -> Any:
    """An audit WHERE clause: the commit touched, or newly referred to, any of these
    (kind, id) records (a lot's trail: the lot, its documents and its records)."""
    wanted = sorted(set(keys))
    found = []
    for table in (audit_items, audit_refs):
        items = sa.select(table.c.seq).where(sa.tuple_(table.c.kind, table.c.id).in_(wanted))
        found.append(audit.c.seq.in_(items))
    return sa.or_(*found)
