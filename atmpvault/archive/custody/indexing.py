"""What custody contributes to the index: custody events, searchable by lot, DIN and step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from atmpvault.archive.custody.records import EVENT_KIND

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.search import IndexContext
    from atmpvault.indexer.index import IndexDoc


def index(_context: IndexContext, commits: Sequence[CommitChanges]) -> list[IndexDoc]:
    """The custody events these commits wrote."""
    from atmpvault.indexer.index import IndexDoc

    entries = []
    for commit in commits:
        for change in commit.records:
            if change.kind.name != EVENT_KIND.name:
                continue
            b = change.body
            words = [b["lot"], b["step"], b["site"], b["by"], b.get("din") or "",
                     b.get("old_din") or "", b.get("coi") or "", b.get("shipper") or "",
                     b.get("note") or "", " ".join(str(c["detail"]) for c in b["checks"])]  # fmt: skip
            entries.append(
                IndexDoc(
                    id=str(b["id"]),
                    version=int(b["version"]),
                    program=str(b["program"]),
                    type=EVENT_KIND.name,
                    lot=str(b["lot"]),
                    title=f"Custody {b['step']} of lot {b['lot']} at {b['site']}",
                    text="\n".join(w for w in words if w),
                    filename="",
                    recorded_at=str(b["recorded_at"]),
                    status="active",
                    meta={},
                    kind=EVENT_KIND.name,
                )  # fmt: skip
            )
    return entries
