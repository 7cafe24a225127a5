"""Dosing: manufacturing slots, each lot's dosing schedule against the patient's
conditioning, timing conflicts, confirmations and the coordination board."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="dosing",
    record_kinds="atmpvault.archive.dosing.records:KINDS",
    on_lot_status="atmpvault.archive.dosing.service:on_lot_status",
    list_users="atmpvault.archive.dosing.settings:list_users",
    settings="atmpvault.archive.dosing.settings:effective",
    commands="atmpvault.cli.dosing:register",
    command_help=(
        (
            "dosing",
            "Dosing schedules: each lot's manufacturing against the patient's conditioning.",
        ),
        ("slot", "Manufacturing slots: so many a day per facility, from the configuration."),
    ),
    depends_on=("documents", "lots", "custody"),
)
