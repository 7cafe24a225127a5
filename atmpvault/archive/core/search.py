"""The full-text index as a projection of the repository, like the catalog.

What goes into the index is contributed by the workflows (see core/domain.py): each
turns the commits it understands into index entries (documents with their text,
records as hits of their own kind) and may tag document versions with keywords
(an application's sequences, tomorrow a deviation or a custody step). The index
remembers the last commit it applied; `is_current` compares that with the branch tip
by reading two small files, so a search on a current index needs neither GitPython
nor SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from atmpvault.archive.core.domain import hooks
from atmpvault.errors import IntegrityError

if TYPE_CHECKING:
    from atmpvault.archive.core.catalog import Catalog
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.vault import Vault
    from atmpvault.indexer.index import Index, IndexDoc, SearchFilters, SearchResult
    from atmpvault.repository.git import GitStore

INDEX_DIR = "index"

Tags = tuple[tuple[str, str], ...]


def is_current(index_path: Path, head: str | None) -> bool:
    """Whether the index has applied `head`, without importing any engine."""
    from atmpvault.indexer.index import read_state

    state = read_state(index_path)
    return state is not None and state.get("last_commit") == head


class IndexContext:
    """What a workflow's index hook is given: the store, the catalog and everyone's tags."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.store: GitStore = vault.store

    @property
    def catalog(self) -> Catalog:
        return self.vault.catalog

    def tags(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Tags]:
        """The keyword tags every workflow gives these document versions, sorted."""
        wanted = list(keys)
        found: dict[tuple[str, int], set[tuple[str, str]]] = {k: set() for k in wanted}
        if wanted:
            for hook in hooks(self.vault.domains, "index_tags"):
                for key, tags in hook(self, wanted).items():
                    found.setdefault(key, set()).update(tags)
        return {key: tuple(sorted(tags)) for key, tags in found.items()}


class SearchProjection:
    """Feeds what the workflows contribute for each commit into the index."""

    def __init__(self, index: Index, vault: Vault) -> None:
        self.index = index
        self.context = IndexContext(vault)
        self._domains = vault.domains
        self._pending: str | None = None  # applied but not yet committed to the engine

    def last_commit(self) -> str | None:
        return self._pending or self.index.last_commit()

    def apply(self, commits: Sequence[CommitChanges], head: str, expected: str | None) -> None:
        """Index what `commits` changed and move the index to `head`."""
        self.apply_deferred(commits, head, expected, defer=False)

    def apply_deferred(
        self, commits: Sequence[CommitChanges], head: str, expected: str | None, defer: bool
    ) -> None:
        """Like `apply`; with `defer`, the engine commit waits for `flush`.

        An engine commit costs about as much as indexing thousands of documents; a crash
        before it only means the next open replays those commits from the repository.
        """
        if self.last_commit() != expected:
            return
        docs: list[IndexDoc] = []
        for hook in hooks(
            self._domains, "index_entries"
        ):  # loaded when first needed, not to search
            docs.extend(hook(self.context, commits))
        self.index.add(docs)
        self._pending = head
        if not defer:
            self.flush()

    def flush(self) -> None:
        """Commit what was applied with `defer`."""
        if self._pending is not None:
            self.index.commit(self._pending)
            self._pending = None

    def release(self) -> None:
        """Commit what is pending and give up the index writer: the vault lock is going."""
        self.flush()
        self.index.release()

    def reset(self) -> None:
        self._pending = None
        self.index.reset()

    def close(self) -> None:
        self.flush()
        self.index.close()


def search(
    vault: Vault, query: str, filters: SearchFilters, limit: int = 20, facets: bool = False
) -> SearchResult:
    """Full-text search; a current index is answered without GitPython or SQLAlchemy.

    A current index is opened from its own state file (its engine named there), not
    through the configuration in git, as `Vault.search_projection` would."""
    if vault._search is None and is_current(vault.path / INDEX_DIR, vault.store.head()):
        from atmpvault.indexer.index import Index, read_state

        state = read_state(vault.path / INDEX_DIR) or {}
        engine = str(state.get("engine") or "tantivy")
        index = Index.open(vault.path / INDEX_DIR, engine, vault.tag_fields)
        if index.discarded is None:
            vault._search = SearchProjection(index, vault)
        else:
            index.close()
    try:
        projection = vault.search_projection
        # An index opened earlier by this vault may lag writes made since, here or by
        # another process: bring it up, unless a writer is busy.
        vault._catch_up(projection, wait=False)
    except IntegrityError as exc:
        if vault._search is None:
            raise
        projection = vault._search  # what the index holds is still right, up to its commit
        at = str(projection.last_commit() or "")[:12] or "empty"
        vault.say(f"warning: the index is behind the repository (at commit {at}): {exc}")
    return projection.index.search(query, filters, limit=limit, facets=facets)
