"""Notice commands: distribution lists and the notices sent."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import emit_json, json_option, pass_vault, table, user_option

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


# -- distribution lists ------------------------------------------------------------------------


@click.group("lists")
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
@json_option
@pass_vault
def lists_rm(vault: Vault, name: str, reason: str, user: str | None, as_json: bool) -> None:
    """Remove a distribution list that no alerts are routed to.

    \b
        atmpvault lists rm cmc-working-group --reason "group dissolved"
    """
    from atmpvault.archive.core.notices import DistributionLists

    DistributionLists(vault).remove(name, reason)
    if as_json:
        emit_json({"name": name, "removed": True})
    else:
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


@click.group("notices")
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


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(lists_group)
    cli.add_command(notices_group)
