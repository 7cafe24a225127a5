"""Marking milestones done, waived, or open again (`atmpvault milestone ...`).

Each is one commit writing the obligation's record under its key (see obligations.py):
`done` with the date and the evidence (a document version, or a submitted sequence),
`waive` with the reason, `reopen` to undo a wrong completion. Every version stays in
history; the newest holds. Without --cycle or --event, `done` and `waive` take the
oldest open obligation of the rule, `reopen` the one closed obligation of the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.regulatory.kinds import OBLIGATION_KIND, OBLIGATIONS_ROOT
from atmpvault.archive.regulatory.obligations import DONE, OPEN, WAIVED
from atmpvault.errors import InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.derivation import Milestone

ACTIONS = {DONE: "milestone-done", WAIVED: "milestone-waive", OPEN: "milestone-reopen"}


@dataclass(frozen=True)
class Which:
    """The obligation a command names: APP RULE [--cycle N | --event EV]."""

    app: str
    rule: str
    cycle: int | None = None
    event: str | None = None


def record_state(
    vault: Vault,
    which: Which,
    state: str,
    today: date,
    reason: str,
    on: date | None = None,
    evidence: str | None = None,
    sequence: str | None = None,
) -> Milestone:
    """Write the obligation's new state; the milestone as it now stands is returned."""
    from dataclasses import replace

    from atmpvault.archive.regulatory.obligations import Closure

    reason = values.reason(reason)
    if which.cycle is not None and which.event is not None:
        raise InvalidInput("use --cycle or --event, not both")
    if which.cycle is not None and which.cycle < 1:
        raise InvalidInput("--cycle counts from 1")
    if state == DONE and on is None:
        raise InvalidInput("milestone done needs --on, the date it was done")
    if evidence is not None and sequence is not None:
        raise InvalidInput("use --evidence or --sequence, not both")
    with vault.unit(ACTIONS[state], "", reason=reason) as unit:
        milestone = _find(vault, which, state, today)
        if on is not None:
            vault.config.dates.check(on, "--on")
            if on > today + values.GRACE:
                raise InvalidInput(f"--on {on.isoformat()} is in the future")
        shown = _evidence(vault, milestone.app, evidence, sequence)
        current = vault.catalog.record(OBLIGATION_KIND.name, milestone.key)
        version = 1 if current is None else int(current.body["version"]) + 1
        body: dict[str, Any] = {
            "id": milestone.key,
            "app": milestone.app,
            "program": milestone.program,
            "rule": milestone.rule,
            "cycle": milestone.cycle,
            "event": milestone.event,
            "state": state,
            "on": (on or today).isoformat(),
            "evidence": shown,
            "reason": reason,
            "version": version,
            "recorded_at": values.iso(unit.when),
            "user": unit.actor,
        }
        unit.put(OBLIGATION_KIND, milestone.key, body, f"{OBLIGATIONS_ROOT}/{milestone.key}.json")
        verb = {DONE: "Done", WAIVED: "Waive", OPEN: "Reopen"}[state]
        unit.subject = f"{verb} {milestone.key} ({milestone.produces}, due {milestone.due})"
        unit.trailers.update(
            {"Application": milestone.app, "Obligation": milestone.key, "State": state}
        )
    closure = None
    if state != OPEN:
        closure = Closure(milestone.key, state, on or today, unit.actor, "recorded", shown, reason)
    return replace(milestone, closure=closure)


def _find(vault: Vault, which: Which, state: str, today: date) -> Milestone:
    """The obligation named, as the calendar derives it; refused if it cannot change so."""
    from atmpvault.archive.regulatory.applications import Regulatory, event_id
    from atmpvault.archive.regulatory.calendar import milestone_calendar
    from atmpvault.archive.regulatory.rules import load_rules

    app = Regulatory(vault).app(which.app).id
    rules = load_rules(vault)
    if which.rule not in rules.ids():
        raise NotFound(f"unknown rule {which.rule!r}; rules: {', '.join(rules.ids())}")
    rule = rules.get(which.rule)
    if which.cycle is not None and rule.repeat is None:
        raise InvalidInput(f"{rule.id} does not recur: name its event with --event, not --cycle")
    if which.event is not None and rule.repeat is not None:
        raise InvalidInput(f"{rule.id} recurs: name the cycle with --cycle, not --event")
    wanted = event_id(which.event) if which.event is not None else None
    found = milestone_calendar(
        vault, today, app=app, start=vault.config.dates.earliest, closed=True
    ).milestones
    mine = [m for m in found if m.rule == rule.id]
    if which.cycle is not None or wanted is not None:
        chosen = [m for m in mine if m.cycle == which.cycle or m.event == wanted]
        if not chosen:
            known = ", ".join(m.key for m in mine) or "none"
            raise NotFound(
                f"{app} has no obligation {rule.id} {which.cycle or wanted}; it has: {known}"
            )
        milestone = chosen[0]
    else:
        candidates = [m for m in mine if (m.closure is None) == (state != OPEN)]
        if not candidates or (state == OPEN and len(candidates) > 1):
            what = "closed" if state == OPEN else "open"
            listed = ", ".join(m.key for m in candidates) or "none"
            raise VaultError(
                f"{app} has {len(candidates)} {what} {rule.id} obligations ({listed}); "
                "name one with --cycle or --event"
            )
        milestone = candidates[0]
    if state == OPEN and milestone.closure is None:
        raise VaultError(f"{milestone.key} is open; nothing to reopen")
    if state != OPEN and milestone.closure is not None:
        c = milestone.closure
        raise VaultError(
            f"{milestone.key} is already {c.state} on {c.on.isoformat()} by {c.by}"
            f"{f' ({c.evidence})' if c.evidence else ''}; reopen it first to change that"
        )
    return milestone


def _evidence(vault: Vault, app: str, evidence: str | None, sequence: str | None) -> str | None:
    """The evidence as it is recorded: DOC-000007@2, or the submitted sequence's name."""
    if evidence is not None:
        from atmpvault.archive.documents.records import parse_doc_ref
        from atmpvault.archive.documents.versions import Documents

        doc, number = parse_doc_ref(evidence)
        found = Documents(vault).show(doc, number)
        return f"{found.id}@{found.version}"
    if sequence is not None:
        from atmpvault.archive.regulatory.submissions.service import Packages

        package = Packages(vault).get(app, sequence)
        if not package.finalised:
            raise VaultError(
                f"{package.name} is {package.status}: only a submitted sequence is evidence"
            )
        return package.name
    return None
