"""Milestones as an RFC 5545 calendar: the only module that imports icalendar.

Each milestone is an all-day VEVENT whose UID is derived from what identifies it
(application, rule, event and, for yearly reports, the cycle), never from its date,
so re-importing a later export updates the entries in Outlook or Google Calendar
instead of duplicating them, even after an event date was corrected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

from icalendar import Calendar, Event

from atmpvault.archive.core import values
from atmpvault.archive.regulatory.derivation import Milestone
from atmpvault.errors import VaultError
from atmpvault.files import write_atomically

PRODID = "-//atmpvault//FDA milestone calendar//EN"
UID_DOMAIN = "atmpvault"


def uid(milestone: Milestone) -> str:
    """The UID of the obligation, e.g. IND-012345.IND_ANNUAL.2@atmpvault: it names the
    obligation (application, rule, cycle or creating event), never the event record or
    the date, so recording the IND's effective date after its receipt, or correcting a
    date, updates the entry in Outlook or Google Calendar instead of adding another."""
    return f"{milestone.key.replace('/', '.')}@{UID_DOMAIN}"


def to_calendar(
    milestones: Iterable[Milestone],
    revisions: Mapping[str, int] | None = None,
    stamp: datetime | None = None,
) -> Calendar:
    """The calendar object: one all-day event per milestone. A closed milestone is
    CANCELLED, so that a subscribed client removes it; SEQUENCE is the application's
    revision (see tables.revisions), so every update supersedes what a client holds."""
    moment = stamp or values.now()
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", "atmpvault milestones")
    for m in milestones:
        event = Event()
        event.add("uid", uid(m))
        event.add("dtstamp", moment)
        event.add("sequence", (revisions or {}).get(m.app, 0))
        event.add("status", "CONFIRMED" if m.closure is None else "CANCELLED")
        event.add("dtstart", m.due)  # a date: an all-day event (VALUE=DATE)
        event.add("dtend", m.due + timedelta(days=1))
        event.add("summary", f"{m.app} {m.rule}: {m.produces}")
        event.add(
            "description",
            "\n".join(
                [
                    f"Rule: {m.rule} ({m.kind})",
                    f"Source: {m.source}",
                    f"Trigger: {m.trigger} on {m.trigger_date.isoformat()} ({m.event})",
                    f"Produces: {m.produces}",
                    f"Application: {m.app}, program {m.program}",
                    f"Obligation: {m.key}",
                    *(
                        [
                            f"Closed: {m.closure.state} on {m.closure.on.isoformat()} by "
                            f"{m.closure.by}"
                        ]
                        if m.closure
                        else []
                    ),
                ]
            ),
        )
        event.add("categories", [m.kind])
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    return cal


def write_ics(
    milestones: Iterable[Milestone], path: Path | str, revisions: Mapping[str, int] | None = None
) -> int:
    """Write the milestones to `path` as an .ics file (atomically); return how many."""
    items = list(milestones)
    data = to_calendar(items, revisions).to_ical()
    target = Path(path)
    try:
        write_atomically(target, data)
    except OSError as exc:
        raise VaultError(f"cannot write {target}: {exc.strerror}") from None
    return len(items)
