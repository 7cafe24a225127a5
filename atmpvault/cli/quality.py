"""Quality commands: deviations, their investigation and CAPA, closure into the batch record."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import emit_json, json_option, pass_vault, table, user_option
from atmpvault.cli.users import key_option

if TYPE_CHECKING:
    from datetime import date

    from atmpvault.archive.core.vault import Vault


@click.group("deviation")
def deviation() -> None:
    """Deviations: open, assign, investigate, CAPA, close into the lot's batch record.

    \b
        atmpvault deviation open --lot L-0042 --class major --title "port weld leak" \\
            --description "bag port weld leaked during thaw"
        atmpvault deviation assign DEV-2026-0001 --owner "Dana Whitfield"
        atmpvault deviation investigate DEV-2026-0001 --root-cause "..." --impact "..."
        atmpvault deviation close DEV-2026-0001 --summary "root cause found; CAPA tracked"
    """


def _day(vault: Vault, value: str | None, what: str) -> date | None:
    from atmpvault.archive.core import values

    return None if value is None else values.day(value, what, vault.config.dates)


def _done(body: dict[str, Any], as_json: bool, line: str | None = None) -> None:
    """A changed record: JSON with --json, else one line for people."""
    if as_json:
        emit_json(body)
        return
    click.echo(line or f"{body['id']}  {body['status']}  due {body.get('due') or '-'}")


@deviation.command("open")
@click.option("--lot", "lots", multiple=True, required=True, metavar="LOT",
              help="A lot it affects (repeat for each).")  # fmt: skip
@click.option("--class", "deviation_class", required=True, help="minor, major, critical...")
@click.option("--title", required=True, help="A short title.")
@click.option("--description", required=True, help="What happened.")
@click.option("--discovered", metavar="WHEN", help="When it was discovered (default: now).")
@user_option
@json_option
@pass_vault
def deviation_open(
    vault: Vault, lots: tuple[str, ...], deviation_class: str, title: str, description: str,
    discovered: str | None, user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Open a deviation; every lot named is affected and held until it closes.

    \b
        atmpvault deviation open --lot L-0042 --class major --title "port weld leak" \\
            --description "bag port weld leaked during thaw" --discovered 2026-11-28T14:10
    """
    from atmpvault.archive.quality.service import Deviations

    body = Deviations(vault).open(list(lots), deviation_class, title, description, discovered)
    _done(
        body,
        as_json,
        f"{body['id']}  {body['class']}  due {body['due']}  lots {', '.join(body['lots'])}",
    )


@deviation.command("affect")
@click.argument("dev", metavar="DEV")
@click.option("--lot", required=True, help="Another lot the deviation affects.")
@click.option("--comment", required=True, help="Why this lot may be affected.")
@user_option
@json_option
@pass_vault
def deviation_affect(
    vault: Vault, dev: str, lot: str, comment: str, user: str | None, as_json: bool
) -> None:
    """Extend a deviation to another lot (21 CFR 211.192); that lot is held too.

    \b
        atmpvault deviation affect DEV-2026-0001 --lot L-0043 --comment "same weld batch"
    """
    from atmpvault.archive.quality.service import Deviations

    _done(Deviations(vault).affect(dev, lot, comment), as_json)


@deviation.command("assign")
@click.argument("dev", metavar="DEV")
@click.option("--owner", required=True, help="Who investigates (in 'atmpvault people').")
@click.option("--due", metavar="DATE", help="The investigation's due date (default: by class).")
@click.option("--comment", help="A note kept in the history.")
@user_option
@json_option
@pass_vault
def deviation_assign(
    vault: Vault, dev: str, owner: str, due: str | None, comment: str | None,
    user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Assign the investigation; the owner gets a notice with the deadline.

    \b
        atmpvault deviation assign DEV-2026-0001 --owner "Dana Whitfield" --due 2026-12-28
    """
    from atmpvault.archive.quality.service import Deviations

    body = Deviations(vault).assign(dev, owner, _day(vault, due, "--due"), comment)
    _done(body, as_json, f"{body['id']}  owner {body['owner']}  due {body['due']}")


@deviation.command("extend")
@click.argument("dev", metavar="DEV")
@click.option("--to", "to", required=True, metavar="DATE", help="The new due date.")
@click.option("--reason", required=True, help="Why more time is needed.")
@click.option("--approved-by", required=True, help="Who approved the extension.")
@user_option
@json_option
@pass_vault
def deviation_extend(
    vault: Vault, dev: str, to: str, reason: str, approved_by: str, user: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Extend the due date (never silently: the reason and approver are listed).

    \b
        atmpvault deviation extend DEV-2026-0001 --to 2027-01-15 \\
            --reason "awaiting supplier weld analysis" --approved-by "Head of QA"
    """
    from atmpvault.archive.quality.service import Deviations

    day = _day(vault, to, "--to")
    assert day is not None
    _done(Deviations(vault).extend(dev, day, reason, approved_by), as_json)


@deviation.command("investigate")
@click.argument("dev", metavar="DEV")
@click.option("--root-cause", required=True, help="The root cause found.")
@click.option("--impact", required=True, help="The impact assessment.")
@click.option("--product-impact", type=click.Choice(["yes", "no"]), help="Product affected?")
@click.option("--patient-impact", type=click.Choice(["yes", "no"]), help="Patient affected?")
@click.option("--comment", help="A note kept in the history.")
@user_option
@json_option
@pass_vault
def deviation_investigate(
    vault: Vault, dev: str, root_cause: str, impact: str, product_impact: str | None,
    patient_impact: str | None, comment: str | None, user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Record the investigation: root cause and impact assessment.

    \b
        atmpvault deviation investigate DEV-2026-0001 --root-cause "weld temperature drift" \\
            --impact "one bag; product sterile" --product-impact no --patient-impact no
    """
    from atmpvault.archive.quality.service import Deviations

    body = Deviations(vault).investigate(
        dev, root_cause, impact, product_impact, patient_impact, comment
    )
    _done(body, as_json)


@deviation.command("attach")
@click.argument("dev", metavar="DEV")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--type", "doc_type", default="deviation-package", show_default=True,
              help="The document type.")  # fmt: skip
@click.option("--title", help="The document's title.")
@user_option
@json_option
@pass_vault
def deviation_attach(
    vault: Vault, dev: str, path: Path, doc_type: str, title: str | None, user: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Archive a file as a document of the lot, linked to the deviation.

    \b
        atmpvault deviation attach DEV-2026-0001 weld-photos.pdf
    """
    from atmpvault.archive.quality.service import Deviations

    body, version = Deviations(vault).attach(dev, path, doc_type, title)
    if as_json:
        emit_json({**body, "document": version.to_json()})
        return
    click.echo(f"{body['id']}  attached {version.id} v{version.version} ({path.name})")


@deviation.command("close")
@click.argument("dev", metavar="DEV")
@click.option("--summary", required=True, help="The closing summary.")
@key_option
@user_option
@json_option
@pass_vault
def deviation_close(
    vault: Vault, dev: str, summary: str, key_file: Path | None, user: str | None, as_json: bool
) -> None:
    """Close a deviation and archive its package into the lot's batch record.

    In a vault with users, a qa-approver other than the deviation's owner signs the
    closure (meaning approval) with their key; the package shows the signature.

    \b
        atmpvault deviation close DEV-2026-0001 --summary "root cause found; CAPA tracked"
        atmpvault deviation close DEV-2026-0001 --summary "..." --key ~/.ssh/id_ed25519
    """
    from atmpvault.archive.quality.service import Deviations

    body, package = Deviations(vault).close(dev, summary, key_file=key_file)
    if as_json:
        emit_json({**body, "package": package.to_json()})
        return
    click.echo(f"{body['id']}  closed  package {package.id} in lot {body['lots'][0]}")


@deviation.command("show")
@click.argument("dev", metavar="DEV")
@json_option
@pass_vault
def deviation_show(vault: Vault, dev: str, as_json: bool) -> None:
    """Show a deviation, its CAPAs and its full history.

    \b
        atmpvault deviation show DEV-2026-0001
    """
    from atmpvault.archive.quality.service import Deviations

    if as_json:
        deviations = Deviations(vault)
        body = deviations.get(dev).body
        capas = [c.body for c in deviations.capas(body["id"])]
        entries = deviations.history(body["id"])
        signed = _signatures_by_version(vault, body["id"])
        history = [{**e.to_json(), "signatures": signed.get(e.version, [])} for e in entries]
        emit_json({**body, "capa_records": capas, "history": history})
        return
    show_deviation(vault, dev)


def show_deviation(vault: Vault, dev: str) -> None:
    """A deviation, its CAPAs and its history, for people."""
    from atmpvault.archive.quality.service import Deviations

    deviations = Deviations(vault)
    body = deviations.get(dev).body
    capas = [c.body for c in deviations.capas(body["id"])]
    entries = deviations.history(body["id"])
    inv = body.get("investigation") or {}
    for key, value in (
        ("id", body["id"]), ("class", body["class"]), ("status", body["status"]),
        ("title", body["title"]), ("lots", ", ".join(body["lots"])),
        ("discovered", body["discovered"]), ("owner", body.get("owner") or "-"),
        ("due", body["due"]), ("root cause", inv.get("root_cause") or "-"),
        ("impact", inv.get("impact") or "-"),
    ):  # fmt: skip
        click.echo(f"{key:12} {value}")
    for ext in body["extensions"]:
        click.echo(
            f"{'extension':12} {ext['from']} -> {ext['to']} approved by {ext['approved_by']}: "
            f"{ext['reason']}"
        )
    for capa in capas:
        click.echo(
            f"{'capa':12} {capa['id']} {capa['status']} owner {capa['owner']} due {capa['due']}"
        )
    for att in body["attachments"]:
        click.echo(f"{'attachment':12} {att['doc']}@{att['version']} {att['filename']}")
    if body.get("closure"):
        c = body["closure"]
        click.echo(
            f"{'closed':12} {c['at']} by {c['by']} package {c.get('package')}: {c['summary']}"
        )
    click.echo("")
    click.echo("History")
    signed = _signatures_by_version(vault, body["id"])
    for e in entries:
        what = "; ".join(f"{f}: {_short(o)} -> {_short(n)}" for f, o, n in e.changes)
        click.echo(f"v{e.version}  {e.recorded_at[:19]}  {e.actor}  {e.action}  {what}")
        for s in signed.get(e.version, []):
            click.echo(f"    signed {s['id']}: {s['manifestation']}")


def _signatures_by_version(vault: Vault, dev: str) -> dict[int, list[dict[str, Any]]]:
    """The deviation's signatures, each with its manifestation, by the version signed."""
    from atmpvault.archive.core.signatures import Signatures, shown

    found: dict[int, list[dict[str, Any]]] = {}
    for body in Signatures(vault).of("deviation", dev):
        found.setdefault(int(body["target"]["version"]), []).append(shown(body))
    return found


def _short(value: Any) -> str:
    text = "-" if value in (None, [], {}) else str(value)
    return text if len(text) <= 60 else text[:59] + "\u2026"


@deviation.command("ls")
@click.option("--open", "open_only", is_flag=True, help="Only open deviations.")
@click.option("--lot", help="Only those affecting this lot.")
@click.option("--class", "deviation_class", help="Only this class.")
@click.option("--owner", help="Only this owner's.")
@json_option
@pass_vault
def deviation_ls(
    vault: Vault, open_only: bool, lot: str | None, deviation_class: str | None,
    owner: str | None, as_json: bool,
) -> None:  # fmt: skip
    """List deviations.

    \b
        atmpvault deviation ls --open --class critical
    """
    from atmpvault.archive.quality.service import Deviations

    found = Deviations(vault).ls(open_only, lot, deviation_class, owner)
    if as_json:
        emit_json([r.body for r in found])
        return
    table(
        [
            (b["id"], b["class"], b["status"], ",".join(b["lots"]), b.get("owner") or "-",
             b["due"], b["title"])
            for b in (r.body for r in found)
        ],
        ["ID", "CLASS", "STATUS", "LOTS", "OWNER", "DUE", "TITLE"],
    )  # fmt: skip


@deviation.group("capa")
def capa() -> None:
    """Corrective and preventive actions of a deviation.

    \b
        atmpvault deviation capa add DEV-2026-0001 --action "requalify the welder" \\
            --owner "Dana Whitfield" --due 2027-01-31 --effectiveness-check 2027-06-30
        atmpvault deviation capa done CAPA-2026-0001 --evidence DOC-000031
        atmpvault deviation capa verify CAPA-2026-0001 --effective yes --evidence DOC-000040
    """


@capa.command("add")
@click.argument("dev", metavar="DEV")
@click.option("--action", "action_text", required=True, help="What will be done.")
@click.option("--owner", required=True, help="Who does it (in 'atmpvault people').")
@click.option("--due", required=True, metavar="DATE", help="When it is due.")
@click.option("--effectiveness-check", metavar="DATE", help="When its effectiveness is checked.")
@user_option
@json_option
@pass_vault
def capa_add(
    vault: Vault, dev: str, action_text: str, owner: str, due: str,
    effectiveness_check: str | None, user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Add a CAPA to an open deviation.

    \b
        atmpvault deviation capa add DEV-2026-0001 --action "requalify the welder" \\
            --owner "Dana Whitfield" --due 2027-01-31
    """
    from atmpvault.archive.quality.capas import Capas

    day = _day(vault, due, "--due")
    assert day is not None
    check = _day(vault, effectiveness_check, "--effectiveness-check")
    body = Capas(vault).add(dev, action_text, owner, day, check)
    _done(
        body,
        as_json,
        f"{body['id']}  {body['deviation']}  owner {body['owner']}  due {body['due']}",
    )


@capa.command("done")
@click.argument("capa_id", metavar="CAPA")
@click.option("--evidence", required=True, metavar="DOC[@V]", help="The document that shows it.")
@click.option("--comment", help="A note kept in the history.")
@user_option
@json_option
@pass_vault
def capa_done(
    vault: Vault, capa_id: str, evidence: str, comment: str | None, user: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Mark a CAPA done, with the document version that shows it.

    \b
        atmpvault deviation capa done CAPA-2026-0001 --evidence DOC-000031@1
    """
    from atmpvault.archive.quality.capas import Capas

    _done(Capas(vault).done(capa_id, evidence, comment), as_json)


@capa.command("verify")
@click.argument("capa_id", metavar="CAPA")
@click.option("--effective", required=True, type=click.Choice(["yes", "no"]),
              help="Was it effective? no opens the CAPA again.")  # fmt: skip
@click.option("--evidence", required=True, metavar="DOC[@V]", help="The check's evidence.")
@click.option("--comment", help="A note kept in the history.")
@user_option
@json_option
@pass_vault
def capa_verify(
    vault: Vault, capa_id: str, effective: str, evidence: str, comment: str | None,
    user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Record the effectiveness check of a done CAPA.

    \b
        atmpvault deviation capa verify CAPA-2026-0001 --effective yes --evidence DOC-000040
    """
    from atmpvault.archive.quality.capas import Capas

    _done(Capas(vault).verify(capa_id, effective == "yes", evidence, comment), as_json)


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    from atmpvault.cli import quality_reports

    quality_reports.register(deviation)
    cli.add_command(deviation)
