"""The full-text index façade: one API over the tantivy and Whoosh engines.

The index is a projection of the repository: it holds every version of every document
and record (a hit's `kind` says which), flags the latest version of each id, and
remembers the repository commit it has applied (in STATE.json, readable without loading
any engine). It can always be rebuilt: data of another engine or of another schema
version is discarded on open, and `Index.discarded` says why.

Workflows contribute keyword tags, (field, value) pairs such as ("app", "IND-012345");
filters match them exactly and the fields named to `Index.open` are query fields.

Query language: see atmpvault.indexer.query. Snippets mark matched words as «word».
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from atmpvault.errors import InvalidInput
from atmpvault.files import write_atomically
from atmpvault.indexer.query import (
    FIELDS,
    QueryError,
    filter_range,
    parse,
    tag_field,
    utc,
)
from atmpvault.indexer.snippets import HIGHLIGHT_CLOSE, HIGHLIGHT_OPEN, Highlighter

__all__ = [
    "ENGINE_NAMES",
    "HIGHLIGHT_CLOSE",
    "HIGHLIGHT_OPEN",
    "SCHEMA_VERSION",
    "Hit",
    "Index",
    "IndexDoc",
    "QueryError",
    "SearchFilters",
    "SearchResult",
    "read_state",
]

STATE_FILE = "STATE.json"
STATE_FORMAT = 1
# The layout of the engines' data; data of another schema is discarded and rebuilt.
# 1: app and sequences fields (STATE.json without "schema"); 2: kind and tags.
SCHEMA_VERSION = 2
ENGINE_NAMES = ("tantivy", "whoosh")
DOCUMENT = "document"


@dataclass(frozen=True)
class IndexDoc:
    """One version of one document or record, as the index sees it.

    `kind` is what a hit is: "document", or a record kind such as "event". `tags` are
    (field, value) keyword pairs contributed by workflows; a field may repeat.
    """

    id: str
    version: int
    program: str
    type: str
    lot: str | None
    title: str | None
    text: str
    filename: str
    recorded_at: str  # ISO UTC, e.g. 2026-03-01T10:00:00.000000+00:00
    status: str
    meta: dict[str, str]
    kind: str = DOCUMENT
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SearchFilters:
    """Restrictions applied on top of the query; `since`/`until` are inclusive ISO dates.

    Every (field, value) of `tags` must be among a hit's tags (case-insensitive); a hit's
    kind must be one of `kinds` unless it is empty.
    """

    program: str | None = None
    type: str | None = None
    lot: str | None = None
    since: str | None = None
    until: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    kinds: tuple[str, ...] = ()
    all_versions: bool = False
    # the zone of dates and times typed in the query without an offset (recorded_at:...),
    # asked for only when the query has one: finding it may read the repository
    zone: Callable[[], tzinfo] = utc


@dataclass(frozen=True)
class Hit:
    id: str
    version: int
    title: str | None
    program: str
    type: str
    lot: str | None
    score: float
    snippet: str
    recorded_at: str
    status: str
    kind: str


@dataclass(frozen=True)
class SearchResult:
    query: str
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]] | None = field(default=None)


def read_state(path: Path) -> dict[str, Any] | None:
    """The index's STATE.json (engine, last_commit, doc_count), or None; loads no engine.

    A state of another schema version is None too: its last_commit does not make the
    index current, since opening it discards the data.
    """
    state = _read_state(Path(path))
    return state if state is not None and _schema_of(state) == SCHEMA_VERSION else None


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _schema_of(state: dict[str, Any]) -> object:
    return state.get("schema", 1)  # STATE.json files of schema 1 did not say


def _write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace STATE.json atomically: a reader sees the old state or the new, never half."""
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    write_atomically(path / STATE_FILE, text.encode("utf-8"))


class Index:
    """A full-text index of document and record versions in a directory; use `Index.open`."""

    def __init__(
        self,
        path: Path,
        engine_name: str,
        engine: Any,
        last_commit: str | None,
        tag_fields: frozenset[str] = frozenset(),
        discarded: str | None = None,
    ):
        self.path = path
        self.engine_name = engine_name
        self.tag_fields = tag_fields
        # Why the data found on open was thrown away (the index is empty), or None.
        self.discarded = discarded
        self._engine = engine
        self._last_commit = last_commit
        # Within a session (until commit): id -> (latest version, that version's doc if it
        # was added in this session), and the versions added in this session.
        self._session_latest: dict[str, tuple[int, IndexDoc | None]] = {}
        self._session_keys: set[tuple[str, int]] = set()

    @classmethod
    def open(cls, path: Path, engine: str = "tantivy", tag_fields: Iterable[str] = ()) -> Index:
        """Open (creating if needed) the index in `path` with the named engine.

        `tag_fields` are the tag fields queries may name (`app:IND-012345`).
        """
        from atmpvault.indexer.engines import open_engine

        if engine not in ENGINE_NAMES:
            raise InvalidInput(
                f"unknown index engine {engine!r}; choose one of: {', '.join(ENGINE_NAMES)}"
            )
        fields = _tag_fields(tag_fields)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        data_dir = path / engine
        state = _read_state(path)
        # Data not vouched for by STATE.json (another engine's, another schema's, or from
        # before a crash during creation) is discarded: the index is rebuilt from the
        # repository.
        discarded = _distrust(state, engine, data_dir)
        trusted = state is not None and discarded is None
        if not trusted:
            if data_dir.exists():
                shutil.rmtree(data_dir)
            data_dir.mkdir()
        eng = open_engine(engine, data_dir, create=not trusted)
        last_commit = state.get("last_commit") if trusted and state else None
        index = cls(path, engine, eng, last_commit, fields, discarded)
        if not trusted:
            index._save_state()
        return index

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _save_state(self) -> None:
        _write_state(
            self.path,
            {
                "format": STATE_FORMAT,
                "schema": SCHEMA_VERSION,
                "engine": self.engine_name,
                "last_commit": self._last_commit,
                "doc_count": self._engine.count(),
                "updated_at": datetime.now(UTC).isoformat(),
            },
        )

    def add(self, docs: Iterable[IndexDoc]) -> int:
        """Index document versions (not yet durable: call commit); returns how many."""
        by_id: dict[str, dict[int, IndexDoc]] = {}
        for doc in docs:
            for name, _value in doc.tags:
                try:
                    tag_field(name)
                except ValueError as exc:
                    raise ValueError(f"{doc.id} v{doc.version}: {exc}") from None
            by_id.setdefault(doc.id, {})[doc.version] = doc
        added = 0
        for doc_id, versions in by_id.items():
            known = self._current_latest(doc_id)
            newest = max(versions)
            latest = max(newest, known[0]) if known else newest
            if known and latest > known[0] and known[0] not in versions:
                previous = known[1] or self._engine.fetch(doc_id, known[0])
                if previous is not None:
                    self._engine.put(previous, latest=False, replace=True)
            for version, doc in versions.items():
                key = (doc_id, version)
                replace = key in self._session_keys or self._engine.has(doc_id, version)
                self._engine.put(doc, latest=version == latest, replace=replace)
                self._session_keys.add(key)
                added += 1
            if latest in versions:
                self._session_latest[doc_id] = (latest, versions[latest])
            elif known:
                self._session_latest[doc_id] = known
        return added

    def _current_latest(self, doc_id: str) -> tuple[int, IndexDoc | None] | None:
        if doc_id in self._session_latest:
            return self._session_latest[doc_id]
        version = self._engine.latest_version(doc_id)
        return None if version is None else (version, None)

    def commit(self, last_commit: str) -> None:
        """Make the additions durable and record `last_commit` as the commit applied."""
        self._engine.commit()
        self._last_commit = last_commit
        self._session_latest.clear()
        self._session_keys.clear()
        self._save_state()  # after the engine: a crash between leaves a replayable gap

    def release(self) -> None:
        """Give up the engine's writer, so another process can write; commit first."""
        self.rollback()
        self._engine.release()

    def rollback(self) -> None:
        """Forget additions since the last commit."""
        self._engine.rollback()
        self._session_latest.clear()
        self._session_keys.clear()

    def last_commit(self) -> str | None:
        """The repository commit this index has applied, or None if it is empty/new."""
        return self._last_commit

    def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        limit: int = 20,
        facets: bool = False,
    ) -> SearchResult:
        """Search committed versions; latest versions only unless filters.all_versions."""
        filters = filters or SearchFilters()
        node = parse(query, self.tag_fields, filters.zone)
        filter_range(filters.since, filters.until)  # a bad date is a QueryError, up front
        for name, _value in filters.tags:
            try:
                tag_field(name)
            except ValueError as exc:
                raise QueryError(str(exc)) from None
        result = self._engine.search(node, filters, max(0, limit), facets)
        highlighter = Highlighter(node)
        hits = [
            Hit(
                id=h.doc.id,
                version=h.doc.version,
                title=h.doc.title,
                program=h.doc.program,
                type=h.doc.type,
                lot=h.doc.lot,
                score=h.score,
                snippet=highlighter.snippet(h.doc.text) or (h.doc.title or ""),
                recorded_at=h.doc.recorded_at,
                status=h.doc.status,
                kind=h.doc.kind,
            )
            for h in result.hits
        ]
        return SearchResult(query=query, total=result.total, hits=hits, facets=result.facets)

    def reset(self) -> None:
        """Empty the index (durably) and forget the last commit applied."""
        self._engine.reset()
        self._session_latest.clear()
        self._session_keys.clear()
        self._last_commit = None
        self._save_state()

    def fetch(self, doc_id: str, version: int) -> IndexDoc | None:
        """The committed document of one version, tags and all, or None; to re-put changed."""
        result: IndexDoc | None = self._engine.fetch(doc_id, version)
        return result

    def entries(self) -> set[tuple[str, int]]:
        """Every (id, version) committed to the index."""
        result: set[tuple[str, int]] = self._engine.entries()
        return result

    def count(self) -> int:
        """How many document versions are committed."""
        result: int = self._engine.count()
        return result

    def close(self) -> None:
        """Release the engine; additions not committed are discarded."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def _tag_fields(names: Iterable[str]) -> frozenset[str]:
    """Tag field names for the query language, lowercased; a clash or a bad name refused."""
    fields: set[str] = set()
    for name in names:
        try:
            field_name = tag_field(name)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if field_name in FIELDS:
            raise InvalidInput(f"tag field {name!r} clashes with the index's own field")
        fields.add(field_name)
    return frozenset(fields)


def _distrust(state: dict[str, Any] | None, engine: str, data_dir: Path) -> str | None:
    """Why the data in `data_dir` cannot be used as it is, or None if it can.

    None also when there is nothing to discard (a new index): `Index.discarded` is meant
    for a notice that the index is being rebuilt.
    """
    if state is None:
        if data_dir.is_dir() and any(data_dir.iterdir()):
            return "index data has no STATE.json (its creation was interrupted)"
        return None
    if state.get("engine") != engine:
        return f"index engine {state.get('engine')} is not {engine}"
    if _schema_of(state) != SCHEMA_VERSION:
        return f"index schema {_schema_of(state)} is not {SCHEMA_VERSION}"
    if not data_dir.is_dir():
        return f"index data of {engine} is missing"
    return None
