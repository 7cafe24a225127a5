"""A team on one archive: init-shared, clone, publish, remote show, sync."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import emit_json, json_option, pass_vault, progress, settings_for

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.command("init-shared")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
def init_shared(ctx: click.Context, path: Path) -> None:
    """Create a shared upstream: a bare repository whose history can only grow.

    \b
        atmpvault init-shared /srv/git/atmpvault.git
        atmpvault clone /srv/git/atmpvault.git ./vault
    """
    from atmpvault.archive.core.upstream import init_shared as make
    from atmpvault.archive.domains import domains

    head = make(settings_for(ctx), domains(), path)
    click.echo(f"shared repository ready at {path} (seeded, commit {head[:12]})")


@click.command("clone")
@click.argument("url")
@click.argument("vault", type=click.Path(path_type=Path))
@click.pass_context
def clone(ctx: click.Context, url: str, vault: Path) -> None:
    """Make a workstation vault from a shared upstream (any git URL).

    \b
        atmpvault clone ssh://git@vault.example.com/atmpvault.git ./vault
        atmpvault clone git://127.0.0.1/atmpvault.git ./vault
    """
    from atmpvault.archive.core.upstream import clone as make
    from atmpvault.archive.domains import domains

    settings = settings_for(ctx)._replace(vault=vault)
    with make(settings, domains(), url) as made:
        count = made.store.count()
        with progress(count, "Building the catalog and index", False) as update:
            # A team's shared catalog is caught up, never rebuilt under colleagues.
            made.rebuild(update, index_only=made.shared_catalog)
        made.catch_up()
    click.echo(f"cloned {count} commits from {url} into {vault}")


@click.command("publish")
@click.argument("url")
@pass_vault
def publish(vault: Vault, url: str) -> None:
    """Publish this vault's history to a new, empty shared repository, its upstream from now.

    \b
        git init --bare /srv/git/atmpvault.git   # or a new, empty repository on a git host
        atmpvault publish /srv/git/atmpvault.git
    """
    from atmpvault.archive.core.upstream import publish as push

    count = push(vault, url)
    click.echo(f"published {count} commits to {url}; writes publish there from now on")


@click.group("remote")
def remote() -> None:
    """The shared upstream this vault publishes to.

    \b
        atmpvault remote show
    """


@remote.command("show")
@json_option
@pass_vault
def remote_show(vault: Vault, as_json: bool) -> None:
    """Where the upstream is and how far this vault is behind it (fetched now).

    \b
        atmpvault remote show --json
    """
    from atmpvault.archive.core.upstream import behind, last_synced

    url = vault.settings.upstream
    found: dict[str, Any]
    if url is None:
        found = {"upstream": None, "behind": 0, "ahead": 0, "synced_seconds_ago": None}
    else:
        late, early = behind(vault)
        found = {"upstream": url, "behind": late, "ahead": early,
                 "synced_seconds_ago": last_synced(vault.path)}  # fmt: skip
    if as_json:
        emit_json(found)
        return
    if url is None:
        click.echo("no upstream: this vault is on its own ('atmpvault publish URL' shares it)")
        return
    click.echo(f"upstream  {url}\nbehind    {found['behind']} commit(s)"
               f"\nahead     {found['ahead']} commit(s)")  # fmt: skip


@click.command("sync")
@click.option("--watch", type=click.IntRange(1, 86400), metavar="N",
              help="Sync again every N seconds until interrupted (a wall display).")  # fmt: skip
@json_option
@pass_vault
def sync(vault: Vault, watch: int | None, as_json: bool) -> None:
    """Bring this vault up to the upstream's tip and catch its catalog and index up.

    \b
        atmpvault sync
        atmpvault sync --watch 60
    """
    while True:
        came = _sync_once(vault, as_json)
        if as_json:
            emit_json({"upstream": vault.settings.upstream, "commits": came})
        else:
            click.echo(f"{came} new commit(s) from {vault.settings.upstream}")
        if watch is None:
            return
        time.sleep(watch)


def _sync_once(vault: Vault, quiet: bool) -> int:
    if vault.settings.upstream is None:
        from atmpvault.errors import VaultError

        raise VaultError("this vault has no upstream ('atmpvault publish URL' shares it)")
    before = vault.store.head()
    with vault.writing(catch_up=False):  # which fetches and fast-forwards (upstream.py)
        came = vault.store.count(before, "HEAD") if before else vault.store.count()
        with progress(came, "Catching up", quiet) as update:
            if update is not None:
                update(0)
            vault.catch_up()
            if update is not None:
                update(came)
    return came


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    for command in (init_shared, clone, publish, remote, sync):
        cli.add_command(command)
