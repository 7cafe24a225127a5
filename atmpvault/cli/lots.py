"""Lot commands: register lots, move them through manufacturing, release or reject them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import emit_json, json_option, pass_vault, table, user_option, when_option
from atmpvault.cli.users import key_option

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.lots.service import Lot, LotContents


@click.group("lot")
def lot() -> None:
    """Lots: one per manufacturing run; an autologous lot belongs to one patient.

    \b
        atmpvault lot new L-0042 --program CART-19 --coi COI-7F3K-22
        atmpvault lot start L-0042
        atmpvault lot release L-0042 --by "Q. Approver"
        atmpvault lot export L-0042 -o L-0042-bundle.zip
    """


def _show(found: Lot, as_json: bool) -> None:
    if as_json:
        emit_json(found.to_json())
        return
    click.echo(f"{found.id}  {found.status}  {found.program}  {found.coi or '-'}  v{found.version}")


@lot.command("new")
@click.argument("lot_id", metavar="LOT")
@click.option("--program", required=True, help="The program, e.g. CART-19.")
@click.option("--coi", "coi_id", metavar="COI_ID", help="The patient's chain-of-identity id.")
@click.option(
    "--kind", type=click.Choice(["autologous", "allogeneic"]), default="autologous",
    show_default=True, help="One patient's cells, or a donor's for many.",
)  # fmt: skip
@click.option("--replaces", metavar="LOT", help="The lot this one replaces (same patient).")
@user_option
@json_option
@pass_vault
def lot_new(
    vault: Vault, lot_id: str, program: str, coi_id: str | None, kind: str,
    replaces: str | None, user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Register a lot (status planned).

    A replacement lot is refused while the lot it replaces has an open deviation.

    \b
        atmpvault lot new L-0042 --program CART-19 --coi COI-7F3K-22
        atmpvault lot new L-0043 --program CART-19 --replaces L-0042
    """
    from atmpvault.archive.lots.service import Lots

    _show(Lots(vault).new(lot_id, program, coi_id, kind, replaces), as_json)


def _step(name: str, doc: str) -> click.Command:
    @click.argument("lot_id", metavar="LOT")
    @click.option("--comment", help="A note kept in the lot's history.")
    @user_option
    @json_option
    @pass_vault
    def command(
        vault: Vault, lot_id: str, comment: str | None, user: str | None, as_json: bool
    ) -> None:
        from atmpvault.archive.lots.service import Lots

        _show(Lots(vault).step(lot_id, name, comment), as_json)

    command.__doc__ = doc
    return lot.command(name)(command)


_step(
    "start",
    """Manufacturing has started: planned -> in-manufacturing.

    \b
        atmpvault lot start L-0042
    """,
)
_step(
    "complete",
    """Manufacturing is complete: in-manufacturing -> pending-release.

    \b
        atmpvault lot complete L-0042 --comment "final formulation filled"
    """,
)


@lot.command("show")
@click.argument("lot_id", metavar="LOT")
@click.option("--as-of", "as_of", metavar="WHEN", help="The lot as it stood at this time.")
@json_option
@pass_vault
def lot_show(vault: Vault, lot_id: str, as_of: str | None, as_json: bool) -> None:
    """Show a lot with every document and record of it, and their versions.

    \b
        atmpvault lot show L-0042
        atmpvault lot show L-0042 --as-of 2026-03-31
    """
    from atmpvault.archive.lots.service import contents

    found = contents(vault, lot_id, when_option(vault, as_of))
    if as_json:
        emit_json(found.to_json())
        return
    show_contents(found)


def show_contents(found: LotContents) -> None:
    """A lot, its history, its documents and its records, for people."""
    data = found.to_json()
    lot_data = data["lot"]
    for key in ("id", "program", "coi", "kind", "replaces", "status", "version"):
        click.echo(f"{key:12} {'' if lot_data[key] is None else lot_data[key]}")
    if found.lot.disposition:
        d = found.lot.disposition
        extra = " (exceptional)" if d.get("exceptional") else ""
        click.echo(f"{'disposition':12} {d['decision']}{extra} by {d['by']} at {d['at']}")
    for entry in found.lot.statuses:
        click.echo(f"{'history':12} {entry['at']}  {entry['status']}  {entry['by']}")
    click.echo("")
    click.echo("Documents")
    table(
        [
            (d["id"], d["type"], d["status"], ",".join(str(v["version"]) for v in d["versions"]),
             d["title"] or "")
            for d in data["documents"]
        ],
        ["ID", "TYPE", "STATUS", "VERSIONS", "TITLE"],
    )  # fmt: skip
    click.echo("")
    click.echo("Records")
    table(
        [(r["kind"], r["id"], r["version"], r["status"] or "", r["recorded_at"][:19])
         for r in data["records"]],
        ["KIND", "ID", "V", "STATUS", "RECORDED"],
    )  # fmt: skip
    click.echo("")
    click.echo("Signatures")
    if not data["signatures"]:
        click.echo("none")
        return
    table(
        [(s["id"], f"{s['target']['kind']} {s['target']['id']} v{s['target']['version']}",
          s["manifestation"]) for s in data["signatures"]],
        ["SIGNATURE", "SIGNED VERSION", "SIGNED (NAME, UTC TIME, MEANING)"],
    )  # fmt: skip


@lot.command("ls")
@click.option("--program", help="Only this program's lots.")
@click.option("--status", help="Only lots with this status.")
@json_option
@pass_vault
def lot_ls(vault: Vault, program: str | None, status: str | None, as_json: bool) -> None:
    """List lots.

    \b
        atmpvault lot ls --status pending-release
    """
    from atmpvault.archive.lots.service import Lots

    found = Lots(vault).ls(program, status)
    if as_json:
        emit_json([f.to_json() for f in found])
        return
    table(
        [(f.id, f.program, f.kind, f.coi or "", f.status, f.replaces or "") for f in found],
        ["LOT", "PROGRAM", "KIND", "COI", "STATUS", "REPLACES"],
    )


@lot.command("release")
@click.argument("lot_id", metavar="LOT")
@click.option("--by", required=True, help="Who gives the QA disposition.")
@click.option("--reason", help="Why (required with --exceptional).")
@click.option("--exceptional", is_flag=True, help="Release despite holds, recording them.")
@key_option
@user_option
@json_option
@pass_vault
def lot_release(
    vault: Vault, lot_id: str, by: str, reason: str | None, exceptional: bool,
    key_file: Path | None, user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Release a lot: refused while any workflow holds it (an open deviation...).

    In a vault with users, a qa-approver signs the release (meaning release) with
    their key, in the same commit; without a valid signature nothing is released.

    \b
        atmpvault lot release L-0042 --by "Q. Approver"
        atmpvault lot release L-0042 --by dana --key ~/.ssh/id_ed25519
        atmpvault lot release L-0042 --by "Q. Approver" --exceptional \\
            --reason "patient in conditioning; CAPA tracked, no product impact"
    """
    from atmpvault.archive.lots.service import Lots

    released = Lots(vault).release(lot_id, by, reason, exceptional, key_file=key_file)
    if as_json:
        emit_json(released.to_json())
        return
    _show(released, False)
    for hold in (released.disposition or {}).get("overridden") or ():
        click.echo(f"overridden: {hold}")


@lot.command("reject")
@click.argument("lot_id", metavar="LOT")
@click.option("--by", required=True, help="Who gives the QA disposition.")
@click.option("--reason", required=True, help="Why the lot is rejected.")
@key_option
@user_option
@json_option
@pass_vault
def lot_reject(
    vault: Vault, lot_id: str, by: str, reason: str, key_file: Path | None, user: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Reject a lot (QA disposition), signed like a release in a vault with users.

    \b
        atmpvault lot reject L-0042 --by "Q. Approver" --reason "sterility failure"
        atmpvault lot reject L-0042 --by dana --reason "sterility failure" --key ~/.ssh/id_ed25519
    """
    from atmpvault.archive.lots.service import Lots

    _show(Lots(vault).reject(lot_id, by, reason, key_file=key_file), as_json)


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    from atmpvault.cli.bundles import register as register_bundles

    cli.add_command(lot)
    register_bundles(cli)


@lot.command("export")
@click.argument("lot_id", metavar="LOT")
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path),
    help="The bundle's file, e.g. L-0042-bundle.zip.",
)  # fmt: skip
@click.option("--as-of", "as_of", metavar="WHEN", help="The lot as it stood at this time.")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@json_option
@pass_vault
def lot_export(
    vault: Vault, lot_id: str, output: Path, as_of: str | None, force: bool, as_json: bool
) -> None:
    """Write an auditor bundle: the lot's complete, versioned batch record as one zip.

    Every version of every document of the lot (exact bytes), every version of every
    record of it, the audit trail (CSV and PDF, old -> new) and a SHA-256 manifest that
    `sha256sum -c manifest.sha256` or `atmpvault bundle verify` checks. The same archive
    and --as-of always give the same bytes.

    \b
        atmpvault lot export L-0042 -o L-0042-bundle.zip
        atmpvault lot export L-0042 -o L-0042-2026-03-31.zip --as-of 2026-03-31
    """
    from atmpvault.archive.lots.export import export

    result = export(vault, lot_id, output, when_option(vault, as_of), force)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(
        f"{result.lot} as of {result.as_of[:19].replace('T', ' ')} UTC -> {result.output}: "
        f"{result.documents} documents ({result.document_versions} versions), "
        f"{result.record_versions} record versions, {result.writes} writes in the audit "
        f"trail; {result.files} files, {result.size:,} bytes"
    )
