"""Search engines behind the index façade: one module per engine, loaded only when opened.

An engine stores versions of documents and answers a parsed query (see indexer.query);
the façade decides which version of each id is the latest and tells the engine.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from atmpvault.indexer.index import IndexDoc, SearchFilters
    from atmpvault.indexer.query import Node

ENGINES = {
    "tantivy": "atmpvault.indexer.engines.tantivy_engine",
    "whoosh": "atmpvault.indexer.engines.whoosh_engine",
}


@dataclass(frozen=True)
class EngineHit:
    """A search hit; its doc's tags are left out (a hit shows none, and decoding them
    for every hit costs measurably), so `fetch` a version to re-put it."""

    doc: IndexDoc
    score: float


@dataclass(frozen=True)
class EngineResult:
    total: int
    hits: list[EngineHit]
    facets: dict[str, dict[str, int]] | None


class Engine(Protocol):
    """What the façade needs from a search engine. Reads see committed data only."""

    def latest_version(self, doc_id: str) -> int | None:
        """The version of `doc_id` flagged latest, or None if the id is not indexed."""
        ...

    def has(self, doc_id: str, version: int) -> bool:
        """Whether this version may be indexed already (a false positive is harmless)."""
        ...

    def fetch(self, doc_id: str, version: int) -> IndexDoc | None:
        """The stored document of one version."""
        ...

    def put(self, doc: IndexDoc, *, latest: bool, replace: bool) -> None:
        """Add one version; `replace` first removes any copy of the same id and version."""
        ...

    def commit(self) -> None:
        """Make everything put so far durable and visible to searches."""
        ...

    def rollback(self) -> None:
        """Forget everything put since the last commit."""
        ...

    def release(self) -> None:
        """Give up the engine's writer lock (after a commit), so another process can write."""
        ...

    def search(
        self, node: Node, filters: SearchFilters, limit: int, facets: bool
    ) -> EngineResult: ...

    def reset(self) -> None:
        """Remove every document, durably."""
        ...

    def entries(self) -> set[tuple[str, int]]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def open_engine(name: str, directory: Path, *, create: bool) -> Engine:
    """Import the engine's module (and so its library) and open its index in `directory`."""
    module = importlib.import_module(ENGINES[name])
    engine: Engine = module.open_engine(directory, create=create)
    return engine


def filter_terms(filters: SearchFilters) -> list[tuple[str, tuple[str, ...]]]:
    """The keyword terms a search's filters pin, for every engine.

    Each entry is (field, indexed values): a hit has one of the values in that field,
    and every entry must hold. Tags are (TAGS, (`field=value`,)), one entry per pair.
    """
    from atmpvault.indexer import query as q

    pinned = (
        ("program", filters.program),
        ("type", filters.type),
        ("lot", filters.lot),
    )
    out: list[tuple[str, tuple[str, ...]]] = [
        (name, (q.keyword(value),)) for name, value in pinned if value is not None
    ]
    out += [(q.TAGS, (q.tag_token(name, value),)) for name, value in filters.tags]
    if filters.kinds:
        out.append(("kind", tuple(sorted({q.keyword(kind) for kind in filters.kinds}))))
    return out
