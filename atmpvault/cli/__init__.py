"""The `atmpvault` command line: parse, open the vault, call the domain, render.

The core's commands are added here; each workflow adds its own through the
`commands` hook of its Domain descriptor. Heavy libraries (SQLAlchemy, GitPython,
the search engines) are imported inside the commands that need them, so the CLI
answers fast.
"""

from __future__ import annotations

from atmpvault.archive.core.domain import load
from atmpvault.archive.domains import domains
from atmpvault.cli import configuration, notices, people, search, team, users, vaultops
from atmpvault.cli.base import cli

__all__ = ["cli", "main"]

for _module in (vaultops, search, notices, people, users, team, configuration):
    _module.register(cli)
for _domain in domains():
    if _domain.commands is None:
        continue
    if _domain.command_help:  # loaded when one of its commands is used
        cli.add_lazy(_domain.commands, _domain.command_help)
    else:
        load(_domain.commands)(cli)


def main() -> None:
    cli(prog_name="atmpvault")
