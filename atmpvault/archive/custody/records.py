"""The custody workflow's records: custody events (appended, never edited), chain breaks
and the record each CoC certificate renders.

A lot's events are filed under it, numbered in the order they were logged:
custody/events/L-0042/0003.json; its breaks likewise: custody/breaks/L-0042/BRK-001.json.
A correction is a new event naming the one it corrects (`corrects`); the original stays.
A lot's certificate record (custody/certificates/L-0042.json) gets a version per issue:
it is what the custody signature binds (through the custody log's SHA-256 it holds) and
what the certificate PDF embeds, byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atmpvault.archive.core.records import Columns, RecordKind
from atmpvault.archive.core.values import LOT_RE

OPEN = "open"
RESOLVED = "resolved"
_LOT = LOT_RE.pattern


def _event_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        program=body.get("program"), lot=body.get("lot"), status=body.get("step"),
        due=str(body.get("at") or "")[:10] or None, ref=body.get("din"),
    )  # fmt: skip


def _break_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        program=body.get("program"), lot=body.get("lot"), status=body.get("status"),
        ref=body.get("event"),
    )  # fmt: skip


EVENT_KIND = RecordKind(
    name="custody-event",
    root="custody/events",
    id_pattern=rf"{_LOT}/[0-9]{{4}}",
    sharded=False,
    fields=frozenset(
        {
            "id",
            "lot",
            "program",
            "seq",
            "step",
            "by",
            "site",
            "at",
            "coi",
            "din",
            "old_din",
            "temps",
            "logger",
            "shipper",
            "seal",
            "note",
            "corrects",
            "checks",
            "breaks",
            "version",
            "recorded_at",
            "user",
        }
    ),  # fmt: skip
    columns=_event_columns,
    indexed=True,
    distinctive=False,
)

BREAK_KIND = RecordKind(
    name="chain-break",
    root="custody/breaks",
    id_pattern=rf"{_LOT}/BRK-[0-9]{{3}}",
    sharded=False,
    fields=frozenset(
        {
            "id",
            "lot",
            "program",
            "event",
            "step",
            "check",
            "detail",
            "status",
            "resolution",
            "escalated",
            "version",
            "recorded_at",
            "user",
        }
    ),  # fmt: skip
    columns=_break_columns,
    distinctive=False,
)


def _certificate_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(
        program=body.get("program"), lot=body.get("lot"), status=body.get("through"),
        ref=body.get("custody_log_sha256"),
    )  # fmt: skip


CERTIFICATE_KIND = RecordKind(
    name="custody-certificate",
    root="custody/certificates",
    id_pattern=_LOT,
    sharded=False,
    fields=frozenset(
        {
            "lot",
            "program",
            "coi",
            "dins",
            "din",
            "through",
            "events",
            "custody_log_sha256",
            "commit",
            "issued_at",
            "issued_by",
        }
    ),  # fmt: skip
    columns=_certificate_columns,
    distinctive=False,
)

KINDS = (EVENT_KIND, BREAK_KIND, CERTIFICATE_KIND)
