"""The quality workflow's records: deviations, CAPAs and escalations.

A deviation affects one or more lots (21 CFR 211.192: the investigation extends to other
batches that may be affected); each change is a new version of its record, so its full
history (who, when, what, old -> new) is the record's versions and the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from atmpvault.archive.core.records import Columns, RecordKind

OPEN = "open"
CLOSED = "closed"
CAPA_OPEN = "open"
CAPA_DONE = "done"
CAPA_VERIFIED = "verified"
CLASSES = ("minor", "major", "critical")  # the default classes (configurable)


def _lots(body: Mapping[str, Any]) -> Iterable[str]:
    return [str(lot) for lot in body.get("lots") or ()]


def _first(lots: object) -> str | None:
    return str(lots[0]) if isinstance(lots, list) and lots else None


def _deviation_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        program=body.get("program"), lot=_first(body.get("lots")), status=body.get("status"),
        due=body.get("due"), ref=body.get("owner"),
    )  # fmt: skip


def _capa_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        program=body.get("program"), lot=_first(body.get("lots")), status=body.get("status"),
        due=body.get("due"), ref=body.get("deviation"),
    )  # fmt: skip


def _escalation_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(status=body.get("level"), due=body.get("on"), ref=body.get("item"))


DEVIATION_KIND = RecordKind(
    name="deviation",
    root="quality/deviations",
    id_pattern=r"DEV-[0-9]{4}-[0-9]{4,6}",
    fields=frozenset(
        {
            "id",
            "program",
            "lots",
            "class",
            "title",
            "description",
            "discovered",
            "status",
            "owner",
            "due",
            "extensions",
            "investigation",
            "capas",
            "attachments",
            "closure",
            "action",
            "comment",
            "version",
            "recorded_at",
            "user",
        }
    ),  # fmt: skip
    columns=_deviation_columns,
    lots=_lots,
    indexed=True,
)

CAPA_KIND = RecordKind(
    name="capa",
    root="quality/capas",
    id_pattern=r"CAPA-[0-9]{4}-[0-9]{4,6}",
    fields=frozenset(
        {
            "id",
            "deviation",
            "program",
            "lots",
            "action_text",
            "owner",
            "due",
            "effectiveness_check",
            "opened",
            "status",
            "done",
            "checks",
            "action",
            "comment",
            "version",
            "recorded_at",
            "user",
        }
    ),  # fmt: skip
    columns=_capa_columns,
    lots=_lots,
    indexed=True,
)

# One escalation of one overdue (or nearly due) item at one level on one day, filed
# under that key: quality/escalations/DEV-2026-0001/qa-management/2026-12-01.json.
ESCALATION_KIND = RecordKind(
    name="escalation",
    root="quality/escalations",
    id_pattern=r"(?:DEV|CAPA)-[0-9]{4}-[0-9]{4,6}/[a-z][a-z0-9-]{0,39}/[0-9]{4}-[0-9]{2}-[0-9]{2}",
    sharded=False,
    fields=frozenset(
        {
            "id",
            "item",
            "kind",
            "level",
            "on",
            "due",
            "days_overdue",
            "owner",
            "lists",
            "notice",
            "recorded_at",
            "user",
        }
    ),  # fmt: skip
    columns=_escalation_columns,
)

KINDS = (DEVIATION_KIND, CAPA_KIND, ESCALATION_KIND)
