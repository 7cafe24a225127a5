"""The milestone calendar: what falls due when, as the CLI and the alerts ask for it.

Derivation itself is pure (derivation.py). What does not depend on today (every one-off
milestone, and the base of each repeating series) is projected into the catalog as events are written
(see tables.py); `milestones`, the façade the CLI and the alerts call, queries that
projection and expands the yearly series for the dates asked about.

One record never takes the calendar down: an event whose milestones fall outside the
years a date holds, or dated outside the vault's date range (an absurd date an earlier
release accepted), is left out with its milestones and named as a Problem; the rest is
derived and shown (`milestone_calendar`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from atmpvault.archive.regulatory.derivation import (
    Milestone,
    Problem,
    closed,
    closures,
    correct_hint,
    dated,
    derive_checked,
    derive_fixed,
    expand,
)
from atmpvault.archive.regulatory.obligations import Closure, Recorded, Submitted
from atmpvault.archive.regulatory.rules import KINDS, load_rules
from atmpvault.errors import InvalidInput

if TYPE_CHECKING:
    from atmpvault.archive.core.values import DateRange
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.applications import Application, Event, Regulatory


# -- the façade -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Milestones in date order, and the records whose milestones are left out."""

    milestones: list[Milestone]
    problems: list[Problem]


def milestones(
    vault: Vault,
    today: date,
    program: str | None = None,
    app: str | None = None,
    start: date | None = None,
    end: date | None = None,
    overdue_only: bool = False,
    kind: str | None = None,
    as_of: str | None = None,
    closed: bool = False,
) -> list[Milestone]:
    """The vault's open milestones in date order, filtered (`closed`: the done and waived
    ones too); no bounds means all of them.

    `start`/`end` bound the due date (inclusive). Without `start`, a status or gate whose
    date has passed is left out (it is history, not owed); every open obligation past its
    date is kept (it is overdue). `overdue_only` keeps only those. The CLI's default window
    (everything overdue plus the next 30 days) is `milestones(vault, today,
    end=today + timedelta(days=30))`. Records whose milestones cannot be derived are left
    out; `milestone_calendar` names them.
    """
    return milestone_calendar(
        vault, today, program, app, start, end, overdue_only, kind, as_of, closed
    ).milestones


def milestone_calendar(
    vault: Vault,
    today: date,
    program: str | None = None,
    app: str | None = None,
    start: date | None = None,
    end: date | None = None,
    overdue_only: bool = False,
    kind: str | None = None,
    as_of: str | None = None,
    closed: bool = False,
) -> Calendar:
    """`milestones`, with the problems: every event dated outside the vault's date range
    (its milestones would be absurd: overdue by centuries) or whose milestones fall
    outside the dates a calendar can hold. One bad record never hides the rest."""
    from atmpvault.archive.regulatory.applications import Regulatory

    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown milestone kind {kind!r}; kinds: {', '.join(KINDS)}")
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"the window starts ({start}) after it ends ({end})")
    registry = Regulatory(vault)
    dates = vault.config.dates
    if program is not None:
        program = registry.program(program, as_of)  # NotFound names the programs there are
    if as_of is not None:
        found, problems = _derived(vault, registry, today, program, app, start, end, as_of)
    else:
        if app is not None:
            registry.app(app)  # NotFound names the applications there are
        found, problems = _projected(vault, today, program, app, start, end, dates, closed)
    problems += [_outside(dates, m.app, m.event, m.trigger, m.trigger_date) for m in found
                 if not dates.contains(m.trigger_date)]  # fmt: skip
    found = [
        m
        for m in found
        if dates.contains(m.trigger_date)
        and (closed or m.closure is None)
        and (kind is None or m.kind == kind)
        and (start is None or m.due >= start)
        and (end is None or m.due <= end)
        and (start is not None or m.due >= today or m.overdue or m.closure is not None)
        and (not overdue_only or m.overdue)
    ]
    found.sort(key=lambda m: (m.due, m.app, m.rule, m.event))
    found = workdays(found, vault.config.holidays, vault.config.targets)
    unique = {(p.app, p.record): p for p in reversed(problems)}  # the first said of each
    return Calendar(found, sorted(unique.values(), key=lambda p: (p.app, p.record)))


def workdays(found: list[Milestone], holidays: str, targets: Mapping[str, int]) -> list[Milestone]:
    """Each milestone flagged when due on a weekend or a holiday of the vault's calendar
    (the rule stays calendar days; the flag warns people), with the sponsor's own target
    date where the vault sets one for its kind."""
    from atmpvault.archive.core.workdays import non_working

    return [
        replace(
            m,
            non_working=non_working(m.due, holidays),
            target=m.due - timedelta(days=targets[m.kind]) if m.kind in targets else None,
        )
        for m in found
    ]


def vanished(vault: Vault, program: str | None = None, app: str | None = None) -> list[Milestone]:
    """Milestones that are gone, each closed as "cancelled": those of a voided event, and
    a review goal FDA's designation of another track replaced. An iCalendar export
    carries them so that subscribed calendars remove them."""
    from atmpvault.archive.regulatory.applications import Regulatory
    from atmpvault.archive.regulatory.obligations import CANCELLED

    registry = Regulatory(vault)
    rules = load_rules(vault)
    by_app: dict[str, list[Event]] = {}
    for event in registry.events(app):
        by_app.setdefault(event.app, []).append(event)
    gone: list[Milestone] = []
    for app_id, events in sorted(by_app.items()):
        application = registry.app(app_id)
        if program is not None and application.program != program:
            continue
        live = {m.key for m in derive_fixed(application, [e for e in events if not e.voided],
                                            rules)[0]}  # fmt: skip
        for m in derive_fixed(application, events, rules, designate=False)[0]:
            if m.key in live:
                continue
            causes = [e for e in events if e.id == m.event and e.voided]
            causes += [e for e in events if e.trigger == "review-designated" and e.of == m.event]
            if causes:
                cause = causes[-1]
                on = date.fromisoformat(cause.recorded_at[:10]) if cause.voided else cause.on
                how = "event voided" if cause.voided else "event"
                closure = Closure(m.key, CANCELLED, on, cause.user, how, cause.id, cause.reason)
                gone.append(replace(m, closure=closure))
    return gone


def calendar_revisions(vault: Vault) -> dict[str, int]:
    """Per application, a number that grows with every change to its milestones."""
    from atmpvault.archive.regulatory.tables import revisions

    with vault.catalog.connect() as conn:
        return revisions(conn)


def _outside(dates: DateRange, app: str, event: str, trigger: str, on: date) -> Problem:
    return Problem(
        app,
        event,
        f"{trigger} on {on.isoformat()} is outside the dates this vault accepts "
        f"({dates.describe()}), so its milestones are left out; {correct_hint(event)}",
    )


@dataclass(frozen=True)
class _App:
    """What expanding a yearly series needs of its application."""

    id: str
    program: str
    paused: list[tuple[date, date | None]] = field(default_factory=list)


def _projected(
    vault: Vault,
    today: date,
    program: str | None,
    app: str | None,
    start: date | None,
    end: date | None,
    dates: DateRange,
    every: bool = True,
) -> tuple[list[Milestone], list[Problem]]:
    """Milestones from the catalog's projection: one query over due dates, plus the
    repeating series expanded for these dates (none begun while inactive); and the problems
    the projection recorded or that an event's date outside `dates` makes. Without
    `every` and `start`, only what is still open is read (see read_projected)."""
    from atmpvault.archive.regulatory.tables import read_projected

    with vault.catalog.connect() as conn:
        rows = read_projected(
            conn, program, app, start, end, dates.earliest, dates.latest(),
            open_since=None if every or start is not None else today,
        )  # fmt: skip
    found = [dated(m, today) for m in rows.fixed]
    for app_id, app_program, each in rows.yearly:
        found.extend(
            expand(_App(app_id, app_program, rows.paused.get(app_id, [])), each, today, start, end)
        )
    found = closed(found, rows.closures)
    problems = [Problem(*row) for row in rows.problems]
    problems += [_outside(dates, *row) for row in rows.outside]
    return found, problems


def _derived(
    vault: Vault,
    registry: Regulatory,
    today: date,
    program: str | None,
    app: str | None,
    start: date | None,
    end: date | None,
    as_of: str,
) -> tuple[list[Milestone], list[Problem]]:
    """Milestones derived afresh from the records as they stood at `as_of`."""
    apps = [registry.app(app, as_of)] if app is not None else registry.apps(as_of)
    if program is not None:
        apps = [a for a in apps if a.program == program]
    from atmpvault.archive.regulatory.kinds import OBLIGATION_KIND, PACKAGE_KIND
    from atmpvault.archive.regulatory.obligations import submitted_from

    rules = load_rules(vault)
    by_app: dict[str, list[Event]] = {}
    for event in registry.events(app, as_of=as_of):
        if not event.voided:
            by_app.setdefault(event.app, []).append(event)
    recorded: dict[str, list[Recorded]] = {}
    for record in vault.catalog.records(OBLIGATION_KIND.name, as_of=as_of):
        recorded.setdefault(str(record.body["app"]), []).append(Recorded.from_json(record.body))
    sequences: dict[str, list[Submitted]] = {}
    for record in vault.catalog.records(PACKAGE_KIND.name, as_of=as_of):
        sent = submitted_from(record.body)
        if sent is not None:
            sequences.setdefault(str(record.body["app"]), []).append(sent)
    found: list[Milestone] = []
    problems: list[Problem] = []
    for application in apps:
        events = by_app.get(application.id, [])
        made, left_out = derive_checked(application, events, rules, today, start, end)
        fixed, series, _ = derive_fixed(application, events, rules)
        by_key = closures(
            application, fixed, series, events, recorded.get(application.id, []),
            sequences.get(application.id, []), rules,
        )  # fmt: skip
        found += closed(made, by_key)
        problems += left_out
    return found, problems


@dataclass(frozen=True)
class AppView:
    """One application with its events and open milestones (`app show`)."""

    application: Application
    events: list[Event]
    milestones: list[Milestone]
    problems: list[Problem]

    def to_json(self) -> dict[str, Any]:
        return {
            "application": self.application.to_json(),
            "events": [e.to_json() for e in self.events],
            "milestones": [m.to_json() for m in self.milestones],
            "problems": [p.to_json() for p in self.problems],
        }


def app_view(vault: Vault, app: str, today: date, as_of: str | None = None) -> AppView:
    """An application as it stood at `as_of` (default now): events, and milestones still
    open on `today` (due today or later, or an obligation past due)."""
    from atmpvault.archive.regulatory.applications import Regulatory

    registry = Regulatory(vault)
    application = registry.app(app, as_of)
    events = registry.events(application.id, as_of=as_of)
    found = milestone_calendar(vault, today, app=application.id, as_of=as_of)
    open_ = [m for m in found.milestones if m.due >= today or m.overdue]
    return AppView(application, events, open_, found.problems)
