"""Submission package commands: new, add, rm, build, finalise, acknowledge, verify, ls, show."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import emit_json, json_option, pass_vault, say, table, user_option
from atmpvault.cli.signed import echo_signatures, signature_json
from atmpvault.cli.users import key_option

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.submissions.ectd import PdfCheck
    from atmpvault.archive.regulatory.submissions.model import Package
    from atmpvault.archive.regulatory.submissions.service import Packages


def _packages(vault: Vault) -> Packages:
    from atmpvault.archive.regulatory.submissions.service import Packages

    return Packages(vault)


@click.group()
def package() -> None:
    """Submission packages: eCTD v3.2.2-style sequences built from archived documents.

    \b
        atmpvault package new IND-012345 --sequence 0001 --type protocol-amendment
        atmpvault package add IND-012345 0001 DOC-000007 --section m5/53/535
        atmpvault package rm IND-012345 0001 leaf-0002 --reason "wrong version"
        atmpvault package build IND-012345 0001 -o IND-012345-0001.zip
        atmpvault package finalise IND-012345 0001 --submitted 2026-03-02
        atmpvault package verify IND-012345-0001.zip
    """


@package.command("new")
@click.argument("app")
@click.option("--sequence", "seq", required=True, metavar="NNNN", help="Four digits, e.g. 0001.")
@click.option(
    "--type",
    "sub_type",
    required=True,
    help="The submission type, e.g. original, protocol-amendment, pas, cbe-30 "
    "(an unknown one is refused with the full list).",
)
@user_option
@json_option
@pass_vault
def new(vault: Vault, app: str, seq: str, sub_type: str, user: str | None, as_json: bool) -> None:
    """Plan a new sequence of an application (status planned).

    \b
        atmpvault package new IND-012345 --sequence 0001 --type protocol-amendment
    """
    created = _packages(vault).new(app, seq, sub_type)
    if as_json:
        emit_json(created.to_json())
    else:
        click.echo(f"{created.name}  {created.type}  {created.status}")


@package.command("add")
@click.argument("app")
@click.argument("seq", metavar="NNNN")
@click.argument("doc", metavar="DOC[@VERSION]")
@click.option("--section", required=True, help="eCTD folder, e.g. m3/32p/32p1.")
@click.option(
    "--operation",
    "op",
    default="new",
    show_default=True,
    help="Lifecycle operation of the leaf: new, replace, append or delete.",
)
@click.option("--modifies", metavar="APP/NNNN/LEAF", help="The earlier leaf (path or leaf id).")
@click.option("--title", help="Leaf title (default: the document's title).")
@user_option
@json_option
@pass_vault
def add(
    vault: Vault,
    app: str,
    seq: str,
    doc: str,
    section: str,
    op: str,
    modifies: str | None,
    title: str | None,
    user: str | None,
    as_json: bool,
) -> None:
    """Put an archived document version in a sequence (the latest version unless @N).

    The leaf is checked as a build checks it (a PDF outside FDA's specification, a file
    name taken, a path too long are refused). Two versions of one document both new, a
    document of another program, or a non-PDF in m2-m5 are added with a warning.

    \b
        atmpvault package add IND-012345 0001 DOC-000007@2 --section m3/32p/32p1
        atmpvault package add IND-012345 0002 DOC-000009 --section m3/32p/32p1 \\
            --operation replace --modifies IND-012345/0001/m3/32p/32p1/description.pdf
    """
    added = _packages(vault).add(app, seq, doc, section, op, modifies, title)
    leaf = added.leaf
    for warning in added.warnings:
        say(f"warning: {warning}")
    if as_json:
        emit_json(added.to_json())
        return
    target = f"  modifies {leaf.modifies}" if leaf.modifies else ""
    click.echo(
        f"{added.package.name} {leaf.id}  {leaf.doc} v{leaf.version}  {leaf.operation}  "
        f"{leaf.href or '(delete: no file)'}{target}"
    )


@package.command("rm")
@click.argument("app")
@click.argument("seq", metavar="NNNN")
@click.argument("leaf_ref", metavar="LEAF")
@click.option("--reason", required=True, help="Why the leaf is taken out (kept in the history).")
@user_option
@json_option
@pass_vault
def rm(
    vault: Vault, app: str, seq: str, leaf_ref: str, reason: str, user: str | None, as_json: bool
) -> None:
    """Take a leaf (its id or path) out of a sequence that is not finalised yet.

    The other leaves keep their ids; git keeps the sequence as it was. A submitted
    sequence is changed only by a later one (--operation replace or delete).

    \b
        atmpvault package rm IND-012345 0001 leaf-0002 --reason "wrong version of the spec"
    """
    removed = _packages(vault).rm(app, seq, leaf_ref, reason)
    if as_json:
        emit_json(removed.to_json())
        return
    leaf = removed.leaf
    click.echo(
        f"{removed.package.name} {leaf.id} removed  {leaf.doc} v{leaf.version}  "
        f"{leaf.href or '(delete: no file)'}  ({len(removed.package.leaves)} leaves left)"
    )


@package.command("build")
@click.argument("app")
@click.argument("seq", metavar="NNNN")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    help="A folder (NNNN/ is created in it) or a file ending in .zip.",
)
@click.option("--force", is_flag=True, help="Replace an existing .zip file.")
@json_option
@pass_vault
def build(vault: Vault, app: str, seq: str, output: Path, force: bool, as_json: bool) -> None:
    """Build the sequence: m1-m5, index.xml with MD5s, index-md5.txt, SHA-256 manifest.

    PDFs are checked against FDA's PDF specification (not encrypted, version 1.4 to 1.7,
    no JavaScript); any failure refuses the build. A zip is byte-identical across builds;
    an existing one is replaced only with --force.

    \b
        atmpvault package build IND-012345 0001 -o out/
        atmpvault package build IND-012345 0001 -o IND-012345-0001.zip
    """
    result = _packages(vault).build(app, seq, output, force)
    if as_json:
        emit_json(result.to_json())
        return
    click.echo(
        f"{result.package.name} -> {result.output}  {result.files} files  "
        f"index.xml MD5 {result.index_md5}"
    )
    _pdf_report(result.pdf_checks)


def _pdf_report(checks: list[PdfCheck]) -> None:
    if not checks:
        click.echo("PDF checks: no PDF leaves")
        return
    click.echo("PDF checks (FDA PDF specification: not encrypted, 1.4-1.7, no JavaScript):")
    table(
        [(c.leaf, c.href, f"{c.doc} v{c.version}", c.pdf_version, c.pages, "ok") for c in checks],
        ["LEAF", "PATH", "DOCUMENT", "PDF", "PAGES", "RESULT"],
    )


@package.command("finalise")
@click.argument("app")
@click.argument("seq", metavar="NNNN")
@click.option("--submitted", required=True, metavar="DATE", help="Submission date, YYYY-MM-DD.")
@key_option
@user_option
@json_option
@pass_vault
def finalise(
    vault: Vault,
    app: str,
    seq: str,
    submitted: str,
    key_file: Path | None,
    user: str | None,
    as_json: bool,
) -> None:
    """Freeze a sequence as submitted: tag seq/APP/NNNN, feed the calendar (PAS, CBE).

    In a vault with users it is signed (approval, by regulatory) in the same commit:
    with --key your private key file, else your key in ssh-agent.

    \b
        atmpvault package finalise BLA-125123 0004 --submitted 2026-03-02
        atmpvault package finalise BLA-125123 0004 --submitted 2026-03-02 --key ~/.ssh/id_ed25519
    """
    final = _packages(vault).finalise(app, seq, submitted, key_file)
    signed = _signatures(vault, final)
    if as_json:
        emit_json({**final.to_json(), "signatures": [signature_json(b) for b in signed]})
        return
    event = f"  calendar event {final.calendar_event}" if final.calendar_event else ""
    click.echo(f"{final.name} submitted {final.submitted}  tag {final.tag}{event}")
    echo_signatures(signed)


def _signatures(vault: Vault, package: Package) -> list[dict[str, Any]]:
    """Every signature of every version of a package, oldest first."""
    from atmpvault.archive.core.signatures import Signatures
    from atmpvault.archive.regulatory.kinds import PACKAGE_KIND

    return Signatures(vault).of(PACKAGE_KIND.name, package.name)


@package.command("acknowledge")
@click.argument("app")
@click.argument("seq", metavar="NNNN")
@click.option("--on", "on", required=True, metavar="DATE", help="Acknowledgement date.")
@user_option
@json_option
@pass_vault
def acknowledge(vault: Vault, app: str, seq: str, on: str, user: str | None, as_json: bool) -> None:
    """Record FDA's acknowledgement of a submitted sequence.

    \b
        atmpvault package acknowledge IND-012345 0001 --on 2026-03-04
    """
    done = _packages(vault).acknowledge(app, seq, on)
    if as_json:
        emit_json(done.to_json())
    else:
        click.echo(f"{done.name} acknowledged {done.acknowledged}")


@package.command("verify")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def verify(path: Path, as_json: bool) -> None:
    """Re-check every checksum of a built sequence (folder or zip); exit 3 on a difference.

    \b
        atmpvault package verify IND-012345-0001.zip
    """
    from atmpvault.archive.regulatory.submissions.verify import verify_build
    from atmpvault.errors import IntegrityError

    report = verify_build(path)
    if as_json:
        emit_json(report.to_json())
    elif not report.problems:
        click.echo(
            f"{path}: sequence {report.sequence or '?'} ok: {report.leaves} leaf MD5s, "
            f"index-md5.txt and {report.files} files in the SHA-256 manifest agree"
        )
    else:
        for problem in report.problems:
            click.echo(f"DIFFERS {problem}")
    if report.problems:
        raise IntegrityError(
            f"{path}: {len(report.problems)} difference(s): " + "; ".join(report.problems)
        )


@package.command("ls")
@click.argument("app")
@json_option
@pass_vault
def ls(vault: Vault, app: str, as_json: bool) -> None:
    """List an application's sequences.

    \b
        atmpvault package ls IND-012345
    """
    rows = _packages(vault).ls(app)
    if as_json:
        emit_json([_summary(p) for p in rows])
        return
    table(
        [(p.sequence, p.type, p.status, p.submitted, p.acknowledged, len(p.leaves)) for p in rows],
        ["SEQ", "TYPE", "STATUS", "SUBMITTED", "ACKNOWLEDGED", "LEAVES"],
    )


def _summary(package: Package) -> dict[str, Any]:
    data = package.to_json()
    data["leaves"] = len(package.leaves)
    return data


@package.command("show")
@click.argument("app")
@click.argument("seq", metavar="NNNN")
@json_option
@pass_vault
def show(vault: Vault, app: str, seq: str, as_json: bool) -> None:
    """Show one sequence, its signatures and its leaves.

    \b
        atmpvault package show IND-012345 0001
    """
    packages = _packages(vault)
    found = packages.get(app, seq)
    if found.finalised:
        packages.frozen(found)  # refuses if the record no longer matches its tag
    signed = _signatures(vault, found)
    if as_json:
        emit_json({**found.to_json(), "signatures": [signature_json(b) for b in signed]})
        return
    for key in (
        "app", "sequence", "type", "status", "submitted", "acknowledged", "tag",
        "calendar_event", "created_at", "created_by", "finalised_at", "finalised_by",
    ):  # fmt: skip
        value = getattr(found, key)
        click.echo(f"{key:14} {'' if value is None else value}")
    echo_signatures(signed)
    click.echo("")
    table(
        [
            (
                leaf.id,
                leaf.operation,
                leaf.href or "(no file)",
                f"{leaf.doc} v{leaf.version}",
                leaf.modifies,
                leaf.title,
            )
            for leaf in found.leaves
        ],
        ["LEAF", "OP", "PATH", "DOCUMENT", "MODIFIES", "TITLE"],
    )


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(package)
