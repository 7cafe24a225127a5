"""The regulatory workflow's catalog tables: the milestones events derive, projected.

Whatever does not depend on today is derived when an event, an application or the
rules change, and kept here: every one-off milestone with its due date, and the base of
every yearly series. A calendar is then one indexed query over due dates, whatever the
number of events, plus the yearly series expanded for the dates asked about. An
application is derived again whenever one of its records changes; every application is,
when the vault's rules file changes. A rules file that cannot be used is remembered
with its problem, which every calendar then reports. A record that cannot be derived
(an event whose milestones fall outside the years a date holds, a record that cannot
be read) is kept in milestone_problems with its id, and the rest is derived: one bad
record never stops the catalog catching up.
A change to these tables raises the schema on the DOMAIN descriptor (regulatory/__init__.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from atmpvault.archive.core.record_tables import records
from atmpvault.archive.core.tables import metadata
from atmpvault.archive.regulatory.kinds import (
    APP_KIND,
    EVENT_KIND,
    OBLIGATION_KIND,
    PACKAGE_KIND,
)
from atmpvault.errors import InvalidRules

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.regulatory.applications import Application, Event
    from atmpvault.archive.regulatory.derivation import Milestone, Series
    from atmpvault.archive.regulatory.obligations import Closure, Recorded, Submitted
    from atmpvault.archive.regulatory.rules import Rules

PASSING = ("status", "gate")  # kinds that pass with their date (never overdue)

milestones = sa.Table(
    "milestones",
    metadata,
    sa.Column("app", sa.String(20), primary_key=True),
    sa.Column("key", sa.String(80), nullable=False, index=True),
    sa.Column("rule", sa.String(40), primary_key=True),
    sa.Column("event", sa.String(20), primary_key=True),
    sa.Column("program", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("due", sa.String(10), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("trigger", sa.String(40), nullable=False),
    sa.Column("trigger_date", sa.String(10), nullable=False),
    sa.Column("produces", sa.Text, nullable=False),
    sa.Column("provisional", sa.Boolean, nullable=False),
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
    sa.Column("trigger", sa.String(40), nullable=False),
    sa.Column("trigger_date", sa.String(10), nullable=False),
    sa.Column("event_body", sa.Text, nullable=False),
)

underivable = sa.Table(
    "milestone_problems",
    metadata,
    sa.Column("app", sa.String(20), primary_key=True),
    sa.Column("record", sa.String(20), primary_key=True),
    sa.Column("program", sa.String(40), nullable=False),
    sa.Column("problem", sa.Text, nullable=False),
)

closures = sa.Table(
    "milestone_closures",
    metadata,
    sa.Column("app", sa.String(20), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("program", sa.String(40), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

rules_state = sa.Table(
    "milestone_rules",
    metadata,
    sa.Column("key", sa.String(20), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def project(conn: Any, commits: Sequence[CommitChanges], context: Any) -> None:
    """Derive again the applications these commits changed (all of them, if the rules)."""
    from atmpvault.archive.regulatory.rules import VAULT_RULES_PATH

    changed: set[str] = set()
    rules_changed = False
    for commit in commits:
        rules_changed = rules_changed or VAULT_RULES_PATH in commit.paths
        for change in commit.records:
            if change.kind.name in (EVENT_KIND.name, PACKAGE_KIND.name, OBLIGATION_KIND.name):
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
    fixed, yearly, problems, closed = derive_all(conn, rules, apps)
    for table in (milestones, series, underivable, closures):
        query = table.delete()
        if apps is not None:
            query = query.where(table.c.app.in_(apps))
        conn.execute(query)
    if fixed:
        conn.execute(milestones.insert(), [milestone_row(m) for m in fixed])
    if yearly:
        conn.execute(series.insert(), yearly)
    if problems:
        conn.execute(underivable.insert(), problems)
    if closed:
        conn.execute(closures.insert(), closed)


# What reading a stored record can raise when a field is missing or not of its type.
_UNREADABLE = (KeyError, TypeError, ValueError, OverflowError, AttributeError)


def derive_all(
    conn: Any, rules: Rules, apps: Iterable[str] | None = None
) -> tuple[list[Milestone], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The fixed milestones, yearly series rows, problem rows and closure rows of these
    applications (None: all)."""
    from atmpvault.archive.regulatory.applications import Application, Event
    from atmpvault.archive.regulatory.derivation import closures as closures_of
    from atmpvault.archive.regulatory.derivation import derive_fixed

    wanted = None if apps is None else list(apps)
    columns = (records.c.id, records.c.ref, records.c.body)
    app_query = sa.select(*columns).where(
        records.c.kind == APP_KIND.name, records.c.latest.is_(True)
    )
    event_query = sa.select(*columns).where(
        records.c.kind == EVENT_KIND.name, records.c.latest.is_(True)
    )
    if wanted is not None:
        app_query = app_query.where(records.c.id.in_(wanted))
        event_query = event_query.where(records.c.ref.in_(wanted))
    recorded, sequences = _closing_records(conn, wanted)
    by_app: dict[str, list[Event]] = {}
    unread: dict[str, list[tuple[str, str]]] = {}  # app -> (record, why)
    for record, ref, body in conn.execute(event_query):
        try:
            event = Event.from_json(json.loads(body))
        except _UNREADABLE as exc:
            unread.setdefault(str(ref), []).append((record, _unreadable(exc)))
            continue
        if not event.voided:
            by_app.setdefault(event.app, []).append(event)
    fixed: list[Milestone] = []
    yearly: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    closed: list[dict[str, Any]] = []
    for record, _ref, body in conn.execute(app_query):
        try:
            application = Application.from_json(json.loads(body))
        except _UNREADABLE as exc:
            problems.append(_problem_row(record, record, "", _unreadable(exc)))
            continue
        events = by_app.get(application.id, [])
        one_off, cycles, left_out = derive_fixed(application, events, rules)
        by_key = closures_of(
            application, one_off, cycles, events, recorded.get(application.id, []),
            sequences.get(application.id, []), rules,
        )  # fmt: skip
        closed += [
            {"app": application.id, "key": key, "program": application.program,
             "body": json.dumps(c.to_json(), sort_keys=True)}
            for key, c in by_key.items()
        ]  # fmt: skip
        fixed += one_off
        bodies = {e.id: e for e in events}
        yearly += [_series_row(application, s, bodies[s.event.id]) for s in cycles]
        problems += [
            _problem_row(application.id, p.record, application.program, p.message) for p in left_out
        ]
        problems += [
            _problem_row(application.id, event_id, application.program, why)
            for event_id, why in unread.get(application.id, [])
        ]
    return fixed, yearly, problems, closed


def _closing_records(
    conn: Any, apps: list[str] | None
) -> tuple[dict[str, list[Recorded]], dict[str, list[Submitted]]]:
    """Per application: its obligation records and its finalised sequences. One that
    cannot be read closes nothing (verify names it)."""
    from atmpvault.archive.regulatory.obligations import Recorded, submitted_from

    recorded: dict[str, list[Recorded]] = {}
    sequences: dict[str, list[Submitted]] = {}
    for kind in (OBLIGATION_KIND, PACKAGE_KIND):
        query = sa.select(records.c.ref, records.c.body).where(
            records.c.kind == kind.name, records.c.latest.is_(True)
        )
        if apps is not None:
            query = query.where(records.c.ref.in_(apps))
        for ref, body in conn.execute(query):
            try:
                data = json.loads(body)
                if kind is OBLIGATION_KIND:
                    recorded.setdefault(str(ref), []).append(Recorded.from_json(data))
                else:
                    sent = submitted_from(data)
                    if sent is not None:
                        sequences.setdefault(str(ref), []).append(sent)
            except _UNREADABLE:
                continue
    return recorded, sequences


def _unreadable(exc: Exception) -> str:
    return f"the record cannot be read ({type(exc).__name__}: {exc}); nothing is derived from it"


def _problem_row(app: str, record: str, program: str, problem: str) -> dict[str, Any]:
    return {"app": app, "record": record, "program": program, "problem": problem}


@dataclass(frozen=True)
class Projected:
    """What one calendar query reads of the projection (see read_projected)."""

    fixed: list[Milestone]  # undated: the caller counts the days left
    yearly: list[tuple[str, str, Series]]  # (app, program, series)
    problems: list[tuple[str, str, str]]  # (app, record, problem)
    outside: list[tuple[str, str, str, date]]  # (app, event, trigger, its date)
    paused: dict[str, list[tuple[date, date | None]]]  # app -> inactive periods
    closures: dict[str, Closure]  # obligation key -> how it was closed


def read_projected(
    conn: Any,
    program: str | None,
    app: str | None,
    start: date | None,
    end: date | None,
    earliest: date,
    latest: date,
    open_since: date | None = None,
) -> Projected:
    """The one-off milestones due in [start, end] and the repeating series (with the
    periods each application was inactive), of events dated in [earliest, latest]; the
    recorded problems; and the events dated outside [earliest, latest], which the
    calendar leaves out and names.

    With `open_since` (today), only what is still open: no closed one-off milestone,
    no status or gate that passed before it, and only the closures of repeating cycles
    (the closed one-off ones are what a long history holds most of)."""
    from atmpvault.archive.regulatory.applications import Application, Event
    from atmpvault.archive.regulatory.derivation import Series
    from atmpvault.archive.regulatory.obligations import Closure

    def scoped(table: sa.Table) -> list[Any]:
        clauses = []
        if app is not None:
            clauses.append(table.c.app == app)
        if program is not None:
            clauses.append(table.c.program == program)
        return clauses

    low, high = earliest.isoformat(), latest.isoformat()

    def inside(table: sa.Table) -> Any:
        return table.c.trigger_date.between(low, high)

    fixed = sa.select(milestones).where(*scoped(milestones), inside(milestones))
    if start is not None:
        fixed = fixed.where(milestones.c.due >= start.isoformat())
    if end is not None:
        fixed = fixed.where(milestones.c.due <= end.isoformat())
    closing = sa.select(closures).where(*scoped(closures))
    if open_since is not None:
        fixed = fixed.where(
            milestones.c.key.not_in(sa.select(closures.c.key).where(*scoped(closures))),
            sa.or_(
                milestones.c.due >= open_since.isoformat(),
                milestones.c.kind.not_in(PASSING),
            ),
        )
        closing = closing.where(
            closures.c.key.not_in(sa.select(milestones.c.key).where(*scoped(milestones)))
        )
    apps = sa.select(records.c.id, records.c.body).where(
        records.c.kind == APP_KIND.name, records.c.latest.is_(True)
    )
    if app is not None:
        apps = apps.where(records.c.id == app)
    yearly = sa.select(series).where(*scoped(series), inside(series))
    rules = stored_rules(conn)
    found = Projected(
        fixed=[milestone_from_row(row) for row in conn.execute(fixed)],
        yearly=[
            (
                row.app,
                row.program,
                Series(
                    rules.get(row.rule),
                    Event.from_json(json.loads(row.event_body)),
                    date.fromisoformat(row.base),
                ),
            )
            for row in conn.execute(yearly)
        ],  # fmt: skip
        problems=[
            (row.app, row.record, row.problem)
            for row in conn.execute(sa.select(underivable).where(*scoped(underivable)))
        ],
        outside=[],
        paused={
            row.id: Application.from_json(json.loads(row.body)).paused for row in conn.execute(apps)
        },  # fmt: skip
        closures={
            row.key: Closure.from_json(row.key, json.loads(row.body))
            for row in conn.execute(closing)
        },
    )
    for table in (milestones, series):
        query = sa.select(table.c.app, table.c.event, table.c.trigger, table.c.trigger_date)
        query = query.where(*scoped(table), sa.not_(inside(table))).distinct()
        found.outside.extend(
            (row.app, row.event, row.trigger, date.fromisoformat(row.trigger_date))
            for row in conn.execute(query)
        )
    return found


def _store_rules(conn: Any, raw: bytes | None) -> None:
    """Remember the vault's rules file (None: it has none, the packaged rules apply)."""
    conn.execute(rules_state.delete())
    if raw is not None:
        conn.execute(rules_state.insert(), [{"key": "vault", "value": raw.decode("utf-8")}])


def stored_rules(conn: Any) -> Rules:
    """The rules in force at the catalog's commit; InvalidRules if they cannot be used."""
    from atmpvault.archive.regulatory.rules import VAULT_RULES_PATH, packaged_rules, parse_rules

    raw = conn.execute(
        sa.select(rules_state.c.value).where(rules_state.c.key == "vault")
    ).scalar_one_or_none()
    if raw is None:
        return packaged_rules()
    return parse_rules(raw.encode("utf-8"), f"the vault's {VAULT_RULES_PATH}")


def milestone_row(m: Milestone) -> dict[str, Any]:
    return {
        "app": m.app,
        "key": m.key,
        "rule": m.rule,
        "event": m.event,
        "program": m.program,
        "kind": m.kind,
        "due": m.due.isoformat(),
        "source": m.source,
        "trigger": m.trigger,
        "trigger_date": m.trigger_date.isoformat(),
        "produces": m.produces,
        "provisional": m.provisional,
    }


def _series_row(app: Application, s: Series, event: Event) -> dict[str, Any]:
    return {
        "app": app.id,
        "rule": s.rule.id,
        "event": s.event.id,
        "program": app.program,
        "base": s.base.isoformat(),
        "trigger": event.trigger,
        "trigger_date": event.on.isoformat(),
        "event_body": json.dumps(event.to_json(), sort_keys=True),
    }


def milestone_from_row(row: Any) -> Milestone:
    """A projected one-off milestone (days_left 0: the caller dates it)."""
    from atmpvault.archive.regulatory.derivation import Milestone

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
        provisional=bool(m["provisional"]),
    )


def underivable_rows(conn: Any) -> list[Any]:
    """The records the calendar leaves out, as the projection recorded them."""
    query = sa.select(underivable).order_by(underivable.c.app, underivable.c.record)
    return list(conn.execute(query))


def rows_of(conn: Any, table: sa.Table) -> list[dict[str, Any]]:
    """Every row of one of these tables (verify compares them with what records derive)."""
    return [dict(row._mapping) for row in conn.execute(sa.select(table))]


def revisions(conn: Any) -> dict[str, int]:
    """Per application, a number that grows with every change its milestones rest on:
    every version of its events, obligation records and sequences (an iCalendar entry's
    SEQUENCE, so that a client takes an update as newer)."""
    counts: dict[str, int] = {}
    kinds = (EVENT_KIND.name, OBLIGATION_KIND.name, PACKAGE_KIND.name)
    query = (
        sa.select(records.c.ref, sa.func.count())
        .where(records.c.kind.in_(kinds), records.c.ref.is_not(None))
        .group_by(records.c.ref)
    )
    for ref, count in conn.execute(query):
        counts[str(ref)] = int(count)
    return counts
