"""Milestones: what falls due when, derived from recorded events by the rules table.

`derive` applies the rules to one application's events and does no I/O, so every rule
can be tested with dated cases. What does not depend on today (every one-off milestone,
and the base of each yearly series) is projected into the catalog as events are written
(see tables.py); `milestones`, the façade the CLI and the alerts call, queries that
projection and expands the yearly series for the dates asked about.

One record never takes the calendar down: an event whose milestones fall outside the
years a date holds, or dated outside the vault's date range (an absurd date an earlier
release accepted), is left out with its milestones and named as a Problem; the rest is
derived and shown (`milestone_calendar`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.regulatory.obligations import (
    OPEN,
    Closure,
    Recorded,
    Submitted,
    latest_completion,
    obligation_key,
    resolve,
)
from atmpvault.errors import InvalidInput

if TYPE_CHECKING:
    from atmpvault.archive.core.values import DateRange
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.applications import Application, Event, Regulatory

from atmpvault.archive.regulatory.rules import (
    KINDS,
    AppFacts,
    EventFacts,
    Rule,
    Rules,
    Suspension,
    add_months,
    load_rules,
)

# Kinds of milestone that stay open once their date passes, until closed: the sponsor's
# and FDA's obligations and FDA's goals. A status (the IND in effect) or a gate (a CBE-30
# waiting period) passes with its date and is never overdue.
OBLIGATIONS = ("sponsor-due", "fda-due", "fda-goal")


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
    begins: date | None = None  # a cycle's anniversary (else the obligation begins on its event)
    closure: Closure | None = None  # done or waived: how, when, by whom

    @property
    def key(self) -> str:
        """The obligation's key, which its date never changes (see obligations.py)."""
        return obligation_key(self.app, self.rule, self.cycle, self.event)

    @property
    def state(self) -> str:
        return OPEN if self.closure is None else self.closure.state

    @property
    def overdue(self) -> bool:
        """Open, past its date, and an obligation: a status or a gate passes, never late."""
        return self.closure is None and self.days_left < 0 and self.kind in OBLIGATIONS

    def to_json(self) -> dict[str, Any]:
        """Stable snake_case keys, dates as ISO text."""
        return {
            "key": self.key,
            "state": self.state,
            "overdue": self.overdue,
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
            "closed": None if self.closure is None else self.closure.to_json(),
        }


# -- derivation (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A yearly rule's cycles for one event: which of them to list depends on today."""

    rule: Rule
    event: EventFacts
    base: date


@dataclass(frozen=True)
class Problem:
    """A record whose milestones cannot be derived: they are left out, and it is named."""

    app: str
    record: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"app": self.app, "record": self.record, "problem": self.message}

    def __str__(self) -> str:
        return f"{self.record} ({self.app}): {self.message}"


def correct_hint(event: str) -> str:
    return f"correct it with 'atmpvault event correct {event} --on YYYY-MM-DD --reason TEXT'"


class _Underivable(Exception):
    """One event's milestones fall outside the dates a calendar can hold."""

    def __init__(self, event: EventFacts, rule: Rule) -> None:
        super().__init__(event.id)
        self.event = event
        self.rule = rule


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
    is given. Events whose milestones cannot be computed are left out (see derive_fixed).
    """
    return derive_checked(app, events, rules, today, start, end)[0]


def derive_checked(
    app: AppFacts,
    events: Iterable[EventFacts],
    rules: Rules,
    today: date,
    start: date | None = None,
    end: date | None = None,
) -> tuple[list[Milestone], list[Problem]]:
    """`derive`, with the events it had to leave out."""
    fixed, series, problems = derive_fixed(app, events, rules)
    found = [dated(m, today) for m in fixed]
    if app.active:
        for each in series:
            found.extend(expand(app, each, today, start, end))
    found.sort(key=lambda m: (m.due, m.app, m.rule, m.event))
    return found, problems


def derive_fixed(
    app: AppFacts, events: Iterable[EventFacts], rules: Rules
) -> tuple[list[Milestone], list[Series], list[Problem]]:
    """What does not depend on today: the one-off milestones (days_left 0) and the yearly
    series with their bases; and the events left out because a milestone they trigger
    falls outside the years a date can hold (an absurd date in an old vault). Such an
    event is left out whole, and the rest derived again without it, so no milestone
    rests on it."""
    remaining = sorted(events, key=lambda e: (e.on, e.id))
    problems: list[Problem] = []
    while True:
        try:
            fixed, series = _derive_fixed(app, remaining, rules)
        except _Underivable as exc:
            bad = exc.event
            problems.append(
                Problem(
                    app.id,
                    bad.id,
                    f"{bad.trigger} on {bad.on.isoformat()}: rule {exc.rule.id} falls outside "
                    f"the dates a calendar can hold; {correct_hint(bad.id)}",
                )
            )
            remaining = [e for e in remaining if e.id != bad.id]
            continue
        return fixed, series, problems


def _derive_fixed(
    app: AppFacts, ordered: Sequence[EventFacts], rules: Rules
) -> tuple[list[Milestone], list[Series]]:
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
            try:
                if rule.repeat == "yearly":
                    add_months(base, 12)  # its first anniversary must exist
                    series.append(Series(rule, event, base))
                    continue
                due = rule.offset.apply(base, event)
            except (OverflowError, ValueError):
                raise _Underivable(event, rule) from None
            if due is not None and rule.suspended is not None:
                due = _lifted(rule.suspended, ordered, event.on, due)
            if due is not None:
                dues[(event.id, rule.id)] = due
                fixed.append(_made(app, rule, event, due))
    return fixed, series


def _lifted(hold: Suspension, ordered: Sequence[EventFacts], since: date, due: date) -> date | None:
    """The due date, or if an event of `hold.by` fell in (since, due], the date of the
    first later event of `hold.until` (None while none: the milestone has not happened)."""
    held = next((e.on for e in ordered if e.trigger == hold.by and since < e.on <= due), None)
    if held is None:
        return due
    return next((e.on for e in ordered if e.trigger == hold.until and e.on >= held), None)


def closures(
    app: AppFacts,
    fixed: Sequence[Milestone],
    series: Sequence[Series],
    events: Sequence[EventFacts],
    recorded: Iterable[Recorded],
    sequences: Sequence[Submitted],
    rules: Rules,
) -> dict[str, Closure]:
    """Key -> closure of one application's closed obligations (see obligations.resolve):
    the yearly cycles are those begun by the last thing that could complete one."""
    last = latest_completion(sequences, events)
    cycles = [m for s in series for m in expand(app, s, last, None, None)] if last else []
    return resolve([*fixed, *cycles], recorded, sequences, events, rules)


def closed(found: Iterable[Milestone], by_key: Mapping[str, Closure]) -> list[Milestone]:
    """The milestones with their closures attached."""
    return [replace(m, closure=by_key[m.key]) if m.key in by_key else m for m in found]


def expand(
    app: AppFacts, series: Series, today: date, start: date | None, end: date | None
) -> list[Milestone]:
    """The cycles of a yearly series to list on `today` (see derive)."""
    cycles = _yearly(series.rule, series.event, series.base, today, start, end)
    return [
        dated(_made(app, series.rule, series.event, due, n, begins), today)
        for n, due, begins in cycles
    ]


def dated(milestone: Milestone, today: date) -> Milestone:
    """The milestone with its days left as of `today`."""
    return replace(milestone, days_left=(milestone.due - today).days)


def _made(
    app: AppFacts,
    rule: Rule,
    event: EventFacts,
    due: date,
    cycle: int = 0,
    begins: date | None = None,
) -> Milestone:
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
        begins=begins,
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
) -> list[tuple[int, date, date]]:
    """(cycle, due, anniversary) of a yearly rule: every cycle begun by `today` (a missed
    report stays owed whatever later cycles exist), the next, and any inside the window."""
    anniversaries: list[date] = []
    cycle = 1
    while True:
        try:
            anniversary = add_months(base, 12 * cycle)
        except ValueError:  # after year 9999: the series ends with the calendar
            break
        anniversaries.append(anniversary)
        if anniversary > today and (end is None or anniversary > end):
            break
        cycle += 1
    keep = {i for i, a in enumerate(anniversaries) if a <= today}
    following = next((i for i, a in enumerate(anniversaries) if a > today), None)
    if following is not None:
        keep.add(following)
    dues = [_offset(rule, a, event) for a in anniversaries]
    if end is not None:
        low = start or today
        keep.update(i for i, d in enumerate(dues) if d is not None and low <= d <= end)
    return [(i + 1, d, anniversaries[i]) for i, d in enumerate(dues) if i in keep and d is not None]


def _offset(rule: Rule, base: date, event: EventFacts) -> date | None:
    """The due date, or None where it would fall after year 9999."""
    try:
        return rule.offset.apply(base, event)
    except (OverflowError, ValueError):
        return None


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
        found, problems = _projected(vault, today, program, app, start, end, dates)
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
    unique = {(p.app, p.record): p for p in reversed(problems)}  # the first said of each
    return Calendar(found, sorted(unique.values(), key=lambda p: (p.app, p.record)))


def vanished(vault: Vault, program: str | None = None, app: str | None = None) -> list[Milestone]:
    """The milestones voided events made, each closed as "cancelled": an iCalendar
    export carries them so that subscribed calendars remove them."""
    from atmpvault.archive.regulatory.applications import Regulatory
    from atmpvault.archive.regulatory.obligations import CANCELLED

    registry = Regulatory(vault)
    rules = load_rules(vault)
    by_app: dict[str, list[Event]] = {}
    for event in registry.events(app):
        by_app.setdefault(event.app, []).append(event)
    gone: list[Milestone] = []
    for app_id, events in sorted(by_app.items()):
        voided = {e.id: e for e in events if e.voided}
        if not voided:
            continue
        application = registry.app(app_id)
        if program is not None and application.program != program:
            continue
        live = {m.key for m in derive_fixed(application, [e for e in events if not e.voided],
                                            rules)[0]}  # fmt: skip
        for m in derive_fixed(application, events, rules)[0]:
            cause = voided.get(m.event)
            if cause is not None and m.key not in live:
                on = date.fromisoformat(cause.recorded_at[:10])
                how = Closure(
                    m.key, CANCELLED, on, cause.user, "event voided", cause.id, cause.reason
                )
                gone.append(replace(m, closure=how))
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
    active: bool = True


def _projected(
    vault: Vault,
    today: date,
    program: str | None,
    app: str | None,
    start: date | None,
    end: date | None,
    dates: DateRange,
) -> tuple[list[Milestone], list[Problem]]:
    """Milestones from the catalog's projection: one query over due dates, plus the
    yearly series of active applications expanded for these dates; and the problems
    the projection recorded or that an event's date outside `dates` makes."""
    from atmpvault.archive.regulatory.tables import read_projected

    with vault.catalog.connect() as conn:
        rows = read_projected(conn, program, app, start, end, dates.earliest, dates.latest())
    found = [dated(m, today) for m in rows.fixed]
    for app_id, app_program, each in rows.yearly:
        found.extend(expand(_App(app_id, app_program), each, today, start, end))
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
