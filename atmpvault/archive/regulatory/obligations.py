"""Obligations: the key of every milestone, and what closed it.

A milestone keeps one key while it exists, whatever happens to its date: application +
rule + cycle for a rule that recurs (`IND-012345/IND_ANNUAL/2`, the second annual
report), application + rule + the event that created it for the rest
(`IND-012345/SAFETY_15D/EV-000031`). Correcting an event's date, or recording the
IND's effective date after its receipt, moves a milestone but never renames it.

A milestone is closed in one of two ways:

- recorded: `milestone done|waive|reopen` writes an obligation record under its key;
  the newest version's state holds (a reopened obligation stays open);
- automatically, where the archive already knows: a finalised submission sequence of a
  type the rule lists (an annual report), or an event the rule lists as its answer (an
  approval answers the review goal), closes the oldest open obligation of the rule that
  had begun by its date and has no recorded state.

`resolve` does no I/O: the catalog projection and `--as-of` answers both call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from atmpvault.archive.regulatory.derivation import Milestone
    from atmpvault.archive.regulatory.rules import EventFacts, Rules

DONE, WAIVED, OPEN = "done", "waived", "open"
STATES = (DONE, WAIVED, OPEN)
CANCELLED = "cancelled"  # voided, or FDA denied the meeting: it will not happen
SUPERSEDED = "superseded"  # FDA extended the review: the extended goal replaces it


def obligation_key(app: str, rule: str, cycle: int, event: str) -> str:
    """`APP/RULE/N` for the n-th cycle of a recurring rule, else `APP/RULE/EVENT`."""
    return f"{app}/{rule}/{cycle}" if cycle else f"{app}/{rule}/{event}"


@dataclass(frozen=True)
class Closure:
    """How an obligation was closed: done or waived, when, by whom, with what evidence."""

    key: str
    state: str  # done | waived
    on: date
    by: str
    how: str  # recorded | sequence | event
    evidence: str | None = None  # DOC-000007@2, IND-012345/0007 or EV-000012
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "on": self.on.isoformat(),
            "by": self.by,
            "how": self.how,
            "evidence": self.evidence,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, key: str, body: Mapping[str, Any]) -> Closure:
        return cls(
            key,
            body["state"],
            date.fromisoformat(body["on"]),
            body["by"],
            body["how"],
            body.get("evidence"),
            body.get("reason"),
        )


@dataclass(frozen=True)
class Recorded:
    """The newest version of an obligation record: its state and what was said."""

    key: str
    state: str
    on: date
    user: str
    evidence: str | None
    reason: str | None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Recorded:
        return cls(
            body["id"],
            body["state"],
            date.fromisoformat(body["on"]),
            body["user"],
            body.get("evidence"),
            body.get("reason"),
        )


@dataclass(frozen=True)
class Submitted:
    """A finalised submission sequence, as automatic completion reads it."""

    name: str  # IND-012345/0007
    type: str
    on: date
    by: str


@dataclass(frozen=True)
class _Completion:
    on: date
    order: str
    how: str
    evidence: str
    by: str
    rules: tuple[str, ...]


def begins(m: Milestone) -> date:
    """When an obligation begins: its cycle's anniversary, else the event that made it."""
    return m.begins or m.trigger_date


def resolve(
    obligations: Iterable[Milestone],
    recorded: Iterable[Recorded],
    sequences: Iterable[Submitted],
    events: Iterable[EventFacts],
    rules: Rules,
    decided: Mapping[str, Closure] | None = None,
) -> dict[str, Closure]:
    """Key -> closure of every closed obligation among `obligations` (of one application).

    What FDA's events `decided` (superseded, cancelled) holds; then a recorded state
    wins for its key; each automatic completion, in date order, closes the oldest open
    obligation (by due date) of a rule that lists it, begun by its date, that has no
    recorded state. A sequence or event a recorded completion names as its evidence has
    closed that one and closes no other."""
    pending = sorted(obligations, key=lambda m: (m.due, m.key))
    closed: dict[str, Closure] = dict(decided or {})
    stated: set[str] = set(closed)
    used: set[str] = set()
    for r in recorded:
        if r.key in stated:
            continue
        stated.add(r.key)
        if r.state in (DONE, WAIVED):
            closed[r.key] = Closure(r.key, r.state, r.on, r.user, "recorded", r.evidence, r.reason)
            used.add(r.evidence or "")
    for done in _completions(sequences, events, rules):
        if done.evidence in used:
            continue
        for m in pending:
            if (
                m.rule in done.rules
                and m.key not in stated
                and m.key not in closed
                and begins(m) <= done.on
            ):
                closed[m.key] = Closure(m.key, DONE, done.on, done.by, done.how, done.evidence)
                break
    return closed


def _completions(
    sequences: Iterable[Submitted], events: Iterable[EventFacts], rules: Rules
) -> list[_Completion]:
    found = []
    for s in sequences:
        closes = tuple(r.id for r in rules.rules if s.type in r.completed_by.sequences)
        if closes:
            found.append(_Completion(s.on, s.name, "sequence", s.name, s.by, closes))
    for e in events:
        closes = tuple(r.id for r in rules.rules if r.completed_by.answered_by(e))
        if closes:
            by = str(getattr(e, "user", "") or "")
            found.append(_Completion(e.on, e.id, "event", e.id, by, closes))
    return sorted(found, key=lambda c: (c.on, c.order))


def latest_completion(sequences: Sequence[Submitted], events: Sequence[EventFacts]) -> date | None:
    """The date of the last thing that could complete an obligation (None: nothing)."""
    dates = [s.on for s in sequences] + [e.on for e in events]
    return max(dates) if dates else None


def submitted_from(body: Mapping[str, Any]) -> Submitted | None:
    """A package record's body as a finalised sequence (None: not finalised yet)."""
    from atmpvault.archive.regulatory.submissions.model import Package

    package = Package.from_json(dict(body))
    if not package.finalised or not package.submitted:
        return None
    on = date.fromisoformat(package.submitted)
    return Submitted(package.name, package.type, on, package.finalised_by or "")
