"""The full-text index as a projection of the repository, like the catalog.

The index remembers the last commit it applied; `is_current` compares that with the
branch tip by reading two small files, so a search on a current index needs neither
GitPython nor SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from atmpvault.archive.documents.versions import RECORD, TEXT, DocumentVersion, doc_dir

if TYPE_CHECKING:
    from atmpvault.archive.regulatory.submissions.service import Submission
    from atmpvault.indexer.index import Index, IndexDoc
    from atmpvault.repository.git import GitStore

INDEX_DIR = "index"


def is_current(index_path: Path, head: str | None) -> bool:
    """Whether the index has applied `head`, without importing any engine."""
    from atmpvault.indexer.index import read_state

    state = read_state(index_path)
    return state is not None and state.get("last_commit") == head


def index_doc(
    version: DocumentVersion, text: str, submissions: Sequence[Submission] = ()
) -> IndexDoc:
    """The index's view of a version, with the submission sequences it is in."""
    from atmpvault.archive.regulatory.submissions.service import search_tokens
    from atmpvault.indexer.index import IndexDoc

    app, sequences = search_tokens(submissions)
    return IndexDoc(
        id=version.id,
        version=version.version,
        program=version.program,
        type=version.type,
        lot=version.lot,
        title=version.title,
        text=text,
        filename=version.filename,
        recorded_at=version.recorded_at,
        status=version.status,
        meta=dict(version.meta),
        app=app,
        sequences=sequences,
    )


class SearchProjection:
    """Feeds document versions, with their extracted text, into the index."""

    def __init__(self, index: Index, store: GitStore) -> None:
        self.index = index
        self.store = store
        self._pending: str | None = None  # applied but not yet committed to the engine
        # The package memberships as of the last commit applied, to see which changed.
        self._members: tuple[str | None, dict[tuple[str, int], list[Submission]]] = (None, {})

    def last_commit(self) -> str | None:
        return self._pending or self.index.last_commit()

    def apply(self, batch: Iterable[DocumentVersion], head: str, expected: str | None) -> None:
        """Index `batch`, reading each version's text from the repository."""
        pairs = [(v, self._text(v)) for v in batch]
        self.apply_with_text(pairs, head, expected)

    def apply_with_text(
        self,
        pairs: Iterable[tuple[DocumentVersion, str]],
        head: str,
        expected: str | None,
        defer: bool = False,
    ) -> None:
        """Index versions whose text is already at hand, and move the index to `head`.

        With `defer`, the engine commit waits for `flush` (an engine commit costs about
        as much as indexing thousands of documents); a crash before it only means the
        next open replays those commits from the repository.
        """
        from atmpvault.archive.regulatory.submissions.service import search_tokens

        if self.last_commit() != expected:
            return
        before, after = self._memberships(expected), self._memberships(head)
        pairs = list(pairs)
        batch = {(v.id, v.version) for v, _ in pairs}
        # A version whose sequences changed in these commits is indexed again, as it is now.
        moved = sorted(
            k
            for k in before.keys() | after.keys()
            if k not in batch
            and search_tokens(before.get(k, ())) != search_tokens(after.get(k, ()))
        )
        pairs += [self._reload(k, (after.get(k) or before[k])[0].commit) for k in moved]
        self.index.add(index_doc(v, text, after.get((v.id, v.version), ())) for v, text in pairs)
        self._members = (head, after)
        self._pending = head
        if not defer:
            self.flush()

    def flush(self) -> None:
        """Commit what was applied with `defer`."""
        if self._pending is not None:
            self.index.commit(self._pending)
            self._pending = None

    def _memberships(self, commit: str | None) -> dict[tuple[str, int], list[Submission]]:
        from atmpvault.archive.regulatory.submissions.service import memberships

        if commit is None:
            return {}
        if self._members[0] == commit:
            return self._members[1]
        return memberships(self.store, commit)

    def _reload(self, key: tuple[str, int], commit: str) -> tuple[DocumentVersion, str]:
        """A version indexed earlier, read back from the repository with its text."""
        raw = self.store.read(commit, f"{doc_dir(key[0])}/{RECORD}")
        version = DocumentVersion.from_record(raw, commit)
        return version, self._text(version)

    def reset(self) -> None:
        self._pending = None
        self._members = (None, {})
        self.index.reset()

    def close(self) -> None:
        self.flush()
        self.index.close()

    def _text(self, version: DocumentVersion) -> str:
        if not version.searchable:
            return ""
        raw = self.store.read(version.commit, f"{doc_dir(version.id)}/{TEXT}")
        return raw.decode("utf-8", "replace")
