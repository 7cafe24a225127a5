"""The `atmpvault` command line: parse, open the vault, call the domain, render.

One module per command group; heavy libraries (SQLAlchemy, GitPython, the search
engines) are imported inside the commands that need them, so the CLI answers fast.
"""

from __future__ import annotations

from atmpvault.cli import alerts, documents, packages, regulatory, search, vaultops  # noqa: F401  (they register commands)
from atmpvault.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    cli(prog_name="atmpvault")
