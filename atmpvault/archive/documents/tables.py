"""The catalog's document tables: every version of every document, and each one's latest.

Projected from the document records (docs/<h>/<hh>/<ID>/record.json) that commits write.
A change to these tables raises the schema on the DOMAIN descriptor (documents/__init__.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from atmpvault.archive.core.tables import metadata
from atmpvault.archive.documents.records import ACTIVE, KIND, DocumentVersion

if TYPE_CHECKING:
    from atmpvault.archive.core.catalog import Catalog
    from atmpvault.archive.core.changes import CommitChanges

versions = sa.Table(
    "versions",
    metadata,
    sa.Column("doc_id", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("program", sa.String(40), nullable=False, index=True),
    sa.Column("doc_type", sa.String(40), nullable=False, index=True),
    sa.Column("title", sa.Text),
    sa.Column("lot", sa.String(64), index=True),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("action", sa.String(20), nullable=False),
    sa.Column("recorded_at", sa.String(32), nullable=False, index=True),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("meta", sa.Text, nullable=False),
    sa.Column("searchable", sa.Boolean, nullable=False),
    sa.Column("unsearchable_reason", sa.Text),
    sa.Column("pages", sa.Integer),
    sa.Column("source_path", sa.Text),
    sa.Column("duplicate_of", sa.String(40)),
    sa.Column("commit_sha", sa.String(64), nullable=False),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False, unique=True),
    sa.Column("latest", sa.Integer, nullable=False),
)


class Filters(NamedTuple):
    """What a listing of documents selects by (none: every document)."""

    program: str | None = None
    type: str | None = None
    lot: str | None = None
    unsearchable: bool = False


def project(conn: Any, commits: Sequence[CommitChanges], _context: Any) -> None:
    """Add the document versions these commits recorded."""
    rows = [
        _row(DocumentVersion.from_body(change.body, commit.sha))
        for commit in commits
        for change in commit.records
        if change.kind.name == KIND.name
    ]
    if not rows:
        return
    conn.execute(versions.insert(), rows)
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["doc_id"]] = row
    known = {
        doc_id
        for (doc_id,) in conn.execute(
            sa.select(documents.c.id).where(documents.c.id.in_(list(latest)))
        )
    }
    new = [
        {"id": r["doc_id"], "seq": r["seq"], "latest": r["version"]}
        for r in latest.values()
        if r["doc_id"] not in known
    ]
    if new:
        conn.execute(documents.insert(), new)
    for doc_id in known:
        conn.execute(
            documents.update()
            .where(documents.c.id == doc_id)
            .values(latest=latest[doc_id]["version"])
        )


def _row(version: DocumentVersion) -> dict[str, Any]:
    return {
        "doc_id": version.id,
        "version": version.version,
        "seq": version.seq,
        "program": version.program,
        "doc_type": version.type,
        "title": version.title,
        "lot": version.lot,
        "filename": version.filename,
        "size": version.size,
        "sha256": version.sha256,
        "status": version.status,
        "action": version.action,
        "recorded_at": version.recorded_at,
        "user_name": version.user,
        "reason": version.reason,
        "meta": json.dumps(version.meta, sort_keys=True),
        "searchable": version.searchable,
        "unsearchable_reason": version.unsearchable_reason,
        "pages": version.pages,
        "source_path": version.source_path,
        "duplicate_of": version.duplicate_of,
        "commit_sha": version.commit,
    }


def _version(row: Any) -> DocumentVersion:
    m = row._mapping
    return DocumentVersion(
        id=m["doc_id"],
        version=m["version"],
        seq=m["seq"],
        program=m["program"],
        type=m["doc_type"],
        title=m["title"],
        lot=m["lot"],
        filename=m["filename"],
        size=m["size"],
        sha256=m["sha256"],
        status=m["status"],
        action=m["action"],
        recorded_at=m["recorded_at"],
        user=m["user_name"],
        reason=m["reason"],
        meta=json.loads(m["meta"]),
        searchable=bool(m["searchable"]),
        unsearchable_reason=m["unsearchable_reason"],
        pages=m["pages"],
        source_path=m["source_path"],
        duplicate_of=m["duplicate_of"],
        commit=m["commit_sha"],
    )


class DocumentCatalog:
    """The document queries, over the vault's catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.engine = catalog.engine

    def version(
        self, doc_id: str, number: int | None = None, as_of: str | None = None
    ) -> DocumentVersion | None:
        query = sa.select(versions).where(versions.c.doc_id == doc_id)
        if number is not None:
            query = query.where(versions.c.version == number)
        if as_of is not None:
            query = query.where(versions.c.recorded_at <= as_of)
        query = query.order_by(versions.c.version.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _version(row) if row else None

    def versions(self, doc_id: str) -> list[DocumentVersion]:
        query = sa.select(versions).where(versions.c.doc_id == doc_id).order_by(versions.c.version)
        with self.engine.connect() as conn:
            return [_version(row) for row in conn.execute(query)]

    def latest(self, filters: Filters, as_of: str | None = None) -> list[DocumentVersion]:
        """The newest version of each document (as it stood at `as_of`)."""
        if as_of is None:
            query = sa.select(versions).join(
                documents,
                sa.and_(
                    documents.c.id == versions.c.doc_id, documents.c.latest == versions.c.version
                ),
            )
        else:
            newest = (
                sa.select(versions.c.doc_id, sa.func.max(versions.c.version).label("version"))
                .where(versions.c.recorded_at <= as_of)
                .group_by(versions.c.doc_id)
                .subquery()
            )
            query = sa.select(versions).join(
                newest,
                sa.and_(
                    newest.c.doc_id == versions.c.doc_id, newest.c.version == versions.c.version
                ),
            )
        if filters.program:
            query = query.where(versions.c.program == filters.program)
        if filters.type:
            query = query.where(versions.c.doc_type == filters.type)
        if filters.lot:
            query = query.where(versions.c.lot == filters.lot)
        if filters.unsearchable:
            query = query.where(versions.c.searchable.is_(False))
        with self.engine.connect() as conn:
            return [_version(row) for row in conn.execute(query.order_by(versions.c.seq))]

    def next_seq(self) -> int:
        with self.engine.connect() as conn:
            return (conn.execute(sa.select(sa.func.max(documents.c.seq))).scalar() or 0) + 1

    def holders(self, hashes: Iterable[str]) -> dict[str, list[DocumentVersion]]:
        """The documents already holding each of these SHA-256 digests, oldest first.

        One entry per document: the first of its versions with those bytes.
        """
        wanted = sorted(set(hashes))
        found: dict[str, list[DocumentVersion]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), 500):
                query = (
                    sa.select(versions)
                    .where(versions.c.sha256.in_(wanted[start : start + 500]))
                    .order_by(versions.c.seq, versions.c.version)
                )
                for row in conn.execute(query):
                    held = found.setdefault(row.sha256, [])
                    if all(v.id != row.doc_id for v in held):
                        held.append(_version(row))
        return found

    def dump(self) -> Iterator[DocumentVersion]:
        """Every version, in document then version order (for verify)."""
        query = sa.select(versions).order_by(versions.c.doc_id, versions.c.version)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                yield _version(row)

    def versions_of(
        self, keys: Sequence[tuple[str, int]]
    ) -> dict[tuple[str, int], DocumentVersion]:
        """These versions, where the catalog has them (for verify, a chunk at a time)."""
        wanted = set(keys)
        ids = sorted({doc_id for doc_id, _ in wanted})
        found: dict[tuple[str, int], DocumentVersion] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = sa.select(versions).where(versions.c.doc_id.in_(ids[start : start + 500]))
                for row in conn.execute(query):
                    if (row.doc_id, row.version) in wanted:
                        found[(row.doc_id, row.version)] = _version(row)
        return found

    def keys(self) -> Iterator[tuple[str, int]]:
        """Every (document, version) the catalog holds, streamed."""
        query = sa.select(versions.c.doc_id, versions.c.version)
        with self.engine.connect() as conn:
            for row in conn.execution_options(stream_results=True).execute(query):
                yield row.doc_id, row.version

    def identical_latest(self) -> list[tuple[str, str, list[str]]]:
        """(SHA-256, file name, ids) of active documents whose latest versions have the same
        bytes and file name, not archived as duplicates on purpose: suspected duplicates."""
        latest = sa.and_(
            versions.c.doc_id == documents.c.id, versions.c.version == documents.c.latest
        )
        query = (
            sa.select(versions.c.sha256, versions.c.filename, versions.c.doc_id)
            .select_from(versions.join(documents, latest))
            .where(versions.c.status == ACTIVE, versions.c.duplicate_of.is_(None))
        )
        pairs = (
            sa.select(versions.c.sha256, versions.c.filename)
            .select_from(versions.join(documents, latest))
            .where(versions.c.status == ACTIVE, versions.c.duplicate_of.is_(None))
            .group_by(versions.c.sha256, versions.c.filename)
            .having(sa.func.count() > 1)
        )
        groups: dict[tuple[str, str], list[str]] = {}
        with self.engine.connect() as conn:
            shared = {(r.sha256, r.filename) for r in conn.execute(pairs)}
            if shared:
                digests = sorted({digest for digest, _ in shared})
                for row in conn.execute(query.where(versions.c.sha256.in_(digests))):
                    if (row.sha256, row.filename) in shared:
                        groups.setdefault((row.sha256, row.filename), []).append(row.doc_id)
        return [(digest, name, sorted(ids)) for (digest, name), ids in sorted(groups.items())]

    def latest_map(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(documents.c.id, documents.c.latest)).all())
