"""The directory of people: names the workflows' steps use, and their e-mail addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import emit_json, json_option, pass_vault, table, user_option

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.group("people")
def people() -> None:
    """The people workflow steps name (deviation owners, approvers) and their addresses.

    \b
        atmpvault people set "Dana Whitfield" dana.whitfield@example.com --reason "QA investigator"
        atmpvault people ls
    """


@people.command("set")
@click.argument("name")
@click.argument("address")
@click.option("--reason", required=True, help="Why (kept in the history).")
@user_option
@json_option
@pass_vault
def people_set(
    vault: Vault, name: str, address: str, reason: str, user: str | None, as_json: bool
) -> None:
    """Add a person to the directory, or change their address.

    \b
        atmpvault people set "Dana Whitfield" dana.whitfield@example.com --reason "joined QA"
    """
    from atmpvault.archive.core.people import People

    stored = People(vault).set(name, address, reason)
    if as_json:
        emit_json({"name": name, "address": stored})
        return
    click.echo(f"{name}  {stored}")


@people.command("ls")
@json_option
@pass_vault
def people_ls(vault: Vault, as_json: bool) -> None:
    """List the directory of people.

    \b
        atmpvault people ls --json
    """
    from atmpvault.archive.core.people import People

    found = People(vault).all()
    if as_json:
        emit_json([{"name": n, "address": a} for n, a in found.items()])
        return
    table(list(found.items()), ["NAME", "ADDRESS"])


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(people)
