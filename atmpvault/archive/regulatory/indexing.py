"""What the regulatory workflow contributes to the index: events as hits of their own,
and the tags that put a document version in its sequences (app:..., sequence:...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from atmpvault.archive.regulatory.kinds import EVENT_KIND, PACKAGE_KIND

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.search import IndexContext
    from atmpvault.indexer.index import IndexDoc


def index(context: IndexContext, commits: Sequence[CommitChanges]) -> list[IndexDoc]:
    """Events written by these commits, and the document versions whose sequences changed."""
    from atmpvault.archive.documents.indexing import reindex
    from atmpvault.archive.regulatory.submissions.model import Package

    entries = []
    changed_packages = set()
    for commit in commits:
        for change in commit.records:
            if change.kind.name == EVENT_KIND.name:
                entries.append(event_doc(change.body))
            elif change.kind.name == PACKAGE_KIND.name:
                changed_packages.add(change.id)
    if changed_packages:
        # Every version any state of these packages held: adding a leaf tags a version,
        # and a version stays tagged with every sequence it was ever put in.
        keys = {
            (leaf.doc, leaf.version)
            for package_id in changed_packages
            for record in context.catalog.record_versions(PACKAGE_KIND.name, package_id)
            for leaf in Package.from_json(record.body).leaves
        }
        entries.extend(reindex(context, keys))
    return entries


def event_doc(body: dict[str, object]) -> IndexDoc:
    """An event as a hit of its own: its trigger, date, letter and note are searchable."""
    from atmpvault.indexer.index import IndexDoc

    words = [str(body["trigger"]), str(body["on"]), str(body["app"])]
    words += [
        str(body[k]) for k in ("letter_kind", "meeting_type", "review", "note") if body.get(k)
    ]
    return IndexDoc(
        id=str(body["id"]),
        version=int(str(body["version"])),
        program=str(body["program"]),
        type=EVENT_KIND.name,
        lot=None,
        title=f"{body['trigger']} on {body['on']} for {body['app']}",
        text="\n".join(words),
        filename="",
        recorded_at=str(body["recorded_at"]),
        status="active",
        meta={},
        kind=EVENT_KIND.name,
    )


def tags(
    context: IndexContext, keys: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], set[tuple[str, str]]]:
    """app:/sequence: tags for document versions put in submission sequences."""
    from atmpvault.archive.regulatory.submissions.service import (
        memberships,
        read_packages,
        search_tags,
    )

    found = memberships(read_packages(context.vault))
    return {key: search_tags(found[key]) for key in keys if key in found}
