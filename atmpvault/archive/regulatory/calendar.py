"""Milestones: what falls due when, derived from recorded events by the rules table.

`derive` applies the rules to one application's events and does no I/O, so every rule
can be tested with dated cases. What does not depend on today (every one-off milestone,
and the base of each yearly series) is projected into the catalog as events are written
(see tables.py); `milestones`, the façade the CLI and the alerts call, queries that
projection and expands the yearly series for the dates asked about.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.errors import InvalidInput

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.applications import Application, Event, Regulatory

from atmpvault.archive.regulatory.rules import (
    KINDS,
    AppFacts,
    EventFacts,
    Rule,
    Rules,
    add_months,
    load_rules,
)


@dataclass(frozen=True)
class Milestone:
    """One dated obligation or expectation, with the rule and event that produced it."""

    app: str
    program: str
    rule: str
    kind: str
    due: date
    days_left: int
    source: str
    trigger: str
    trigger_date: date
    event: str
    produces: str
    cycle: int = 0  # 0 for a one-off milestone; n for the n-th yearly occurrence

    def to_json(self) -> dict[str, Any]:
        """Stable snake_case keys, dates as ISO text."""
        return {
            "app": self.app,
            "program": self.program,
            "rule": self.rule,
            "kind": self.kind,
            "due": self.due.isoformat(),
            "days_left": self.days_left,
            "source": self.source,
            "trigger": self.trigger,
            "trigger_date": self.trigger_date.isoformat(),
            "event": self.event,
            "produces": self.produces,
            "cycle": self.cycle,
        }


# -- derivation (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A yearly rule's cycles for one event: which of them to list depends on today."""

    rule: Rule
    event: EventFacts
    base: date


def derive(
    app: AppFacts,
    events: Iterable[EventFacts],
    rules: Rules,
    today: date,
    start: date | None = None,
    end: date | None = None,
) -> list[Milestone]:
    """Every milestone one application's events trigger, in date order.

    One-off milestones are all returned. A yearly rule yields, while the application is
    active, the current cycle's report (the latest anniversary on or before `today`)
    and the next one, plus any other cycle falling due inside [start, end] when `end`
    is given.
    """
    fixed, series = derive_fixed(app, events, rules)
    found = [dated(m, today) for m in fixed]
    if app.active:
        for each in series:
            found.extend(expand(app, each, today, start, end))
    found.sort(key=lambda m: (m.due, m.app, m.rule, m.event))
    return found


def derive_fixed(
    app: AppFacts, events: Iterable[EventFacts], rules: Rules
) -> tuple[list[Milestone], list[Series]]:
    """What does not depend on today: the one-off milestones (days_left 0) and the yearly
    series with their bases."""
    ordered = sorted(events, key=lambda e: (e.on, e.id))
    dues: dict[tuple[str, str], date] = {}  # (event, rule) -> due, for anchored rules
    fixed: list[Milestone] = []
    series: list[Series] = []
    for rule in rules.rules:
        candidates = [e for e in ordered if rule.applies(e)]
        if rule.once_per_app and candidates:
            first = next(t for t in rule.triggers if any(e.trigger == t for e in candidates))
            candidates = [[e for e in candidates if e.trigger == first][-1]]
        for event in candidates:
            base: date | None = event.on
            targets = rule.anchor.get(event.trigger)
            if targets:
                base = _anchor_date(dues, event.id, targets)
            if base is None:
                continue
            if rule.repeat == "yearly":
                series.append(Series(rule, event, base))
                continue
            due = rule.offset.apply(base, event)
            if due is not None:
                dues[(event.id, rule.id)] = due
                fixed.append(_made(app, rule, event, due))
    return fixed, series


def expand(
    app: AppFacts, series: Series, today: date, start: date | None, end: date | None
) -> list[Milestone]:
    """The cycles of a yearly series to list on `today` (see derive)."""
    cycles = _yearly(series.rule, series.event, series.base, today, start, end)
    return [dated(_made(app, series.rule, series.event, due, n), today) for n, due in cycles]


def dated(milestone: Milestone, today: date) -> Milestone:
    """The milestone with its days left as of `today`."""
    return replace(milestone, days_left=(milestone.due - today).days)


def _made(app: AppFacts, rule: Rule, event: EventFacts, due: date, cycle: int = 0) -> Milestone:
    return Milestone(
        app=app.id,
        program=app.program,
        rule=rule.id,
        kind=rule.kind,
        due=due,
        days_left=0,
        source=rule.source,
        trigger=event.trigger,
        trigger_date=event.on,
        event=event.id,
        produces=rule.produces,
        cycle=cycle,
    )


def _anchor_date(
    dues: Mapping[tuple[str, str], date], event: str, targets: Sequence[str]
) -> date | None:
    """The anchor's due date: from the same event, else the application's latest."""
    for target in targets:
        if (event, target) in dues:
            return dues[(event, target)]
    others = [d for (_e, r), d in dues.items() if r in targets]
    return max(others) if others else None


def _yearly(
    rule: Rule, event: EventFacts, base: date, today: date, start: date | None, end: date | None
) -> list[tuple[int, date]]:
    """(cycle, due) of a yearly rule: the current cycle, the next, and any inside the window."""
    anniversaries: list[date] = []
    cycle = 1
    while True:
        anniversary = add_months(base, 12 * cycle)
        anniversaries.append(anniversary)
        if anniversary > today and (end is None or anniversary > end):
            break
        cycle += 1
    keep: set[int] = set()
    past = [i for i, a in enumerate(anniversaries) if a <= today]
    if past:
        keep.add(past[-1])
    keep.add(next(i for i, a in enumerate(anniversaries) if a > today))
    dues = [rule.offset.apply(a, event) for a in anniversaries]
    if end is not None:
        low = start or today
        keep.update(i for i, d in enumerate(dues) if d is not None and low <= d <= end)
    return [(i + 1, d) for i, d in enumerate(dues) if i in keep and d is not None]


# -- the façade -------------------------------------------------------------------------------


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
) -> list[Milestone]:
    """The vault's milestones in date order, filtered; no bounds means all of them.

    `start`/`end` bound the due date (inclusive); `overdue_only` keeps those due before
    `today`. The CLI's default window (everything overdue plus the next 30 days) is
    `milestones(vault, today, end=today + timedelta(days=30))`.
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"unknown milestone kind {kind!r}; kinds: {', '.join(KINDS)}")
    if program is not None:
        values.program(program)
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"the window starts ({start}) after it ends ({end})")
    registry = Regulatory(vault)
    if as_of is not None:
        found = _derived(vault, registry, today, program, app, start, end, as_of)
    else:
        if app is not None:
            registry.app(app)  # NotFound names the applications there are
        found = _projected(vault, today, program, app, start, end)
    found = [
        m
        for m in found
        if (kind is None or m.kind == kind)
        and (start is None or m.due >= start)
        and (end is None or m.due <= end)
        and (not overdue_only or m.due < today)
    ]
    found.sort(key=lambda m: (m.due, m.app, m.rule, m.event))
    return found


@dataclass(frozen=True)
class _App:
    """What expanding a yearly series needs of its application."""

    id: str
    program: str
    active: bool = True


def _projected(
    vault: Vault,
    today: date,
    program: str | None,
    app: str | None,
    start: date | None,
    end: date | None,
) -> list[Milestone]:
    """Milestones from the catalog's projection: one query over due dates, plus the
    yearly series of active applications expanded for these dates."""
    import sqlalchemy as sa

    from atmpvault.archive.core.catalog import records
    from atmpvault.archive.regulatory.applications import ACTIVE, Event
    from atmpvault.archive.regulatory.kinds import APP_KIND
    from atmpvault.archive.regulatory.tables import (
        milestone_from_row,
        milestones,
        series,
        stored_rules,
    )

    fixed = sa.select(milestones)
    yearly = sa.select(series).where(
        series.c.app.in_(
            sa.select(records.c.id).where(
                records.c.kind == APP_KIND.name,
                records.c.latest.is_(True),
                records.c.status == ACTIVE,
            )
        )
    )
    for table, query in ((milestones, "fixed"), (series, "yearly")):
        clauses = []
        if app is not None:
            clauses.append(table.c.app == app)
        if program is not None:
            clauses.append(table.c.program == program)
        if query == "fixed":
            fixed = fixed.where(*clauses)
        else:
            yearly = yearly.where(*clauses)
    if start is not None:
        fixed = fixed.where(milestones.c.due >= start.isoformat())
    if end is not None:
        fixed = fixed.where(milestones.c.due <= end.isoformat())
    with vault.catalog.connect() as conn:
        rules = stored_rules(conn)
        found = [dated(milestone_from_row(row), today) for row in conn.execute(fixed)]
        for row in conn.execute(yearly):
            each = Series(
                rules.get(row.rule), Event.from_json(json.loads(row.event_body)),
                date.fromisoformat(row.base),
            )  # fmt: skip
            found.extend(expand(_App(row.app, row.program), each, today, start, end))
    return found


def _derived(
    vault: Vault,
    registry: Regulatory,
    today: date,
    program: str | None,
    app: str | None,
    start: date | None,
    end: date | None,
    as_of: str,
) -> list[Milestone]:
    """Milestones derived afresh from the records as they stood at `as_of`."""
    apps = [registry.app(app, as_of)] if app is not None else registry.apps(as_of)
    if program is not None:
        apps = [a for a in apps if a.program == program]
    rules = load_rules(vault)
    by_app: dict[str, list[Event]] = {}
    for event in registry.events(app, as_of=as_of):
        by_app.setdefault(event.app, []).append(event)
    found: list[Milestone] = []
    for application in apps:
        found.extend(derive(application, by_app.get(application.id, []), rules, today, start, end))
    return found


# Kinds of milestone that stay open once their date passes, until done (an obligation).
OBLIGATIONS = ("sponsor-due", "fda-due")


@dataclass(frozen=True)
class AppView:
    """One application with its events and open milestones (`app show`)."""

    application: Application
    events: list[Event]
    milestones: list[Milestone]

    def to_json(self) -> dict[str, Any]:
        return {
            "application": self.application.to_json(),
            "events": [e.to_json() for e in self.events],
            "milestones": [m.to_json() for m in self.milestones],
        }


def app_view(vault: Vault, app: str, today: date, as_of: str | None = None) -> AppView:
    """An application as it stood at `as_of` (default now): events, and milestones still
    open on `today` (due today or later, or an obligation past due)."""
    from atmpvault.archive.regulatory.applications import Regulatory

    registry = Regulatory(vault)
    application = registry.app(app, as_of)
    events = registry.events(application.id, as_of=as_of)
    found = milestones(vault, today, app=application.id, as_of=as_of)
    open_ = [m for m in found if m.due >= today or m.kind in OBLIGATIONS]
    return AppView(application, events, open_)
