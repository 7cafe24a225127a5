"""The SQL catalog: a projection of the repository (SQLite by default, PostgreSQL by URL).

It remembers the last commit it applied, so it can always be caught up or rebuilt
from the repository alone. It holds nothing the repository does not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from atmpvault.archive.documents.versions import DocumentVersion
from atmpvault.errors import IntegrityError, VaultError

SCHEMA_VERSION = "1"

metadata = sa.MetaData()

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
    sa.Column("commit_sha", sa.String(64), nullable=False),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False, unique=True),
    sa.Column("latest", sa.Integer, nullable=False),
)

state = sa.Table(
    "catalog_state",
    metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class Filters:
    program: str | None = None
    type: str | None = None
    lot: str | None = None
    unsearchable: bool = False


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
        commit=m["commit_sha"],
    )


class Catalog:
    """The catalog database behind one vault."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise VaultError(f"cannot use catalog URL {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_tables()

    def _create_tables(self) -> None:
        # Several processes may open a new catalog at once; create_all checks, then
        # creates, so a loser of that race sees "already exists" and looks again.
        for attempt in range(5):
            try:
                metadata.create_all(self.engine)
                return
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as exc:
                if "exist" in str(exc.orig).lower() and attempt < 4:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                self.engine.dispose()
                raise VaultError(f"cannot open the catalog at {self.url}: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()

    # -- state -------------------------------------------------------------------

    def last_commit(self) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(state.c.value).where(state.c.key == "last_commit")
            ).scalar_one_or_none()

    def apply(self, batch: Iterable[DocumentVersion], head: str, expected: str | None) -> None:
        """Add `batch` and move the catalog to `head`, all or nothing.

        `expected` is the commit the batch was read after; if another process moved
        the catalog meanwhile, nothing is applied.
        """
        rows = [_row(v) for v in batch]
        try:
            self._apply(rows, head, expected)
        except sa.exc.IntegrityError as exc:
            raise IntegrityError(
                "the catalog already holds versions the repository is adding now, so it "
                "does not match the repository; run 'atmpvault rebuild'"
            ) from exc

    def _apply(self, rows: list[dict[str, Any]], head: str, expected: str | None) -> None:
        with self.engine.begin() as conn:
            current = conn.execute(
                sa.select(state.c.value).where(state.c.key == "last_commit").with_for_update()
            ).scalar_one_or_none()
            if current != expected:
                return
            if rows:
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
            if current is None:
                conn.execute(state.insert(), [{"key": "last_commit", "value": head}])
            else:
                conn.execute(state.update().where(state.c.key == "last_commit").values(value=head))

    def reset(self) -> None:
        """Forget everything, ready for a rebuild from the first commit."""
        with self.engine.begin() as conn:
            for table in (versions, documents, state):
                conn.execute(table.delete())

    # -- queries -----------------------------------------------------------------

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

    def known_hashes(self, hashes: list[str]) -> set[str]:
        """Which of these SHA-256 digests some archived version already has."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                query = sa.select(versions.c.sha256).where(versions.c.sha256.in_(chunk)).distinct()
                found.update(conn.execute(query).scalars())
        return found

    def count_versions(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(versions)).scalar_one()

    def dump(self) -> Iterator[DocumentVersion]:
        """Every version, in document then version order (for verify)."""
        query = sa.select(versions).order_by(versions.c.doc_id, versions.c.version)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                yield _version(row)

    def latest_map(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.select(documents.c.id, documents.c.latest)).all())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
