"""Users and roles (`atmpvault users`), electronic signatures (`sign`, `signatures`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from atmpvault.cli.base import emit_json, json_option, moment_for, pass_vault, table
from atmpvault.cli.signed import signature_json

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

ROLE_HELP = "admin, regulatory, qa-approver, quality, custody, scheduler or auditor (repeat)."
key_option = click.option(
    "--key",
    "key_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Your private key file (default: your key in ssh-agent).",
)


@click.group("users")
def users() -> None:
    """The vault's users: logins, printed names, roles and signing keys.

    The first user added must be you, as admin: from then on the vault is
    access-controlled, each command run as your OS login and allowed by your roles.

    \b
        atmpvault users add dana --name "Dana Whitfield" --email dana@example.com \\
            --role admin --role qa-approver --public-key ~/.ssh/id_ed25519.pub \\
            --reason "QA head; vault owner"
        atmpvault users ls
    """


def _public_key(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")[:16384]
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None


def shown_user(user: dict[str, Any]) -> dict[str, Any]:
    from atmpvault.archive.core.users import current_key

    key = current_key(user)
    return {
        "login": user["login"],
        "name": user["name"],
        "email": user["email"],
        "roles": user["roles"],
        "enabled": user["enabled"],
        "signing_locked": user["signing_locked"],
        "failed_signatures": user["failed_signatures"],
        "key": key["fingerprint"] if key else None,
        "keys": user["keys"],
    }


def _done(user: dict[str, Any], as_json: bool, what: str) -> None:
    if as_json:
        emit_json(shown_user(user))
        return
    click.echo(f"{user['login']}: {what}")


@users.command("add")
@click.argument("login")
@click.option("--name", "full_name", required=True, help="The person's printed name.")
@click.option("--email", required=True, help="Their e-mail address, for notices.")
@click.option("--role", "roles", multiple=True, required=True, help=ROLE_HELP)
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="Their SSH public key (.pub), which checks their signatures.",
)
@click.option("--reason", required=True, help="Why (kept in the history).")
@json_option
@pass_vault
def users_add(
    vault: Vault,
    login: str,
    full_name: str,
    email: str,
    roles: tuple[str, ...],
    public_key: Path,
    reason: str,
    as_json: bool,
) -> None:
    """Register a user; the first must be you, with the admin role.

    \b
        atmpvault users add sam --name "Sam Okafor" --email sam@example.com \\
            --role custody --public-key sam.pub --reason "custody coordinator"
    """
    from atmpvault.archive.core.users import Users

    user = Users(vault).add(login, full_name, email, roles, _public_key(public_key), reason)
    _done(user, as_json, f"added ({', '.join(user['roles'])})")


@users.command("ls")
@json_option
@pass_vault
def users_ls(vault: Vault, as_json: bool) -> None:
    """List the users (disabled ones too).

    \b
        atmpvault users ls --json
    """
    from atmpvault.archive.core.users import Users

    found = [shown_user(u) for u in Users(vault).all()]
    if as_json:
        emit_json(found)
        return
    users_table(found)


def users_table(found: list[dict[str, Any]]) -> None:
    """The users as `users ls` shows them."""
    rows = [
        [u["login"], u["name"], u["email"], ", ".join(u["roles"]),
         "enabled" if u["enabled"] else "disabled",
         "locked" if u["signing_locked"] else (u["key"] or "no valid key")]
        for u in found
    ]  # fmt: skip
    table(rows, ["LOGIN", "NAME", "EMAIL", "ROLES", "STATUS", "SIGNING KEY"])


@users.command("roles")
@click.argument("login")
@click.option("--role", "roles", multiple=True, required=True, help=ROLE_HELP)
@click.option("--reason", required=True, help="Why (kept in the history).")
@json_option
@pass_vault
def users_roles(
    vault: Vault, login: str, roles: tuple[str, ...], reason: str, as_json: bool
) -> None:
    """Set a user's roles (replacing the ones they hold).

    \b
        atmpvault users roles sam --role custody --role quality --reason "cross-trained"
    """
    from atmpvault.archive.core.users import Users

    user = Users(vault).set_roles(login, roles, reason)
    _done(user, as_json, f"roles {', '.join(user['roles'])}")


@users.command("rotate-key")
@click.argument("login")
@click.option(
    "--public-key",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    required=True,
    help="The new SSH public key (.pub).",
)
@click.option("--reason", required=True, help="Why (kept in the history).")
@json_option
@pass_vault
def users_rotate_key(
    vault: Vault, login: str, public_key: Path, reason: str, as_json: bool
) -> None:
    """Register a new key; the old one stays valid for what it signed before.

    \b
        atmpvault users rotate-key sam --public-key sam-2027.pub --reason "yearly rotation"
    """
    from atmpvault.archive.core.users import Users

    user = Users(vault).rotate_key(login, _public_key(public_key), reason)
    _done(user, as_json, f"key {user['keys'][-1]['fingerprint']}")


@users.command("revoke-key")
@click.argument("login")
@click.option("--from", "start", required=True, help="From when (signatures since are void).")
@click.option("--reason", required=True, help="Why (kept in the history).")
@json_option
@pass_vault
def users_revoke_key(vault: Vault, login: str, start: str, reason: str, as_json: bool) -> None:
    """Revoke a user's key from a time: signatures made since no longer verify.

    \b
        atmpvault users revoke-key sam --from 2026-11-02T08:00 --reason "laptop stolen"
    """
    from atmpvault.archive.core.users import Users

    user = Users(vault).revoke_key(login, moment_for(vault, start, start_of_day=True), reason)
    _done(user, as_json, f"key revoked from {start}")


@users.command("unlock")
@click.argument("login")
@click.option("--reason", required=True, help="Why (kept in the history).")
@json_option
@pass_vault
def users_unlock(vault: Vault, login: str, reason: str, as_json: bool) -> None:
    """Let a user sign again after a lockout of failed attempts.

    \b
        atmpvault users unlock sam --reason "mistyped passphrase, confirmed by phone"
    """
    from atmpvault.archive.core.users import Users

    _done(Users(vault).unlock(login, reason), as_json, "signing unlocked")


@users.command("disable")
@click.argument("login")
@click.option("--reason", required=True, help="Why (kept in the history).")
@json_option
@pass_vault
def users_disable(vault: Vault, login: str, reason: str, as_json: bool) -> None:
    """Disable a user: kept, with everything they signed, but no longer able to act.

    \b
        atmpvault users disable sam --reason "left the company"
    """
    from atmpvault.archive.core.users import Users

    _done(Users(vault).disable(login, reason), as_json, "disabled")


@click.command("sign")
@click.argument("target")
@click.option(
    "--meaning",
    required=True,
    help="What your signature means: approval, review, authorship, responsibility or release.",
)
@key_option
@click.option("--comment", help="A comment, signed with the rest.")
@json_option
@pass_vault
def sign(
    vault: Vault,
    target: str,
    meaning: str,
    key_file: Path | None,
    comment: str | None,
    as_json: bool,
) -> None:
    """Sign the current version of a document or record (DOC@V, REC@V, KIND:ID@V).

    \b
        atmpvault sign DOC-000042@3 --meaning review
        atmpvault sign lot:L-0042@4 --meaning responsibility --key ~/.ssh/id_ed25519
    """
    from atmpvault.archive.core.signatures import Signatures, manifestation

    body = Signatures(vault).sign(target, meaning, key_file, comment)
    if as_json:
        emit_json(signature_json(body))
        return
    click.echo(f"{body['id']}  {body['target']['id']} v{body['target']['version']}  "
               f"{manifestation(body)}")  # fmt: skip


@click.command("signatures")
@click.argument("target")
@json_option
@pass_vault
def signatures(vault: Vault, target: str, as_json: bool) -> None:
    """List the signatures of a document or record (ID, or one version: ID@V).

    \b
        atmpvault signatures DEV-2026-0001
        atmpvault signatures lot:L-0042@4 --json
    """
    from atmpvault.archive.core.signatures import Signatures, manifestation

    signing = Signatures(vault)
    if "@" in target:
        found = signing.target(target)
        kind, record_id, version = found.kind, found.id, found.version
    else:
        kind, _, record_id = target.rpartition(":")
        kind = kind or signing.kind_of(record_id)
        version = None
    listed = signing.of(kind, record_id, version)
    if as_json:
        emit_json([signature_json(b) for b in listed])
        return
    rows = [
        [b["id"], f"v{b['target']['version']}", manifestation(b), b.get("comment") or ""]
        for b in listed
    ]
    table(rows, ["SIGNATURE", "VERSION", "SIGNED (NAME, UTC TIME, MEANING)", "COMMENT"])


def register(cli: click.Group) -> None:
    """Add this module's commands to the command line."""
    cli.add_command(users)
    cli.add_command(sign)
    cli.add_command(signatures)
