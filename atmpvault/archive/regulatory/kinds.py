"""The regulatory workflow's record kinds: applications, events and submission packages.

They keep the paths earlier releases wrote (an application's events in its own folder),
so every existing vault reads as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atmpvault.archive.core.records import Columns, RecordKind

APPS_ROOT = "regulatory/applications"
EVENTS_ROOT = "regulatory/events"
PACKAGES_ROOT = "regulatory/packages"


def _app_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(program=body.get("program"), status=body.get("status"))


def _event_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(program=body.get("program"), ref=body.get("app"), due=body.get("on"))


def _package_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(status=body.get("status"), ref=body.get("app"))


APP_KIND = RecordKind(
    name="application",
    root=APPS_ROOT,
    id_pattern=r"(?:IND|BLA)-[0-9]{6}",
    legacy_format=1,
    sharded=False,
    fields=frozenset({"id", "kind", "number", "label", "program", "status", "recorded_at", "user"}),
    columns=_app_columns,
)

EVENT_KIND = RecordKind(
    name="event",
    root=EVENTS_ROOT,
    id_pattern=r"EV-[0-9]{6,}",
    legacy_format=1,
    sharded=False,
    fields=frozenset(
        {
            "id",
            "app",
            "program",
            "trigger",
            "on",
            "review",
            "meeting_type",
            "response_days",
            "letter_kind",
            "doc",
            "note",
            "version",
            "recorded_at",
            "user",
            "reason",
            "history",
        }
    ),  # fmt: skip
    columns=_event_columns,
    indexed=True,
)

PACKAGE_KIND = RecordKind(
    name="package",
    root=PACKAGES_ROOT,
    id_pattern=r"[A-Z]{2,5}-[0-9]{4,10}/[0-9]{4}",
    sharded=False,
    fields=frozenset(
        {
            "app",
            "sequence",
            "type",
            "status",
            "created_at",
            "created_by",
            "submitted",
            "acknowledged",
            "finalised_at",
            "finalised_by",
            "tag",
            "calendar_event",
            "leaves",
        }
    ),  # fmt: skip
    columns=_package_columns,
)
