"""Milestones: what falls due when, derived from recorded events by the FDA rules table.

The rules are data (atmpvault/rules/fda_milestones.json, or the vault's own copy at
config/rules/fda_milestones.json); `derive` applies them to one application's events
and does no I/O, so every rule can be tested with dated cases. `milestones` is the
façade the CLI and the alerts call: it loads the rules and the records, then derives.

    >>> add_months(date(2027, 1, 31), 1)
    datetime.date(2027, 2, 28)
"""

from __future__ import annotations

import calendar as _gregorian
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from atmpvault.archive.core import values
from atmpvault.errors import InvalidInput, InvalidRules

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.applications import Application, Event

RULES_FILE = "fda_milestones.json"
VAULT_RULES_PATH = f"config/rules/{RULES_FILE}"
RULES_FORMAT = 1

KINDS = ("sponsor-due", "fda-due", "fda-goal", "gate", "status")
CONDITION_FIELDS = ("review", "meeting_type", "letter_kind")
OFFSET_FIELDS = ("response_days",)
REPEATS = ("yearly",)
_RULE_ID_RE = re.compile(r"[A-Z][A-Z0-9_]*")


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


class EventFacts(Protocol):
    """What derivation reads from a recorded event (regulatory.Event provides it)."""

    @property
    def id(self) -> str: ...
    @property
    def trigger(self) -> str: ...
    @property
    def on(self) -> date: ...


class AppFacts(Protocol):
    """What derivation reads from an application (regulatory.Application provides it)."""

    @property
    def id(self) -> str: ...
    @property
    def program(self) -> str: ...
    @property
    def active(self) -> bool: ...


# -- date arithmetic ------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """Calendar-month arithmetic, clamped at month end: Jan 31 + 1 month = Feb 28 (or 29)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = _gregorian.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


# -- the rules table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Offset:
    """Calendar days, calendar months, or a number of days recorded on the event."""

    days: int | None = None
    months: int | None = None
    days_from: str | None = None

    def apply(self, base: date, event: EventFacts) -> date | None:
        """The due date from `base`; None when the event lacks the days it names."""
        if self.months is not None:
            return add_months(base, self.months)
        if self.days_from is not None:
            days = getattr(event, self.days_from, None)
            return None if days is None else base + timedelta(days=int(days))
        assert self.days is not None
        return base + timedelta(days=self.days)

    def describe(self) -> str:
        if self.months is not None:
            return f"{self.months:+d} months"
        if self.days_from is not None:
            return f"+{self.days_from}"
        return f"{self.days:+d} days"


@dataclass(frozen=True)
class Rule:
    """One row of the rules table."""

    id: str
    triggers: tuple[str, ...]
    basis: str
    offset: Offset
    kind: str
    produces: str
    source: str
    unverified: bool = False
    when: Mapping[str, str] = field(default_factory=dict)
    anchor: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    repeat: str | None = None
    once_per_app: bool = False

    def applies(self, event: EventFacts) -> bool:
        return event.trigger in self.triggers and all(
            getattr(event, key, None) == value for key, value in self.when.items()
        )


@dataclass(frozen=True)
class Rules:
    """A validated rules table, anchored rules after the rules they anchor on."""

    rules: tuple[Rule, ...]
    origin: str

    def ids(self) -> list[str]:
        return [r.id for r in self.rules]

    def get(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise InvalidRules(
            f"unknown rule {rule_id!r} in {self.origin}; rules: {', '.join(self.ids())}"
        )


def parse_rules(raw: bytes, origin: str) -> Rules:
    """Validate a rules file; any problem is one InvalidRules naming the rule and field."""
    from atmpvault.archive.regulatory.applications import TRIGGERS

    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidRules(f"{origin} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise InvalidRules(f"{origin} must be an object with a 'rules' list")
    if data.get("format", RULES_FORMAT) != RULES_FORMAT:
        raise InvalidRules(f"{origin} has format {data.get('format')!r}; expected {RULES_FORMAT}")
    rules: list[Rule] = []
    for position, item in enumerate(data["rules"], 1):
        rules.append(_parse_rule(item, origin, position, TRIGGERS))
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise InvalidRules(f"{origin}: rule {rule.id} is defined twice")
        seen.add(rule.id)
    by_id = {r.id: r for r in rules}
    for rule in rules:
        for targets in rule.anchor.values():
            for target in targets:
                if target not in by_id:
                    raise InvalidRules(
                        f"{origin}: rule {rule.id} anchors on unknown rule {target!r}"
                    )
                if by_id[target].repeat:
                    raise InvalidRules(
                        f"{origin}: rule {rule.id} anchors on {target}, which repeats"
                    )
    return Rules(tuple(_dependency_order(rules, origin)), origin)


def _parse_rule(item: object, origin: str, position: int, triggers: Mapping[str, object]) -> Rule:
    if not isinstance(item, dict):
        raise InvalidRules(f"{origin}: rule {position} is not an object")
    rule_id = item.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID_RE.fullmatch(rule_id):
        raise InvalidRules(
            f"{origin}: rule {position} has id {rule_id!r}; ids are upper-case, e.g. IND_ANNUAL"
        )
    name = f"{origin}: rule {rule_id}"

    def text(key: str) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidRules(f"{name}: '{key}' must be non-empty text")
        return value

    listed = item.get("triggers")
    if isinstance(listed, str):
        listed = [listed]
    if not isinstance(listed, list) or not listed:
        raise InvalidRules(f"{name}: 'triggers' must list at least one trigger")
    for trigger in listed:
        if trigger not in triggers:
            raise InvalidRules(
                f"{name}: unknown trigger {trigger!r}; valid triggers: {', '.join(triggers)}"
            )
    kind = text("kind")
    if kind not in KINDS:
        raise InvalidRules(f"{name}: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    offset = _parse_offset(item.get("offset"), name)
    when = item.get("when", {})
    if not isinstance(when, dict) or any(
        k not in CONDITION_FIELDS or not isinstance(v, str) for k, v in when.items()
    ):
        raise InvalidRules(
            f"{name}: 'when' must map {', '.join(CONDITION_FIELDS)} to text, not {when!r}"
        )
    anchor_raw = item.get("anchor", {})
    anchor: dict[str, tuple[str, ...]] = {}
    if not isinstance(anchor_raw, dict):
        raise InvalidRules(f"{name}: 'anchor' must map a trigger to rule ids")
    for trigger, targets in anchor_raw.items():
        if trigger not in listed:
            raise InvalidRules(f"{name}: anchor for {trigger!r}, which is not one of its triggers")
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise InvalidRules(f"{name}: anchor for {trigger!r} must list rule ids")
        anchor[trigger] = tuple(targets)
    repeat = item.get("repeat")
    if repeat is not None and repeat not in REPEATS:
        raise InvalidRules(f"{name}: unknown repeat {repeat!r}; use one of: {', '.join(REPEATS)}")
    for flag in ("unverified", "once_per_app"):
        if not isinstance(item.get(flag, False), bool):
            raise InvalidRules(f"{name}: '{flag}' must be true or false")
    return Rule(
        id=rule_id,
        triggers=tuple(listed),
        basis=text("basis"),
        offset=offset,
        kind=kind,
        produces=text("produces"),
        source=text("source"),
        unverified=item.get("unverified", False),
        when=dict(when),
        anchor=anchor,
        repeat=repeat,
        once_per_app=item.get("once_per_app", False),
    )


def _parse_offset(raw: object, name: str) -> Offset:
    problem = (
        f'{name}: bad offset {raw!r}; use {{"days": N}}, {{"months": N}} '
        f'or {{"days_from": "response_days"}}'
    )
    if not isinstance(raw, dict) or len(raw) != 1:
        raise InvalidRules(problem)
    ((key, value),) = raw.items()
    if key in ("days", "months"):
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 36600:
            raise InvalidRules(problem)
        return Offset(days=value) if key == "days" else Offset(months=value)
    if key == "days_from" and value in OFFSET_FIELDS:
        return Offset(days_from=value)
    raise InvalidRules(problem)


def _dependency_order(rules: list[Rule], origin: str) -> list[Rule]:
    """The rules with each anchored rule after every rule it anchors on."""
    by_id = {r.id: r for r in rules}
    ordered: list[Rule] = []
    state: dict[str, str] = {}

    def visit(rule: Rule) -> None:
        if state.get(rule.id) == "done":
            return
        if state.get(rule.id) == "visiting":
            raise InvalidRules(f"{origin}: rule {rule.id} anchors on itself through other rules")
        state[rule.id] = "visiting"
        for targets in rule.anchor.values():
            for target in targets:
                visit(by_id[target])
        state[rule.id] = "done"
        ordered.append(rule)

    for rule in rules:
        visit(rule)
    return ordered


def packaged_rules() -> Rules:
    """The rules shipped with atmpvault."""
    raw = resources.files("atmpvault").joinpath("rules", RULES_FILE).read_bytes()
    return parse_rules(raw, f"the packaged {RULES_FILE}")


def load_rules(vault: Vault) -> Rules:
    """The vault's own rules file if it has committed one, else the packaged rules."""
    own = vault.read_file(VAULT_RULES_PATH)
    if own is not None:
        return parse_rules(own, f"the vault's {VAULT_RULES_PATH}")
    return packaged_rules()


# -- derivation (pure) --------------------------------------------------------------------------


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
    ordered = sorted(events, key=lambda e: (e.on, e.id))
    dues: dict[tuple[str, str], date] = {}  # (event, rule) -> due, for anchored rules
    found: list[Milestone] = []

    def made(rule: Rule, event: EventFacts, due: date, cycle: int = 0) -> Milestone:
        return Milestone(
            app=app.id,
            program=app.program,
            rule=rule.id,
            kind=rule.kind,
            due=due,
            days_left=(due - today).days,
            source=rule.source,
            trigger=event.trigger,
            trigger_date=event.on,
            event=event.id,
            produces=rule.produces,
            cycle=cycle,
        )

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
                if app.active:
                    for cycle, yearly_due in _yearly(rule, event, base, today, start, end):
                        found.append(made(rule, event, yearly_due, cycle))
                continue
            due = rule.offset.apply(base, event)
            if due is not None:
                dues[(event.id, rule.id)] = due
                found.append(made(rule, event, due))
    found.sort(key=lambda m: (m.due, m.app, m.rule, m.event))
    return found


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
