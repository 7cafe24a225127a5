"""Milestone alerts: notices for milestones coming due and overdue, each sent once.

A milestone crosses thresholds as its due date approaches: "due within N days" (N is
--days, 30 by default), "due within 7 days", then "overdue". It is alerted once per
threshold it is in, so a daily cron job sends at most three alerts per milestone and
never the same one twice. A milestone first seen inside the 7-day window gets the 7-day
alert only (the tightest threshold it is in). Correcting an event changes its
milestones' due dates, and so their keys: the corrected dates are alerted afresh.

Which distribution lists receive which alerts is routing, kept in the repository at
config/alerts.json (versioned, changed with a reason):

    {"format": 1, "routes": {"regulatory-leadership": ["*"],
                             "manufacturing-leadership": ["PAS", "CBE30", "CBE0", "BPDR"]}}

"*" means every rule. Without that file the default above applies: regulatory
leadership hears of every milestone, manufacturing leadership of the manufacturing
change rules (PAS, CBE-30, CBE-0 supplements and biological product deviation reports).

A route names a rule of the vault's milestone rules and a list that is defined, and a
list cannot be removed while alerts are routed to it (`list_users`). If the routing is
still broken when alerts are sent (a list missing, an address invalid, the server down
for one message), everything deliverable goes out, each milestone threshold reaches
each routed list once, and what was not delivered is recorded in an alert-run record
(one commit) and reported with exit 1; the next run sends it to the lists it missed.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.notices import (
    AlreadySent,
    DistributionLists,
    Notice,
    Notices,
    list_name,
)
from atmpvault.archive.regulatory.kinds import RUN_KIND
from atmpvault.errors import (
    DeliveryFailed,
    InvalidInput,
    NotFound,
    NothingChanged,
    TemplateProblem,
    VaultError,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.derivation import Milestone

ROUTES_PATH = "config/alerts.json"
ROUTES_FORMAT = 1
TEMPLATE = "regulatory/milestone-alert"
DEFAULT_DAYS = 30
URGENT_DAYS = 7
MAX_DAYS = 366
ALL_RULES = "*"
MANUFACTURING_RULES = ("PAS", "CBE30", "CBE0", "BPDR")
DEFAULT_ROUTES: dict[str, tuple[str, ...]] = {
    "regulatory-leadership": (ALL_RULES,),
    "manufacturing-leadership": MANUFACTURING_RULES,
}
RULE_ID_RE = re.compile(r"[A-Z][A-Z0-9_]*")
# Milestones whose date passes rather than falls due: nobody is late when an IND goes
# into effect or a CBE-30 waiting period ends, so their past-date alert is not "overdue".
PASSING_KINDS = ("status", "gate")
MAX_SHOWN = 3  # undelivered alerts named in the one-line error; the rest are counted


@dataclass(frozen=True)
class Alert:
    """One alert: a milestone at one threshold, for the lists routed its rule."""

    key: str
    threshold: str  # "overdue" or "due-<N>d"
    milestone: Milestone
    lists: tuple[str, ...]
    subject: str
    # "new", "already-sent", "unrouted"; once sent: "sent", "partly-sent" or "undelivered"
    status: str
    notice: str | None = None
    reached: Mapping[str, str] = field(default_factory=dict)  # list -> notice that reached it
    problems: tuple[str, ...] = ()  # why a list (or address) was or would be missed

    @property
    def pending(self) -> tuple[str, ...]:
        """The lists routed that this alert has not reached yet."""
        return tuple(n for n in self.lists if n not in self.reached)

    def to_json(self) -> dict[str, Any]:
        m = self.milestone
        return {
            "key": self.key,
            "threshold": self.threshold,
            "status": self.status,
            "notice": self.notice,
            "lists": list(self.lists),
            "pending": list(self.pending),
            "reached": dict(self.reached),
            "problems": list(self.problems),
            "subject": self.subject,
            "app": m.app,
            "program": m.program,
            "rule": m.rule,
            "kind": m.kind,
            "due": m.due.isoformat(),
            "days_left": m.days_left,
            "event": m.event,
            "trigger": m.trigger,
            "trigger_date": m.trigger_date.isoformat(),
        }


# -- the rules of alerting, pure -----------------------------------------------------------


def days_window(value: int) -> int:
    """The --days value: 0 (due today) to a year."""
    if not 0 <= value <= MAX_DAYS:
        raise InvalidInput(f"--days must be between 0 and {MAX_DAYS}, not {value}")
    return value


def thresholds(days: int) -> tuple[int, ...]:
    """The "due within" thresholds for a window of `days`, tightest first.

    >>> thresholds(30), thresholds(7), thresholds(3)
    ((7, 30), (7,), (3,))
    """
    return tuple(sorted({min(days, URGENT_DAYS), days}))


def threshold_for(days_left: int, days: int) -> str | None:
    """Which threshold a milestone `days_left` from due is in, if any.

    >>> threshold_for(-1, 30), threshold_for(0, 30), threshold_for(8, 30), threshold_for(31, 30)
    ('overdue', 'due-7d', 'due-30d', None)
    """
    if days_left < 0:
        return "overdue"
    for limit in thresholds(days):
        if days_left <= limit:
            return f"due-{limit}d"
    return None


def threshold_label(threshold: str) -> str:
    return "overdue" if threshold == "overdue" else f"due within {threshold[4:-1]} days"


def overdue_word(kind: str) -> str:
    """How a milestone past its date is announced: OVERDUE, or PASSED for status and gates."""
    return "PASSED" if kind in PASSING_KINDS else "OVERDUE"


def alert_key(m: Milestone, threshold: str) -> str:
    """The notice key: one per milestone (its event, rule and due date) per threshold."""
    return f"milestone/{m.app}/{m.event}/{m.rule}/{m.due.isoformat()}/{threshold}"


def routed_lists(rule: str, routes: Mapping[str, Iterable[str]]) -> tuple[str, ...]:
    """The lists that receive alerts for `rule`."""
    return tuple(
        name for name, rules in sorted(routes.items()) if ALL_RULES in rules or rule in rules
    )


def subject_for(m: Milestone, threshold: str) -> str:
    if threshold == "overdue":
        ago = -m.days_left
        days = f"{ago} day{'s' if ago != 1 else ''}"
        return f"[atmpvault] {overdue_word(m.kind)} {days} ago: {m.rule} for {m.app} (due {m.due})"
    when = "today" if m.days_left == 0 else f"in {m.days_left} day{'s' if m.days_left != 1 else ''}"
    return f"[atmpvault] Due {when}: {m.rule} for {m.app} (due {m.due})"


def plan(
    milestones: Iterable[Milestone],
    days: int,
    routes: Mapping[str, Iterable[str]],
    reached: Mapping[str, Mapping[str, str]],
) -> list[Alert]:
    """The alerts owed for these milestones, each marked new, already sent or unrouted.

    `reached` is key -> list -> notice: an alert is new while a list routed its rule has
    not had it, so a list that was missing or unreachable last time is sent it now.
    """
    alerts = []
    for m in sorted(milestones, key=lambda m: (m.due, m.app, m.rule, m.event)):
        threshold = threshold_for(m.days_left, days)
        if threshold is None:
            continue
        key = alert_key(m, threshold)
        lists = routed_lists(m.rule, routes)
        had = dict(reached.get(key, {}))
        if not lists:
            status = "already-sent" if had else "unrouted"
        else:
            status = "new" if any(n not in had for n in lists) else "already-sent"
        notice = next(iter(had.values()), None)
        subject = subject_for(m, threshold)
        alerts.append(Alert(key, threshold, m, lists, subject, status, notice, had))
    return alerts


def context_for(alert: Alert, today: date) -> dict[str, Any]:
    """What the milestone-alert templates are given."""
    m = alert.milestone
    return {
        "m": {
            "app": m.app,
            "program": m.program,
            "rule": m.rule,
            "kind": m.kind,
            "due": m.due.isoformat(),
            "days_left": m.days_left,
            "source": m.source,
            "trigger": m.trigger,
            "trigger_date": m.trigger_date.isoformat(),
            "event": m.event,
            "produces": m.produces,
        },
        "threshold": alert.threshold,
        "threshold_label": threshold_label(alert.threshold),
        "overdue_word": overdue_word(m.kind),
        "today": today.isoformat(),
    }


# -- the vault side -------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRun:
    """What one `alerts` run found and, with --send, sent (and the record of what it missed)."""

    today: date
    days: int
    alerts: list[Alert]
    sent: list[Notice]
    record: str | None = None  # the alert-run record of what was not delivered
    send: bool = False

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for alert in self.alerts:
            counts[alert.status] = counts.get(alert.status, 0) + 1
        return counts

    def troubled(self) -> list[Alert]:
        """The alerts that miss (or, in a dry run, would miss) a list or an address."""
        return [a for a in self.alerts if a.problems]

    def failure(self) -> str | None:
        """The one line that makes a --send run exit 1, if anything was not delivered."""
        missed = self.troubled()
        if not self.send or not missed:
            return None
        named = "; ".join(
            f"{a.milestone.rule} for {a.milestone.app} (due {a.milestone.due}): "
            + "; ".join(a.problems)
            for a in missed[:MAX_SHOWN]
        )
        more = f"; and {len(missed) - MAX_SHOWN} more" if len(missed) > MAX_SHOWN else ""
        return (
            f"{len(missed)} alert(s) not delivered in full, recorded as {self.record}: "
            f"{named}{more}; {len(self.sent)} notice(s) went out, and the next "
            "'atmpvault alerts --send' sends the missed ones to the lists they missed"
        )


class Alerts:
    """Milestone alerts for one vault.

    >>> run = Alerts(vault).run(date(2026, 3, 1), days=30, send=True)
    >>> [a.status for a in run.alerts]
    ['sent', 'already-sent']
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.notices = Notices(vault)

    def routes(self) -> dict[str, tuple[str, ...]]:
        """List name -> the rule ids it is alerted for ("*": all), from config/alerts.json."""
        raw = self.vault.read_file(ROUTES_PATH)
        if raw is None:
            return dict(DEFAULT_ROUTES)
        try:
            found = json.loads(raw)["routes"]
            if not isinstance(found, dict) or not all(
                isinstance(v, list) and all(isinstance(r, str) for r in v) for v in found.values()
            ):
                raise ValueError("'routes' must map each list name to a list of rule ids")
            return {str(k): tuple(v) for k, v in found.items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise VaultError(f"{ROUTES_PATH} in the repository is not valid: {exc}") from exc

    def set_route(
        self, name: str, rules: Iterable[str], reason: str, actor: str | None = None
    ) -> dict[str, tuple[str, ...]]:
        """Route rule ids ("*" for all) to a defined list; no rules removes the list's route."""
        name = list_name(name)
        checked = tuple(dict.fromkeys(rules))
        for rule in checked:
            if rule != ALL_RULES and not RULE_ID_RE.fullmatch(rule):
                raise InvalidInput(f"invalid rule id {rule[:40]!r}: e.g. PAS, CBE30 or * for all")
        reason = values.reason(reason)
        with self.vault.writing():
            routes = self.routes()
            if checked:
                self._check_route(name, checked)
                if routes.get(name) == checked:
                    raise NothingChanged(f"list {name!r} is already routed {', '.join(checked)}")
                routes[name] = checked
                subject = f"Route alerts for {', '.join(checked)} to {name}"
            else:
                if name not in routes:
                    raise NotFound(f"list {name!r} has no alert route; nothing to remove")
                del routes[name]
                subject = f"Stop alerts to {name}"
            data = {
                "format": ROUTES_FORMAT,
                "routes": {k: list(v) for k, v in sorted(routes.items())},
            }
            self.vault.commit_files(
                {ROUTES_PATH: (json.dumps(data, indent=2) + "\n").encode("utf-8")},
                subject,
                {"Action": "route-alerts", "List": name},
                reason=reason,
                actor=actor,
            )
        return routes

    def _check_route(self, name: str, rules: tuple[str, ...]) -> None:
        """Refuse a rule the vault's milestone rules do not have, or a list not defined."""
        from atmpvault.archive.regulatory.rules import load_rules

        known = load_rules(self.vault)
        unknown = [r for r in rules if r != ALL_RULES and r not in known.ids()]
        if unknown:
            raise InvalidInput(
                f"unknown rule(s) {', '.join(unknown)}: not in {known.origin} "
                f"({', '.join(known.ids())}); use * for every rule"
            )
        defined = DistributionLists(self.vault).defined()  # the tip's, under the lock
        if name not in defined:
            raise NotFound(
                f"unknown distribution list {name!r} (defined: "
                f"{', '.join(sorted(defined)) or 'none yet'}); define it first with "
                f"'atmpvault lists set {name} ADDRESS... --reason R'"
            )

    def pending(self, today: date, days: int = DEFAULT_DAYS) -> list[Alert]:
        """Every alert owed today: overdue milestones and those due within `days`."""
        from atmpvault.archive.regulatory.calendar import milestones

        days = days_window(days)
        found = milestones(self.vault, today, end=today + timedelta(days=days))
        return plan(found, days, self.routes(), self.notices.reached_keys())

    def run(self, today: date, days: int = DEFAULT_DAYS, send: bool = False) -> AlertRun:
        """Find the alerts owed; with `send`, deliver the new ones (dry run otherwise).

        One list that is missing or unreachable, or one message the server refuses, holds
        back nobody else: every alert goes to every list it can reach, and what could not
        be delivered is recorded in one alert-run record, for `failure()` to report.
        """
        lists = DistributionLists(self.vault)
        result: list[Alert] = []
        sent: list[Notice] = []
        for alert in self.pending(today, days):
            if alert.status != "new":
                result.append(alert)
                continue
            reach = lists.reach(alert.pending)
            problems = [f"{n}: {why}" for n, why in reach.problems]
            if not send:
                result.append(replace(alert, problems=tuple(problems)))
                continue
            reached = dict(alert.reached)
            if reach.lists:
                context = context_for(alert, today)
                try:
                    notice = self.notices.send(
                        alert.key, reach.lists, TEMPLATE, alert.subject, context
                    )
                except AlreadySent:  # another run sent it a moment ago
                    reached.update(self.notices.reached(alert.key))
                except (DeliveryFailed, TemplateProblem, NotFound, InvalidInput) as exc:
                    problems.append(f"{', '.join(reach.lists)}: {exc}")
                else:
                    sent.append(notice)
                    reached.update({n: notice.id for n in notice.lists})
                    if notice.refused:
                        problems.append(
                            f"the SMTP server refused {', '.join(notice.refused)} "
                            f"(notice {notice.id}; not retried)"
                        )
            result.append(_settled(alert, reached, tuple(problems)))
        record = self._record(today, days, result, sent) if send else None
        return AlertRun(today, days, result, sent, record, send)

    def _record(
        self, today: date, days: int, alerts: list[Alert], sent: list[Notice]
    ) -> str | None:
        """Record what a run could not deliver (with what it sent) in one commit, if anything."""
        missed = [
            {
                "key": a.key,
                "app": a.milestone.app,
                "rule": a.milestone.rule,
                "due": a.milestone.due.isoformat(),
                "threshold": a.threshold,
                "status": a.status,
                "lists": list(a.pending),
                "problems": list(a.problems),
            }
            for a in alerts
            if a.problems
        ]
        return record_run(self.vault, "Alert run", today, days, sent, missed)


def record_run(
    vault: Vault,
    what: str,
    today: date,
    days: int,
    sent: list[Notice],
    missed: list[dict[str, Any]],
) -> str | None:
    """One alert-run record of what a run (of alerts, of the weekly digest) could not
    deliver, with what it sent, in one commit; None when it delivered everything."""
    if not missed:
        return None
    moment = values.now()
    run_id = f"ALR-{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(3).upper()}"
    body = {
        "id": run_id,
        "today": today.isoformat(),
        "days": days,
        "ran_at": values.iso(moment),
        "actor": vault.actor,
        "sent": [n.id for n in sent],
        "undelivered": missed,
    }
    subject = f"{what} {run_id}: {len(sent)} sent, {len(missed)} not delivered in full"
    with vault.unit("alert-run", subject, trailers={"Alert-Run": run_id}) as unit:
        unit.put(RUN_KIND, run_id, body)
    return run_id


def _settled(alert: Alert, reached: dict[str, str], problems: tuple[str, ...]) -> Alert:
    """The alert after a send: sent to every list routed, to some, or to none."""
    done = replace(alert, reached=reached, problems=problems)
    if not done.pending:
        status = "sent"
    elif any(n in reached for n in alert.lists):
        status = "partly-sent"
    else:
        status = "undelivered"
    newest = [reached[n] for n in alert.lists if n in reached and n not in alert.reached]
    return replace(done, status=status, notice=newest[0] if newest else alert.notice)


def list_users(vault: Vault, name: str) -> list[str]:
    """Why a distribution list is still needed by alerts (the Domain hook `list_users`)."""
    rules = Alerts(vault).routes().get(name)
    if not rules:
        return []
    what = "every rule" if ALL_RULES in rules else ", ".join(rules)
    where = ROUTES_PATH if vault.read_file(ROUTES_PATH) is not None else "the default routing"
    return [
        f"alerts for {what} are routed to it ({where}); stop them first with "
        f"'atmpvault alerts route {name} --reason R'"
    ]
