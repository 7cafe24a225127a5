"""Custody: chain of identity and custody of a patient's material, with CoC certificates."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="custody",
    record_kinds="atmpvault.archive.custody.records:KINDS",
    index_entries="atmpvault.archive.custody.indexing:index",
    release_holds="atmpvault.archive.custody.service:release_holds",
    held_lots="atmpvault.archive.custody.service:held_lots",
    on_release="atmpvault.archive.custody.service:on_release",
    list_users="atmpvault.archive.custody.settings:list_users",
    settings="atmpvault.archive.custody.settings:effective",
    commands="atmpvault.cli.custody:register",
    command_help=(
        (
            "custody",
            "Chain of custody: every handoff of a patient's material, checked as it is logged.",
        ),
    ),
    depends_on=("documents", "lots"),
)
