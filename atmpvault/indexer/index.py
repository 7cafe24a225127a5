"""The full-text index façade: one API over the tantivy and Whoosh engines.

The index is a projection of the repository: it holds every version of every document,
flags the latest version of each id, and remembers the repository commit it has applied
(in STATE.json, readable without loading any engine). It can always be rebuilt.

Query language: see atmpvault.indexer.query. Snippets mark matched words as «word».
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from atmpvault.errors import InvalidInput
from atmpvault.indexer.query import (
    HIGHLIGHT_CLOSE,
    HIGHLIGHT_OPEN,
    Highlighter,
    QueryError,
    filter_range,
    parse,
)

__all__ = [
    "ENGINE_NAMES",
    "HIGHLIGHT_CLOSE",
    "HIGHLIGHT_OPEN",
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
ENGINE_NAMES = ("tantivy", "whoosh")


@dataclass(frozen=True)
class IndexDoc:
    """One version of one document, as the index sees it."""

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
    app: str | None = None
    sequences: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchFilters:
    """Restrictions applied on top of the query; `since`/`until` are inclusive ISO dates."""

    program: str | None = None
    type: str | None = None
    lot: str | None = None
    since: str | None = None
    until: str | None = None
    app: str | None = None
    sequence: str | None = None
    all_versions: bool = False


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


@dataclass(frozen=True)
class SearchResult:
    query: str
    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]] | None = field(default=None)


def read_state(path: Path) -> dict[str, Any] | None:
    """The index's STATE.json (engine, last_commit, doc_count), or None; loads no engine."""
    try:
        data = json.loads((Path(path) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace STATE.json atomically: a reader sees the old state or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=".STATE.", suffix=".tmp", dir=path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Index:
    """A full-text index of document versions in a directory; use `Index.open`."""

    def __init__(self, path: Path, engine_name: str, engine: Any, last_commit: str | None):
        self.path = path
        self.engine_name = engine_name
        self._engine = engine
        self._last_commit = last_commit
        # Within a session (until commit): id -> (latest version, that version's doc if it
        # was added in this session), and the versions added in this session.
        self._session_latest: dict[str, tuple[int, IndexDoc | None]] = {}
        self._session_keys: set[tuple[str, int]] = set()

    @classmethod
    def open(cls, path: Path, engine: str = "tantivy") -> Index:
        """Open (creating if needed) the index in `path` with the named engine."""
        from atmpvault.indexer.engines import open_engine

        if engine not in ENGINE_NAMES:
            raise InvalidInput(
                f"unknown index engine {engine!r}; choose one of: {', '.join(ENGINE_NAMES)}"
            )
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        data_dir = path / engine
        state = read_state(path)
        # Data not vouched for by STATE.json (another engine's, or from before a crash
        # during creation) is discarded: the index is rebuilt from the repository.
        trusted = state is not None and state.get("engine") == engine and data_dir.is_dir()
        if not trusted:
            if data_dir.exists():
                shutil.rmtree(data_dir)
            data_dir.mkdir()
        eng = open_engine(engine, data_dir, create=not trusted)
        last_commit = state.get("last_commit") if trusted and state else None
        index = cls(path, engine, eng, last_commit)
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
        """Search committed documents; latest versions only unless filters.all_versions."""
        filters = filters or SearchFilters()
        node = parse(query)
        filter_range(filters.since, filters.until)  # a bad date is a QueryError, up front
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
