"""Bundle commands: check an auditor bundle (`lot export`) offline, without a vault."""

from __future__ import annotations

from pathlib import Path

import click

from atmpvault.cli.base import emit_json, json_option


@click.group("bundle")
def bundle() -> None:
    """Auditor bundles written by 'atmpvault lot export'.

    \b
        atmpvault bundle verify L-0042-bundle.zip
    """


@bundle.command("verify")
@click.argument("path", metavar="BUNDLE", type=click.Path(path_type=Path))
@json_option
def bundle_verify(path: Path, as_json: bool) -> None:
    """Check a bundle against its manifest, offline: exit 3 naming each difference.

    Every file listed must be there with its SHA-256 and size, nothing else may be, and
    manifest.sha256 must agree with manifest.json.

    \b
        atmpvault bundle verify L-0042-bundle.zip
    """
    from atmpvault.archive.lots.bundle import verify_bundle
    from atmpvault.errors import IntegrityError

    report = verify_bundle(path)
    if as_json:
        emit_json(report.to_json())
    elif not report.problems:
        click.echo(f"bundle OK: {report.files} files")
    else:
        for problem in report.problems:
            click.echo(problem)
    if report.problems:
        raise IntegrityError(f"{path}: {len(report.problems)} difference(s) from its manifest")


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(bundle)
