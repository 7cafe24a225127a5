"""The `atmpvault` command line: parse, open the vault, call the domain, render.

Heavy libraries (SQLAlchemy, GitPython) are imported inside the commands that need
them, so `--help` and light commands answer quickly.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.config import Settings, load_settings
from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.vault import Vault


class VaultGroup(click.Group):
    """Turns domain errors into one line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from atmpvault.repository.git import RepositoryError

        try:
            return super().invoke(ctx)
        except VaultError as exc:
            click.echo(f"atmpvault: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except RepositoryError as exc:
            click.echo(f"atmpvault: repository error: {exc}", err=True)
            ctx.exit(1)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(1)


@click.group(cls=VaultGroup)
@click.option(
    "--vault",
    "vault_path",
    type=click.Path(path_type=Path),
    help="The vault directory (default: $ATMPVAULT_HOME, then ./vault).",
)
@click.version_option(package_name="atmpvault")
@click.pass_context
def cli(ctx: click.Context, vault_path: Path | None) -> None:
    """A version-controlled archive for cell and gene therapy manufacturing records."""
    ctx.obj = load_settings(vault_path, None, os.environ)


# -- helpers ------------------------------------------------------------------------------


def settings_for(ctx: click.Context, user: str | None = None) -> Settings:
    settings: Settings = ctx.find_root().obj
    if user:
        from dataclasses import replace

        settings = replace(settings, user=user)
    return settings


def pass_vault(func: Callable[..., Any]) -> Callable[..., Any]:
    """Open the vault named by --vault for the command, and close it afterwards."""

    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        from atmpvault.archive.vault import Vault

        with Vault.open(settings_for(ctx, kwargs.get("user"))) as vault:
            return func(vault, *args, **kwargs)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
user_option = click.option("--user", help="Who is acting (default: $ATMPVAULT_USER, git user.name).")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table for people."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    click.echo(line.rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def when_option(value: str | None) -> str | None:
    if value is None:
        return None
    from atmpvault.archive import values

    return values.iso(values.when(value))


def show_version(data: dict[str, Any]) -> None:
    for key in (
        "id", "version", "status", "program", "type", "title", "lot", "filename",
        "size", "sha256", "recorded_at", "user", "reason", "commit",
    ):
        click.echo(f"{key:12} {'' if data.get(key) is None else data[key]}")
    for key, value in sorted(data.get("meta", {}).items()):
        click.echo(f"{'meta.' + key:12} {value}")


def list_versions(rows: Iterable[Any]) -> None:
    table(
        [(r.id, r.version, r.program, r.type, r.lot, r.status, r.title) for r in rows],
        ["ID", "V", "PROGRAM", "TYPE", "LOT", "STATUS", "TITLE"],
    )


# -- commands -----------------------------------------------------------------------------


@cli.command()
@user_option
@click.pass_context
def init(ctx: click.Context, user: str | None) -> None:
    """Create a new, empty vault.

    \b
        atmpvault --vault /srv/atmp/vault init
    """
    from atmpvault.archive.vault import Vault

    settings = settings_for(ctx, user)
    Vault.create(settings, user).close()
    click.echo(f"Initialised an empty vault in {settings.vault}")


@cli.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--program", help="Program code, e.g. CART-19 (new documents).")
@click.option("--type", "doc_type", help="Document type, e.g. batch-record (new documents).")
@click.option("--title", help="A human title.")
@click.option("--lot", help="The lot the document belongs to.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Extra metadata; repeatable.")
@click.option("--id", "doc_id", help="Archive FILE as the next version of this document.")
@click.option("--reason", help="Why the document changes (required with --id).")
@user_option
@json_option
@pass_vault
def add(
    vault: Vault,
    file: Path,
    program: str | None,
    doc_type: str | None,
    title: str | None,
    lot: str | None,
    meta: tuple[str, ...],
    doc_id: str | None,
    reason: str | None,
    user: str | None,
    as_json: bool,
) -> None:
    """Archive a document, or a new version of one.

    \b
        atmpvault add BR-0042.pdf --program CART-19 --type batch-record --lot L-0042
        atmpvault add BR-0042-r2.pdf --id DOC-000007 --reason "QA review corrections"
    """
    from atmpvault.archive import values
    from atmpvault.errors import InvalidInput

    extra = values.meta(meta)
    if doc_id is not None:
        if program or doc_type:
            raise InvalidInput("--program and --type are fixed at version 1; omit them with --id")
        if reason is None:
            raise InvalidInput("--reason is required when archiving a new version (--id)")
        version = vault.documents.revise(doc_id, file, reason, title, lot, extra)
    else:
        if program is None or doc_type is None:
            raise InvalidInput("a new document needs --program and --type (or --id for a new version)")
        if reason is not None:
            raise InvalidInput("--reason applies to new versions (--id); version 1 needs none")
        version = vault.documents.add(file, program, doc_type, title, lot, extra)
    result = {
        "id": version.id,
        "version": version.version,
        "sha256": version.sha256,
        "commit": version.commit,
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(f"{version.id} v{version.version}  {version.sha256[:12]}  commit {version.commit[:12]}")


@cli.command()
@click.argument("doc_id", metavar="DOC")
@click.option("--version", "number", type=click.IntRange(min=1), help="A version number.")
@click.option("--as-of", "as_of", metavar="WHEN", help="The version current at this date or time.")
@json_option
@pass_vault
def show(vault: Vault, doc_id: str, number: int | None, as_of: str | None, as_json: bool) -> None:
    """Show one version's record (the latest by default).

    \b
        atmpvault show DOC-000007 --as-of 2026-03-31
    """
    from atmpvault.errors import InvalidInput

    if number is not None and as_of is not None:
        raise InvalidInput("use --version or --as-of, not both")
    data = vault.documents.show(doc_id, number, when_option(as_of)).to_json()
    emit_json(data) if as_json else show_version(data)


@cli.command()
@click.argument("doc_id", metavar="DOC")
@click.option("--version", "number", type=click.IntRange(min=1), help="A version number.")
@click.option("--as-of", "as_of", metavar="WHEN", help="The version current at this date or time.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write here (default: stdout).")
@pass_vault
def get(
    vault: Vault, doc_id: str, number: int | None, as_of: str | None, output: Path | None
) -> None:
    """Write the exact archived bytes of a version.

    \b
        atmpvault get DOC-000007 --version 1 -o BR-0042-v1.pdf
    """
    from atmpvault.errors import InvalidInput

    if number is not None and as_of is not None:
        raise InvalidInput("use --version or --as-of, not both")
    at = when_option(as_of)
    if output is None:
        vault.documents.get(doc_id, click.get_binary_stream("stdout"), number, at)
        return
    found = vault.documents.show(doc_id, number, at)
    target = output / found.filename if output.is_dir() else output
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as out:
            vault.documents.get(doc_id, out, found.version)
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise VaultError(f"cannot write {target}: {exc.strerror}") from None
    click.echo(f"{found.id} v{found.version} -> {target}", err=True)


@cli.command()
@click.argument("doc_id", metavar="DOC")
@json_option
@pass_vault
def history(vault: Vault, doc_id: str, as_json: bool) -> None:
    """Every version of a document, oldest first, with who, when and why.

    \b
        atmpvault history DOC-000007
    """
    rows = vault.documents.history(doc_id)
    if as_json:
        keys = ("version", "recorded_at", "user", "action", "status", "reason", "sha256", "size", "commit")
        emit_json([{k: r.to_json()[k] for k in keys} for r in rows])
        return
    table(
        [(r.version, r.recorded_at[:19], r.user, r.action, r.reason, r.sha256[:12]) for r in rows],
        ["V", "RECORDED (UTC)", "USER", "ACTION", "REASON", "SHA256"],
    )


@cli.command("ls")
@click.option("--program", help="Only this program.")
@click.option("--type", "doc_type", help="Only this document type.")
@click.option("--lot", help="Only this lot.")
@click.option("--as-of", "as_of", metavar="WHEN", help="The archive as it stood at this date or time.")
@json_option
@pass_vault
def ls(
    vault: Vault,
    program: str | None,
    doc_type: str | None,
    lot: str | None,
    as_of: str | None,
    as_json: bool,
) -> None:
    """List the latest version of each document.

    \b
        atmpvault ls --program CART-19 --as-of 2026-06-30
    """
    from atmpvault.archive import values
    from atmpvault.archive.catalog import Filters

    filters = Filters(
        program=values.program(program) if program else None,
        type=vault.document_type(doc_type) if doc_type else None,
        lot=values.lot(lot),
    )
    rows = vault.documents.ls(filters, when_option(as_of))
    if as_json:
        emit_json([r.to_json() for r in rows])
    else:
        list_versions(rows)


@cli.command()
@click.option("--since", metavar="WHEN", help="Writes at or after this time.")
@click.option("--until", metavar="WHEN", help="Writes at or before this time.")
@click.option("--user", "who", help="Only this actor's writes.")
@click.option("--doc", "doc_id", metavar="DOC", help="Only writes to this document.")
@json_option
@pass_vault
def log(
    vault: Vault,
    since: str | None,
    until: str | None,
    who: str | None,
    doc_id: str | None,
    as_json: bool,
) -> None:
    """The audit trail: every write, read from git history.

    \b
        atmpvault log --since 2026-01-01 --user "J. Rivera"
    """
    from datetime import UTC, datetime, time

    from atmpvault.archive import values

    start = values.when(since) if since else None
    if start is not None and len(since or "") == 10:
        start = datetime.combine(start.date(), time.min, tzinfo=UTC)
    entries = vault.log(
        since=start,
        until=values.when(until) if until else None,
        user=who,
        doc=values.doc_id(doc_id) if doc_id else None,
    )
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    table(
        [(e.time[:19], e.user, e.action, e.doc, e.version, e.reason, e.commit[:12]) for e in entries],
        ["TIME (UTC)", "USER", "ACTION", "DOC", "V", "REASON", "COMMIT"],
    )


@cli.command()
@click.argument("doc_id", metavar="DOC")
@click.option("--reason", required=True, help="Why the document is withdrawn.")
@user_option
@json_option
@pass_vault
def withdraw(vault: Vault, doc_id: str, reason: str, user: str | None, as_json: bool) -> None:
    """Withdraw a document: a new version with status withdrawn (nothing is deleted).

    \b
        atmpvault withdraw DOC-000003 --reason "superseded by SOP-112 rev 4"
    """
    version = vault.documents.withdraw(doc_id, reason)
    if as_json:
        emit_json({"id": version.id, "version": version.version, "status": version.status, "commit": version.commit})
    else:
        click.echo(f"{version.id} v{version.version} withdrawn  commit {version.commit[:12]}")


@cli.command()
@json_option
@pass_vault
def verify(vault: Vault, as_json: bool) -> None:
    """Re-hash every version, run git's integrity check, compare the catalog.

    Exits 3 when anything disagrees.

    \b
        atmpvault verify
    """
    problems = vault.verify()
    if as_json:
        emit_json({"ok": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            click.echo(f"PROBLEM  {problem}")
    else:
        click.echo("ok: every version re-hashed, git fsck clean, catalog agrees with the repository")
    if problems:
        if not as_json:
            click.echo(f"atmpvault: verify found {len(problems)} problem(s)", err=True)
        sys.exit(3)


@cli.command()
@json_option
@pass_vault
def rebuild(vault: Vault, as_json: bool) -> None:
    """Rebuild the catalog from the repository alone.

    \b
        atmpvault rebuild
    """
    count = vault.rebuild()
    if as_json:
        emit_json({"versions": count, "commit": vault.store.head()})
    else:
        click.echo(f"catalog rebuilt: {count} versions, at commit {str(vault.store.head())[:12]}")


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
def demo(ctx: click.Context, path: Path) -> None:
    """Build a realistic sample vault and show it: ls, a history, an as-of answer, verify.

    \b
        atmpvault demo ./demo-vault
    """
    from dataclasses import replace

    from atmpvault.archive.demo import build_demo

    settings = replace(settings_for(ctx), vault=path, user="demo.qa")
    with build_demo(settings) as (vault, story):
        click.echo(f"Demo vault built in {path}: {len(story.documents)} documents\n")
        click.echo(f"$ atmpvault --vault {path} ls")
        list_versions(story.documents)
        click.echo(f"\n$ atmpvault --vault {path} history {story.revised}")
        table(
            [(r.version, r.recorded_at[:23], r.user, r.action, r.reason) for r in story.history],
            ["V", "RECORDED (UTC)", "USER", "ACTION", "REASON"],
        )
        click.echo(f"\n$ atmpvault --vault {path} show {story.revised} --as-of {story.as_of}")
        show_version(story.as_of_version.to_json())
        click.echo(f"\n$ atmpvault --vault {path} verify")
        problems = vault.verify()
        for problem in problems:
            click.echo(f"PROBLEM  {problem}")
        if problems:
            sys.exit(3)
        click.echo("ok: every version re-hashed, git fsck clean, catalog agrees with the repository")


def main() -> None:
    cli(prog_name="atmpvault")


if __name__ == "__main__":
    main()
