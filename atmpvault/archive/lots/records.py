"""The lot record: one per lot, a new version for every change of status.

A lot's body holds its program, the patient's coded chain-of-identity id (never a
name), its kind, the lot it replaces, its status with the history of statuses, and
the QA disposition once released or rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atmpvault.archive.core.records import Columns, RecordKind
from atmpvault.archive.core.values import LOT_RE

PLANNED = "planned"
IN_MANUFACTURING = "in-manufacturing"
PENDING_RELEASE = "pending-release"
RELEASED = "released"
REJECTED = "rejected"
SHIPPED = "shipped"
ADMINISTERED = "administered"
STATUSES = (
    PLANNED, IN_MANUFACTURING, PENDING_RELEASE, RELEASED, REJECTED, SHIPPED, ADMINISTERED,
)  # fmt: skip
KINDS_OF_LOT = ("autologous", "allogeneic")


def _lot_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        program=body.get("program"), lot=body.get("id"), status=body.get("status"),
        ref=body.get("coi"),
    )  # fmt: skip


LOT_KIND = RecordKind(
    name="lot",
    root="lots",
    id_pattern=LOT_RE.pattern,
    fields=frozenset(
        {
            "id",
            "program",
            "coi",
            "kind",
            "replaces",
            "status",
            "statuses",
            "disposition",
            "version",
            "recorded_at",
            "user",
            "reason",
        }
    ),  # fmt: skip
    columns=_lot_columns,
    distinctive=False,
)

KINDS = (LOT_KIND,)
