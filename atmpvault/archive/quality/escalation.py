"""Escalation: overdue investigations and CAPAs (and those nearly due) told to their owners
and to the distribution lists of their escalation level, once per level per day.

An item overdue by d days (d >= 1) is at the highest level of the vault's quality
settings whose `after_days` is at most d; an item not yet overdue but due within
`warning_days` is at the level "warning", which goes to the first level's lists. Each
escalation goes to the item's owner (a person of the directory; a deviation not yet
assigned has none: lists only) and the level's lists as one notice, and is recorded as
an escalation record, quality/escalations/ITEM/LEVEL/DATE.json, in the same commit as
its notice. The record is looked for under the writer lock, so two runs on one day never
escalate an item twice at one level; an item still overdue the next day is escalated
again, and once it crosses the next level's `after_days`, to that level.

A list that is not defined, has no valid address, or an owner missing from the directory
holds back nobody else: the notice goes to whoever can be reached, and the record lists
the lists it reached. A later run that day sends the escalation to the lists it missed
(the owner is not told twice), as the record's next version. A notice that cannot be
delivered at all (the SMTP server down) records nothing, and the next run tries again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.quality.aging import CAPA, OpenItem, open_items
from atmpvault.archive.quality.records import ESCALATION_KIND
from atmpvault.archive.quality.settings import WARNING, QualitySettings, quality_settings
from atmpvault.errors import (
    AlreadySent,
    DeliveryFailed,
    InvalidInput,
    NotFound,
    TemplateProblem,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.notices import Notice
    from atmpvault.archive.core.vault import Vault

TEMPLATE = "quality/escalation"
MAX_SHOWN = 3  # undelivered escalations named in the one-line error; the rest are counted
# What may go wrong with one notice, to be named while the others go out.
NOTICE_ERRORS = (DeliveryFailed, TemplateProblem, NotFound, InvalidInput, AlreadySent)


@dataclass(frozen=True)
class Escalation:
    """One open item at one level on one day, for its owner and the level's lists."""

    item: OpenItem
    level: str  # a level's name, or "warning"
    on: date
    lists: tuple[str, ...]  # the level's lists
    subject: str
    # "new", "already-sent"; once sent: "sent", "partly-sent" or "undelivered"
    status: str
    reached: tuple[str, ...] = ()  # the lists a notice of this escalation reached
    notice: str | None = None  # the notice that carried it (this run's, else the recorded)
    problems: tuple[str, ...] = ()  # why a list or the owner was (or would be) missed
    owner_told: bool = False  # whether a recorded notice already went to the owner

    @property
    def id(self) -> str:
        return escalation_id(self.item.id, self.level, self.on)

    @property
    def days_overdue(self) -> int:
        """Days past due; 0 or less for a warning (minus the days still left)."""
        return -self.item.days_to_due

    @property
    def pending(self) -> tuple[str, ...]:
        """The level's lists this escalation has not reached yet."""
        return tuple(n for n in self.lists if n not in self.reached)

    def to_json(self) -> dict[str, Any]:
        i = self.item
        return {
            "id": self.id,
            "item": i.id,
            "kind": i.kind,
            "deviation": i.deviation,
            "class": i.deviation_class,
            "title": i.title,
            "lots": list(i.lots),
            "level": self.level,
            "days_overdue": self.days_overdue,
            "due": i.due.isoformat(),
            "owner": i.owner,
            "lists": list(self.lists),
            "reached": list(self.reached),
            "pending": list(self.pending),
            "status": self.status,
            "notice": self.notice,
            "subject": self.subject,
            "problems": list(self.problems),
        }


# -- the rules of escalation, pure ------------------------------------------------------------


def escalation_id(item: str, level: str, on: date) -> str:
    """DEV-2026-0001/qa-management/2026-04-02: one item, one level, one day."""
    return f"{item}/{level}/{on.isoformat()}"


def escalation_path(escalation: str) -> str:
    return f"{ESCALATION_KIND.root}/{escalation}.json"


def level_for(days_to_due: int, settings: QualitySettings) -> tuple[str, tuple[str, ...]] | None:
    """The level (and its lists) of an item `days_to_due` from due, or None if none applies.

    >>> s = parse(DEFAULTS)  # qa-management from 0 days overdue, head-of-quality from 14
    >>> level_for(-1, s)[0], level_for(-14, s)[0], level_for(0, s)[0], level_for(6, s)
    ('qa-management', 'head-of-quality', 'warning', None)
    """
    overdue = -days_to_due
    if overdue >= 1:
        reached = [lv for lv in settings.levels if lv.after_days <= overdue]
        return (reached[-1].name, reached[-1].lists) if reached else None
    if days_to_due <= settings.warning_days and settings.levels:
        return WARNING, settings.levels[0].lists
    return None


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


def what_is_due(item: OpenItem) -> str:
    """What is due, e.g. "DEV-2026-0001 investigation", "CAPA-2026-0003 action for DEV-2026-0001"."""
    if item.kind == CAPA:
        return f"{item.id} action for {item.deviation}"
    return f"{item.id} investigation"


def subject_for(item: OpenItem, level: str) -> str:
    """E.g. "OVERDUE 12 days: DEV-2026-0001 investigation (major) — escalated to
    qa-management"; a warning: "Due in 3 days: ... — due 2026-03-31"."""
    what = f"{what_is_due(item)} ({item.deviation_class})"
    if level == WARNING:
        when = "Due today" if item.days_to_due == 0 else f"Due in {_days(item.days_to_due)}"
        return f"{when}: {what} \u2014 due {item.due.isoformat()}"
    return f"OVERDUE {_days(-item.days_to_due)}: {what} \u2014 escalated to {level}"


def plan(
    items: list[OpenItem],
    today: date,
    settings: QualitySettings,
    recorded: Mapping[str, Mapping[str, Any]],
) -> list[Escalation]:
    """The escalations owed today, each new or already sent (`recorded`: id -> record body)."""
    found = []
    for item in items:
        level = level_for(item.days_to_due, settings)
        if level is None:
            continue
        name, lists = level
        escalation = Escalation(item, name, today, lists, subject_for(item, name), "new")
        body = recorded.get(escalation.id)
        if body is not None:
            reached = tuple(str(n) for n in body.get("lists") or ())
            escalation = replace(
                escalation, reached=reached, notice=body.get("notice"), owner_told=True
            )
            if not escalation.pending:
                escalation = replace(escalation, status="already-sent")
        found.append(escalation)
    return found


def context_for(e: Escalation, recipients_lists: tuple[str, ...]) -> dict[str, Any]:
    """What the escalation templates are given."""
    i = e.item
    return {
        "item": i.to_json(),
        "what": what_is_due(i),
        "level": e.level,
        "warning": e.level == WARNING,
        "days_overdue": e.days_overdue,
        "days_left": i.days_to_due,
        "today": e.on.isoformat(),
        "level_lists": list(recipients_lists),
    }


# -- the vault side -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationRun:
    """What one run found and, with --send, sent."""

    today: date
    escalations: list[Escalation]
    sent: list[Notice]
    send: bool = False

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.escalations:
            counts[e.status] = counts.get(e.status, 0) + 1
        return counts

    def troubled(self) -> list[Escalation]:
        """The escalations that miss (or, in a dry run, would miss) a list or the owner."""
        return [e for e in self.escalations if e.problems]

    def failure(self) -> str | None:
        """The one line that makes a --send run exit 1, if anything was not delivered."""
        missed = self.troubled()
        if not self.send or not missed:
            return None
        named = "; ".join(f"{e.item.id} at {e.level}: {'; '.join(e.problems)}" for e in missed[:MAX_SHOWN])  # fmt: skip
        more = f"; and {len(missed) - MAX_SHOWN} more" if len(missed) > MAX_SHOWN else ""
        return (
            f"{len(missed)} escalation(s) not delivered in full: {named}{more}; "
            f"{len(self.sent)} notice(s) went out, and the next 'atmpvault deviation "
            "escalate --send' today sends the missed ones to the lists they missed"
        )


class Escalations:
    """Escalation of overdue deviations and CAPAs for one vault.

    >>> run = Escalations(vault).run(date(2026, 4, 12), send=True)
    >>> [(e.item.id, e.level, e.status) for e in run.escalations]
    [('DEV-2026-0001', 'qa-management', 'sent')]
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def settings(self) -> QualitySettings:
        return quality_settings(self.vault)

    def pending(self, today: date) -> list[Escalation]:
        """Every escalation owed today: overdue items, and those inside the warning window."""
        from atmpvault.archive.core.record_tables import records

        settings = self.settings()
        due_by = today + timedelta(days=settings.warning_days)
        items = open_items(self.vault, today, due_by=due_by, settings=settings)
        suffix = f"/{today.isoformat()}"
        recorded = {
            r.id: r.body
            for r in self.vault.catalog.records(
                ESCALATION_KIND.name, where=[records.c.due == today.isoformat()]
            )
            if r.id.endswith(suffix)
        }
        return plan(items, today, settings, recorded)

    def run(self, today: date, send: bool = False) -> EscalationRun:
        """Find the escalations owed today; with `send`, deliver the new ones.

        One list that is missing or one notice that cannot be delivered holds back no
        other escalation; what was missed is in each escalation's problems, for
        `failure()` to report.
        """
        from atmpvault.archive.core.notices import DistributionLists
        from atmpvault.archive.core.people import People

        lists = DistributionLists(self.vault)
        people = People(self.vault).all()
        result: list[Escalation] = []
        sent: list[Notice] = []
        for e in self.pending(today):
            if e.status != "new":
                result.append(e)
                continue
            reach = lists.reach(e.pending)
            problems = [f"{n}: {why}" for n, why in reach.problems]
            owner = e.item.owner if not e.owner_told else None
            if owner is not None and owner not in people:
                problems.append(
                    f"owner {owner!r} is not in the directory of people; add them with "
                    f"'atmpvault people set \"{owner}\" ADDRESS --reason R'"
                )
                owner = None
            if not reach.lists and owner is None and not problems:
                problems.append(f"{e.item.id} has no owner and level {e.level} has no list")
            if not send:
                result.append(replace(e, problems=tuple(problems)))
                continue
            if not reach.lists and owner is None:
                result.append(_settled(e, e.reached, None, tuple(problems)))
                continue
            try:
                notice = self._send(e, reach.lists, owner)
            except NOTICE_ERRORS as exc:
                problems.append(f"{', '.join((*reach.lists, *([owner] if owner else [])))}: {exc}")
                result.append(_settled(e, e.reached, None, tuple(problems)))
                continue
            if notice is None:  # another run escalated it a moment ago
                result.append(replace(e, status="already-sent"))
                continue
            sent.append(notice)
            if notice.refused:
                problems.append(
                    f"the SMTP server refused {', '.join(notice.refused)} "
                    f"(notice {notice.id}; not retried)"
                )
            reached = (*e.reached, *notice.lists)
            result.append(_settled(e, reached, notice.id, tuple(problems)))
        return EscalationRun(today, result, sent, send)

    def _send(self, e: Escalation, to_lists: tuple[str, ...], owner: str | None) -> Notice | None:
        """Deliver one escalation and record it with its notice in one commit; None if the
        record shows (under the lock) that it already reached these lists."""
        from atmpvault.archive.core.notices import Notices

        item = e.item
        trailers = {"Escalation": e.id, "Deviation": item.deviation, "Level": e.level}
        if item.kind == CAPA:
            trailers["CAPA"] = item.id
        with self.vault.unit("deviation-escalate", e.subject, trailers=trailers) as unit:
            current = self.vault.catalog.record(ESCALATION_KIND.name, e.id)
            before = [str(n) for n in (current.body.get("lists") or ())] if current else []
            if current is not None and set(to_lists) <= set(before):
                return None
            if current is not None:
                owner = None  # the owner had the first notice of this escalation
                to_lists = tuple(n for n in to_lists if n not in before)
                if not to_lists:
                    return None
            notice = Notices(self.vault).send(
                f"quality/escalation/{e.id}",
                to_lists,
                TEMPLATE,
                e.subject,
                context_for(e, e.lists),
                people=[owner] if owner else [],
                unit=unit,
            )
            body = {
                "id": e.id,
                "item": item.id,
                "kind": item.kind,
                "level": e.level,
                "on": e.on.isoformat(),
                "due": item.due.isoformat(),
                "days_overdue": e.days_overdue,
                "owner": item.owner,
                "lists": [*before, *notice.lists],
                "notice": notice.id,
                "recorded_at": values.iso(unit.when),
                "user": unit.actor,
            }
            unit.put(ESCALATION_KIND, e.id, body, escalation_path(e.id))
            unit.trailers["Notice"] = notice.id
        return notice


def _settled(
    e: Escalation, reached: tuple[str, ...], notice: str | None, problems: tuple[str, ...]
) -> Escalation:
    """The escalation after a send: to every list of its level, to some, or to none."""
    done = replace(e, reached=reached, problems=problems, notice=notice or e.notice)
    if notice is None and not e.reached:
        status = "undelivered"
    elif done.pending:
        status = "partly-sent"
    else:
        status = "sent"
    return replace(done, status=status)
