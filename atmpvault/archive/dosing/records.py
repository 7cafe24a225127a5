"""The dosing workflow's records: slot reservations and dosing schedules.

A reservation is filed under its facility, day and lot
(dosing/slots/MFG-01/2026-12-02/L-0042.json; cancelling writes its next version); a
schedule under its lot (dosing/schedules/L-0042.json), a new version for every re-plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atmpvault.archive.core.records import Columns, RecordKind
from atmpvault.archive.core.values import LOT_RE

RESERVED = "reserved"
CANCELLED = "cancelled"
_LOT = LOT_RE.pattern


def _slot_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        lot=body.get("lot"), status=body.get("status"), due=body.get("day"),
        ref=body.get("facility"),
    )  # fmt: skip


def _schedule_columns(body: Mapping[str, Any]) -> Columns:
    dates = body.get("dates") or {}
    return Columns(
        program=body.get("program"), lot=body.get("lot"), status="planned",
        due=dates.get("infusion"), ref=body.get("profile"),
    )  # fmt: skip


SLOT_KIND = RecordKind(
    name="slot",
    root="dosing/slots",
    id_pattern=rf"[A-Z0-9][A-Z0-9-]{{0,39}}/[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}/{_LOT}",
    sharded=False,
    fields=frozenset(
        {"id", "facility", "day", "lot", "status", "reason", "version", "recorded_at", "user"}
    ),
    columns=_slot_columns,
    distinctive=False,
)

SCHEDULE_KIND = RecordKind(
    name="dosing-schedule",
    root="dosing/schedules",
    id_pattern=_LOT,
    sharded=False,
    fields=frozenset(
        {
            "id",
            "lot",
            "program",
            "coi",
            "profile",
            "facility",
            "site",
            "dates",
            "availability_confirmed",
            "action",
            "reason",
            "version",
            "recorded_at",
            "user",
        }
    ),  # fmt: skip
    columns=_schedule_columns,
    distinctive=False,
)

KINDS = (SLOT_KIND, SCHEDULE_KIND)
