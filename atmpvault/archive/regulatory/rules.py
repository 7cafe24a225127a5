"""The milestone rules: FDA timelines as data, parsed and checked before anything is derived.

The rules are data (atmpvault/rules/fda_milestones.json, or the vault's own copy at
config/rules/fda_milestones.json): rule id, trigger, offset in days or months, kind,
what it produces and its source. Month offsets use calendar-month arithmetic:

    >>> add_months(date(2027, 1, 31), 1)
    datetime.date(2027, 2, 28)
"""

from __future__ import annotations

import calendar as _gregorian
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from typing import TYPE_CHECKING, Protocol

from atmpvault.errors import InvalidRules

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

RULES_FILE = "fda_milestones.json"
VAULT_RULES_PATH = f"config/rules/{RULES_FILE}"
RULES_FORMAT = 1

KINDS = ("sponsor-due", "fda-due", "fda-goal", "gate", "status")
CONDITION_FIELDS = ("review", "meeting_type", "letter_kind", "resubmission_class")
OFFSET_FIELDS = ("response_days",)
DATE_FIELDS = ("meeting_date",)  # event fields that hold a date a rule can take
REPEATS = {"yearly": 12, "quarterly": 3}  # months between cycles
_RULE_ID_RE = re.compile(r"[A-Z][A-Z0-9_]*")


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
    def paused(self) -> list[tuple[date, date | None]]: ...  # inactive: [from, until)


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
    completed_by: Completion = field(default_factory=lambda: Completion((), ()))
    suspended: Suspension | None = None
    # Cycles of a repeating rule that exist (first, last; last None: while active), and
    # whether a cycle's period ends the day before its anniversary (a periodic report).
    cycles: tuple[int, int | None] = (1, None)
    period_end: bool = False
    # A later event answering this one (of = this event) whose date field replaces the
    # due date (FDA grants the meeting date); until then the date is provisional.
    replaced_by: tuple[str, str] | None = None
    cancelled_by: tuple[str, ...] = ()  # events (of = this event) that cancel it
    supersedes: bool = False  # it replaces the milestone it is anchored on

    @property
    def months(self) -> int:
        """Months between the cycles of a repeating rule."""
        return REPEATS[self.repeat] if self.repeat else 0

    def applies(self, event: EventFacts) -> bool:
        return event.trigger in self.triggers and all(
            getattr(event, key, None) == value for key, value in self.when.items()
        )


@dataclass(frozen=True)
class Completion:
    """What completes a rule's obligation without anyone marking it done: a finalised
    sequence of one of `sequences` (submission types), or an event matching `events`
    ((trigger, letter kind or None))."""

    sequences: tuple[str, ...]
    events: tuple[tuple[str, str | None], ...]

    def answered_by(self, event: EventFacts) -> bool:
        kind = getattr(event, "letter_kind", None)
        return any(
            event.trigger == trigger and (letter is None or kind == letter)
            for trigger, letter in self.events
        )


@dataclass(frozen=True)
class Suspension:
    """An event of `by` on or before the due date holds the milestone until the first
    later event of `until` (an IND on clinical hold goes into effect when it is lifted)."""

    by: str
    until: str


@dataclass(frozen=True)
class LetterKind:
    """A kind of FDA letter: whether it asks for a response, and in how many days."""

    expects_response: bool
    response_days: int | None = None


@dataclass(frozen=True)
class Rules:
    """A validated rules table, anchored rules after the rules they anchor on."""

    rules: tuple[Rule, ...]
    origin: str
    once: tuple[str, ...] = ()  # triggers that happen once in an application's life
    letter_kinds: Mapping[str, LetterKind] = field(default_factory=dict)

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
    return Rules(
        tuple(_dependency_order(rules, origin)),
        origin,
        _parse_once(data.get("once_per_application", []), origin, TRIGGERS),
        _parse_letter_kinds(data.get("letter_kinds", {}), origin),
    )


def _parse_once(raw: object, origin: str, triggers: Mapping[str, object]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise InvalidRules(f"{origin}: 'once_per_application' must list triggers")
    for trigger in raw:
        if trigger not in triggers:
            raise InvalidRules(
                f"{origin}: 'once_per_application' names unknown trigger {trigger!r}"
            )
    return tuple(raw)


def _parse_letter_kinds(raw: object, origin: str) -> dict[str, LetterKind]:
    from atmpvault.archive.regulatory.applications import LETTER_KINDS

    if not isinstance(raw, dict):
        raise InvalidRules(f"{origin}: 'letter_kinds' must map letter kinds to settings")
    kinds: dict[str, LetterKind] = {}
    for name, item in raw.items():
        where = f"{origin}: letter kind {name!r}"
        if name not in LETTER_KINDS:
            raise InvalidRules(f"{where} is unknown; letter kinds: {', '.join(LETTER_KINDS)}")
        if not isinstance(item, dict) or not isinstance(item.get("expects_response"), bool):
            raise InvalidRules(f"{where}: 'expects_response' must be true or false")
        days = item.get("response_days")
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
            raise InvalidRules(f"{where}: 'response_days' must be a positive number of days")
        kinds[name] = LetterKind(item["expects_response"], days)
    return kinds


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
    if repeat is None and item.get("cycles") is not None:
        raise InvalidRules(f"{name}: 'cycles' applies only to a rule that repeats")
    for flag in ("unverified", "once_per_app"):
        if not isinstance(item.get(flag, False), bool):
            raise InvalidRules(f"{name}: '{flag}' must be true or false")
    return Rule(
        completed_by=_parse_completion(item.get("completed_by", {}), name, triggers),
        suspended=_parse_suspension(item.get("suspended"), name, triggers),
        cycles=_parse_cycles(item.get("cycles"), name),
        period_end=_flag(item, "period_end", name),
        replaced_by=_parse_replaced_by(item.get("replaced_by"), name, triggers),
        cancelled_by=_parse_triggers(item.get("cancelled_by", []), "cancelled_by", name, triggers),
        supersedes=_flag(item, "supersedes", name),
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


def _parse_completion(raw: object, name: str, triggers: Mapping[str, object]) -> Completion:
    from atmpvault.archive.regulatory.applications import LETTER_KINDS
    from atmpvault.archive.regulatory.submissions.model import SUBMISSION_TYPES

    problem = f'{name}: \'completed_by\' must be {{"sequences": [TYPE...], "events": [TRIGGER...]}}'
    if not isinstance(raw, dict) or set(raw) - {"sequences", "events"}:
        raise InvalidRules(problem)
    sequences, events = raw.get("sequences", []), raw.get("events", [])
    for listed in (sequences, events):
        if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
            raise InvalidRules(problem)
    for kind in sequences:
        if kind not in SUBMISSION_TYPES:
            raise InvalidRules(f"{name}: completed by unknown submission type {kind!r}")
    answers: list[tuple[str, str | None]] = []
    for spec in events:
        trigger, _, letter = spec.partition(":")
        if trigger not in triggers or (letter and letter not in LETTER_KINDS):
            raise InvalidRules(f"{name}: completed by unknown event {spec!r}")
        answers.append((trigger, letter or None))
    return Completion(tuple(sequences), tuple(answers))


def _parse_suspension(raw: object, name: str, triggers: Mapping[str, object]) -> Suspension | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or set(raw) != {"by", "until"}
        or not all(isinstance(v, str) and v in triggers for v in raw.values())
    ):
        raise InvalidRules(f'{name}: \'suspended\' must be {{"by": TRIGGER, "until": TRIGGER}}')
    return Suspension(raw["by"], raw["until"])


def _flag(item: Mapping[str, object], key: str, name: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise InvalidRules(f"{name}: '{key}' must be true or false")
    return value


def _parse_cycles(raw: object, name: str) -> tuple[int, int | None]:
    if raw is None:
        return (1, None)
    first = raw.get("first", 1) if isinstance(raw, dict) else None
    last = raw.get("last") if isinstance(raw, dict) else None
    if (
        not isinstance(first, int)
        or isinstance(first, bool)
        or first < 1
        or (last is not None and (not isinstance(last, int) or isinstance(last, bool)))
        or (last is not None and last < first)
    ):
        raise InvalidRules(f'{name}: \'cycles\' must be {{"first": N, "last": M or null}}')
    return (first, last)


def _parse_replaced_by(
    raw: object, name: str, triggers: Mapping[str, object]
) -> tuple[str, str] | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or set(raw) != {"trigger", "field"}
        or raw["trigger"] not in triggers
        or raw["field"] not in DATE_FIELDS
    ):
        raise InvalidRules(
            f'{name}: \'replaced_by\' must be {{"trigger": TRIGGER, "field": '
            f"{' or '.join(DATE_FIELDS)}}}"
        )
    return (raw["trigger"], raw["field"])


def _parse_triggers(
    raw: object, key: str, name: str, triggers: Mapping[str, object]
) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(t, str) and t in triggers for t in raw):
        raise InvalidRules(f"{name}: '{key}' must list known triggers")
    return tuple(raw)


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
