"""The SQL catalog: a projection of the repository (SQLite by default, PostgreSQL by URL).

It remembers the last commit it applied, so it can always be caught up or rebuilt from
the repository alone, and holds nothing the repository does not. The core's tables are
the catalog's state (core/tables.py), and the records of every generic kind (every
version) and the audit trail (core/record_tables.py, imported by the methods that use
them, so that a listing of documents does not make them); each workflow adds its own
tables on the same metadata and projects its own commits into them (see core/domain.py).
A catalog whose schema differs from the code's is emptied and replayed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from atmpvault.archive.core.domain import Domain, load
from atmpvault.archive.core.records import Columns, Record, new_references
from atmpvault.archive.core.tables import metadata, state
from atmpvault.errors import IntegrityError, VaultError
from atmpvault.repository.git import ObjectMissing

if TYPE_CHECKING:  # a reader of the catalog needs no unit of work
    from atmpvault.archive.core.changes import CommitChanges

CORE_SCHEMA = "4"  # 4: record_lots
# What reading a damaged database raises ("database disk image is malformed").
DATABASE_ERRORS: tuple[type[Exception], ...] = (sa.exc.DatabaseError,)


class ProjectionContext:
    """What a workflow's projector is given besides the connection: the vault's store."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def read_file(self, path: str, commit: str) -> bytes | None:
        """A file of the repository as of `commit`, or None if it has none there."""
        try:
            return bytes(self.store.read(commit, path))
        except ObjectMissing:
            return None


class Catalog:
    """The catalog database behind one vault."""

    def __init__(
        self, url: str, domains: Sequence[Domain] = (), store: Any = None, shared: bool = False
    ) -> None:
        """`shared`: the team's catalog, which a workstation of another release must never
        rebuild under its colleagues (it refuses to open it instead)."""
        self.url = url
        self.shared = shared
        self.domains = tuple(domains)
        self.context = ProjectionContext(store)
        self.schema = ";".join(
            [f"core:{CORE_SCHEMA}"] + [f"{d.name}:{d.schema}" for d in self._with_tables()]
        )
        self.rebuilt_because: str | None = None  # set when an old schema was replaced
        self._has_last_commit = False
        try:
            self.engine: Engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise VaultError(f"cannot use catalog URL {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._open()
        except sa.exc.DBAPIError as exc:  # unreachable server, no such database, refused login
            self.engine.dispose()
            detail = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else exc
            raise VaultError(f"cannot open the catalog at {self._shown()}: {detail}") from exc

    def _shown(self) -> str:
        """The catalog's URL without its password."""
        return self.engine.url.render_as_string(hide_password=True)

    def _with_tables(self) -> list[Domain]:
        return [d for d in self.domains if d.tables is not None]

    @cached_property
    def _tables(self) -> list[Any]:
        """The workflows' table modules, imported with the core's record and audit tables
        when the catalog is made, emptied or projected into: a reader imports only those it
        queries (a listing of documents, the document tables)."""
        load("atmpvault.archive.core.record_tables")
        return [load(d.tables) for d in self._with_tables()]

    def _open(self) -> None:
        """Create the tables, or replace them if they were made for another schema."""
        found = self._stored_schema()
        if found == self.schema:  # made for this schema: every table is there
            if not self._has_last_commit:  # made by a release before the seeded row
                self._seed_state()
            return
        if found is not None and self.shared:
            self.engine.dispose()
            made = found or "of an earlier release"
            raise VaultError(
                f"the shared catalog at {self._shown()} was made for schema {made}; this "
                f"workstation's release expects {self.schema}: upgrade atmpvault here to the "
                "team's release, or rebuild the shared catalog deliberately with 'atmpvault "
                "rebuild --shared' (then every workstation needs this release)"
            )
        if found is not None:
            self.rebuilt_because = (
                f"the catalog's schema {found} is not {self.schema}"
                if found
                else "the catalog was made by an earlier release"
            )
            self._drop_all()
        self._create_tables()
        self._seed_state()

    def _seed_state(self) -> None:
        """Record the schema, and a last_commit row ("": nothing applied) that `apply` can
        lock; another process opening the new catalog this moment may win the insert."""
        try:
            with self.engine.begin() as conn:
                missing = [
                    {"key": key, "value": value}
                    for key, value in (("schema", self.schema), ("last_commit", ""))
                    if self._get(conn, key) is None
                ]
                if missing:
                    conn.execute(state.insert(), missing)
        except sa.exc.IntegrityError:
            pass  # the other process seeded it; _stored_schema now finds its rows

    def _stored_schema(self) -> str | None:
        """The schema the catalog was made with: None for a new one, '' for an old one."""
        inspector = sa.inspect(self.engine)
        if not inspector.has_table("catalog_state"):
            return None
        with self.engine.connect() as conn:
            rows: dict[str, str] = dict(
                conn.execute(
                    sa.text(
                        "SELECT key, value FROM catalog_state "
                        "WHERE key IN ('schema', 'last_commit')"
                    )
                ).all()
            )
        self._has_last_commit = "last_commit" in rows
        if "schema" in rows:
            return str(rows["schema"])
        # No schema: an earlier release's catalog (it has applied commits), or one another
        # process is creating this moment (nothing applied yet), which must not be dropped.
        return "" if "last_commit" in rows else None

    def _drop_all(self) -> None:
        inspector = sa.inspect(self.engine)
        with self.engine.begin() as conn:
            for name in inspector.get_table_names():
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))

    def _create_tables(self) -> None:
        # Several processes may open a new catalog at once; create_all checks, then
        # creates, so a loser of that race sees "already exists" and looks again.
        for attempt in range(5):
            try:
                metadata.create_all(self.engine, tables=self._all_tables())
                return
            except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as exc:
                if "exist" in str(exc.orig).lower() and attempt < 4:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                self.engine.dispose()
                raise VaultError(f"cannot open the catalog at {self._shown()}: {exc.orig}") from exc

    def _all_tables(self) -> list[sa.Table]:
        """Every table of the catalog in dependency order, the workflows' included (their
        modules add them to the metadata when imported)."""
        _ = self._tables
        return list(metadata.sorted_tables)

    def close(self) -> None:
        self.engine.dispose()

    def connect(self) -> Any:
        """A read connection (a context manager)."""
        return self.engine.connect()

    # -- state -------------------------------------------------------------------

    @staticmethod
    def _get(conn: Connection, key: str) -> str | None:
        value = conn.execute(
            sa.select(state.c.value).where(state.c.key == key)
        ).scalar_one_or_none()
        return None if value is None else str(value)

    def last_commit(self) -> str | None:
        with self.engine.connect() as conn:
            return self._get(conn, "last_commit") or None

    def apply(self, commits: Sequence[CommitChanges], head: str, expected: str | None) -> None:
        """Project `commits` and move the catalog to `head`, all or nothing.

        `expected` is the commit they were read after; if another process moved the
        catalog meanwhile, nothing is applied.
        """
        try:
            with self.engine.begin() as conn:
                stored = conn.execute(
                    sa.select(state.c.value).where(state.c.key == "last_commit").with_for_update()
                ).scalar_one_or_none()
                if (stored or None) != expected:
                    return
                if commits:
                    self._project(conn, commits)
                if stored is None:  # a catalog from before the seeded row
                    conn.execute(state.insert(), [{"key": "last_commit", "value": head}])
                else:
                    conn.execute(
                        state.update().where(state.c.key == "last_commit").values(value=head)
                    )
        except sa.exc.IntegrityError as exc:
            raise IntegrityError(
                "the catalog already holds versions the repository is adding now, so it "
                "does not match the repository; run 'atmpvault rebuild'"
            ) from exc

    def _project(self, conn: Connection, commits: Sequence[CommitChanges]) -> None:
        from atmpvault.archive.core.audit_rows import audit_row, reference_rows  # writers only
        from atmpvault.archive.core.record_tables import (
            audit,
            audit_items,
            audit_refs,
            record_lots,
            records,
        )

        seq = conn.execute(sa.select(sa.func.max(audit.c.seq))).scalar() or 0
        audit_rows, item_rows, record_rows, ref_rows, lot_rows = [], [], [], [], []
        heads = self._head_versions(conn, {(r.kind.name, r.id) for c in commits for r in c.records})
        bodies: dict[tuple[str, str], dict[str, Any]] = {}  # the newest of this batch
        for commit in commits:
            seq += 1
            touched = []
            refs: dict[tuple[str, str], dict[str, Any]] = {}
            for change in commit.records:
                key = (change.kind.name, change.id)
                version = heads.get(key, 0) + 1
                heads[key] = version
                touched.append((change.kind.name, change.id, version))
                if change.kind.generic:
                    record_rows.append(_record_row(change, version, seq, commit))
                    lot_rows += [
                        {"kind": key[0], "id": key[1], "version": version, "lot": lot,
                         "recorded_at": commit.recorded_at}
                        for lot in change.kind.lots_of(change.body)
                    ]  # fmt: skip
                if change.kind.references is not None:
                    before = bodies[key] if key in bodies else self._body(conn, key, version - 1)
                    reference_rows(seq, new_references(change.kind, change.body, before), refs)
                    bodies[key] = change.body
            audit_rows.append(audit_row(commit, seq, touched))
            item_rows += [{"seq": seq, "kind": k, "id": i, "version": v} for k, i, v in touched]
            ref_rows += [refs[key] for key in sorted(refs)]
        conn.execute(audit.insert(), audit_rows)
        if item_rows:
            conn.execute(audit_items.insert(), item_rows)
        if ref_rows:
            conn.execute(audit_refs.insert(), ref_rows)
        if lot_rows:
            conn.execute(record_lots.insert(), lot_rows)
        if record_rows:
            changed = {(r["kind"], r["id"]) for r in record_rows}
            for kind, rid in changed:
                conn.execute(
                    records.update()
                    .where(records.c.kind == kind, records.c.id == rid, records.c.latest.is_(True))
                    .values(latest=False)
                )
            newest = {(r["kind"], r["id"]): r["version"] for r in record_rows}
            for row in record_rows:
                row["latest"] = newest[(row["kind"], row["id"])] == row["version"]
            conn.execute(records.insert(), record_rows)
        for module in self._tables:
            module.project(conn, commits, self.context)

    @staticmethod
    def _body(conn: Connection, key: tuple[str, str], version: int) -> dict[str, Any] | None:
        """The body of one version of a generic record (None: version 0, or none)."""
        from atmpvault.archive.core.record_tables import records

        if version < 1:
            return None
        found = conn.execute(
            sa.select(records.c.body).where(
                records.c.kind == key[0], records.c.id == key[1], records.c.version == version
            )
        ).scalar_one_or_none()
        return None if found is None else dict(json.loads(found))

    @staticmethod
    def _head_versions(conn: Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(kind, id) -> the newest version the audit trail knows, for those it knows."""
        from atmpvault.archive.core.record_tables import audit_items

        found: dict[tuple[str, str], int] = {}
        ids = sorted({rid for _kind, rid in keys})
        for start in range(0, len(ids), 500):
            query = (
                sa.select(audit_items.c.kind, audit_items.c.id, sa.func.max(audit_items.c.version))
                .where(audit_items.c.id.in_(ids[start : start + 500]))
                .group_by(audit_items.c.kind, audit_items.c.id)
            )
            found.update({(k, i): int(v) for k, i, v in conn.execute(query) if (k, i) in keys})
        return found

    @staticmethod
    def _head_version(conn: Connection, kind: str, record_id: str) -> int:
        """The newest version of a record the audit trail knows (0: none yet)."""
        from atmpvault.archive.core.record_tables import audit_items

        found = conn.execute(
            sa.select(sa.func.max(audit_items.c.version)).where(
                audit_items.c.kind == kind, audit_items.c.id == record_id
            )
        ).scalar()
        return int(found or 0)

    def reset(self) -> None:
        """Forget everything, ready for a rebuild from the first commit."""
        with self.engine.begin() as conn:
            for table in reversed(self._all_tables()):
                if table is not state:
                    conn.execute(table.delete())
            conn.execute(state.delete().where(state.c.key.not_in(["schema", "last_commit"])))
            conn.execute(state.update().where(state.c.key == "last_commit").values(value=""))

    # -- records -------------------------------------------------------------------

    def record_head(self, kind: str, record_id: str) -> tuple[int, str] | None:
        """(newest version, path) of a record, or None if there is none."""
        from atmpvault.archive.core.record_tables import records

        with self.engine.connect() as conn:
            version = self._head_version(conn, kind, record_id)
            if not version:
                return None
            path = conn.execute(
                sa.select(records.c.path).where(
                    records.c.kind == kind, records.c.id == record_id, records.c.version == version
                )
            ).scalar_one_or_none()
        return version, str(path or "")

    def record(
        self, kind: str, record_id: str, version: int | None = None, as_of: str | None = None
    ) -> Record | None:
        """One version of a record: the latest, a numbered one, or the one current at `as_of`."""
        from atmpvault.archive.core.record_tables import records

        query = sa.select(records).where(records.c.kind == kind, records.c.id == record_id)
        if version is not None:
            query = query.where(records.c.version == version)
        if as_of is not None:
            query = query.where(records.c.recorded_at <= as_of)
        query = query.order_by(records.c.version.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _record(row) if row else None

    def records(
        self,
        kind: str,
        as_of: str | None = None,
        where: Iterable[Any] = (),
        order: Iterable[Any] = (),
    ) -> list[Record]:
        """The newest version of every record of a kind (as it stood at `as_of`), filtered."""
        from atmpvault.archive.core.record_tables import records

        if as_of is None:
            query = sa.select(records).where(records.c.kind == kind, records.c.latest.is_(True))
        else:
            newest = (
                sa.select(records.c.id, sa.func.max(records.c.version).label("version"))
                .where(records.c.kind == kind, records.c.recorded_at <= as_of)
                .group_by(records.c.id)
                .subquery()
            )
            query = (
                sa.select(records)
                .join(
                    newest,
                    sa.and_(newest.c.id == records.c.id, newest.c.version == records.c.version),
                )
                .where(records.c.kind == kind)
            )
        for clause in where:
            query = query.where(clause)
        query = query.order_by(*order, records.c.id)
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def lot_records(
        self, lot: str, kind: str | None = None, as_of: str | None = None
    ) -> list[Record]:
        """The records that concern a lot (of one kind, or all), each as it stood at `as_of`
        (its newest version otherwise), in kind and id order."""
        from atmpvault.archive.core.record_tables import record_lots, records

        named = sa.select(record_lots.c.kind, record_lots.c.id).where(record_lots.c.lot == lot)
        if kind is not None:
            named = named.where(record_lots.c.kind == kind)
        if as_of is not None:
            named = named.where(record_lots.c.recorded_at <= as_of)
        newest = sa.select(
            records.c.kind, records.c.id, sa.func.max(records.c.version).label("version")
        ).where(sa.tuple_(records.c.kind, records.c.id).in_(named.distinct()))
        if as_of is not None:
            newest = newest.where(records.c.recorded_at <= as_of)
        heads = newest.group_by(records.c.kind, records.c.id).subquery()
        query = (
            sa.select(records)
            .join(
                heads,
                sa.and_(
                    heads.c.kind == records.c.kind,
                    heads.c.id == records.c.id,
                    heads.c.version == records.c.version,
                ),
            )
            .order_by(records.c.kind, records.c.id)
        )
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def record_versions(self, kind: str, record_id: str) -> list[Record]:
        """Every version of one record, oldest first."""
        from atmpvault.archive.core.record_tables import records

        query = (
            sa.select(records)
            .where(records.c.kind == kind, records.c.id == record_id)
            .order_by(records.c.version)
        )
        with self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def max_id(self, kind: str, prefix: str) -> str | None:
        """The greatest id of a kind starting with `prefix` (ids that sort by number)."""
        from atmpvault.archive.core.record_tables import records

        query = sa.select(sa.func.max(records.c.id)).where(
            records.c.kind == kind, records.c.id.like(f"{prefix}%")
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else str(found)

    def audit_rows(self, where: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Audit rows, oldest first, with the records each commit touched."""
        from atmpvault.archive.core.record_tables import audit

        query = sa.select(audit)
        for clause in where:
            query = query.where(clause)
        query = query.order_by(audit.c.seq)
        with self.engine.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        return rows

    def last_write(self, until: str | None = None) -> dict[str, Any] | None:
        """The audit row of the newest commit at or before `until` (any time: the tip)."""
        from atmpvault.archive.core.record_tables import audit

        query = sa.select(audit)
        if until is not None:
            query = query.where(audit.c.time <= until)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(audit.c.seq.desc()).limit(1)).first()
        return None if row is None else dict(row._mapping)

    def count_versions(self) -> int:
        """How many versions of documents and records the catalog holds."""
        from atmpvault.archive.core.record_tables import audit_items

        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(audit_items)).scalar_one()
            )

    def audit_refs(self, where: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """The records commits newly referred to, by commit; `where` selects audit rows."""
        from atmpvault.archive.core.record_tables import audit, audit_refs

        query = sa.select(audit_refs)
        clauses = list(where)
        if clauses:
            query = query.where(audit_refs.c.seq.in_(sa.select(audit.c.seq).where(*clauses)))
        query = query.order_by(audit_refs.c.seq, audit_refs.c.kind, audit_refs.c.id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def audit_items(self, first: int = 0, last: int | None = None) -> list[dict[str, Any]]:
        """The (commit, record) pairs of the audit trail, of commits `first`..`last` (verify)."""
        from atmpvault.archive.core.record_tables import audit_items

        query = sa.select(audit_items).where(audit_items.c.seq >= first)
        if last is not None:
            query = query.where(audit_items.c.seq <= last)
        query = query.order_by(audit_items.c.seq, audit_items.c.kind, audit_items.c.id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def _record_row(change: Any, version: int, seq: int, commit: CommitChanges) -> dict[str, Any]:
    columns = change.kind.columns(change.body)
    return {
        "kind": change.kind.name,
        "id": change.id,
        "version": version,
        "latest": True,
        "seq": seq,
        "commit_sha": commit.sha,
        "path": change.path,
        "recorded_at": commit.recorded_at,
        "actor": commit.actor,
        "program": columns.program,
        "lot": columns.lot,
        "status": columns.status,
        "due": columns.due,
        "ref": columns.ref,
        "body": json.dumps(change.body, sort_keys=True, ensure_ascii=False),
    }


def _record(row: Any) -> Record:
    m = row._mapping
    return Record(
        kind=m["kind"],
        id=m["id"],
        version=m["version"],
        body=json.loads(m["body"]),
        path=m["path"],
        commit=m["commit_sha"],
        recorded_at=m["recorded_at"],
        actor=m["actor"],
        columns=Columns(m["program"], m["lot"], m["status"], m["due"], m["ref"]),
    )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite catalog URL (None: not SQLite, or in memory)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return None if parsed.database == ":memory:" else Path(parsed.database)


def sqlite_damage(url: str) -> list[str]:
    """What SQLite's own integrity check finds in a catalog file; [] when sound or not SQLite.

    Its b-trees are checked against each other, so an index that disagrees with its
    table (a lookup by SHA-256 that misses a row a scan finds) is named.
    """
    path = sqlite_file(url)
    if path is None or not path.is_file():
        return []
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [f"{path.name} cannot be read: {exc}"]
    found = [str(row[0]) for row in rows]
    return [] if found == ["ok"] else found


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
