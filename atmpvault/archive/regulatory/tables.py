"""The regulatory workflow's catalog tables: the milestones events derive, projected.

Whatever does not depend on today is derived when an event, an application or the
rules change, and kept here: every one-off milestone with its due date, and the base of
every yearly series. A calendar is then one indexed query over due dates, whatever the
number of events, plus the yearly series expanded for the dates asked about. An
application is derived again whenever one of its records changes; every application is,
when the vault's rules file changes. A rules file that cannot be used is remembered
with its problem, which every calendar then reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from atmpvault.archive.core.catalog import metadata, records
from atmpvault.archive.regulatory.kinds import APP_KIND, EVENT_KIND
from atmpvault.archive.regulatory.rules import (
    VAULT_RULES_PATH,
    Rules,
    packaged_rules,
    parse_rules,
)
from atmpvault.errors import InvalidRules

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.regulatory.applications import Application, Event
    from atmpvault.archive.regulatory.calendar import Milestone, Series

SCHEMA = "1"

milestones = sa.Table(
    "milestones",
    metadata,
    sa.Column("app", sa.String(20), primary_key=True),
    sa.Column("rule", sa.String(40), primary_key=True),
    sa.Column("event", sa.String(20), primary_key=True),
    sa.Column("program", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("due", sa.String(10), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("trigger", sa.String(40), nullable=False),
    sa.Column("trigger_date", sa.String(10), nullable=False),
    sa.Column("produces", sa.Text, nullable=False),
    sa.Index("milestones_due", "due"),
)

series = sa.Table(
    "milestone_series",
    metadata,
    sa.Column("app", sa.String(20), primary_key=True),
    sa.Column("rule", sa.String(40), primary_key=True),
    sa.Column("event", sa.String(20), primary_key=True),
    sa.Column("program", sa.String(40), nullable=False),
    sa.Column("base", sa.String(10), nullable=False),
    sa.Column("event_body", sa.Text, nullable=False),
)

rules_state = sa.Table(
    "milestone_rules",
    metadata,
    sa.Column("key", sa.String(20), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def project(conn: Any, commits: Sequence[CommitChanges], context: Any) -> None:
    """Derive again the applications these commits changed (all of them, if the rules)."""
    changed: set[str] = set()
    rules_changed = False
    for commit in commits:
        rules_changed = rules_changed or VAULT_RULES_PATH in commit.paths
        for change in commit.records:
            if change.kind.name == EVENT_KIND.name:
                changed.add(str(change.body["app"]))
            elif change.kind.name == APP_KIND.name:
                changed.add(change.id)
    if rules_changed:
        _store_rules(conn, context.read_file(VAULT_RULES_PATH, commits[-1].sha))
    if not changed and not rules_changed:
        return
    try:
        rules = stored_rules(conn)
    except InvalidRules:
        return  # the calendar reports the problem; fixing the file derives everything again
    apps = None if rules_changed else sorted(changed)
    fixed, yearly = derive_all(conn, rules, apps)
    for table in (milestones, series):
        query = table.delete()
        if apps is not None:
            query = query.where(table.c.app.in_(apps))
        conn.execute(query)
    if fixed:
        conn.execute(milestones.insert(), [milestone_row(m) for m in fixed])
    if yearly:
        conn.execute(series.insert(), yearly)


def derive_all(
    conn: Any, rules: Rules, apps: Iterable[str] | None = None
) -> tuple[list[Milestone], list[dict[str, Any]]]:
    """The fixed milestones and yearly series rows of these applications (None: all)."""
    from atmpvault.archive.regulatory.applications import Application, Event
    from atmpvault.archive.regulatory.calendar import derive_fixed

    wanted = None if apps is None else list(apps)
    app_query = sa.select(records.c.body).where(
        records.c.kind == APP_KIND.name, records.c.latest.is_(True)
    )
    event_query = sa.select(records.c.body).where(
        records.c.kind == EVENT_KIND.name, records.c.latest.is_(True)
    )
    if wanted is not None:
        app_query = app_query.where(records.c.id.in_(wanted))
        event_query = event_query.where(records.c.ref.in_(wanted))
    by_app: dict[str, list[Event]] = {}
    for (body,) in conn.execute(event_query):
        event = Event.from_json(json.loads(body))
        by_app.setdefault(event.app, []).append(event)
    fixed: list[Milestone] = []
    yearly: list[dict[str, Any]] = []
    for (body,) in conn.execute(app_query):
        application = Application.from_json(json.loads(body))
        events = by_app.get(application.id, [])
        one_off, cycles = derive_fixed(application, events, rules)
        fixed += one_off
        bodies = {e.id: e for e in events}
        yearly += [_series_row(application, s, bodies[s.event.id]) for s in cycles]
    return fixed, yearly


def _store_rules(conn: Any, raw: bytes | None) -> None:
    """Remember the vault's rules file (None: it has none, the packaged rules apply)."""
    conn.execute(rules_state.delete())
    if raw is not None:
        conn.execute(rules_state.insert(), [{"key": "vault", "value": raw.decode("utf-8")}])


def stored_rules(conn: Any) -> Rules:
    """The rules in force at the catalog's commit; InvalidRules if they cannot be used."""
    raw = conn.execute(
        sa.select(rules_state.c.value).where(rules_state.c.key == "vault")
    ).scalar_one_or_none()
    if raw is None:
        return packaged_rules()
    return parse_rules(raw.encode("utf-8"), f"the vault's {VAULT_RULES_PATH}")


def milestone_row(m: Milestone) -> dict[str, Any]:
    return {
        "app": m.app,
        "rule": m.rule,
        "event": m.event,
        "program": m.program,
        "kind": m.kind,
        "due": m.due.isoformat(),
        "source": m.source,
        "trigger": m.trigger,
        "trigger_date": m.trigger_date.isoformat(),
        "produces": m.produces,
    }


def _series_row(app: Application, s: Series, event: Event) -> dict[str, Any]:
    return {
        "app": app.id,
        "rule": s.rule.id,
        "event": s.event.id,
        "program": app.program,
        "base": s.base.isoformat(),
        "event_body": json.dumps(event.to_json(), sort_keys=True),
    }


def milestone_from_row(row: Any) -> Milestone:
    """A projected one-off milestone (days_left 0: the caller dates it)."""
    from atmpvault.archive.regulatory.calendar import Milestone

    m = row._mapping
    return Milestone(
        app=m["app"],
        program=m["program"],
        rule=m["rule"],
        kind=m["kind"],
        due=date.fromisoformat(m["due"]),
        days_left=0,
        source=m["source"],
        trigger=m["trigger"],
        trigger_date=date.fromisoformat(m["trigger_date"]),
        event=m["event"],
        produces=m["produces"],
    )
