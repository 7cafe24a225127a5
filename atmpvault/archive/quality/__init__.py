"""Quality: deviations, their investigation and CAPA, aging, escalation, closure packages
(into the lot's batch record) and the release holds open deviations put on lots."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="quality",
    record_kinds="atmpvault.archive.quality.records:KINDS",
    index_entries="atmpvault.archive.quality.indexing:index",
    release_holds="atmpvault.archive.quality.holds:release_holds",
    held_lots="atmpvault.archive.quality.holds:held_lots",
    list_users="atmpvault.archive.quality.settings:list_users",
    settings="atmpvault.archive.quality.settings:effective",
    commands="atmpvault.cli.quality:register",
    command_help=(
        (
            "deviation",
            "Deviations: open, assign, investigate, CAPA, close into the lot's batch record.",
        ),
    ),
    depends_on=("documents", "lots"),
)
