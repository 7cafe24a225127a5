"""The `atmpvault` command line: parse, open the vault, call the domain, render.

The core's commands are added here; each workflow adds its own through the
`commands` hook of its Domain descriptor. Heavy libraries (SQLAlchemy, GitPython,
the search engines) are imported inside the commands that need them, so the CLI
answers fast.
"""

from __future__ import annotations

from atmpvault.archive.core.domain import load
from atmpvault.archive.domains import domains
from atmpvault.cli.base import cli

__all__ = ["cli", "main"]

# The core's commands loaded on first use, with their one-line help (their docstrings').
CORE_LAZY: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("atmpvault.cli.vaultops:register", (
        ("init", "Create a new, empty vault."),
        ("log", "The audit trail: every write of every document and record."),
        ("verify", "Re-hash every version, run git's integrity check, compare the catalog."),
        ("rebuild", "Rebuild the catalog and the index from the repository alone."),
        ("demo",
         "Build a realistic sample vault and show it: ls, a history, an as-of answer, verify."),
    )),
    ("atmpvault.cli.search:register", (
        ("search",
         'Full-text search: terms, "phrases", AND/OR/NOT, field:value, prefix*, fuzzy~.'),
    )),
    ("atmpvault.cli.notices:register", (
        ("lists",
         "Distribution lists for notices, kept in the vault's versioned configuration."),
        ("notices", "Notices sent (alerts and others), as recorded in the archive."),
    )),
    ("atmpvault.cli.people:register", (
        ("people",
         "The people workflow steps name (deviation owners, approvers) and their addresses."),
    )),
    ("atmpvault.cli.configuration:register", (
        ("config",
         "The vault's settings, kept in its versioned configuration (config/vault.json)."),
    )),
    ("atmpvault.cli.users:register", (
        ("users", "The vault's users: logins, printed names, roles and signing keys."),
        ("sign", "Sign the current version of a document or record (DOC@V, REC@V, KIND:ID@V)."),
        ("signatures",
         "List the signatures of a document or record (ID, or one version: ID@V)."),
    )),
    ("atmpvault.cli.team:register", (
        ("init-shared",
         "Create a shared upstream: a bare repository whose history can only grow."),
        ("clone", "Make a workstation vault from a shared upstream (any git URL)."),
        ("publish",
         "Publish this vault's history to a new, empty shared repository, its upstream from now."),
        ("remote", "The shared upstream this vault publishes to."),
        ("sync", "Bring this vault up to the upstream's tip and catch its catalog and index up."),
    )),
)  # fmt: skip

for _register, _commands in CORE_LAZY:  # imported when one of them is used
    cli.add_lazy(_register, _commands)
for _domain in domains():
    if _domain.commands is None:
        continue
    if _domain.command_help:  # loaded when one of its commands is used
        cli.add_lazy(_domain.commands, _domain.command_help)
    else:
        load(_domain.commands)(cli)


def main() -> None:
    cli(prog_name="atmpvault")
