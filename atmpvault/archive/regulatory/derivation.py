"""Derivation: what falls due when, from recorded events by the rules table (no I/O).

`derive` applies the rules to one application's events, so every rule can be tested
with dated cases; `closures` works out which obligations are closed (see
obligations.py). The calendar façade (calendar.py) and the catalog projection
(tables.py) both call them.

One record never takes derivation down: an event whose milestones fall outside the years
a date holds is left out with its milestones and named as a Problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from atmpvault.archive.regulatory.obligations import (
    CANCELLED,
    OPEN,
    SUPERSEDED,
    Closure,
    Recorded,
    Submitted,
    latest_completion,
    obligation_key,
    resolve,
)
from atmpvault.archive.regulatory.rules import (
    AppFacts,
    EventFacts,
    Rule,
    Rules,
    Suspension,
    add_months,
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
    cycle: int = 0  # 0 for a one-off milestone; n for the n-th cycle of a repeating rule
    begins: date | None = None  # a cycle's anniversary (else the obligation begins on its event)
    closure: Closure | None = None  # done or waived: how, when, by whom
    provisional: bool = False  # counted from a date FDA has not fixed yet (a meeting)
    non_working: str | None = None  # the due date is a weekend day or a holiday: which
    target: date | None = None  # the sponsor's own target date (config targets.<kind>)

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
            "provisional": self.provisional,
            "non_working": self.non_working,
            "target": None if self.target is None else self.target.isoformat(),
            "closed": None if self.closure is None else self.closure.to_json(),
        }


# -- derivation (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A repeating rule's cycles for one event: which of them to list depends on today."""

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

    One-off milestones are all returned. A repeating rule yields every cycle begun by
    `today` (a report stays owed until it is closed), except those begun while the
    application was inactive, and the next one, plus any other cycle falling due inside
    [start, end] when `end` is given. Nothing here is closed: `closures` says what is.
    Events whose milestones cannot be computed are left out (see derive_fixed).
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
    for each in series:
        found.extend(expand(app, each, today, start, end))
    found.sort(key=lambda m: (m.due, m.app, m.rule, m.event))
    return found, problems


def derive_fixed(
    app: AppFacts, events: Iterable[EventFacts], rules: Rules, designate: bool = True
) -> tuple[list[Milestone], list[Series], list[Problem]]:
    """What does not depend on today: the one-off milestones (days_left 0) and the yearly
    series with their bases; and the events left out because a milestone they trigger
    falls outside the years a date can hold (an absurd date in an old vault). Such an
    event is left out whole, and the rest derived again without it, so no milestone
    rests on it. With `designate` false, each BLA keeps the review track its receipt
    was recorded with (what the milestones were before FDA designated another)."""
    remaining = sorted(events, key=lambda e: (e.on, e.id))
    problems: list[Problem] = []
    while True:
        try:
            fixed, series = _derive_fixed(app, remaining, rules, designate)
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
    app: AppFacts, ordered: Sequence[EventFacts], rules: Rules, designate: bool = True
) -> tuple[list[Milestone], list[Series]]:
    if designate:
        ordered = designated(ordered)
    dues: dict[tuple[str, str], date] = {}  # (event, rule) -> due, for anchored rules
    provisional: set[tuple[str, str]] = set()  # dues that FDA has not fixed yet
    fixed: list[Milestone] = []
    series: list[Series] = []
    for rule in rules.rules:
        candidates = [e for e in ordered if rule.applies(e)]
        if rule.once_per_app and candidates:
            first = next(t for t in rule.triggers if any(e.trigger == t for e in candidates))
            candidates = [[e for e in candidates if e.trigger == first][-1]]
        for event in candidates:
            base: date = event.on
            unsure = False
            targets = rule.anchor.get(event.trigger)
            if targets:
                anchor = _anchor(dues, event, targets)
                if anchor is None:
                    continue
                base, unsure = dues[anchor], anchor in provisional
            try:
                if rule.repeat:
                    add_months(base, rule.months)  # its first anniversary must exist
                    series.append(Series(rule, event, base))
                    continue
                due = rule.offset.apply(base, event)
            except (OverflowError, ValueError):
                raise _Underivable(event, rule) from None
            if due is not None and rule.suspended is not None:
                due = _lifted(rule.suspended, ordered, event.on, due)
            if due is not None and rule.replaced_by is not None:
                granted = _answer(ordered, event, rule.replaced_by[0])
                fixed_date = getattr(granted, rule.replaced_by[1], None) if granted else None
                due, unsure = (fixed_date, False) if fixed_date else (due, True)
            if due is not None:
                dues[(event.id, rule.id)] = due
                if unsure:
                    provisional.add((event.id, rule.id))
                fixed.append(replace(_made(app, rule, event, due), provisional=unsure))
    return fixed, series


def designated(events: Sequence[EventFacts]) -> list[EventFacts]:
    """The events with each BLA's review track as FDA last designated it (a
    review-designated event after the day-60 filing letter overrides the receipt's)."""
    tracks = {getattr(e, "of", None): getattr(e, "review", None)
              for e in events if e.trigger == "review-designated"}  # fmt: skip
    return [
        replace(e, review=tracks[e.id])  # type: ignore[type-var]
        if e.id in tracks and tracks[e.id] and getattr(e, "review", None) != tracks[e.id]
        else e
        for e in events
    ]


def _answer(events: Sequence[EventFacts], event: EventFacts, trigger: str) -> EventFacts | None:
    """The latest event of `trigger` that answers `event` (its `of`)."""
    found = [e for e in events if e.trigger == trigger and getattr(e, "of", None) == event.id]
    return found[-1] if found else None


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
    the repeating cycles are those begun by the last thing that could complete one."""
    last = latest_completion(sequences, events)
    cycles = [m for s in series for m in expand(app, s, last, None, None)] if last else []
    decided = _decided_by_fda(fixed, events, rules)
    return resolve([*fixed, *cycles], recorded, sequences, events, rules, decided)


def _decided_by_fda(
    fixed: Sequence[Milestone], events: Sequence[EventFacts], rules: Rules
) -> dict[str, Closure]:
    """Milestones FDA's own events took away: a goal an extension superseded, a meeting
    (and what counts back from it) that FDA denied."""
    by_id = {e.id: e for e in events}
    found: dict[str, Closure] = {}
    for m in fixed:
        rule = rules.get(m.rule)
        cause = by_id.get(m.event)
        if rule.supersedes and cause is not None:
            targets = rule.anchor.get(cause.trigger, ())
            for old in fixed:
                if old.event == getattr(cause, "of", None) and old.rule in targets:
                    found[old.key] = _by(old.key, SUPERSEDED, cause)
        for trigger in rule.cancelled_by:
            answer = _answer(events, by_id[m.event], trigger) if m.event in by_id else None
            if answer is not None:
                found[m.key] = _by(m.key, CANCELLED, answer)
    return found


def _by(key: str, state: str, event: EventFacts) -> Closure:
    return Closure(key, state, event.on, str(getattr(event, "user", "")), "event", event.id)


def closed(found: Iterable[Milestone], by_key: Mapping[str, Closure]) -> list[Milestone]:
    """The milestones with their closures attached."""
    return [replace(m, closure=by_key[m.key]) if m.key in by_key else m for m in found]


def expand(
    app: AppFacts, series: Series, today: date, start: date | None, end: date | None
) -> list[Milestone]:
    """The cycles of a repeating series to list on `today` (see derive)."""
    cycles = _yearly(series.rule, series.event, series.base, today, start, end, app.paused)
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


def _anchor(
    dues: Mapping[tuple[str, str], date], event: EventFacts, targets: Sequence[str]
) -> tuple[str, str] | None:
    """The (event, rule) whose due date is the base: of the same event, else of the event
    it answers (its `of`: only that one), else the application's latest."""
    of = getattr(event, "of", None)
    for source in (event.id, of):
        for target in targets:
            if source is not None and (source, target) in dues:
                return (source, target)
    if of is not None:
        return None
    others = [(d, k) for k, d in dues.items() if k[1] in targets]
    return max(others)[1] if others else None


def _yearly(
    rule: Rule,
    event: EventFacts,
    base: date,
    today: date,
    start: date | None,
    end: date | None,
    paused: Sequence[tuple[date, date | None]] = (),
) -> list[tuple[int, date, date]]:
    """(cycle, due, begins) of a repeating rule: every cycle begun by `today` (a missed
    report stays owed whatever later cycles exist), the next, and any inside the window.

    A cycle begins on its anniversary of `base` (every 12 or 3 months), or with
    `period_end` on the day before it (the last day of the period a report covers); the
    rule's `cycles` bound which exist, and none that begins while the application is
    `paused` (inactive or withdrawn: [from, until), until None while it still is)."""
    first, last = rule.cycles
    begun: list[tuple[int, date]] = []
    cycle = first
    while last is None or cycle <= last:
        try:
            anniversary = add_months(base, rule.months * cycle)
            begins = anniversary - timedelta(days=1) if rule.period_end else anniversary
        except (ValueError, OverflowError):  # after year 9999: the series ends with it
            break
        if any(since <= begins and until is None for since, until in paused):
            break
        if not any(since <= begins < until for since, until in paused if until is not None):
            begun.append((cycle, begins))
        if begins > today and (end is None or begins > end):
            break
        cycle += 1
    keep = {n for n, b in begun if b <= today}
    following = next((n for n, b in begun if b > today), None)
    if following is not None:
        keep.add(following)
    dues = {n: _offset(rule, b, event) for n, b in begun}
    if end is not None:
        low = start or today
        keep.update(n for n, d in dues.items() if d is not None and low <= d <= end)
    return [(n, due, b) for n, b in begun if n in keep and (due := dues[n]) is not None]


def _offset(rule: Rule, base: date, event: EventFacts) -> date | None:
    """The due date, or None where it would fall after year 9999."""
    try:
        return rule.offset.apply(base, event)
    except (OverflowError, ValueError):
        return None
