"""Quality reports of the daily stand-up: the aging of open deviations and CAPAs, and the
escalation of those overdue (or nearly due) to their owners and the lists of each level."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import (
    emit_json,
    json_option,
    pass_vault,
    say,
    table,
    today_for,
    today_option,
    user_option,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.quality.aging import AgingReport
    from atmpvault.archive.quality.escalation import EscalationRun

FORMATS = ("table", "csv", "pdf")


def _check_output(fmt: str, output: Path | None, as_json: bool) -> None:
    """Refuse a format or a combination that means nothing, in one line, before the vault
    is opened."""
    from atmpvault.errors import InvalidInput

    if fmt not in FORMATS:
        raise InvalidInput(f"--format {fmt[:20]!r} is not one of {', '.join(FORMATS)}")
    if as_json and fmt != "table":
        raise InvalidInput(f"--json prints JSON; it cannot be given with --format {fmt}")
    if output is not None and (as_json or fmt == "table"):
        raise InvalidInput("-o writes a file: give --format csv or --format pdf")


@click.command("aging")
@click.option("--format", "fmt", metavar="[table|csv|pdf]", default="table", show_default=True,
              help="A table for people, CSV, or a PDF report.")  # fmt: skip
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the CSV or PDF here (default: stdout).")  # fmt: skip
@click.option("--force", is_flag=True, help="Replace an existing file.")
@today_option
@json_option
@click.pass_context
def deviation_aging(
    ctx: click.Context, fmt: str, output: Path | None, force: bool, today: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Open deviations and CAPAs by age and class, overdue first (the daily stand-up).

    A deviation ages from the day it was discovered and is due when its investigation
    is; a CAPA ages from the day it was opened and counts under its deviation's class.
    The age buckets and classes are the vault's quality settings (config/vault.json
    "quality"). The PDF carries a chart by bucket and class, the counts and every row.

    \b
        atmpvault deviation aging
        atmpvault deviation aging --format csv -o aging-2026-03-16.csv
        atmpvault deviation aging --format pdf -o standup.pdf --today 2026-03-16
    """
    _check_output(fmt, output, as_json)
    if fmt == "pdf" and output is None and sys.stdout.isatty():
        from atmpvault.errors import VaultError

        raise VaultError(
            "a PDF is not written to a terminal: give -o FILE, or send it to a pipe "
            "(atmpvault deviation aging --format pdf > aging.pdf)"
        )
    if output is not None and output.exists() and not force:
        from atmpvault.errors import VaultError

        raise VaultError(f"{output} already exists; use --force to replace it")
    ctx.invoke(_aging, fmt=fmt, output=output, today=today, as_json=as_json)


@pass_vault
def _aging(vault: Vault, fmt: str, output: Path | None, today: str | None, as_json: bool) -> None:
    from atmpvault.archive.core import values
    from atmpvault.archive.quality.aging import aging, aging_pdf

    report = aging(vault, today_for(vault, today))
    if as_json:
        emit_json(report.to_json())
    elif fmt == "table":
        _aging_table(report)
    else:
        data = (
            report.csv().encode("utf-8")
            if fmt == "csv"
            else aging_pdf(report, values.now(), vault.actor)
        )
        if output is None:
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        _write(output, data)
        say(f"{len(report.items)} open item(s) as of {report.today.isoformat()} -> {output}")


def _write(target: Path, data: bytes) -> None:
    from atmpvault.errors import VaultError
    from atmpvault.files import write_atomically

    try:
        write_atomically(target, data)
    except OSError as exc:
        raise VaultError(f"cannot write {target}: {exc.strerror or exc}") from None


def _aging_table(report: AgingReport) -> None:
    table(
        [
            (i.id, i.kind, i.deviation_class, ",".join(i.lots), i.title, i.owner or "-",
             i.due.isoformat(), i.days_to_due, i.age, i.bucket)
            for i in report.items
        ],
        ["ID", "KIND", "CLASS", "LOTS", "TITLE/ACTION", "OWNER", "DUE", "DAYS TO DUE", "AGE",
         "BUCKET"],
    )  # fmt: skip
    click.echo("")
    table(
        [
            (b, *(report.count(b, c) for c in report.classes), report.count(bucket=b))
            for b in report.buckets
        ]
        + [
            ("total", *(report.count(deviation_class=c) for c in report.classes), len(report.items))
        ],
        ["AGE (DAYS)", *(c.upper() for c in report.classes), "TOTAL"],
    )
    click.echo(
        f"\n{report.title()}: {len(report.items)} open, {report.overdue} overdue, "
        f"{report.due_soon} due within {report.warning_days} days"
    )


@click.command("escalate")
@click.option("--send", is_flag=True, help="Send the escalations (without it: a dry run).")
@today_option
@user_option
@json_option
@pass_vault
def deviation_escalate(
    vault: Vault, send: bool, today: str | None, user: str | None, as_json: bool
) -> None:
    """Escalate overdue investigations and CAPAs to their owners and the lists of a level.

    An item overdue by D days goes to its owner and the lists of the highest level
    (config/vault.json "quality" "escalation") whose after_days is at most D; one due
    within warning_days goes to its owner and the first level's lists as a warning. Each
    item is escalated at most once per level per day, so a daily cron job repeats
    nothing; one still overdue later reaches the next level. Each escalation is its
    notice and its record, in one commit. Without --send it only shows what it would
    send. A list that cannot be reached holds back no other: the rest is sent, what was
    missed is named on stderr (exit 1), and the next --send that day sends it.

    \b
        atmpvault deviation escalate                    # dry run: what is owed today
        atmpvault deviation escalate --send             # e.g. daily from cron
    """
    from atmpvault.archive.quality.escalation import Escalations
    from atmpvault.errors import VaultError

    run = Escalations(vault).run(today_for(vault, today), send=send)
    failure = run.failure()
    if as_json:
        emit_json([e.to_json() for e in run.escalations])
    else:
        _escalation_table(run)
    if failure:
        raise VaultError(failure)


def _escalation_table(run: EscalationRun) -> None:
    shown = {"new": "would send" if not run.send else "new"}
    table(
        [
            (shown.get(e.status, e.status), e.item.id, e.item.kind, e.item.deviation_class,
             e.level, e.days_overdue, e.item.due.isoformat(), e.item.owner or "-",
             ",".join(e.lists), e.notice or "")
            for e in run.escalations
        ],
        ["STATUS", "ITEM", "KIND", "CLASS", "LEVEL", "OVERDUE", "DUE", "OWNER", "LISTS",
         "NOTICE"],
    )  # fmt: skip
    for e in run.troubled():
        word = "NOT DELIVERED" if run.send else "WILL MISS"
        for problem in e.problems:
            click.echo(f"{word}: {e.item.id} at {e.level}: {problem}")
    counts = run.counts()
    if run.send:
        summary = (
            f"{len(run.sent)} escalation(s) sent, {counts.get('already-sent', 0)} already "
            f"sent today ({run.today.isoformat()})"
        )
    else:
        summary = (
            f"dry run: {counts.get('new', 0)} escalation(s) would be sent, "
            f"{counts.get('already-sent', 0)} already sent today; use --send to send them"
        )
    click.echo(summary)


def register(deviation: click.Group) -> None:
    """Add the aging report and escalation to the `deviation` group."""
    deviation.add_command(deviation_aging)
    deviation.add_command(deviation_escalate)
