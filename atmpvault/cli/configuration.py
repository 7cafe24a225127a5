"""The vault's settings: its time zone, the dates people may enter, its holiday calendar
and the sponsor's target dates."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import emit_json, json_option, pass_vault, table, user_option

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.group("config")
def config_group() -> None:
    """The vault's settings, kept in its versioned configuration (config/vault.json).

    \b
        atmpvault config show
        atmpvault config set timezone America/New_York --reason "site in New York"
    """


@config_group.command("show")
@json_option
@pass_vault
def config_show(vault: Vault, as_json: bool) -> None:
    """Every setting and its value, and what today is in the vault's time zone.

    \b
        atmpvault config show --json
    """
    from atmpvault.archive.core.configuration import Configuration

    shown = Configuration(vault).show()
    today = vault.config.dates.today().isoformat()
    if as_json:
        emit_json(
            {
                "timezone": shown["timezone"],
                "dates": {
                    "earliest": shown["dates.earliest"],
                    "years_ahead": shown["dates.years_ahead"],
                },
                "holidays": shown["holidays"],
                "targets": {
                    key.removeprefix("targets."): days
                    for key, days in shown.items()
                    if key.startswith("targets.")
                },
                "today": today,
                **_sections(shown),
            }
        )
    else:
        rows = [(k, v if isinstance(v, str | int) else json.dumps(v)) for k, v in shown.items()]
        table([*rows, ("(today)", today)], ["SETTING", "VALUE"])


def _sections(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The workflows' settings (quality.buckets ...), grouped by workflow for JSON."""
    from atmpvault.archive.core.configuration import WORKFLOW_SECTIONS

    grouped: dict[str, dict[str, Any]] = {}
    for key, value in shown.items():
        section, _, name = key.partition(".")
        if section in WORKFLOW_SECTIONS:
            grouped.setdefault(section, {})[name] = value
    return grouped


@config_group.command("set")
@click.argument("key")
@click.argument("value")
@click.option("--reason", required=True, help="Why the setting changes (kept in the history).")
@user_option
@json_option
@pass_vault
def config_set(
    vault: Vault, key: str, value: str, reason: str, user: str | None, as_json: bool
) -> None:
    """Change one setting: one commit with the reason, shown by `log` as set-config.

    \b
    Settings:
      timezone           an IANA name (America/New_York, Europe/Berlin, UTC): the
                         calendar days of due dates and "today", and the zone of a
                         date or time typed without an offset; times stay stored in UTC
      dates.earliest     the first date the vault accepts, YYYY-MM-DD
      dates.years_ahead  how many years past today it accepts dates (0 to 100)
      holidays           the holiday calendar due dates are flagged against: a country
                         code, optionally with a subdivision (US, the default; US-CA;
                         DE-BY), or none (weekends only)
      targets.KIND       the sponsor's own target, in days before the due date, for
                         milestones of KIND (sponsor-due, fda-due...); 0 removes it
      quality.classes    deviation classes and their investigation due days (JSON)
      quality.buckets    the last day of each aging bucket, e.g. [7, 14, 30]
      quality.warning_days  escalate items due within so many days (a warning)
      quality.escalation escalation levels: [{"level", "after_days", "lists"}...]

    \b
        atmpvault config set timezone America/New_York --reason "sponsor site in New York"
        atmpvault config set dates.earliest 2015-01-01 --reason "no program is older"
        atmpvault config set targets.sponsor-due 10 --reason "package ready 10 days early"
        atmpvault config set quality.classes '{"minor": 45, "major": 30, "critical": 15}' \\
            --reason "SOP-QA-012 rev 4"
    """
    from atmpvault.archive.core.configuration import Configuration

    change = Configuration(vault).set(key, value, reason)
    if as_json:
        emit_json(change.to_json())
    else:
        click.echo(f"{change.key}: {change.value} (was {change.previous})")


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(config_group)
