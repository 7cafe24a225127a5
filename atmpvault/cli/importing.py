"""Bulk import: a folder or a CSV manifest, one document per file, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import emit_json, exit_with, json_option, pass_vault, progress, table

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.command("import")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("--program", help="Program for every file (folder), or the manifest's default.")
@click.option("--type", "doc_type", help="Document type for every file, or the manifest's default.")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="A CSV with columns path, program, type, title, lot and meta.* (paths relative to it).",
)
@json_option
@pass_vault
def import_(
    vault: Vault,
    source: Path | None,
    program: str | None,
    doc_type: str | None,
    manifest: Path | None,
    as_json: bool,
) -> None:
    """Import a folder (recursively) or a CSV manifest, one document per file.

    Files already archived with the same SHA-256 are skipped, so an interrupted
    import is resumed by running it again.

    \b
        atmpvault import ./scans/2025 --program CART-19 --type batch-record
        atmpvault import --manifest legacy/manifest.csv
    """
    from atmpvault.archive.documents.importer import (
        ImportReport,
        plan_folder,
        plan_manifest,
        run_import,
    )
    from atmpvault.errors import InvalidInput, NotFound

    if manifest is None and source is not None and source.suffix.lower() == ".csv":
        manifest, source = source, None
    if (manifest is None) == (source is None):
        raise InvalidInput("give a folder to import, or --manifest FILE.csv (not both)")
    report = ImportReport()
    if manifest is not None:
        if not manifest.is_file():
            raise NotFound(f"no such manifest: {manifest}")
        items = plan_manifest(vault, manifest, program, doc_type, report)
    else:
        assert source is not None
        if not source.is_dir():
            raise NotFound(f"no such folder: {source}")
        items = plan_folder(vault, source, program, doc_type, report)
    with progress(len(items), "Importing", as_json) as update:
        run_import(vault, items, report, progress=update)
    _render_report(report.to_json(), as_json)
    if report.refused:
        exit_with(1)


def _render_report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"imported {summary['imported']}, skipped {summary['skipped']} already archived, "
        f"refused {len(summary['refused'])}, not searchable {len(summary['unsearchable'])}"
    )
    if summary["unsearchable"]:
        click.echo("\nNot searchable (archived byte for byte):")
        table(
            [(u["id"], u["path"], u["reason"]) for u in summary["unsearchable"]],
            ["ID", "PATH", "REASON"],
        )
    for refused in summary["refused"]:
        click.echo(f"atmpvault: refused {refused['path']}: {refused['error']}", err=True)


def register(cli: click.Group) -> None:
    """Add the import command to the command line."""
    cli.add_command(import_)
