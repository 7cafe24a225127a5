"""Notice commands: distribution lists, the notices sent, and milestone alerts."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import cli, emit_json, json_option, pass_vault, table, user_option

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


# -- distribution lists ------------------------------------------------------------------------


@cli.group("lists")
def lists_group() -> None:
    """Distribution lists for notices, kept in the vault's versioned configuration.

    \b
        atmpvault lists set regulatory-leadership ra.head@example.org --reason "new RA head"
        atmpvault lists ls
    """


@lists_group.command("set")
@click.argument("name")
@click.argument("addresses", nargs=-1, required=True, metavar="ADDRESS...")
@click.option("--reason", required=True, help="Why the list changes (kept in the history).")
@user_option
@json_option
@pass_vault
def lists_set(
    vault: Vault,
    name: str,
    addresses: tuple[str, ...],
    reason: str,
    user: str | None,
    as_json: bool,
) -> None:
    """Create a distribution list, or replace its addresses.

    \b
        atmpvault lists set regulatory-leadership ra.head@example.org cmo@example.org \\
            --reason "RA head joins"
    """
    from atmpvault.archive.core.notices import DistributionLists

    saved = DistributionLists(vault).set(name, addresses, reason)
    if as_json:
        emit_json({"name": name, "addresses": list(saved)})
    else:
        click.echo(f"{name}: {', '.join(saved)}")


@lists_group.command("rm")
@click.argument("name")
@click.option("--reason", required=True, help="Why the list goes (kept in the history).")
@user_option
@pass_vault
def lists_rm(vault: Vault, name: str, reason: str, user: str | None) -> None:
    """Remove a distribution list.

    \b
        atmpvault lists rm cmc-working-group --reason "group dissolved"
    """
    from atmpvault.archive.core.notices import DistributionLists

    DistributionLists(vault).remove(name, reason)
    click.echo(f"removed list {name}")


@lists_group.command("ls")
@json_option
@pass_vault
def lists_ls(vault: Vault, as_json: bool) -> None:
    """List the distribution lists and their addresses.

    \b
        atmpvault lists ls --json
    """
    from atmpvault.archive.core.notices import DistributionLists

    lists = DistributionLists(vault).all()
    if as_json:
        emit_json([{"name": n, "addresses": list(a)} for n, a in lists.items()])
    else:
        table([(n, ", ".join(a)) for n, a in lists.items()], ["LIST", "ADDRESSES"])


# -- notices -----------------------------------------------------------------------------------


@cli.group("notices")
def notices_group() -> None:
    """Notices sent (alerts and others), as recorded in the archive.

    \b
        atmpvault notices ls --json
        atmpvault notices show NTC-20260301-070000-3FA2C1
    """


@notices_group.command("ls")
@click.option("--key", "key_prefix", metavar="PREFIX", help="Only notices whose key starts so.")
@json_option
@pass_vault
def notices_ls(vault: Vault, key_prefix: str | None, as_json: bool) -> None:
    """List the notices sent, oldest first.

    \b
        atmpvault notices ls --key milestone/IND-012345/ --json
    """
    from atmpvault.archive.core.notices import Notices

    found = [n for n in Notices(vault).all() if not key_prefix or n.key.startswith(key_prefix)]
    if as_json:
        emit_json([n.to_json() for n in found])
    else:
        table(
            [(n.id, n.sent_at[:19], n.delivery, ",".join(n.lists), n.subject) for n in found],
            ["NOTICE", "SENT (UTC)", "VIA", "LISTS", "SUBJECT"],
        )


@notices_group.command("show")
@click.argument("notice_id", metavar="NOTICE")
@json_option
@pass_vault
def notices_show(vault: Vault, notice_id: str, as_json: bool) -> None:
    """Show one notice: to whom, when, how, and its text.

    \b
        atmpvault notices show NTC-20260301-070000-3FA2C1
    """
    from atmpvault.archive.core.notices import Notices

    notice = Notices(vault).get(notice_id)
    if as_json:
        emit_json({**notice.to_json(), "text": notice.text})
        return
    data = notice.to_json()
    for field in ("id", "key", "subject", "sent_at", "delivery", "message_id", "sender", "actor"):
        click.echo(f"{field:11} {data[field]}")
    click.echo(f"{'lists':11} {', '.join(notice.lists)}")
    click.echo(f"{'to':11} {', '.join(notice.to)}")
    if notice.refused:
        click.echo(f"{'refused':11} {', '.join(notice.refused)}")
    click.echo("")
    click.echo(notice.text.rstrip("\n"))


# -- alerts ------------------------------------------------------------------------------------


def _today(value: str | None) -> date:
    from atmpvault.archive.core import values
    from atmpvault.errors import InvalidInput

    if value is None:
        return values.now().date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--today {value[:40]!r} is not a date: use YYYY-MM-DD") from None


@cli.group("alerts", invoke_without_command=True)
@click.option(
    "--days",
    type=click.IntRange(0, 366),
    default=30,
    show_default=True,
    help="Alert milestones due within this many days (and every overdue one).",
)
@click.option("--send", is_flag=True, help="Send the new alerts (without it: a dry run).")
@click.option("--today", "today_text", hidden=True, metavar="DATE", help="Pretend today is DATE.")
@user_option
@json_option
@click.pass_context
def alerts_group(
    ctx: click.Context,
    days: int,
    send: bool,
    today_text: str | None,
    user: str | None,
    as_json: bool,
) -> None:
    """Alert the distribution lists to milestones coming due and overdue.

    Each milestone is alerted once per threshold: due within --days, due within
    7 days, overdue. Running it daily (e.g. from cron) sends no duplicates. Without
    --send it only shows what would be sent. Which lists hear of which rules is
    `atmpvault alerts routes` (default: regulatory-leadership every rule,
    manufacturing-leadership PAS, CBE30, CBE0 and BPDR).

    \b
        atmpvault alerts                      # dry run: what is owed today
        atmpvault alerts --days 14 --send     # e.g. daily from cron
    """
    if ctx.invoked_subcommand is not None:
        return
    ctx.invoke(_run_alerts, days=days, send=send, today_text=today_text, user=user, as_json=as_json)


@pass_vault
def _run_alerts(
    vault: Vault, days: int, send: bool, today_text: str | None, user: str | None, as_json: bool
) -> None:
    from atmpvault.archive.regulatory.alerts import Alerts

    run = Alerts(vault).run(_today(today_text), days, send=send)
    if as_json:
        emit_json([a.to_json() for a in run.alerts])
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
    counts = run.counts()
    if send:
        summary = f"{len(run.sent)} alert(s) sent, {counts.get('already-sent', 0)} already sent"
    else:
        summary = (
            f"dry run: {counts.get('new', 0)} alert(s) would be sent, "
            f"{counts.get('already-sent', 0)} already sent; use --send to send them"
        )
    if counts.get("unrouted"):
        summary += f"; {counts['unrouted']} with no list routed"
    click.echo(summary)


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
@pass_vault
def alerts_route(
    vault: Vault, name: str, rules: tuple[str, ...], reason: str, user: str | None
) -> None:
    """Route milestone rules' alerts to a list ("*" for every rule); no RULE stops them.

    \b
        atmpvault alerts route quality-leadership BPDR CBE0 --reason "QA asked to be told"
        atmpvault alerts route manufacturing-leadership --reason "told through QA now"
    """
    from atmpvault.archive.regulatory.alerts import Alerts

    Alerts(vault).set_route(name, rules, reason)
    click.echo(f"{name}: {' '.join(rules)}" if rules else f"{name}: no alerts")
