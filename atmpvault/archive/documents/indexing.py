"""What documents contribute to the index: each version with its extracted text and the
keyword tags other workflows give it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from atmpvault.archive.documents.records import KIND, TEXT, DocumentVersion, doc_dir

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.search import IndexContext, Tags
    from atmpvault.indexer.index import IndexDoc


def index(context: IndexContext, commits: Sequence[CommitChanges]) -> list[IndexDoc]:
    """The versions these commits recorded, as index entries."""
    pairs = [
        (DocumentVersion.from_body(change.body, commit.sha), commit.texts.get(change.id))
        for commit in commits
        for change in commit.records
        if change.kind.name == KIND.name
    ]
    return entries(context, pairs)


def reindex(context: IndexContext, keys: Iterable[tuple[str, int]]) -> list[IndexDoc]:
    """Index entries for versions indexed before, whose tags changed since."""
    from atmpvault.archive.documents.tables import DocumentCatalog

    catalog = DocumentCatalog(context.catalog)
    found = [catalog.version(doc, number) for doc, number in sorted(set(keys))]
    return entries(context, [(v, None) for v in found if v is not None])


def entries(
    context: IndexContext, pairs: Sequence[tuple[DocumentVersion, str | None]]
) -> list[IndexDoc]:
    """Index entries for versions, with their text (read back where not at hand) and tags."""
    tags = context.tags((v.id, v.version) for v, _ in pairs)
    return [
        index_doc(v, text if text is not None else _text(context, v), tags[(v.id, v.version)])
        for v, text in pairs
    ]


def index_doc(version: DocumentVersion, text: str, tags: Tags = ()) -> IndexDoc:
    """The index's view of a version."""
    from atmpvault.indexer.index import IndexDoc

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
        kind=KIND.name,
        tags=tags,
    )


def _text(context: IndexContext, version: DocumentVersion) -> str:
    if not version.searchable:
        return ""
    raw = context.store.read(version.commit, f"{doc_dir(version.id)}/{TEXT}")
    return raw.decode("utf-8", "replace")
