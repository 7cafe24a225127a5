"""The regulatory workflow's record kinds: applications, events and submission packages.

They keep the paths earlier releases wrote (an application's events in its own folder),
so every existing vault reads as it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from atmpvault.archive.core.records import Columns, RecordKind, Reference
from atmpvault.archive.documents.records import KIND as DOCUMENT_KIND

APPS_ROOT = "regulatory/applications"
EVENTS_ROOT = "regulatory/events"
PACKAGES_ROOT = "regulatory/packages"
OBLIGATIONS_ROOT = "regulatory/obligations"


def _app_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(program=body.get("program"), status=body.get("status"))


def _event_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        program=body.get("program"), ref=body.get("app"), due=body.get("on"),
        status=body.get("status"),
    )  # fmt: skip


def _package_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(status=body.get("status"), ref=body.get("app"))


def _event_references(body: Mapping[str, Any]) -> Iterator[Reference]:
    if isinstance(body.get("doc"), str):  # the document it records (the FDA letter)
        yield Reference(DOCUMENT_KIND.name, body["doc"])


def _package_references(body: Mapping[str, Any]) -> Iterator[Reference]:
    for leaf in body.get("leaves") or ():  # each pins one document version
        # A hand-edited leaf must not stop catch-up: what cannot be read refers to nothing.
        if isinstance(leaf, Mapping) and isinstance(leaf.get("doc"), str):
            version = leaf.get("version")
            number = version if isinstance(version, int) else None
            yield Reference(DOCUMENT_KIND.name, leaf["doc"], number)


APP_KIND = RecordKind(
    name="application",
    root=APPS_ROOT,
    id_pattern=r"(?:IND|BLA)-[0-9]{6}",
    legacy_format=1,
    sharded=False,
    fields=frozenset(
        {
            "id",
            "kind",
            "number",
            "label",
            "program",
            "status",
            "recorded_at",
            "user",
            "status_on",
            "statuses",
            "reason",
        }
    ),  # fmt: skip
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
            "status",
            "of",
            "meeting_date",
            "meeting_format",
            "resubmission_class",
        }
    ),  # fmt: skip
    columns=_event_columns,
    indexed=True,
    references=_event_references,
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
    references=_package_references,
)


def _run_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(status="undelivered", due=body.get("today"))


# A run of `alerts --send` that could not deliver everything: when, by whom, the notices
# it did send, and each alert it could not take to every list routed, with why.
RUN_KIND = RecordKind(
    name="alert-run",
    root="regulatory/alert-runs",
    id_pattern=r"ALR-[0-9]{8}-[0-9]{6}-[0-9A-F]{6}",
    fields=frozenset({"id", "today", "days", "ran_at", "actor", "sent", "undelivered"}),
    columns=_run_columns,
)


def _obligation_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(program=body.get("program"), ref=body.get("app"), status=body.get("state"))


# A milestone's recorded state (done, waived, reopened), filed under its key:
# regulatory/obligations/IND-012345/IND_ANNUAL/2.json (see obligations.py).
OBLIGATION_KIND = RecordKind(
    name="obligation",
    root=OBLIGATIONS_ROOT,
    id_pattern=r"(?:IND|BLA)-[0-9]{6}/[A-Z][A-Z0-9_]{0,39}/(?:[1-9][0-9]{0,3}|EV-[0-9]{6,})",
    sharded=False,
    fields=frozenset(
        {
            "id",
            "app",
            "program",
            "rule",
            "cycle",
            "event",
            "state",
            "on",
            "evidence",
            "reason",
            "version",
            "recorded_at",
            "user",
        }
    ),  # fmt: skip
    columns=_obligation_columns,
)


KINDS = (APP_KIND, EVENT_KIND, PACKAGE_KIND, RUN_KIND, OBLIGATION_KIND)
