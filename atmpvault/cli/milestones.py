"""Milestone commands: mark an obligation done or waived, or open it again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import (
    emit_json,
    json_option,
    pass_vault,
    today_for,
    today_option,
    user_option,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.group("milestone")
def milestone() -> None:
    """Close milestones: done (with evidence), waived, or reopened.

    Finalised sequences and FDA action events close what they answer on their own
    (an annual-report sequence, an approval); these commands record the rest.

    \b
        atmpvault milestone done IND-012345 IND_ANNUAL --cycle 1 --on 2027-03-30 \\
            --sequence 0007 --reason "annual report submitted"
        atmpvault milestone waive IND-012345 NEW_INVESTIGATOR --event EV-000031 \\
            --reason "investigator withdrew before enrolling"
    """


def _which(func: Any) -> Any:
    for option in reversed(
        [
            click.argument("app", metavar="APP"),
            click.argument("rule", metavar="RULE"),
            click.option("--cycle", type=int, help="The cycle of a recurring rule (1 = first)."),
            click.option("--event", metavar="EV", help="The event that created the obligation."),
            click.option("--reason", required=True, help="Why (kept in the history)."),
            today_option,
            user_option,
            json_option,
        ]
    ):
        func = option(func)
    return func


@milestone.command("done")
@_which
@click.option("--on", "on", required=True, metavar="DATE", help="When it was done, YYYY-MM-DD.")
@click.option("--evidence", metavar="DOC[@V]", help="The document version that shows it.")
@click.option("--sequence", metavar="NNNN", help="The submitted sequence that did it.")
@pass_vault
def milestone_done(
    vault: Vault, on: str, evidence: str | None, sequence: str | None, **which: Any
) -> None:
    """Mark an obligation done: when, and with what evidence.

    Without --cycle or --event: the oldest open obligation of the rule.

    \b
        atmpvault milestone done IND-012345 IND_ANNUAL --cycle 2 --on 2027-03-30 \\
            --sequence 0007 --reason "annual report submitted"
        atmpvault milestone done IND-012345 SAFETY_15D --event EV-000031 --on 2026-12-01 \\
            --evidence DOC-000412@1 --reason "sent by the safety vendor"
    """
    from atmpvault.archive.core import values
    from atmpvault.archive.regulatory.obligations import DONE

    day = values.day(on, "--on", vault.config.dates)
    _record(vault, DONE, which, on=day, evidence=evidence, sequence=sequence)


@milestone.command("waive")
@_which
@pass_vault
def milestone_waive(vault: Vault, **which: Any) -> None:
    """Waive an obligation that is not owed after all (the reason says why).

    \b
        atmpvault milestone waive IND-012345 NEW_INVESTIGATOR --event EV-000031 \\
            --reason "investigator withdrew before enrolling"
    """
    from atmpvault.archive.regulatory.obligations import WAIVED

    _record(vault, WAIVED, which)


@milestone.command("reopen")
@_which
@pass_vault
def milestone_reopen(vault: Vault, **which: Any) -> None:
    """Undo a wrong completion or waiver; both stay in the history. A reopened
    obligation stays open: no sequence or event closes it again by itself.

    \b
        atmpvault milestone reopen IND-012345 IND_ANNUAL --cycle 1 --reason "wrong year"
    """
    from atmpvault.archive.regulatory.obligations import OPEN

    _record(vault, OPEN, which)


def _record(vault: Vault, state: str, given: dict[str, Any], **extra: Any) -> None:
    from atmpvault.archive.regulatory.completion import Which, record_state

    which = Which(given["app"], given["rule"], given["cycle"], given["event"])
    today = today_for(vault, given["today"])
    found = record_state(vault, which, state, today, given["reason"], **extra)
    if given["as_json"]:
        emit_json(found.to_json())
        return
    c = found.closure
    done = f"{c.state} on {c.on.isoformat()} by {c.by}" if c else "open again"
    evidence = f" ({c.evidence})" if c and c.evidence else ""
    click.echo(f"{found.key}  due {found.due.isoformat()}  {done}{evidence}")


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(milestone)
