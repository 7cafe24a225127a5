"""Document commands: add, show, get, history, ls, withdraw."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from atmpvault.cli.base import (
    distinct_times,
    emit_json,
    json_option,
    list_versions,
    pass_vault,
    say,
    show_version,
    table,
    user_option,
    when_option,
)
from atmpvault.cli.signed import echo_signatures, manifestation_line, signature_json
from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.differences import FieldChange
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.versions import Documents


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--program", help="Program code, e.g. CART-19 (new documents).")
@click.option("--type", "doc_type", help="Document type, e.g. batch-record (new documents).")
@click.option("--title", help="A human title.")
@click.option("--lot", help="The lot the document belongs to.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Extra metadata; repeatable.")
@click.option("--id", "doc_id", help="Archive FILE as the next version of this document.")
@click.option("--reason", help="Why the document changes (required with --id).")
@click.option(
    "--allow-duplicate",
    is_flag=True,
    help="Archive FILE even though another document already holds the same bytes.",
)
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
    allow_duplicate: bool,
    user: str | None,
    as_json: bool,
) -> None:
    """Archive a document, or a new version of one.

    Bytes already archived as another document are refused, naming it, unless
    --allow-duplicate is given.

    \b
        atmpvault add BR-0042.pdf --program CART-19 --type batch-record --lot L-0042
        atmpvault add BR-0042-r2.pdf --id DOC-000007 --reason "QA review corrections"
    """
    from atmpvault.archive.core import values
    from atmpvault.errors import InvalidInput

    extra = values.meta(meta)
    if doc_id is not None:
        if program or doc_type:
            raise InvalidInput("--program and --type are fixed at version 1; omit them with --id")
        if reason is None:
            raise InvalidInput("--reason is required when archiving a new version (--id)")
        if allow_duplicate:
            raise InvalidInput("--allow-duplicate applies to new documents, not to --id")
        version = _documents(vault).revise(doc_id, file, reason, title, lot, extra)
    else:
        if program is None or doc_type is None:
            raise InvalidInput(
                "a new document needs --program and --type (or --id for a new version)"
            )
        if reason is not None:
            raise InvalidInput("--reason applies to new versions (--id); version 1 needs none")
        version = _documents(vault).add(
            file, program, doc_type, title, lot, extra, allow_duplicate=allow_duplicate
        )
    result = {
        "id": version.id,
        "version": version.version,
        "sha256": version.sha256,
        "commit": version.commit,
    }
    if as_json:
        emit_json(result)
    else:
        click.echo(
            f"{version.id} v{version.version}  {version.sha256[:12]}  commit {version.commit[:12]}"
        )


@click.command()
@click.argument("doc_id", metavar="DOC")
@click.option("--version", "number", type=int, help="A version number.")
@click.option("--as-of", "as_of", metavar="WHEN", help="The version current at this date or time.")
@json_option
@pass_vault
def show(vault: Vault, doc_id: str, number: int | None, as_of: str | None, as_json: bool) -> None:
    """Show one version's record (the latest by default) and its signatures.

    \b
        atmpvault show DOC-000007 --as-of 2026-03-31
    """
    from atmpvault.errors import InvalidInput

    if number is not None and as_of is not None:
        raise InvalidInput("use --version or --as-of, not both")
    from atmpvault.archive.regulatory.submissions.service import Packages

    moment = when_option(vault, as_of)
    found = _documents(vault).show(doc_id, number, moment)
    data = found.to_json()
    data["sequences"] = [
        s.to_json() for s in Packages(vault).submissions_of(found.id, found.version)
    ]
    # As of a moment: the version as it stood then, with the signatures it had then.
    signed = [
        b for b in _signatures(vault, found.id, found.version)
        if moment is None or b["signed_at"] <= moment
    ]  # fmt: skip
    data["signatures"] = [signature_json(b) for b in signed]
    if as_json:
        emit_json(data)
        return
    show_version(data)
    echo_signatures(signed, "signed", width=12)
    for key in ("source_path", "duplicate_of"):
        if data.get(key):
            click.echo(f"{key:12} {data[key]}")
    for sub in data["sequences"]:
        state = f"submitted {sub['submitted']}" if sub["submitted"] else sub["status"]
        click.echo(
            f"{'sequence':12} {sub['app']}/{sub['sequence']} {sub['leaf']} {sub['operation']} "
            f"{sub['href'] or ''} ({state})"
        )


@click.command()
@click.argument("doc_id", metavar="DOC")
@click.option("--version", "number", type=int, help="A version number.")
@click.option("--as-of", "as_of", metavar="WHEN", help="The version current at this date or time.")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write here (default: stdout)."
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
@pass_vault
def get(
    vault: Vault,
    doc_id: str,
    number: int | None,
    as_of: str | None,
    output: Path | None,
    force: bool,
) -> None:
    """Write the exact archived bytes of a version (an existing file only with --force).

    \b
        atmpvault get DOC-000007 --version 1 -o BR-0042-v1.pdf
    """
    from atmpvault.errors import InvalidInput

    if number is not None and as_of is not None:
        raise InvalidInput("use --version or --as-of, not both")
    from atmpvault.archive.documents.records import WITHDRAWN

    documents = _documents(vault)
    found = documents.show(doc_id, number, when_option(vault, as_of))
    latest = found if found.status == WITHDRAWN else documents.show(found.id)
    if latest.status == WITHDRAWN:
        say(
            f"{found.id} was withdrawn in v{latest.version} at {latest.recorded_at}"
            f" ({latest.reason}); these are the bytes of v{found.version}"
        )
    if output is None:
        sink = _Reader(sys.stdout.buffer)
        documents.get(found.id, cast(IO[bytes], sink), found.version)
        sink.flush()
        if sink.gone:
            raise BrokenPipeError  # the reader stopped early (| head): the boundary exits quietly
        return
    target = output / found.filename if output.is_dir() else output
    if target.exists() and not force:
        raise VaultError(f"{target} already exists; use --force to replace it")
    try:
        from atmpvault.files import atomic_write

        with atomic_write(target) as out:
            _documents(vault).get(doc_id, out, found.version)
    except OSError as exc:
        raise VaultError(f"cannot write {target}: {exc.strerror}") from None
    click.echo(f"{found.id} v{found.version} -> {target}", err=True)


class _Reader:
    """Standard output that, once the reader has gone, swallows the rest of a stream.

    The rest of the object is still read from git (so its reader stays in step and the
    checksum is still checked) but written nowhere; a closed pipe is not damage.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.gone = False

    def write(self, block: bytes) -> int:
        if not self.gone:
            try:
                self.out.write(block)
            except BrokenPipeError:
                self.gone = True
        return len(block)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.out.flush()
            except BrokenPipeError:
                self.gone = True


@click.command()
@click.argument("doc_id", metavar="DOC")
@json_option
@pass_vault
def history(vault: Vault, doc_id: str, as_json: bool) -> None:
    """Every version of a document, oldest first, with who, when, why and what changed.

    CHANGES names each metadata field a version changed (title, lot, meta ...) as
    old -> new; the content's change shows in SHA256. Each version's signatures follow:
    printed name (login), date and time UTC, meaning.

    \b
        atmpvault history DOC-000007
    """
    from itertools import pairwise

    from atmpvault.archive.core.differences import field_changes

    rows = _documents(vault).history(doc_id)
    bodies = [r.to_json() for r in rows]
    signed = _signatures(vault, rows[0].id) if rows else []
    # Version 1 changes nothing; each later one against the version before it.
    changes: list[list[FieldChange]] = [[]]
    changes += [field_changes(old, new, HISTORY_FIELDS) for old, new in pairwise(bodies)]
    if as_json:
        keys = (
            "version",
            "recorded_at",
            "user",
            "action",
            "status",
            "reason",
            "sha256",
            "size",
            "commit",
        )
        emit_json(
            [
                {
                    **{k: b[k] for k in keys},
                    "changes": [c.to_json() for c in found],
                    "signatures": [
                        signature_json(s) for s in signed if s["target"]["version"] == b["version"]
                    ],
                }
                for b, found in zip(bodies, changes, strict=True)
            ]
        )
        return
    times = distinct_times([r.recorded_at for r in rows])
    table(
        [
            (r.version, t, r.user, r.action, r.reason, r.sha256[:12], _changes(found))
            for r, t, found in zip(rows, times, changes, strict=True)
        ],
        ["V", "RECORDED (UTC)", "USER", "ACTION", "REASON", "SHA256", "CHANGES"],
    )
    for body in signed:
        click.echo(f"v{body['target']['version']} signed  {manifestation_line(body)}")


def _signatures(vault: Vault, doc_id: str, version: int | None = None) -> list[dict[str, Any]]:
    """The signatures of a document's versions (one, or all), oldest first."""
    from atmpvault.archive.core.signatures import Signatures
    from atmpvault.archive.documents.records import KIND

    return Signatures(vault).of(KIND.name, doc_id, version)


# The metadata a new version may change, as `history` shows it (content: its SHA-256).
HISTORY_FIELDS = ("program", "type", "title", "lot", "filename", "status", "meta")


def _changes(found: list[FieldChange]) -> str:
    return "; ".join(f"{c.name}: {_shown(c.old)} \u2192 {_shown(c.new)}" for c in found)


def _shown(value: Any) -> str:
    return "(none)" if value in (None, "") else str(value)


@click.command("ls")
@click.option("--program", help="Only this program.")
@click.option("--type", "doc_type", help="Only this document type.")
@click.option("--lot", help="Only this lot.")
@click.option("--unsearchable", is_flag=True, help="Only documents whose text was not extracted.")
@click.option("--app", help="Only versions put in a sequence of this application.")
@click.option("--sequence", "seq", metavar="NNNN", help="Only versions put in this sequence.")
@click.option(
    "--as-of", "as_of", metavar="WHEN", help="The archive as it stood at this date or time."
)
@json_option
@pass_vault
def ls(
    vault: Vault,
    program: str | None,
    doc_type: str | None,
    lot: str | None,
    unsearchable: bool,
    app: str | None,
    seq: str | None,
    as_of: str | None,
    as_json: bool,
) -> None:
    """List the latest version of each document, or the versions in --app/--sequence.

    \b
        atmpvault ls --program CART-19 --as-of 2026-06-30
        atmpvault ls --app IND-012345 --sequence 0003
    """
    from atmpvault.archive.core import values
    from atmpvault.archive.documents.tables import Filters

    filters = Filters(
        program=values.program(program) if program is not None else None,
        type=vault.document_type(doc_type) if doc_type is not None else None,
        lot=values.lot(lot),
        unsearchable=unsearchable,
    )
    rows = _documents(vault).ls(filters, when_option(vault, as_of))
    if app is not None or seq is not None:
        from atmpvault.archive.regulatory.submissions.service import Packages

        rows = Packages(vault).versions_in(rows, app, seq)
    if as_json:
        emit_json([r.to_json() for r in rows])
    elif unsearchable:
        table(
            [(r.id, r.version, r.type, r.unsearchable_reason, r.title) for r in rows],
            ["ID", "V", "TYPE", "WHY UNSEARCHABLE", "TITLE"],
        )
    else:
        list_versions(rows)


@click.command()
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
    version = _documents(vault).withdraw(doc_id, reason)
    if as_json:
        emit_json(
            {
                "id": version.id,
                "version": version.version,
                "status": version.status,
                "commit": version.commit,
            }
        )
    else:
        click.echo(f"{version.id} v{version.version} withdrawn  commit {version.commit[:12]}")


def _documents(vault: Vault) -> Documents:
    from atmpvault.archive.documents.versions import Documents

    return Documents(vault)


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(add)
    cli.add_command(show)
    cli.add_command(get)
    cli.add_command(history)
    cli.add_command(ls)
    cli.add_command(withdraw)
    from atmpvault.cli import importing

    importing.register(cli)
