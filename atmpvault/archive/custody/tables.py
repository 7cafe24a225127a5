"""The custody queries the generic records table answers by SQL: where every lot's
material is (its last event) and how many breaks each has open."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from atmpvault.archive.core.record_tables import records
from atmpvault.archive.custody.records import BREAK_KIND, EVENT_KIND, OPEN
from atmpvault.archive.lots.records import LOT_KIND

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


def status(vault: Vault) -> list[dict[str, Any]]:
    """One row per lot with custody events: its last event and its open breaks, by lot."""
    events = records.alias("events")
    last = (
        sa.select(events.c.lot, sa.func.max(events.c.id).label("id"))
        .where(events.c.kind == EVENT_KIND.name, events.c.latest.is_(True))
        .group_by(events.c.lot)
        .subquery()
    )
    query = sa.select(records.c.lot, records.c.body).join(
        last, sa.and_(records.c.id == last.c.id, records.c.kind == EVENT_KIND.name)
    ).where(records.c.latest.is_(True))  # fmt: skip
    breaks = (
        sa.select(records.c.lot, sa.func.count())
        .where(
            records.c.kind == BREAK_KIND.name, records.c.latest.is_(True), records.c.status == OPEN
        )  # fmt: skip
        .group_by(records.c.lot)
    )
    with vault.catalog.connect() as conn:
        found = {lot: json.loads(body) for lot, body in conn.execute(query)}
        open_breaks = {lot: int(n) for lot, n in conn.execute(breaks)}
        lots = dict(
            conn.execute(
                sa.select(records.c.id, records.c.status).where(
                    records.c.kind == LOT_KIND.name,
                    records.c.latest.is_(True),
                    records.c.id.in_(sorted(found)),
                )  # fmt: skip
            ).all()
        )
    return [
        {
            "lot": lot,
            "lot_status": lots.get(lot),
            "step": e["step"],
            "at": e["at"],
            "site": e["site"],
            "event": e["id"],
            "open_breaks": open_breaks.get(lot, 0),
        }  # fmt: skip
        for lot, e in sorted(found.items())
    ]
