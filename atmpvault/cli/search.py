"""Full-text search."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import (
    emit_json,
    json_option,
    pass_vault,
    when_option,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.command()
@click.argument("words", nargs=-1, metavar="QUERY...")
@click.option("--program", help="Only this program.")
@click.option("--type", "doc_type", help="Only this document type.")
@click.option("--lot", help="Only this lot.")
@click.option("--app", help="Only versions in a sequence of this application, e.g. IND-012345.")
@click.option("--sequence", "seq", metavar="NNNN", help="Only versions in this sequence.")
@click.option("--since", metavar="WHEN", help="Versions recorded at or after this time.")
@click.option("--until", metavar="WHEN", help="Versions recorded at or before this time.")
@click.option("--all-versions", is_flag=True, help="Search every version, not only the latest.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--facets", is_flag=True, help="Add counts by program and type.")
@json_option
@pass_vault
def search(
    vault: Vault,
    words: tuple[str, ...],
    program: str | None,
    doc_type: str | None,
    lot: str | None,
    app: str | None,
    seq: str | None,
    since: str | None,
    until: str | None,
    all_versions: bool,
    limit: int,
    facets: bool,
    as_json: bool,
) -> None:
    """Full-text search: terms, "phrases", AND/OR/NOT, field:value, prefix*, fuzzy~.

    Several arguments are one query (`search viability sterility` finds both words).
    If the index cannot be brought up to date (a damaged object), the answer comes from
    the index as it stands, with a warning on stderr.

    \b
        atmpvault search '"temperature excursion" AND lot:C19-2026-001'
        atmpvault search 'viability~ NOT withdrawn' --program CART-19 --facets
        atmpvault search 'recorded_at:[2026-01-01 TO 2026-06-30] AND type:batch-record'
        atmpvault search potency --app IND-012345 --sequence 0003
        atmpvault search viability sterility
    """
    from atmpvault.archive.core import values
    from atmpvault.errors import QueryError
    from atmpvault.indexer.index import SearchFilters

    query = " ".join(words).strip()
    if not query:
        raise QueryError("the search query is empty: give words to find, or '*' for everything")

    tags: tuple[tuple[str, str], ...] = ()
    if app is not None or seq is not None:
        from atmpvault.archive.regulatory.submissions.service import search_filter

        tags = search_filter(app, seq)

    filters = SearchFilters(
        program=values.program(program) if program is not None else None,
        type=vault.document_type(doc_type) if doc_type is not None else None,
        lot=values.lot(lot),
        since=when_option(vault, since, start_of_day=True),
        until=when_option(vault, until),
        tags=tags,
        all_versions=all_versions or bool(tags),
        zone=lambda: vault.config.zone,  # read only for a date in the query
    )
    result = vault.search(query, filters, limit=limit, facets=facets)
    if as_json:
        emit_json(
            {
                "query": result.query,
                "total": result.total,
                "hits": [
                    {
                        "kind": h.kind,
                        "id": h.id,
                        "version": h.version,
                        "title": h.title,
                        "program": h.program,
                        "type": h.type,
                        "lot": h.lot,
                        "status": h.status,
                        "score": round(h.score, 4),
                        "snippet": h.snippet,
                    }
                    for h in result.hits
                ],
                "facets": result.facets,
            }
        )
        return
    click.echo(f"{result.total} match(es) for {query!r}")
    for hit in result.hits:
        lot_text = f"  lot {hit.lot}" if hit.lot else ""
        kind = "" if hit.kind == "document" else f"{hit.kind} "
        status = "" if hit.status == "active" else f"  [{hit.status.upper()}]"
        click.echo(
            f"\n{kind}{hit.id} v{hit.version}{status}  {hit.score:.2f}  {hit.program}  "
            f"{hit.type}{lot_text}"
            f"\n  {hit.title or ''}"
        )
        if hit.snippet:
            click.echo(f"  {hit.snippet}")
    if result.facets:
        for name, counts in result.facets.items():
            click.echo(f"\nby {name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(search)
