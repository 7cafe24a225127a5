"""What quality contributes to the index: deviations and CAPAs as hits of their own, so
their ids, titles and text are searchable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from atmpvault.archive.quality.records import CAPA_KIND, DEVIATION_KIND

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.search import IndexContext
    from atmpvault.indexer.index import IndexDoc


def index(_context: IndexContext, commits: Sequence[CommitChanges]) -> list[IndexDoc]:
    """The deviations and CAPAs these commits wrote, each version an entry."""
    entries = []
    for commit in commits:
        for change in commit.records:
            if change.kind.name == DEVIATION_KIND.name:
                entries.append(_deviation_doc(change.body))
            elif change.kind.name == CAPA_KIND.name:
                entries.append(_capa_doc(change.body))
    return entries


def _doc(body: dict[str, Any], kind: str, title: str, words: list[str]) -> IndexDoc:
    from atmpvault.indexer.index import IndexDoc

    lots = body.get("lots") or []
    return IndexDoc(
        id=str(body["id"]),
        version=int(body["version"]),
        program=str(body.get("program") or ""),
        type=kind,
        lot=str(lots[0]) if lots else None,
        title=title,
        text="\n".join(w for w in words if w),
        filename="",
        recorded_at=str(body["recorded_at"]),
        status="active",
        meta={},
        kind=kind,
    )


def _deviation_doc(body: dict[str, Any]) -> IndexDoc:
    inv = body.get("investigation") or {}
    closure = body.get("closure") or {}
    words = [
        str(body["id"]), str(body["class"]), str(body["title"]), str(body.get("description") or ""),
        " ".join(body.get("lots") or []), str(body.get("owner") or ""),
        str(inv.get("root_cause") or ""), str(inv.get("impact") or ""),
        str(closure.get("summary") or ""), " ".join(body.get("capas") or []),
    ]  # fmt: skip
    return _doc(
        body, DEVIATION_KIND.name, f"{body['id']} ({body['class']}): {body['title']}", words
    )


def _capa_doc(body: dict[str, Any]) -> IndexDoc:
    words = [
        str(body["id"]), str(body["deviation"]), str(body["action_text"]), str(body["owner"]),
        " ".join(body.get("lots") or []),
    ]  # fmt: skip
    return _doc(
        body,
        CAPA_KIND.name,
        f"{body['id']} for {body['deviation']}: {body['action_text'][:80]}",
        words,
    )
