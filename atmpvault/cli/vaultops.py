"""Vault-wide commands: init, log, verify, rebuild, demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import (
    distinct_times,
    emit_json,
    exit_with,
    json_option,
    list_versions,
    moment_for,
    pass_vault,
    progress,
    settings_for,
    show_version,
    table,
    user_option,
)
from atmpvault.errors import IntegrityError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.command()
@click.option(
    "--index-engine",
    type=click.Choice(["tantivy", "whoosh"]),
    default="tantivy",
    show_default=True,
    help="The full-text engine (whoosh is pure Python, slower).",
)
@user_option
@json_option
@click.pass_context
def init(ctx: click.Context, index_engine: str, user: str | None, as_json: bool) -> None:
    """Create a new, empty vault.

    \b
        atmpvault --vault /srv/atmp/vault init
    """
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.domains import domains

    settings = settings_for(ctx, user)
    Vault.create(settings, domains(), user, index_engine).close()
    if as_json:
        emit_json({"vault": str(settings.vault), "index_engine": index_engine})
    else:
        click.echo(f"Initialised an empty vault in {settings.vault}")


@click.command()
@click.option("--since", metavar="WHEN", help="Writes at or after this time.")
@click.option("--until", metavar="WHEN", help="Writes at or before this time.")
@click.option("--user", "who", help="Only this actor's writes.")
@click.option("--kind", metavar="KIND", help="Only writes to records of this kind (e.g. event).")
@click.option(
    "--id", "--doc", "record_id", metavar="ID", help="Only writes to this document or record."
)
@json_option
@pass_vault
def log(
    vault: Vault,
    since: str | None,
    until: str | None,
    who: str | None,
    kind: str | None,
    record_id: str | None,
    as_json: bool,
) -> None:
    """The audit trail: every write of every document and record.

    --id/--doc also lists the writes that put a record into another: a package-add
    under the document version it pins, an event under the letter it records.

    \b
        atmpvault log --since 2026-01-01 --user "J. Rivera"
        atmpvault log --kind event --since 2026-03-01
        atmpvault log --id EV-000042
    """
    from atmpvault.errors import InvalidInput

    kinds = [k.name for k in vault.kinds]
    if kind is not None and kind not in kinds:
        raise InvalidInput(f"unknown record kind {kind!r}; kinds: {', '.join(kinds)}")
    if record_id is not None:
        # A kind named with --kind takes any id of its shape (a lot's, a user's login).
        named = next((k for k in vault.kinds if k.name == kind), None)
        if named is None or not named.is_id(record_id):
            record_id = vault.record_id(record_id)
    start = moment_for(vault, since, start_of_day=True) if since is not None else None
    from atmpvault.archive.core.audit import entries as audit_entries

    entries = audit_entries(
        vault.catalog,
        since=start,
        until=moment_for(vault, until) if until is not None else None,
        user=who,
        kind=kind,
        record_id=record_id,
    )
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    times = distinct_times([e.time for e in entries])
    table(
        [
            (t, e.user, e.action, e.kind, e.id, e.version, e.reason, e.summary, e.commit[:12])
            for t, e in zip(times, entries, strict=True)
        ],
        ["TIME (UTC)", "USER", "ACTION", "KIND", "ID", "V", "REASON", "SUMMARY", "COMMIT"],
    )


@click.command()
@json_option
@pass_vault
def verify(vault: Vault, as_json: bool) -> None:
    """Re-hash every version, run git's integrity check, compare the catalog.

    Exits 3 when anything disagrees. Findings that are not damage (suspected
    duplicate documents) are listed as warnings and do not change the exit code.

    \b
        atmpvault verify
    """
    from atmpvault.archive.core.integrity import verify as check

    warnings: list[dict[str, Any]] = []
    with progress(vault.store.count(), "Verifying", as_json) as update:
        problems = check(vault, update, warnings)
    if as_json:
        report: dict[str, Any] = {"ok": not problems, "problems": problems}
        if warnings:
            report["warnings"] = warnings
        emit_json(report)
    else:
        for warning in warnings:
            click.echo(f"WARNING  {warning['message']}")
        for problem in problems:
            click.echo(f"PROBLEM  {problem}")
        if not problems:
            click.echo(
                "ok: every version re-hashed, git fsck clean, catalog agrees with the repository"
            )
    if problems and as_json:
        exit_with(IntegrityError.exit_code)
    if problems:
        raise IntegrityError(f"verify found {len(problems)} problem(s)")


@click.command()
@click.option(
    "--shared",
    is_flag=True,
    help="Rebuild the team's shared catalog too (every workstation reads it).",
)
@click.option("--index", "index_only", is_flag=True, help="Rebuild this workstation's index only.")
@json_option
@pass_vault
def rebuild(vault: Vault, shared: bool, index_only: bool, as_json: bool) -> None:
    """Rebuild the catalog and the index from the repository alone.

    \b
        atmpvault rebuild
        atmpvault rebuild --index      # a team's workstation: its own index only
        atmpvault rebuild --shared     # the team's shared catalog, deliberately
    """
    with progress(vault.store.count(), "Rebuilding", as_json) as update:
        count = vault.rebuild(update, shared=shared, index_only=index_only)
    if as_json:
        emit_json({"versions": count, "commit": vault.store.head()})
    else:
        click.echo(
            f"catalog and index rebuilt: {count} versions, at commit {str(vault.store.head())[:12]}"
        )


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
def demo(ctx: click.Context, path: Path) -> None:
    """Build a realistic sample vault and show it: ls, a history, an as-of answer, verify.

    \b
        atmpvault demo ./demo-vault
    """
    from datetime import date

    from atmpvault.archive.demo.demo import build_demo
    from atmpvault.archive.regulatory.calendar import app_view, milestone_calendar
    from atmpvault.cli.regulatory import show_app, show_milestones

    # The demo's notices go to its outbox, never to a real mail server.
    settings = settings_for(ctx)._replace(vault=path, user="demo.qa", smtp_host=None)
    with build_demo(settings) as (vault, story):
        click.echo(f"Demo vault built in {path}: {len(story.documents)} documents\n")
        click.echo(f"$ atmpvault --vault {path} ls")
        list_versions(story.documents)
        click.echo(f"\n$ atmpvault --vault {path} history {story.revised}")
        times = distinct_times([r.recorded_at for r in story.history])
        table(
            [
                (r.version, t, r.user, r.action, r.reason)
                for t, r in zip(times, story.history, strict=True)
            ],
            ["V", "RECORDED (UTC)", "USER", "ACTION", "REASON"],
        )
        click.echo(f"\n$ atmpvault --vault {path} show {story.revised} --as-of {story.as_of}")
        show_version(story.as_of_version.to_json())
        today = vault.config.dates.today()
        click.echo(f"\n$ atmpvault --vault {path} app show {story.application}")
        show_app(app_view(vault, story.application, today))
        since = date(2026, 1, 1)  # the demo's story starts then
        click.echo(
            f"\n$ atmpvault --vault {path} calendar --app {story.application} --all "
            f"--from {since.isoformat()}"
        )
        found = milestone_calendar(vault, today, app=story.application, start=since, closed=True)
        show_milestones(found.milestones, states=True)
        from atmpvault.archive.lots.service import contents
        from atmpvault.cli.lots import show_contents

        click.echo(f"\n$ atmpvault --vault {path} lot show {story.lot}")
        show_contents(contents(vault, story.lot))
        click.echo(f"\n$ atmpvault --vault {path} deviation show {story.deviation}")
        from atmpvault.cli.quality import show_deviation

        show_deviation(vault, story.deviation)
        click.echo(f'\n$ atmpvault --vault {path} lot release {story.held} --by "Q. Approver"')
        from atmpvault.archive.lots.service import release_holds

        holds = release_holds(vault, story.held)
        click.echo(f"atmpvault: lot {story.held} cannot be released: " + "; ".join(holds))
        from atmpvault.archive.custody.tables import status

        click.echo(f"\n$ atmpvault --vault {path} custody status")
        table(
            [(r["lot"], r["lot_status"], r["step"], r["at"][:16], r["site"], r["open_breaks"])
             for r in status(vault)],
            ["LOT", "STATUS", "LAST STEP", "AT", "SITE", "OPEN BREAKS"],
        )  # fmt: skip
        from atmpvault.archive.dosing.board import rows, text_board
        from atmpvault.archive.dosing.service import Dosing, find_conflicts

        click.echo(f"\n$ atmpvault --vault {path} dosing board --days 35")
        scheduling = Dosing(vault)
        board = rows(scheduling.active(), find_conflicts(scheduling, today), today, 35)
        click.echo(text_board(board, today, 35), nl=False)
        if story.signatures:
            from atmpvault.archive.core.signatures import manifestation
            from atmpvault.archive.core.users import Users
            from atmpvault.cli.users import shown_user, users_table

            click.echo(f"\n$ atmpvault --vault {path} users ls  # you, as admin: access control on")
            users_table([shown_user(u) for u in Users(vault).all()])
            for signed in story.signatures:
                target = signed["target"]
                named = target["id"] if target["kind"] == "document" else f"{target['kind']}:"
                named += "" if target["kind"] == "document" else target["id"]
                click.echo(f"\n$ atmpvault --vault {path} signatures {named}")
                click.echo(f"{signed['id']}  v{target['version']}  {manifestation(signed)}")
        click.echo(f"\n$ atmpvault --vault {path} verify")
        problems = vault.verify()
        for problem in problems:
            click.echo(f"PROBLEM  {problem}")
        if problems:
            raise IntegrityError(f"the demo vault found {len(problems)} problem(s)")
        click.echo(
            "ok: every version re-hashed, git fsck clean, catalog agrees with the repository"
        )


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(init)
    cli.add_command(log)
    cli.add_command(verify)
    cli.add_command(rebuild)
    cli.add_command(demo)
