"""Bulk import: a folder, one file or a CSV manifest, one document per file, resumable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from atmpvault.cli.base import (
    emit_json,
    exit_with,
    json_option,
    open_vault,
    progress,
    showing_progress,
    table,
)


@click.command("import")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("--program", help="Program for every file (folder), or the manifest's default.")
@click.option("--type", "doc_type", help="Document type for every file, or the manifest's default.")
@click.option(
    "--manifest",
    type=click.Path(path_type=Path),
    help="A CSV with columns path, program, type, title, lot and meta.* (paths relative to it).",
)
@click.option(
    "--allow-duplicate",
    is_flag=True,
    help="Archive files whose bytes another document holds under another name.",
)
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    source: Path | None,
    program: str | None,
    doc_type: str | None,
    manifest: Path | None,
    allow_duplicate: bool,
    as_json: bool,
) -> None:
    """Import a folder (recursively), one file, or a CSV manifest, one document per file.

    A file whose bytes are already archived under the same file name is skipped, so
    an interrupted import is resumed by running it again. The same bytes under
    another name are refused, naming the document that holds them, unless
    --allow-duplicate is given. A title defaults to the file name without extension.

    \b
        atmpvault import ./scans/2025 --program CART-19 --type batch-record
        atmpvault import ./scans/BR-0042.pdf --program CART-19 --type batch-record
        atmpvault import --manifest legacy/manifest.csv
    """
    from atmpvault.archive.documents.importer import (
        ImportReport,
        plan_folder,
        plan_manifest,
        run_import,
    )
    from atmpvault.errors import NotFound

    if manifest is None and source is not None and source.suffix.lower() == ".csv":
        manifest, source = source, None
    if (manifest is None) == (source is None):
        raise click.UsageError(
            "give a FOLDER or FILE to import, or --manifest FILE.csv (not both)", ctx
        )
    with open_vault(ctx) as vault:
        report = ImportReport()
        if manifest is not None:
            if not manifest.is_file():
                raise NotFound(f"no such manifest: {manifest}")
            items = plan_manifest(vault, manifest, program, doc_type, report)
        else:
            assert source is not None
            if not source.exists():
                raise NotFound(f"no such file or folder: {source}")
            items = plan_folder(vault, source, program, doc_type, report)
        # The files are counted (a second walk) only for a progress bar someone sees.
        length = items.count() if showing_progress(as_json) else 0
        with progress(length, "Importing", as_json) as update:
            run_import(vault, items, report, progress=update, allow_duplicate=allow_duplicate)
    try:
        if as_json:
            report.write_json(sys.stdout)  # streamed: the spooled entries are never all held
        else:
            _render_report(report.to_json(), as_json)
    finally:
        report.close()
    if report.refused:
        exit_with(1)


def _render_report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(summary)
        return
    line = (
        f"imported {summary['imported']}, skipped {summary['skipped']} already archived, "
        f"refused {len(summary['refused'])}, not searchable {len(summary['unsearchable'])}"
    )
    if summary["symlinks_skipped"]:
        line += f", symbolic links skipped {len(summary['symlinks_skipped'])}"
    click.echo(line)
    if summary["documents"]:
        click.echo("")
        table(
            [(d["id"], d["path"], d["title"]) for d in summary["documents"]],
            ["ID", "PATH", "TITLE"],
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
