"""Dosing commands: manufacturing slots, dosing schedules, availability, conflicts, board."""

from __future__ import annotations

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
    undelivered,
    user_option,
    when_option,
)

if TYPE_CHECKING:
    from datetime import date

    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.dosing.model import Schedule


def _day(vault: Vault, value: str, what: str) -> date:
    from atmpvault.archive.core import values

    return values.day(value, what, vault.config.dates)


@click.group("slot")
def slot() -> None:
    """Manufacturing slots: so many a day per facility, from the configuration.

    \b
        atmpvault slot reserve --facility MFG-01 --date 2026-12-02 --lot L-0042
        atmpvault slot ls --free --from 2026-12-01 --to 2026-12-31
    """


@slot.command("reserve")
@click.option("--facility", required=True, help="The manufacturing facility, e.g. MFG-01.")
@click.option("--date", "day", required=True, metavar="DATE", help="The manufacturing start day.")
@click.option("--lot", required=True, help="The lot.")
@user_option
@json_option
@pass_vault
def slot_reserve(
    vault: Vault, facility: str, day: str, lot: str, user: str | None, as_json: bool
) -> None:
    """Reserve a slot (refused when full or closed, naming who holds it); the site's
    scheduler gets a confirmation.

    \b
        atmpvault slot reserve --facility MFG-01 --date 2026-12-02 --lot L-0042
    """
    from atmpvault.archive.dosing.service import Dosing

    body, problems = Dosing(vault).reserve(facility, _day(vault, day, "--date"), lot)
    if as_json:
        emit_json({**body, "problems": problems})
    else:
        click.echo(f"{body['facility']}  {body['day']}  {body['lot']}  reserved")
    undelivered(problems)


@slot.command("cancel")
@click.option("--lot", required=True, help="The lot whose slot is given back.")
@click.option("--reason", required=True, help="Why.")
@user_option
@json_option
@pass_vault
def slot_cancel(vault: Vault, lot: str, reason: str, user: str | None, as_json: bool) -> None:
    """Give a lot's slot back.

    \b
        atmpvault slot cancel --lot L-0042 --reason "apheresis postponed"
    """
    from atmpvault.archive.dosing.service import Dosing

    body = Dosing(vault).cancel(lot, reason)
    if as_json:
        emit_json(body)
    else:
        click.echo(f"{body['facility']}  {body['day']}  {body['lot']}  cancelled")


@slot.command("ls")
@click.option("--facility", help="Only this facility.")
@click.option("--from", "start", metavar="DATE", help="From this day (default: today).")
@click.option("--to", "end", metavar="DATE", help="To this day (default: 30 days on).")
@click.option("--free", is_flag=True, help="Free capacity per open day instead of reservations.")
@today_option
@json_option
@pass_vault
def slot_ls(vault: Vault, facility: str | None, start: str | None, end: str | None,
            free: bool, today: str | None, as_json: bool) -> None:  # fmt: skip
    """List reservations, or (--free) each open day's free slots.

    \b
        atmpvault slot ls --facility MFG-01 --free
    """
    from datetime import timedelta

    from atmpvault.archive.dosing.service import Dosing

    first = _day(vault, start, "--from") if start else today_for(vault, today)
    last = _day(vault, end, "--to") if end else first + timedelta(days=30)
    dosing = Dosing(vault)
    if facility is not None:
        dosing.facility(facility)
    if free:
        rows = dosing.free(facility, first, last)
        if as_json:
            emit_json(rows)
            return
        table([(r["facility"], r["day"], r["slots"], r["taken"], r["free"]) for r in rows],
              ["FACILITY", "DAY", "SLOTS", "TAKEN", "FREE"])  # fmt: skip
        return
    found = dosing.reservations(facility, first, last)
    if as_json:
        emit_json(found)
        return
    table([(r["facility"], r["day"], r["lot"], r["user"]) for r in found],
          ["FACILITY", "DAY", "LOT", "RESERVED BY"])  # fmt: skip


@click.group("dosing")
def dosing() -> None:
    """Dosing schedules: each lot's manufacturing against the patient's conditioning.

    \b
        atmpvault dosing plan L-0042 --profile autologous-cart --apheresis 2026-12-01
        atmpvault dosing update L-0042 --infusion 2027-01-08 --reason "patient fever"
        atmpvault dosing show L-0042
    """


def show_schedule(found: Schedule) -> None:
    from atmpvault.archive.dosing.model import FIELDS

    click.echo(f"{found.lot}  {found.lot_status}  {found.profile}  {found.facility}  "
               f"site {found.site or '-'}  patient {found.coi or '-'}  v{found.version}")  # fmt: skip
    rows = []
    for name in FIELDS:
        actual = found.actual.get(name)
        rows.append((name.replace("_", "-"), found.dates[name].isoformat(),
                     actual.isoformat() if actual else ""))  # fmt: skip
    table(rows, ["DATE", "PLANNED", "ACTUAL"])
    if found.availability_confirmed:
        click.echo(f"product available from {found.availability_confirmed.isoformat()}")
    for hold in found.holds:
        click.echo(f"hold: {hold}")


def _schedule_json(found: Schedule) -> dict[str, Any]:
    return {
        "lot": found.lot, "program": found.program, "coi": found.coi, "profile": found.profile,
        "facility": found.facility, "site": found.site, "lot_status": found.lot_status,
        "dates": {k: v.isoformat() for k, v in found.dates.items()},
        "actual": {k: v.isoformat() for k, v in found.actual.items()},
        "availability_confirmed": found.availability_confirmed.isoformat() if found.availability_confirmed else None,
        "holds": list(found.holds), "version": found.version,
    }  # fmt: skip


@dosing.command("plan")
@click.argument("lot", metavar="LOT")
@click.option("--profile", required=True, help="The product profile, e.g. autologous-cart.")
@click.option("--apheresis", required=True, metavar="DATE", help="The apheresis date.")
@click.option("--slot", "slot_day", metavar="DATE", help="Manufacturing start (default: its slot).")
@click.option("--infusion", metavar="DATE", help="Planned infusion, day 0 (default: earliest).")
@click.option("--site", help="The clinical site that infuses.")
@click.option("--facility", help="The manufacturing facility (default: its slot's, or the first).")
@user_option
@json_option
@pass_vault
def dosing_plan(vault: Vault, lot: str, profile: str, apheresis: str, slot_day: str | None,
                infusion: str | None, site: str | None, facility: str | None,
                user: str | None, as_json: bool) -> None:  # fmt: skip
    """Plan a lot's schedule from its product profile.

    \b
        atmpvault dosing plan L-0042 --profile autologous-cart --apheresis 2026-12-01 \\
            --site ONC-BOS-04
    """
    from atmpvault.archive.dosing.service import Dosing

    found = Dosing(vault).plan(
        lot, profile, _day(vault, apheresis, "--apheresis"),
        _day(vault, slot_day, "--slot") if slot_day else None,
        _day(vault, infusion, "--infusion") if infusion else None, site, facility,
    )  # fmt: skip
    if as_json:
        emit_json(_schedule_json(found))
    else:
        show_schedule(found)


def _date_options(func: Any) -> Any:
    from atmpvault.archive.dosing.fields import FIELDS

    for name in reversed(FIELDS):
        option = name.replace("_", "-")
        func = click.option(f"--{option}", name, metavar="DATE", help=f"The new {option} date.")(
            func
        )
    return func


@dosing.command("update")
@click.argument("lot", metavar="LOT")
@_date_options
@click.option("--reason", required=True, help="Why the dates change (kept in the history).")
@user_option
@json_option
@pass_vault
def dosing_update(vault: Vault, lot: str, reason: str, user: str | None, as_json: bool,
                  **dates: str | None) -> None:  # fmt: skip
    """Change planned dates; the earlier plan stays in the history.

    \b
        atmpvault dosing update L-0042 --infusion 2027-01-08 --ld-start 2027-01-03 \\
            --ld-end 2027-01-05 --reason "infusion moved: patient fever"
    """
    from atmpvault.archive.dosing.service import Dosing

    changes = {name: _day(vault, value, f"--{name.replace('_', '-')}")
               for name, value in dates.items() if value is not None}  # fmt: skip
    found = Dosing(vault).update(lot, changes, reason)
    if as_json:
        emit_json(_schedule_json(found))
    else:
        show_schedule(found)


@dosing.command("show")
@click.argument("lot", metavar="LOT")
@click.option("--as-of", "as_of", metavar="WHEN", help="The schedule as it stood then.")
@json_option
@pass_vault
def dosing_show(vault: Vault, lot: str, as_of: str | None, as_json: bool) -> None:
    """A lot's schedule: planned dates, actual ones from custody, holds, and its history.

    \b
        atmpvault dosing show L-0042 --as-of 2026-12-05
    """
    from atmpvault.archive.dosing.service import Dosing

    service = Dosing(vault)
    found = service.schedule(lot, when_option(vault, as_of))
    history = [
        {"version": r.version, "recorded_at": r.recorded_at, "actor": r.actor,
         "action": r.body.get("action"), "reason": r.body.get("reason"), "dates": r.body["dates"]}
        for r in service.history(lot)
    ]  # fmt: skip
    if as_json:
        emit_json({**_schedule_json(found), "history": history})
        return
    show_schedule(found)
    for h in history:
        click.echo(f"v{h['version']}  {h['recorded_at'][:19]}  {h['actor']}  {h['action']}"
                   f"{': ' + h['reason'] if h['reason'] else ''}")  # fmt: skip


@dosing.command("confirm-availability")
@click.argument("lot", metavar="LOT")
@click.option("--on", "on", required=True, metavar="DATE", help="Available from this day.")
@user_option
@json_option
@pass_vault
def dosing_confirm(vault: Vault, lot: str, on: str, user: str | None, as_json: bool) -> None:
    """Confirm the product is available for infusion (LD may start); the site is told.

    \b
        atmpvault dosing confirm-availability L-0042 --on 2026-12-29
    """
    from atmpvault.archive.dosing.service import Dosing

    found, problems = Dosing(vault).confirm_availability(lot, _day(vault, on, "--on"))
    if as_json:
        emit_json({**_schedule_json(found), "problems": problems})
    else:
        show_schedule(found)
    undelivered(problems)


@dosing.command("conflicts")
@click.option("--send", is_flag=True, help="Tell the scheduling lists of each new conflict.")
@today_option
@json_option
@pass_vault
def dosing_conflicts(vault: Vault, send: bool, today: str | None, as_json: bool) -> None:
    """Every timing conflict of the active schedules: the rule, the dates, who must act.

    \b
        atmpvault dosing conflicts
        atmpvault dosing conflicts --send      # each new conflict to the scheduling lists once
    """
    from atmpvault.archive.dosing.service import Dosing, find_conflicts, send_conflicts

    service = Dosing(vault)
    found = find_conflicts(service, today_for(vault, today))
    sent, problems = send_conflicts(service, found) if send else ([], [])
    if as_json:
        emit_json([{**c.to_json(), "sent": c in sent} for c in found])
    else:
        table(
            [(c.lot, c.rule, c.act, c.message) for c in found], ["LOT", "RULE", "ACT", "CONFLICT"]
        )
        if send:
            click.echo(f"{len(sent)} new conflict(s) sent")
    undelivered(problems)


@dosing.command("board")
@click.option("--days", type=click.IntRange(1, 120), default=28, show_default=True,
              help="Days shown from today.")  # fmt: skip
@click.option("--format", "shape", type=click.Choice(["text", "html"]), default="text",
              show_default=True, help="Text for the terminal, HTML for a projector.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write here.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@today_option
@json_option
@pass_vault
def dosing_board(vault: Vault, days: int, shape: str, output: Path | None, force: bool,
                 today: str | None, as_json: bool) -> None:  # fmt: skip
    """The coordination call's board: every active patient's timeline, today marked,
    conflicts highlighted (patients by coded id only).

    \b
        atmpvault dosing board --days 21
        atmpvault dosing board --format html -o board.html
    """
    from atmpvault.archive.dosing.board import html_board, rows, text_board
    from atmpvault.archive.dosing.service import Dosing, find_conflicts
    from atmpvault.errors import InvalidInput, VaultError

    day = today_for(vault, today)
    service = Dosing(vault)
    found = rows(service.active(), find_conflicts(service, day), day, days)
    if as_json:
        if output is not None:
            raise InvalidInput("--json prints to stdout; -o is for the text or HTML board")
        emit_json([r.to_json() for r in found])
        return
    text = text_board(found, day, days) if shape == "text" else html_board(
        found, day, days, f"Dosing board, {day.isoformat()}"
    )  # fmt: skip
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise VaultError(f"{output} exists; use --force to replace it")
    from atmpvault.files import write_atomically

    write_atomically(output, text.encode("utf-8"))
    click.echo(f"board -> {output}")


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(slot)
    cli.add_command(dosing)
