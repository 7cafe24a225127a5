"""Milestone alert commands: what is owed, sending it, and its routing to lists."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import (
    emit_json,
    json_option,
    pass_vault,
    table,
    today_for,
    today_option,
    user_option,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.digest import Digest


# -- alerts ------------------------------------------------------------------------------------


@click.group("alerts", invoke_without_command=True)
@click.option(
    "--days",
    type=click.IntRange(0, 366),
    default=30,
    show_default=True,
    help="Alert milestones due within this many days (and every overdue one).",
)
@click.option("--send", is_flag=True, help="Send the new alerts (without it: a dry run).")
@today_option
@user_option
@json_option
@click.pass_context
def alerts_group(
    ctx: click.Context,
    days: int,
    send: bool,
    today: str | None,
    user: str | None,
    as_json: bool,
) -> None:
    """Alert the distribution lists to milestones coming due and overdue.

    Each milestone is alerted once per threshold: due within --days, due within
    7 days, overdue. Running it daily (e.g. from cron) sends no duplicates. Without
    --send it only shows what would be sent. Which lists hear of which rules is
    `atmpvault alerts routes` (default: regulatory-leadership every rule,
    manufacturing-leadership PAS, CBE30, CBE0 and BPDR). A list that cannot be
    reached holds back no other: the rest is sent, what was missed is recorded and
    named on stderr (exit 1), and the next --send sends it to the lists it missed.
    `atmpvault alerts digest --week` sends each list one summary a week.

    \b
        atmpvault alerts                      # dry run: what is owed today
        atmpvault alerts --days 14 --send     # e.g. daily from cron
    """
    if ctx.invoked_subcommand is not None:
        return
    ctx.invoke(_run_alerts, days=days, send=send, today=today, user=user, as_json=as_json)


@pass_vault
def _run_alerts(
    vault: Vault, days: int, send: bool, today: str | None, user: str | None, as_json: bool
) -> None:
    from atmpvault.archive.regulatory.alerts import Alerts
    from atmpvault.errors import VaultError

    run = Alerts(vault).run(today_for(vault, today), days, send=send)
    failure = run.failure()
    if as_json:
        emit_json([a.to_json() for a in run.alerts])
        if failure:
            raise VaultError(failure)
        return
    shown = {"new": "would send" if not send else "new", "unrouted": "no list routed"}
    table(
        [
            (
                shown.get(a.status, a.status),
                a.milestone.due.isoformat(),
                a.milestone.days_left,
                a.milestone.app,
                a.milestone.rule,
                a.threshold,
                ",".join(a.lists),
                a.notice or "",
            )
            for a in run.alerts
        ],
        ["STATUS", "DUE", "DAYS", "APP", "RULE", "THRESHOLD", "LISTS", "NOTICE"],
    )
    for alert in run.troubled():
        word = "NOT DELIVERED" if send else "WILL MISS"
        for problem in alert.problems:
            click.echo(f"{word}: {alert.milestone.rule} for {alert.milestone.app}: {problem}")
    counts = run.counts()
    if send:
        summary = f"{len(run.sent)} alert(s) sent, {counts.get('already-sent', 0)} already sent"
        missed = counts.get("undelivered", 0) + counts.get("partly-sent", 0)
        if missed:
            summary += f", {missed} not delivered to every list"
    else:
        summary = (
            f"dry run: {counts.get('new', 0)} alert(s) would be sent, "
            f"{counts.get('already-sent', 0)} already sent; use --send to send them"
        )
        if run.troubled():
            summary += f"; {len(run.troubled())} would miss a list"
    if counts.get("unrouted"):
        summary += f"; {counts['unrouted']} with no list routed"
    click.echo(summary)
    if failure:
        raise VaultError(failure)


@alerts_group.command("routes")
@json_option
@pass_vault
def alerts_routes(vault: Vault, as_json: bool) -> None:
    """Show which distribution lists receive which milestone rules' alerts.

    \b
        atmpvault alerts routes --json
    """
    from atmpvault.archive.regulatory.alerts import Alerts

    routes = Alerts(vault).routes()
    if as_json:
        emit_json([{"list": n, "rules": list(r)} for n, r in sorted(routes.items())])
    else:
        table([(n, " ".join(r)) for n, r in sorted(routes.items())], ["LIST", "RULES"])


@alerts_group.command("route")
@click.argument("name", metavar="LIST")
@click.argument("rules", nargs=-1, metavar="[RULE...]")
@click.option("--reason", required=True, help="Why the routing changes (kept in the history).")
@user_option
@json_option
@pass_vault
def alerts_route(
    vault: Vault,
    name: str,
    rules: tuple[str, ...],
    reason: str,
    user: str | None,
    as_json: bool,
) -> None:
    """Route milestone rules' alerts to a list ("*" for every rule); no RULE stops them.

    The rules must be the vault's milestone rules and the list must be defined
    (`atmpvault lists set`).

    \b
        atmpvault alerts route quality-leadership BPDR CBE0 --reason "QA asked to be told"
        atmpvault alerts route manufacturing-leadership --reason "told through QA now"
    """
    from atmpvault.archive.regulatory.alerts import Alerts

    routes = Alerts(vault).set_route(name, rules, reason)
    if as_json:
        emit_json({"list": name, "rules": list(routes.get(name, ()))})
    else:
        click.echo(f"{name}: {' '.join(rules)}" if rules else f"{name}: no alerts")


def _period_given(ctx: click.Context, param: click.Parameter, week: bool) -> bool:
    """Refuse a digest without its period before the vault is opened."""
    if not week:
        raise click.UsageError("name the period: --week (the only one so far)", ctx)
    return week


@alerts_group.command("digest")
@click.option(
    "--week",
    is_flag=True,
    callback=_period_given,
    help="The weekly digest (the only period so far).",
)
@click.option("--send", is_flag=True, help="Send the digests (without it: a dry run).")
@today_option
@user_option
@json_option
@pass_vault
def alerts_digest(
    vault: Vault, week: bool, send: bool, today: str | None, user: str | None, as_json: bool
) -> None:
    """Send each routed list one notice a week: overdue, due and completed milestones.

    For the rules routed to it (`atmpvault alerts routes`), each list is told what is
    overdue, what falls due from today through 7 days ahead, and what was completed
    or waived in the 7 days up to today, grouped by program and application. A list
    with nothing to say is sent nothing. Each list gets one digest per ISO week however
    often this runs; without --send it only shows what would be sent. A list that
    cannot be reached holds back no other: what was missed is recorded and named on
    stderr (exit 1), and the next --send that week sends it.

    \b
        atmpvault alerts digest --week                 # dry run
        atmpvault alerts digest --week --send          # e.g. Mondays from cron
    """
    from atmpvault.archive.regulatory.digest import SECTIONS, STATUSES, WeeklyDigest, iso_week
    from atmpvault.errors import VaultError

    run = WeeklyDigest(vault).run(today_for(vault, today), send=send)
    failure = run.failure()
    if as_json:
        emit_json([d.to_json() for d in run.digests])
        if failure:
            raise VaultError(failure)
        return
    shown = {"new": "would send" if not send else "new", "nothing": "nothing to say"}
    table(
        [
            (
                shown.get(d.status, d.status),
                d.list,
                *(d.sections.counts()[s] for s in SECTIONS),
                d.notice or "",
            )
            for d in run.digests
        ],
        ["STATUS", "LIST", "OVERDUE", "DUE", "COMPLETED", "NOTICE"],
    )
    for digest in run.troubled():
        word = "NOT DELIVERED" if send else "WILL MISS"
        for problem in digest.problems:
            click.echo(f"{word}: digest for {digest.list}: {problem}")
    if not send:
        for digest in run.digests:
            if digest.status == "new":
                click.echo(f"\n{digest.list}: {digest.subject}")
                _digest_rows(digest)
    counts = {s: sum(1 for d in run.digests if d.status == s) for s in STATUSES}
    week_label = iso_week(run.today)
    if send:
        summary = (
            f"{len(run.sent)} digest(s) sent for {week_label}, "
            f"{counts['already-sent']} already sent"
        )
    else:
        summary = (
            f"dry run: {counts['new']} digest(s) would be sent for {week_label}, "
            f"{counts['already-sent']} already sent; use --send to send them"
        )
    if counts["nothing"]:
        summary += f"; {counts['nothing']} list(s) with nothing to say, sent nothing"
    if not run.digests:
        summary += "; no list has alerts routed to it (atmpvault alerts route)"
    click.echo(summary)
    if failure:
        raise VaultError(failure)


def _digest_rows(digest: Digest) -> None:
    """The milestones a digest would carry, one line each, for a dry run."""
    from atmpvault.archive.regulatory.digest import SECTIONS

    rows = [
        (
            section,
            m.program,
            m.app,
            m.rule,
            m.due.isoformat(),
            f"{m.closure.state} {m.closure.on.isoformat()}" if m.closure else m.days_left,
        )
        for section in SECTIONS
        for m in getattr(digest.sections, section)
    ]
    table(rows, ["SECTION", "PROGRAM", "APP", "RULE", "DUE", "DAYS/CLOSED"])


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(alerts_group)
