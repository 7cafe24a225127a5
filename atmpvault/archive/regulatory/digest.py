"""The weekly digest: one notice a week to each routed list, with the week's milestones.

Each distribution list that milestone alerts are routed to (`Alerts.routes`) gets one
notice covering the rules routed to it, in three sections, each grouped by program and
then application:

- overdue: open obligations past their date (`Milestone.overdue`; a status or gate
  passes with its date and is never overdue);
- due: open milestones due from today through today + 7 ("the next 7 days");
- completed: obligations closed (done or waived) from today - 7 through today.

The windows count from the day the digest runs and both include that day, so a weekly
run on the same weekday never misses a day: a milestone closed on the day of one run
(before or after it) is in that run's digest or the next one's, at worst in both. Closure
dates are days, not moments, so no narrower window can promise that.

A digest is a notice like any other (rendered from regulatory/weekly-digest.*, sent by
SMTP or to the outbox, recorded under notices/), keyed `digest/<list>/<ISO week>`, so it
reaches each list once per ISO week however often it runs; a list with nothing to say
is sent nothing. As with the alerts, one list that cannot be reached holds back no
other: what was not delivered is recorded in an alert-run record and the next run that
week sends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core.notices import AlreadySent, DistributionLists, Notice, Notices
from atmpvault.archive.regulatory.alerts import ALL_RULES, Alerts, overdue_word
from atmpvault.errors import DeliveryFailed, InvalidInput, NotFound, TemplateProblem

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.derivation import Milestone

TEMPLATE = "regulatory/weekly-digest"
WINDOW_DAYS = 7
SECTIONS = ("overdue", "due", "completed")
STATUSES = ("new", "nothing", "already-sent", "sent", "undelivered")
MAX_SHOWN = 3  # undelivered digests named in the one-line error; the rest are counted


# -- the rules of the digest, pure ----------------------------------------------------------


def iso_week(today: date) -> str:
    """The ISO week `today` falls in, e.g. 2026-W49 for 2026-11-30."""
    year, week, _ = today.isocalendar()
    return f"{year}-W{week:02d}"


def week_of(today: date) -> date:
    """The Monday that begins `today`'s ISO week."""
    return today - timedelta(days=today.isoweekday() - 1)


def digest_key(name: str, today: date) -> str:
    """The notice key: one digest per list per ISO week, e.g. digest/qa/2026-W49."""
    return f"digest/{name}/{iso_week(today)}"


@dataclass(frozen=True)
class Sections:
    """The milestones of one digest, each section in the order it is read."""

    overdue: tuple[Milestone, ...] = ()
    due: tuple[Milestone, ...] = ()
    completed: tuple[Milestone, ...] = ()

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in SECTIONS}

    def __bool__(self) -> bool:
        return any(self.counts().values())


def sections(milestones: Iterable[Milestone], today: date) -> Sections:
    """Sort milestones into overdue, due in the next 7 days and completed in the last 7.

    `milestones` must include the closed ones; anything outside the three is left out.
    """
    overdue, due, completed = [], [], []
    last = today + timedelta(days=WINDOW_DAYS)
    since = today - timedelta(days=WINDOW_DAYS)
    for m in milestones:
        if m.closure is not None:
            if since <= m.closure.on <= today:
                completed.append(m)
        elif m.overdue:
            overdue.append(m)
        elif today <= m.due <= last:
            due.append(m)
    return Sections(
        tuple(sorted(overdue, key=_by_due)),
        tuple(sorted(due, key=_by_due)),
        tuple(sorted(completed, key=lambda m: (m.closure.on if m.closure else m.due, _by_due(m)))),
    )


def _by_due(m: Milestone) -> tuple[date, str, str, str]:
    return (m.due, m.app, m.rule, m.event)


def routed(milestones: Iterable[Milestone], rules: Iterable[str]) -> list[Milestone]:
    """The milestones of the rules routed to a list ("*": all of them)."""
    wanted = set(rules)
    return [m for m in milestones if ALL_RULES in wanted or m.rule in wanted]


def subject_for(today: date, counts: Mapping[str, int]) -> str:
    """E.g. "[atmpvault] Week of 2026-11-30: 3 due, 2 overdue, 4 completed"."""
    return (
        f"[atmpvault] Week of {week_of(today).isoformat()}: {counts['due']} due, "
        f"{counts['overdue']} overdue, {counts['completed']} completed"
    )


@dataclass(frozen=True)
class Digest:
    """One list's digest for one week."""

    list: str
    rules: tuple[str, ...]
    today: date
    sections: Sections
    # "new", "nothing" (nothing to say), "already-sent"; once sent: "sent" or "undelivered"
    status: str
    notice: str | None = None
    problems: tuple[str, ...] = ()  # why the list was or would be missed, in part or whole

    @property
    def key(self) -> str:
        return digest_key(self.list, self.today)

    @property
    def subject(self) -> str:
        return subject_for(self.today, self.sections.counts())

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.list,
            "rules": list(self.rules),
            "week": iso_week(self.today),
            "key": self.key,
            "status": self.status,
            "notice": self.notice,
            "subject": self.subject,
            "problems": list(self.problems),
            "counts": self.sections.counts(),
            **{name: [_entry_json(m) for m in getattr(self.sections, name)] for name in SECTIONS},
        }


def _entry_json(m: Milestone) -> dict[str, Any]:
    data = m.to_json()
    return {k: data[k] for k in ("key", "program", "app", "rule", "kind", "due", "days_left",
                                 "state", "closed")}  # fmt: skip


def plan(
    milestones: Sequence[Milestone],
    today: date,
    routes: Mapping[str, Iterable[str]],
    reached: Mapping[str, Mapping[str, str]],
) -> list[Digest]:
    """Each routed list's digest, marked new, nothing to say, or already sent this week.

    `reached` is key -> list -> notice, as `Notices.reached_keys` gives it.
    """
    digests = []
    for name, rules in sorted(routes.items()):
        rules = tuple(rules)
        if not rules:
            continue
        found = sections(routed(milestones, rules), today)
        sent = reached.get(digest_key(name, today), {}).get(name)
        status = "already-sent" if sent else ("new" if found else "nothing")
        digests.append(Digest(name, rules, today, found, status, sent))
    return digests


def _when(m: Milestone, today: date) -> str:
    if m.closure is not None:
        c = m.closure
        return f"{c.state} on {c.on.isoformat()} by {c.by} (was due {m.due.isoformat()})"
    days = m.days_left
    if days < 0:
        return f"due {m.due.isoformat()}, {-days} day{'s' if days != -1 else ''} ago"
    when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    return f"due {m.due.isoformat()}, {when}"


def _item(m: Milestone, today: date) -> dict[str, Any]:
    c = m.closure
    return {
        "key": m.key,
        "rule": m.rule,
        "kind": m.kind,
        "produces": m.produces,
        "due": m.due.isoformat(),
        "when": _when(m, today),
        "overdue_word": overdue_word(m.kind),
        "trigger": m.trigger,
        "trigger_date": m.trigger_date.isoformat(),
        "event": m.event,
        "cycle": m.cycle,
        "evidence": c.evidence if c else None,
        "reason": c.reason if c else None,
    }


def grouped(milestones: Iterable[Milestone], today: date) -> list[dict[str, Any]]:
    """[{program, apps: [{app, milestones}]}], programs and applications in name order."""
    by_program: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for m in milestones:
        by_program.setdefault(m.program, {}).setdefault(m.app, []).append(_item(m, today))
    return [
        {"program": program, "apps": [{"app": a, "milestones": apps[a]} for a in sorted(apps)]}
        for program, apps in sorted(by_program.items())
    ]


SECTION_TITLES = {
    "overdue": "Overdue",
    "due": "Due in the next 7 days",
    "completed": "Completed or waived in the last 7 days",
}


def context_for(digest: Digest) -> dict[str, Any]:
    """What the weekly-digest templates are given."""
    today = digest.today
    spans = {
        "overdue": f"open and past their date on {today.isoformat()}",
        "due": f"{today.isoformat()} to {(today + timedelta(days=WINDOW_DAYS)).isoformat()}",
        "completed": f"{(today - timedelta(days=WINDOW_DAYS)).isoformat()} to {today.isoformat()}",
    }
    return {
        "list": digest.list,
        "rules": "every rule" if ALL_RULES in digest.rules else ", ".join(digest.rules),
        "week": iso_week(today),
        "week_of": week_of(today).isoformat(),
        "today": today.isoformat(),
        "counts": digest.sections.counts(),
        "sections": [
            {
                "name": name,
                "title": SECTION_TITLES[name],
                "span": spans[name],
                "count": len(getattr(digest.sections, name)),
                "programs": grouped(getattr(digest.sections, name), today),
            }
            for name in SECTIONS
        ],
    }


# -- the vault side -------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestRun:
    """What one `alerts digest --week` run found and, with --send, sent."""

    today: date
    digests: list[Digest]
    sent: list[Notice]
    record: str | None = None  # the alert-run record of what was not delivered
    send: bool = False

    def troubled(self) -> list[Digest]:
        return [d for d in self.digests if d.problems]

    def failure(self) -> str | None:
        """The one line that makes a --send run exit 1, if anything was not delivered."""
        missed = self.troubled()
        if not self.send or not missed:
            return None
        named = "; ".join("; ".join(d.problems) for d in missed[:MAX_SHOWN])
        more = f"; and {len(missed) - MAX_SHOWN} more" if len(missed) > MAX_SHOWN else ""
        return (
            f"{len(missed)} weekly digest(s) not delivered in full, recorded as {self.record}: "
            f"{named}{more}; {len(self.sent)} digest(s) went out, and the next "
            "'atmpvault alerts digest --week --send' this week sends the missed ones"
        )


class WeeklyDigest:
    """The weekly digest for one vault.

    >>> run = WeeklyDigest(vault).run(date(2026, 11, 30), send=True)
    >>> [(d.list, d.status) for d in run.digests]
    [('manufacturing-leadership', 'nothing'), ('regulatory-leadership', 'sent')]
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.notices = Notices(vault)

    def milestones(self, today: date) -> list[Milestone]:
        """Open milestones overdue or due within 7 days, and every closed one."""
        from atmpvault.archive.regulatory.calendar import milestones

        soon = milestones(self.vault, today, end=today + timedelta(days=WINDOW_DAYS))
        # Unbounded: an obligation closed this week may have been due long before or after.
        closed = [m for m in milestones(self.vault, today, closed=True) if m.closure is not None]
        return [*soon, *closed]

    def pending(self, today: date) -> list[Digest]:
        """Each routed list's digest for the week of `today`."""
        routes = Alerts(self.vault).routes()
        reached = {key: self.notices.reached(key) for key in (digest_key(n, today) for n in routes)}
        return plan(self.milestones(today), today, routes, reached)

    def run(self, today: date, send: bool = False) -> DigestRun:
        """Find each list's digest; with `send`, deliver the new ones (dry run otherwise)."""
        lists = DistributionLists(self.vault)
        result: list[Digest] = []
        sent: list[Notice] = []
        for digest in self.pending(today):
            if digest.status != "new":
                result.append(digest)
                continue
            reach = lists.reach([digest.list])
            problems = [f"{n}: {why}" for n, why in reach.problems]
            if not send:
                result.append(replace(digest, problems=tuple(problems)))
                continue
            status, notice = "undelivered", None
            if reach.lists:
                try:
                    found = self.notices.send(
                        digest.key, reach.lists, TEMPLATE, digest.subject, context_for(digest)
                    )
                except AlreadySent:  # another run sent it a moment ago
                    status = "already-sent"
                    notice = self.notices.reached(digest.key).get(digest.list)
                except (DeliveryFailed, TemplateProblem, NotFound, InvalidInput) as exc:
                    problems.append(f"{digest.list}: {exc}")
                else:
                    sent.append(found)
                    status, notice = "sent", found.id
                    if found.refused:
                        problems.append(
                            f"{digest.list}: the SMTP server refused {', '.join(found.refused)} "
                            f"(notice {found.id}; not retried)"
                        )
            result.append(replace(digest, status=status, notice=notice, problems=tuple(problems)))
        record = self._record(today, result, sent) if send else None
        return DigestRun(today, result, sent, record, send)

    def _record(self, today: date, digests: list[Digest], sent: list[Notice]) -> str | None:
        """Record what a run could not deliver (with what it sent) in one commit, if anything."""
        from atmpvault.archive.regulatory.alerts import record_run

        missed = [
            {
                "key": d.key,
                "week": iso_week(today),
                "status": d.status,
                "lists": [d.list],
                "problems": list(d.problems),
            }
            for d in digests
            if d.problems
        ]
        return record_run(self.vault, "Weekly digest run", today, WINDOW_DAYS, sent, missed)
