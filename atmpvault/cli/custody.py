"""Custody commands: log handoffs, show a lot's chain, list breaks, resolve, notify."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from atmpvault.cli.base import (
    emit_json,
    exit_with,
    json_option,
    pass_vault,
    table,
    undelivered,
    user_option,
)
from atmpvault.cli.signed import echo_signatures, signature_json
from atmpvault.cli.users import key_option

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


@click.group("custody")
def custody() -> None:
    """Chain of custody: every handoff of a patient's material, checked as it is logged.

    \b
        atmpvault custody log L-0042 --step collection --by "R. Nurse" --site APH-01 \\
            --coi COI-7F3K-22 --din G123498654321H --temp 4.2
        atmpvault custody show L-0042
        atmpvault custody status --open-breaks
    """


@custody.command("log")
@click.argument("lot", metavar="LOT")
@click.option("--step", required=True, help="The step (collection, labeling, ..., relabel).")
@click.option("--by", required=True, help="Who performed the step.")
@click.option("--site", required=True, help="Where.")
@click.option("--at", "at", metavar="WHEN", help="When (default: now; no offset: vault zone).")
@click.option("--coi", help="The chain-of-identity id on the material.")
@click.option("--din", help="The ISBT 128 DIN with its check character, e.g. G123498654321H.")
@click.option("--temp", "temps", type=float, multiple=True, metavar="CELSIUS",
              help="A temperature reading (repeat for several).")  # fmt: skip
@click.option("--logger", type=click.Path(path_type=Path), help="A data logger's CSV export.")
@click.option("--shipper", help="The shipper's id (for its hold time).")
@click.option("--seal", type=click.Choice(["intact", "broken"]), help="The seal's state.")
@click.option("--note", help="A note.")
@click.option("--corrects", metavar="EVENT", help="The event this one corrects (LOT/NNNN).")
@key_option
@user_option
@json_option
@pass_vault
def custody_log(
    vault: Vault, lot: str, step: str, by: str, site: str, at: str | None, coi: str | None,
    din: str | None, temps: tuple[float, ...], logger: Path | None, shipper: str | None,
    seal: str | None, note: str | None, corrects: str | None, key_file: Path | None,
    user: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Log one custody event; a failed check is a chain break, escalated at once.

    After a step that issues a certificate (receipt-at-manufacturing, administration),
    a vault with users has you sign it (responsibility): --key, else ssh-agent.

    \b
        atmpvault custody log L-0042 --step shipment-to-manufacturing --by "J. Courier" \\
            --site APH-01 --shipper CRYO-22 --seal intact --logger shipper-22.csv
        atmpvault custody log L-0042 --step administration --by "R. Nurse" --site INF-02 \\
            --key ~/.ssh/id_ed25519
    """
    from atmpvault.archive.core import values
    from atmpvault.archive.custody.service import Custody

    moment = values.when(at, vault.config.zone, start_of_day=True) if at else None
    logged = Custody(vault).log(
        lot, step, by, site, moment, coi, din, temps, logger, shipper, seal, note, corrects,
        key_file=key_file,
    )  # fmt: skip
    if as_json:
        emit_json({**logged.event, "break_records": logged.breaks, "problems": logged.problems})
    else:
        e = logged.event
        click.echo(f"{e['id']}  {e['step']}  {e['at'][:19]}  {e['site']}")
        for c in e["checks"]:
            click.echo(f"  {'ok   ' if c['ok'] else 'BREAK'}  {c['check']}: {c['detail']}")
    if logged.certificate is not None and not as_json:
        c = logged.certificate
        click.echo(f"certificate {c.id} v{c.version} issued through {logged.event['step']}")
        echo_signatures(logged.signatures)
    for warning in logged.warnings:
        click.echo(f"atmpvault: warning: {warning}", err=True)
    undelivered(logged.problems)


@custody.command("certificate")
@click.argument("lot", metavar="LOT")
@click.option("--through", metavar="STEP", help="Certify the events through this step.")
@key_option
@user_option
@json_option
@pass_vault
def custody_certificate(vault: Vault, lot: str, through: str | None, key_file: Path | None,
                        user: str | None, as_json: bool) -> None:  # fmt: skip
    """Issue a lot's chain-of-custody certificate (PDF/A-3b), archived with the lot.

    Refused while the lot has an unresolved chain break. A re-issue is the certificate
    document's next version. In a vault with users you sign the certificate's record
    (responsibility) with --key, else your key in ssh-agent; the PDF shows the signature.

    \b
        atmpvault custody certificate L-0042 --through receipt-at-manufacturing
        atmpvault custody certificate L-0042 --key ~/.ssh/id_ed25519
    """
    from atmpvault.archive.custody.certificates import certify

    issued = certify(vault, lot, through, key_file=key_file)
    if as_json:
        emit_json({**issued.record, "document": issued.document.to_json(),
                   "record_version": issued.version,
                   "signatures": [signature_json(b) for b in issued.signatures]})  # fmt: skip
        return
    d = issued.document
    click.echo(f"{d.id} v{d.version}  lot {issued.record['lot']} through "
               f"{issued.record['through']}  sha256 {issued.record['custody_log_sha256'][:16]}")  # fmt: skip
    echo_signatures(issued.signatures)


@custody.command("verify-certificate")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@json_option
@pass_vault
def custody_verify_certificate(vault: Vault, path: Path, as_json: bool) -> None:
    """Check a certificate file against the archive: its bytes, its embedded log and its
    printed hash against the custody log as archived (exit 3 when it no longer matches).

    \b
        atmpvault custody verify-certificate coc-certificate-L-0042.pdf
    """
    from atmpvault.archive.custody.certificates import verify_certificate

    problems = verify_certificate(vault, path)
    if as_json:
        emit_json({"file": str(path), "ok": not problems, "problems": problems})
    else:
        for problem in problems:
            click.echo(f"PROBLEM  {problem}")
        if not problems:
            click.echo(f"ok: {path.name} is an archived certificate and matches the custody log")
    if problems:
        exit_with(3)


@custody.command("show")
@click.argument("lot", metavar="LOT")
@json_option
@pass_vault
def custody_show(vault: Vault, lot: str, as_json: bool) -> None:
    """A lot's chain: every event with each check's result, its breaks, and the signatures
    of its custody records (the certificates' custody signatures among them).

    \b
        atmpvault custody show L-0042
    """
    from atmpvault.archive.custody.service import Custody
    from atmpvault.archive.lots.service import Lots

    found = Lots(vault).get(lot)
    records = Custody(vault)
    events, breaks = records.events(found.id), records.breaks(found.id)
    signed = records.signatures(found.id)
    if as_json:
        emit_json({"lot": found.to_json(), "events": events, "breaks": breaks,
                   "signatures": [signature_json(b) for b in signed]})  # fmt: skip
        return
    click.echo(f"{found.id}  {found.status}  {found.program}  {found.coi or '-'}")
    for e in events:
        fixed = f"  corrects {e['corrects']}" if e.get("corrects") else ""
        click.echo(f"{e['id']}  {e['at'][:19]}  {e['step']}  {e['site']}  {e['by']}"
                   f"  {e.get('din') or ''}{fixed}")  # fmt: skip
        for c in e["checks"]:
            click.echo(f"    {'ok   ' if c['ok'] else 'BREAK'}  {c['check']}: {c['detail']}")
    for b in breaks:
        state = "open" if b["status"] == "open" else f"resolved by {b['resolution']['by']}"
        click.echo(f"{b['id']}  {b['check']}  {state}  {b['detail']}")
    for body in signed:
        target = body["target"]
        echo_signatures([body], f"signed {target['kind'].removeprefix('custody-')} {target['id']}")


@custody.command("status")
@click.option("--open-breaks", is_flag=True, help="Only the unresolved chain breaks.")
@json_option
@pass_vault
def custody_status(vault: Vault, open_breaks: bool, as_json: bool) -> None:
    """Where every lot's material is, or (--open-breaks) every unresolved chain break.

    \b
        atmpvault custody status --open-breaks
    """
    from atmpvault.archive.custody.tables import status

    if open_breaks:
        from atmpvault.archive.custody.service import Custody

        found = sorted(Custody(vault).open_breaks(), key=lambda b: b["id"])
        if as_json:
            emit_json(found)
            return
        table([(b["lot"], b["id"].rpartition("/")[2], b["check"], b["step"], b["detail"])
               for b in found], ["LOT", "BREAK", "CHECK", "STEP", "DETAIL"])  # fmt: skip
        return
    rows = status(vault)
    if as_json:
        emit_json(rows)
        return
    table([(r["lot"], r["lot_status"], r["step"], r["at"][:16], r["site"], r["open_breaks"])
           for r in rows], ["LOT", "STATUS", "LAST STEP", "AT", "SITE", "OPEN BREAKS"])  # fmt: skip


@custody.command("resolve")
@click.argument("lot", metavar="LOT")
@click.option("--break", "break_id", required=True, metavar="BRK-NNN", help="The break.")
@click.option("--reason", required=True, help="QA's documented resolution.")
@click.option("--by", required=True, help="Who resolved it (QA).")
@user_option
@json_option
@pass_vault
def custody_resolve(
    vault: Vault, lot: str, break_id: str, reason: str, by: str, user: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Resolve a chain break (QA); it no longer holds the lot's release.

    \b
        atmpvault custody resolve L-0042 --break BRK-001 --by "Q. Approver" \\
            --reason "logger probe displaced; product temperature confirmed by second probe"
    """
    from atmpvault.archive.custody.service import Custody

    body = Custody(vault).resolve(lot, break_id, reason, by)
    if as_json:
        emit_json(body)
        return
    click.echo(f"{body['id']}  resolved by {body['resolution']['by']}")


@custody.command("notify")
@click.argument("lot", metavar="LOT")
@user_option
@json_option
@pass_vault
def custody_notify(vault: Vault, lot: str, user: str | None, as_json: bool) -> None:
    """Send a status update on a lot to the clinical team and patient scheduling lists.

    \b
        atmpvault custody notify L-0042
    """
    from atmpvault.archive.custody.service import Custody

    notice = Custody(vault).notify(lot)
    if as_json:
        emit_json(notice.to_json())
        return
    click.echo(f"{notice.id}  {notice.subject}  to {', '.join(notice.lists)}")


@custody.command("escalate")
@user_option
@json_option
@pass_vault
def custody_escalate(vault: Vault, user: str | None, as_json: bool) -> None:
    """Escalate again the open chain breaks a list did not receive (it was missing).

    \b
        atmpvault custody escalate
    """
    from atmpvault.archive.custody.service import Custody

    sent, problems = Custody(vault).escalate()
    if as_json:
        emit_json({"escalated": sent, "problems": problems})
    else:
        for b in sent:
            click.echo(f"{b['id']}  escalated to {', '.join(b['escalated'])}")
    undelivered(problems)


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(custody)
