"""What quality contributes to the release gate: the open deviations that affect a lot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atmpvault.archive.quality.records import DEVIATION_KIND, OPEN

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


def release_holds(vault: Vault, lot: str) -> list[str]:
    """One line per open deviation affecting `lot`, or lacking an impact assessment."""
    found = vault.catalog.lot_records(lot, DEVIATION_KIND.name)
    holds = []
    for record in found:
        body = record.body
        if body["status"] != OPEN:
            continue
        assessed = (
            "impact assessed"
            if (body.get("investigation") or {}).get("impact")
            else ("no impact assessment")
        )
        holds.append(
            f"deviation {body['id']} ({body['class']}, open, {assessed}: {body['title'][:60]})"
        )
    return holds


def held_lots(vault: Vault) -> set[str]:
    """Every lot an open deviation affects (open deviations are few; found by SQL)."""
    from atmpvault.archive.core.record_tables import records

    found = vault.catalog.records(DEVIATION_KIND.name, where=[records.c.status == OPEN])
    return {lot for r in found for lot in r.body["lots"]}
