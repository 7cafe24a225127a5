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
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.notices import AlreadySent, Notice, Notices, list_name
from atmpvault.errors import InvalidInput, NotFound, NothingChanged, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.calendar import Milestone

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


@dataclass(frozen=True)
class Alert:
    """One alert: a milestone at one threshold, for the lists routed its rule."""

    key: str
    threshold: str  # "overdue" or "due-<N>d"
    milestone: Milestone
    lists: tuple[str, ...]
    subject: str
    status: str  # "new", "already-sent", "unrouted", then "sent" once delivered
    notice: str | None = None

    def to_json(self) -> dict[str, Any]:
        m = self.milestone
        return {
            "key": self.key,
            "threshold": self.threshold,
            "status": self.status,
            "notice": self.notice,
            "lists": list(self.lists),
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
    sent: Mapping[str, str],
) -> list[Alert]:
    """The alerts owed for these milestones, each marked new, already sent or unrouted."""
    alerts = []
    for m in sorted(milestones, key=lambda m: (m.due, m.app, m.rule, m.event)):
        threshold = threshold_for(m.days_left, days)
        if threshold is None:
            continue
        key = alert_key(m, threshold)
        lists = routed_lists(m.rule, routes)
        if key in sent:
            status, notice = "already-sent", sent[key]
        else:
            status, notice = ("new" if lists else "unrouted"), None
        alerts.append(Alert(key, threshold, m, lists, subject_for(m, threshold), status, notice))
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
    """What one `alerts` run found and, with --send, sent."""

    today: date
    days: int
    alerts: list[Alert]
    sent: list[Notice]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for alert in self.alerts:
            counts[alert.status] = counts.get(alert.status, 0) + 1
        return counts


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
            data = json.loads(raw)
            return {str(k): tuple(str(r) for r in v) for k, v in data["routes"].items()}
        except (ValueError, KeyError, AttributeError, TypeError) as exc:
            raise VaultError(f"{ROUTES_PATH} in the repository is not valid: {exc}") from exc

    def set_route(
        self, name: str, rules: Iterable[str], reason: str, actor: str | None = None
    ) -> dict[str, tuple[str, ...]]:
        """Route rule ids ("*" for all) to a list; no rules removes the list's route."""
        name = list_name(name)
        checked = tuple(dict.fromkeys(rules))
        for rule in checked:
            if rule != ALL_RULES and not RULE_ID_RE.fullmatch(rule):
                raise InvalidInput(f"invalid rule id {rule[:40]!r}: e.g. PAS, CBE30 or * for all")
        reason = values.reason(reason)
        with self.vault.writing():
            routes = self.routes()
            if checked:
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

    def pending(self, today: date, days: int = DEFAULT_DAYS) -> list[Alert]:
        """Every alert owed today: overdue milestones and those due within `days`."""
        from atmpvault.archive.regulatory.calendar import milestones

        days = days_window(days)
        found = milestones(self.vault, today, end=today + timedelta(days=days))
        return plan(found, days, self.routes(), self.notices.sent_keys())

    def run(self, today: date, days: int = DEFAULT_DAYS, send: bool = False) -> AlertRun:
        """Find the alerts owed; with `send`, deliver the new ones (dry run otherwise).

        Every list an alert is routed to must exist before anything is sent. A delivery
        failure stops the run with DeliveryFailed; what was sent before it stays recorded.
        """
        alerts = self.pending(today, days)
        if not send:
            return AlertRun(today, days, alerts, [])
        new = [a for a in alerts if a.status == "new"]
        defined = self.vault.config.distribution_lists
        missing = sorted({n for a in new for n in a.lists if n not in defined})
        if missing:
            raise NotFound(
                f"alerts are routed to undefined distribution list(s) {', '.join(missing)}; "
                f"define them with 'atmpvault lists set NAME ADDRESS... --reason R' "
                "or change the routing with 'atmpvault alerts route'"
            )
        sent: list[Notice] = []
        result: list[Alert] = []
        for alert in alerts:
            if alert.status != "new":
                result.append(alert)
                continue
            try:
                notice = self.notices.send(
                    alert.key, alert.lists, TEMPLATE, alert.subject, context_for(alert, today)
                )
            except AlreadySent:  # another run sent it a moment ago
                result.append(_with(alert, "already-sent", self.notices.sent_as(alert.key)))
                continue
            sent.append(notice)
            result.append(_with(alert, "sent", notice.id))
        return AlertRun(today, days, result, sent)


def _with(alert: Alert, status: str, notice: str | None) -> Alert:
    from dataclasses import replace

    return replace(alert, status=status, notice=notice)
