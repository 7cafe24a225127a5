"""Regulatory commands: applications, events and the milestone calendar."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import (
    emit_json,
    json_option,
    pass_vault,
    table,
    today_for,
    today_option,
    user_option,
    when_option,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.applications import Event
    from atmpvault.archive.regulatory.calendar import AppView
    from atmpvault.archive.regulatory.derivation import Milestone, Problem

DEFAULT_DAYS = 30
MAX_DAYS = 36600  # a century: a window past any date the vault accepts, and no overflow


def _day(vault: Vault, value: str, what: str) -> date:
    from atmpvault.archive.core import values

    return values.day(value, what, vault.config.dates)


def _report_problems(problems: Sequence[Problem], warn_only: bool = False) -> None:
    """Name every record left out of the calendar on stderr; then, unless only a warning
    (the write itself succeeded), exit 1: the listing above is incomplete."""
    from atmpvault.errors import VaultError

    for problem in problems:
        click.echo(f"atmpvault: {'warning: ' if warn_only else ''}{problem}", err=True)
    if problems and not warn_only:
        raise VaultError(
            f"{len(problems)} record(s) left out of the milestones (named above); "
            "the rest are listed"
        )


def show_milestones(rows: Sequence[Milestone], states: bool = False) -> None:
    """The milestones for people; `states`: with a STATE column (open, or how closed).
    A due date on a weekend or holiday is marked `*` (NOTE says which); a provisional
    one `?`; TARGET, when the vault sets sponsor targets, is the sponsor's own date."""
    targets = any(m.target for m in rows)
    notes = any(m.non_working for m in rows)
    table(
        [
            (
                f"{m.due.isoformat()}{PROVISIONAL if m.provisional else ''}"
                f"{NON_WORKING if m.non_working else ''}",
                m.days_left,
                *([m.target.isoformat() if m.target else ""] if targets else []),
                m.key,
                m.kind,
                *([_state(m)] if states else []),
                m.produces,
                *([m.non_working or ""] if notes else []),
                m.source,
                f"{m.trigger} {m.trigger_date.isoformat()} ({m.event})",
            )
            for m in rows
        ],
        ["DUE", "DAYS", *(["TARGET"] if targets else []), "KEY", "KIND",
         *(["STATE"] if states else []), "PRODUCES", *(["NOTE"] if notes else []), "SOURCE",
         "TRIGGER"],
    )  # fmt: skip


PROVISIONAL = "?"  # counted from a date FDA has not fixed yet (the latest allowable)
NON_WORKING = "*"  # due on a weekend day or a holiday of the vault's calendar


def _state(m: Milestone) -> str:
    c = m.closure
    if c is None:
        return "OVERDUE" if m.overdue else "passed" if m.days_left < 0 else "open"
    evidence = f" ({c.evidence})" if c.evidence else ""
    return f"{c.state} {c.on.isoformat()} by {c.by}{evidence}"


def _event_line(event: Event) -> str:
    details = [
        f"review {event.review}" if event.review else "",
        f"type {event.meeting_type}" if event.meeting_type else "",
        event.letter_kind or "",
        f"response in {event.response_days} days" if event.response_days is not None else "",
        f"doc {event.doc}" if event.doc else "",
    ]
    extra = ", ".join(d for d in details if d)
    return (
        f"{event.id} v{event.version}  {event.app}  {event.trigger} on {event.on.isoformat()}"
        + (f"  ({extra})" if extra else "")
        + (f"  VOIDED: {event.reason}" if event.voided else "")
    )


def _report_event(vault: Vault, event: Event, today: date, as_json: bool) -> None:
    """The event and the milestones it now derives; a warning names any record of its
    application whose milestones cannot be derived (the event itself is recorded)."""
    from atmpvault.archive.regulatory.calendar import milestone_calendar

    earliest = vault.config.dates.earliest  # what it derives: past and closed too
    found = milestone_calendar(vault, today, app=event.app, start=earliest, closed=True)
    derived = [m for m in found.milestones if m.event == event.id]
    if as_json:
        emit_json({"event": event.to_json(), "milestones": [m.to_json() for m in derived]})
    else:
        click.echo(_event_line(event))
        if derived:
            show_milestones(derived)
        else:
            click.echo("no milestones derived from this event")
    _report_problems(found.problems, warn_only=True)


# -- applications ---------------------------------------------------------------------------


@click.group()
def app() -> None:
    """Applications (IND, BLA) that events and milestones belong to.

    \b
        atmpvault app new ind "IND 012345" --program CART-19
        atmpvault app ls
    """


@app.command("new")
@click.argument("kind", metavar="ind|bla")
@click.argument("number")
@click.option("--program", required=True, help="The program the application belongs to.")
@user_option
@json_option
@pass_vault
def app_new(
    vault: Vault, kind: str, number: str, program: str, user: str | None, as_json: bool
) -> None:
    """Register an application; its id is the kind and six digits.

    \b
        atmpvault app new ind "IND 012345" --program CART-19    # -> IND-012345
        atmpvault app new bla 125123 --program CART-19          # -> BLA-125123
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    created = Regulatory(vault).new_app(kind, number, program)
    if as_json:
        emit_json(created.to_json())
    else:
        click.echo(f"{created.id}  {created.label}  program {created.program}")


@app.command("ls")
@json_option
@pass_vault
def app_ls(vault: Vault, as_json: bool) -> None:
    """List the applications.

    \b
        atmpvault app ls --json
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    rows = Regulatory(vault).apps()
    if as_json:
        emit_json([a.to_json() for a in rows])
        return
    table(
        [(a.id, a.label, a.program, a.status, a.recorded_at[:10]) for a in rows],
        ["ID", "NUMBER", "PROGRAM", "STATUS", "REGISTERED"],
    )


@app.command("show")
@click.argument("application", metavar="APP")
@click.option("--as-of", metavar="WHEN", help="The application as it stood then.")
@today_option
@json_option
@pass_vault
def app_show(
    vault: Vault, application: str, as_of: str | None, today: str | None, as_json: bool
) -> None:
    """One application with its events and open milestones.

    Open: due today or later, or an obligation (sponsor-due, fda-due) past its date.

    \b
        atmpvault app show IND-012345
        atmpvault app show IND-012345 --as-of 2026-03-31 --json
    """
    from atmpvault.archive.regulatory.calendar import app_view

    view = app_view(vault, application, today_for(vault, today), when_option(vault, as_of))
    if as_json:
        emit_json(view.to_json())
    else:
        show_app(view)
    _report_problems(view.problems)


@app.command("status")
@click.argument("application", metavar="APP")
@click.argument("status", metavar="active|inactive|withdrawn")
@click.option("--on", "on", required=True, metavar="DATE", help="From when, YYYY-MM-DD.")
@click.option("--reason", required=True, help="Why (kept in the history).")
@user_option
@json_option
@pass_vault
def app_status(
    vault: Vault,
    application: str,
    status: str,
    on: str,
    reason: str,
    user: str | None,
    as_json: bool,
) -> None:
    """Make an application active, inactive or withdrawn from a date. An inactive or
    withdrawn IND owes no annual report whose year begins after that date.

    \b
        atmpvault app status IND-012345 inactive --on 2027-02-01 --reason "312.45: no subjects"
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    changed = Regulatory(vault).set_status(application, status, _day(vault, on, "--on"), reason)
    if as_json:
        emit_json(changed.to_json())
    else:
        click.echo(f"{changed.id}  {changed.status} from {changed.status_on}")


def show_app(view: AppView) -> None:
    """An application, its events and its open milestones, for people."""
    a = view.application
    since = f" from {a.status_on}" if a.status_on else ""
    click.echo(f"{a.id}  {a.label}  program {a.program}  {a.status}{since}")
    click.echo(f"\nevents ({len(view.events)}):")
    for event in view.events:
        click.echo(f"  {_event_line(event)}")
    click.echo(f"\nopen milestones ({len(view.milestones)}):")
    if view.milestones:
        show_milestones(view.milestones)


# -- events -----------------------------------------------------------------------------------


@click.group()
def event() -> None:
    """Dated regulatory events; each derives milestones by the FDA rules.

    \b
        atmpvault event add IND-012345 ind-received --on 2026-01-05
        atmpvault event ls IND-012345
        atmpvault event correct EV-000001 --on 2026-01-06 --reason "per FDA acknowledgment"
    """


@event.command("add")
@click.argument("application", metavar="APP")
@click.argument("trigger")
@click.option("--on", "on", required=True, metavar="DATE", help="When it happened, YYYY-MM-DD.")
@click.option("--review", metavar="standard|priority", help="Review track (bla-received).")
@click.option(
    "--meeting-type",
    metavar="A|B|B-EOP|C|D|INTERACT",
    help="Formal meeting type (meeting-request-received).",
)
@click.option(
    "--response-days",
    type=int,
    metavar="N",
    help="Days FDA gave for the response (fda-letter-received).",
)
@click.option(
    "--letter-kind",
    metavar="KIND",
    help="information-request, clinical-hold-letter, filing-letter, day-74-letter, "
    "meeting-minutes or complete-response (fda-letter-received).",
)
@click.option(
    "--meeting-date", metavar="DATE", help="The meeting date FDA granted (meeting-granted)."
)
@click.option(
    "--meeting-format",
    metavar="face-to-face|teleconference|written-response-only",
    help="How the meeting is held (meeting-granted).",
)
@click.option(
    "--class",
    "resubmission_class",
    metavar="1|2",
    help="Resubmission class (resubmission-received).",
)
@click.option(
    "--of",
    metavar="EV",
    help="The event this answers (meeting-granted/-denied, review-extended, review-designated; "
    "default: the latest it can answer).",
)
@click.option("--doc", metavar="DOC", help="The archived document, e.g. the FDA letter.")
@click.option("--note", help="A short note.")
@today_option
@user_option
@json_option
@pass_vault
def event_add(
    vault: Vault,
    application: str,
    trigger: str,
    on: str,
    meeting_date: str | None,
    today: str | None,
    user: str | None,
    as_json: bool,
    **details: Any,
) -> None:
    """Record an event and print the milestones it derives, each with rule and source.

    An event reports what has happened, so its date may not be in the future (only
    protocol-change-planned may); ind-received, ind-effective, bla-received and
    bla-approved happen once per application: correct their date with `event correct`.

    \b
        atmpvault event add IND-012345 ind-received --on 2026-01-05
        atmpvault event add IND-012345 meeting-request-received --on 2026-03-02 --meeting-type C
        atmpvault event add BLA-125123 bla-received --on 2027-01-31 --review priority
        atmpvault event add IND-012345 fda-letter-received --on 2026-04-01 \\
            --letter-kind information-request --response-days 30 --doc DOC-000042
        atmpvault event add IND-012345 meeting-granted --on 2026-03-20 \\
            --meeting-date 2026-05-12 --meeting-format teleconference
        atmpvault event add BLA-125123 review-extended --on 2027-09-01
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    if meeting_date is not None:
        details["meeting_date"] = _day(vault, meeting_date, "--meeting-date")
    recorded = Regulatory(vault).add_event(application, trigger, _day(vault, on, "--on"), **details)
    _report_event(vault, recorded, today_for(vault, today), as_json)


@event.command("ls")
@click.argument("application", metavar="APP")
@json_option
@pass_vault
def event_ls(vault: Vault, application: str, as_json: bool) -> None:
    """List an application's events in date order.

    \b
        atmpvault event ls IND-012345
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    rows = Regulatory(vault).events(application)
    if as_json:
        emit_json([e.to_json() for e in rows])
        return
    table(
        [
            (
                e.id,
                e.version,
                e.on.isoformat(),
                e.trigger,
                e.review or e.meeting_type or e.letter_kind,
                e.doc,
                f"VOIDED: {e.reason}" if e.voided else e.note,
            )
            for e in rows
        ],
        ["EVENT", "V", "ON", "TRIGGER", "DETAIL", "DOC", "NOTE"],
    )


@event.command("correct")
@click.argument("event_id", metavar="EVENT")
@click.option("--on", "on", metavar="DATE", help="The right date, YYYY-MM-DD.")
@click.option("--review", help="The right review track (bla-received).")
@click.option("--meeting-type", help="The right meeting type (meeting-request-received).")
@click.option("--letter-kind", help="The right kind of letter (fda-letter-received).")
@click.option("--response-days", type=int, help="The right response time in days.")
@click.option("--meeting-date", metavar="DATE", help="The right granted meeting date.")
@click.option("--meeting-format", help="The right meeting format (meeting-granted).")
@click.option("--class", "resubmission_class", help="The right resubmission class.")
@click.option("--doc", metavar="DOC", help="The right document for the event.")
@click.option("--note", help="The right note.")
@click.option("--reason", required=True, help="Why it changes (kept in the history).")
@today_option
@user_option
@json_option
@pass_vault
def event_correct(
    vault: Vault,
    event_id: str,
    on: str | None,
    reason: str,
    today: str | None,
    user: str | None,
    as_json: bool,
    **changes: Any,
) -> None:
    """Correct an event's date or details: a new version (earlier values kept in its
    history), milestones derived again. Give at least one thing to correct.

    \b
        atmpvault event correct EV-000001 --on 2026-01-06 --reason "FDA receipt date per acknowledgment letter"
        atmpvault event correct EV-000007 --review priority --reason "priority review granted"
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    day = _day(vault, on, "--on") if on is not None else None
    if changes.get("meeting_date") is not None:
        changes["meeting_date"] = _day(vault, changes["meeting_date"], "--meeting-date")
    corrected = Regulatory(vault).correct_event(event_id, reason, day, **changes)
    _report_event(vault, corrected, today_for(vault, today), as_json)


@event.command("void")
@click.argument("event_id", metavar="EVENT")
@click.option("--reason", required=True, help="Why it was entered in error.")
@today_option
@user_option
@json_option
@pass_vault
def event_void(
    vault: Vault, event_id: str, reason: str, today: str | None, user: str | None, as_json: bool
) -> None:
    """Void an event entered in error: it stays in the history, marked voided, and its
    milestones disappear (an --ics export cancels them in subscribed calendars).

    \b
        atmpvault event void EV-000012 --reason "recorded against the wrong IND"
    """
    from atmpvault.archive.regulatory.applications import Regulatory

    voided = Regulatory(vault).void_event(event_id, reason)
    _report_event(vault, voided, today_for(vault, today), as_json)


# -- the calendar -----------------------------------------------------------------------------


@click.command("calendar")
@click.option("--program", help="Only this program.")
@click.option("--app", "application", metavar="APP", help="Only this application.")
@click.option(
    "--days",
    type=click.IntRange(min=0, max=MAX_DAYS),
    help=f"Overdue plus the next N days (default {DEFAULT_DAYS}, at most {MAX_DAYS}).",
)
@click.option("--from", "start", metavar="DATE", help="Due on or after this date.")
@click.option("--to", "end", metavar="DATE", help="Due on or before this date.")
@click.option("--overdue", is_flag=True, help="Only open obligations past their due date.")
@click.option(
    "--all", "every", is_flag=True, help="Done and waived milestones too, with when and by whom."
)
@click.option(
    "--kind",
    metavar="KIND",
    help="Only this kind: sponsor-due, fda-due, fda-goal, gate or status.",
)
@click.option(
    "--ics",
    "ics_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the milestones as an iCalendar (.ics) file.",
)
@today_option
@json_option
@pass_vault
def calendar_cmd(
    vault: Vault,
    program: str | None,
    application: str | None,
    days: int | None,
    start: str | None,
    end: str | None,
    overdue: bool,
    every: bool,
    kind: str | None,
    ics_path: Path | None,
    today: str | None,
    as_json: bool,
) -> None:
    """Milestones in date order with days remaining (negative when overdue).

    By default: every open obligation overdue plus what falls due in the next 30
    days; done and waived ones leave it (--all shows them, with when, by whom and
    the evidence). A status or gate whose date has passed is history, never overdue:
    --from/--to list it. Each milestone's KEY names it for `milestone done`. The hidden
    option `--today DATE` takes another date as today, for tests and reproducible reports.
    A record whose milestones cannot be derived (an event dated outside the vault's
    date range) is named on stderr and the command exits 1; the rest are listed.

    \b
        atmpvault calendar
        atmpvault calendar --program CART-19 --days 90 --kind sponsor-due
        atmpvault calendar --from 2026-01-01 --to 2026-12-31 --ics cart19-2026.ics
        atmpvault calendar --overdue --json
    """
    from atmpvault.archive.regulatory.calendar import calendar_revisions, milestone_calendar
    from atmpvault.errors import InvalidInput

    now = today_for(vault, today)
    if days is not None and (start or end):
        raise InvalidInput("use --days or --from/--to, not both")
    first = _day(vault, start, "--from") if start else None
    last = _day(vault, end, "--to") if end else None
    if last is not None and first is None:  # a window typed is history too: what passed
        first = vault.config.dates.earliest
    if days is not None:
        last = now + timedelta(days=days)
    elif first is None and last is None and not overdue:
        last = now + timedelta(days=DEFAULT_DAYS)
    found = milestone_calendar(
        vault,
        now,
        program=program,
        app=application,
        start=first,
        end=last,
        overdue_only=overdue,
        kind=kind,
        closed=every or ics_path is not None,
    )
    rows = [m for m in found.milestones if every or m.closure is None]
    if ics_path is not None:
        from atmpvault.archive.regulatory.calendar import vanished
        from atmpvault.archive.regulatory.ics import write_ics

        gone = [m for m in vanished(vault, program, application)
                if (first is None or m.due >= first) and (last is None or m.due <= last)]  # fmt: skip
        count = write_ics([*found.milestones, *gone], ics_path, calendar_revisions(vault))
        click.echo(f"{count} milestones -> {ics_path}", err=True)
    if as_json:
        emit_json([m.to_json() for m in rows])
    elif rows:
        show_milestones(rows, states=every)
    else:
        click.echo("no milestones in this window", err=True)
    _report_problems(found.problems)


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(app)
    cli.add_command(event)
    cli.add_command(calendar_cmd)
    from atmpvault.cli import alerts, milestones, packages

    alerts.register(cli)
    milestones.register(cli)
    packages.register(cli)
