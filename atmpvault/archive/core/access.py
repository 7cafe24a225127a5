"""Who may do what: the roles, which roles each command needs, and who is acting.

A vault becomes access-controlled when its first user is added (see users.py): from
then on the actor of every command is the login of the process's real uid (never $USER
or another variable), which must be an enabled user holding a role the command needs.
The table of command -> roles, the meanings each role may sign with and the gates that
need a signature live in config/vault.json ("access"), with the defaults below; only an
admin changes them (`atmpvault config set access.commands '{...}'`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from atmpvault.errors import AccessDenied, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

ROLES = ("admin", "regulatory", "qa-approver", "quality", "custody", "scheduler", "auditor")
MEANINGS = ("approval", "review", "authorship", "responsibility", "release")
ANYONE = "*"  # every enabled user, auditors included (read-only commands)

_DOCS = ["regulatory", "quality", "qa-approver", "custody", "scheduler"]
_QUALITY = ["quality", "qa-approver"]
_READ = [ANYONE]

# Every command of the command line and the roles that may run it (init and demo make a
# new vault, bundle verify reads a bundle: none of them opens one).
DEFAULT_COMMANDS: dict[str, list[str]] = {
    # documents and search
    "add": _DOCS, "withdraw": _DOCS, "import": _DOCS,
    "ls": _READ, "show": _READ, "history": _READ, "get": _READ, "search": _READ,
    "log": _READ, "verify": _READ, "rebuild": _READ, "calendar": _READ,
    # a team's shared upstream (init-shared and clone make a repository or a vault)
    "publish": ["admin"], "remote show": _READ, "sync": _READ,
    # the vault's own configuration, lists, people and users
    "config set": ["admin"], "config show": _READ,
    "lists set": ["admin"], "lists rm": ["admin"], "lists ls": _READ,
    "people set": ["admin"], "people ls": _READ,
    "users add": ["admin"], "users roles": ["admin"], "users rotate-key": ["admin"],
    "users revoke-key": ["admin"], "users unlock": ["admin"], "users disable": ["admin"],
    "users ls": _READ,
    "sign": [r for r in ROLES if r != "auditor"], "signatures": _READ,
    "notices ls": _READ, "notices show": _READ,
    # regulatory
    "app new": ["regulatory"], "app status": ["regulatory"],
    "app ls": _READ, "app show": _READ,
    "event add": ["regulatory"], "event correct": ["regulatory"], "event void": ["regulatory"],
    "event ls": _READ,
    "milestone done": ["regulatory"], "milestone waive": ["regulatory"],
    "milestone reopen": ["regulatory"],
    "alerts route": ["admin", "regulatory"], "alerts digest": ["regulatory"],
    "alerts routes": _READ,
    "package new": ["regulatory"], "package add": ["regulatory"], "package rm": ["regulatory"],
    "package build": ["regulatory"], "package finalise": ["regulatory"],
    "package acknowledge": ["regulatory"],
    "package ls": _READ, "package show": _READ, "package verify": _READ,
    # lots, deviations and CAPA
    "lot new": ["quality", "qa-approver", "scheduler"], "lot start": _QUALITY,
    "lot complete": _QUALITY, "lot release": ["qa-approver"], "lot reject": ["qa-approver"],
    "lot ls": _READ, "lot show": _READ, "lot export": _READ,
    "deviation open": _QUALITY + ["custody"], "deviation affect": _QUALITY,
    "deviation assign": _QUALITY, "deviation attach": _QUALITY,
    "deviation investigate": _QUALITY, "deviation extend": _QUALITY,
    "deviation escalate": _QUALITY, "deviation close": ["qa-approver"],
    "deviation capa add": _QUALITY, "deviation capa done": _QUALITY,
    "deviation capa verify": _QUALITY,
    "deviation ls": _READ, "deviation show": _READ, "deviation aging": _READ,
    # custody
    "custody log": ["custody"], "custody resolve": ["custody", "qa-approver"],
    "custody notify": ["custody"], "custody escalate": ["custody"],
    "custody certificate": ["custody"],
    "custody show": _READ, "custody status": _READ, "custody verify-certificate": _READ,
    # dosing
    "dosing plan": ["scheduler"], "dosing update": ["scheduler"],
    "dosing confirm-availability": ["scheduler", "custody"],
    "slot reserve": ["scheduler"], "slot cancel": ["scheduler"],
    "dosing show": _READ, "dosing board": _READ, "dosing conflicts": _READ, "slot ls": _READ,
}  # fmt: skip

# The roles that may sign with each meaning.
DEFAULT_MEANINGS: dict[str, list[str]] = {
    "approval": ["qa-approver", "regulatory"],
    "review": ["regulatory", "qa-approver", "quality", "custody", "scheduler"],
    "authorship": ["regulatory", "qa-approver", "quality", "custody", "scheduler"],
    "responsibility": ["custody", "qa-approver", "quality", "scheduler"],
    "release": ["qa-approver"],
}

# The steps that sign the record version they write: meaning, the roles that may sign,
# and whether the signer must be someone other than the record's owner.
DEFAULT_GATES: dict[str, dict[str, Any]] = {
    "lot release": {"meaning": "release", "roles": ["qa-approver"]},
    "lot reject": {"meaning": "release", "roles": ["qa-approver"]},
    "deviation close": {"meaning": "approval", "roles": ["qa-approver"], "independent": True},
    "package finalise": {"meaning": "approval", "roles": ["regulatory"]},
    "custody certificate": {"meaning": "responsibility", "roles": ["custody"]},
}

DEFAULTS: dict[str, Any] = {
    "commands": DEFAULT_COMMANDS,
    "meanings": DEFAULT_MEANINGS,
    "gates": DEFAULT_GATES,
    "lockout_after": 3,
    "security_lists": ["security"],
}


def settings(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The effective access settings: the section's values over the defaults, checked.

    A table given in the section replaces the default entries it names, and keeps the
    rest; VaultError names what is wrong with a broken one.
    """
    given = dict(section or {})
    unknown = sorted(set(given) - set(DEFAULTS) - {"controlled"})
    if unknown:
        raise VaultError(f"access: unknown setting(s) {', '.join(unknown)}")
    commands = {**DEFAULT_COMMANDS, **_table(given.get("commands"), "commands")}
    meanings = {**DEFAULT_MEANINGS, **_table(given.get("meanings"), "meanings")}
    unknown_meanings = sorted(set(meanings) - set(MEANINGS))
    if unknown_meanings:
        raise VaultError(f"access.meanings: unknown meaning(s) {', '.join(unknown_meanings)}")
    gates = {**DEFAULT_GATES, **_gates(given.get("gates"))}
    lockout = given.get("lockout_after", DEFAULTS["lockout_after"])
    if not isinstance(lockout, int) or isinstance(lockout, bool) or not 1 <= lockout <= 20:
        raise VaultError("access.lockout_after must be a whole number from 1 to 20")
    lists = given.get("security_lists", DEFAULTS["security_lists"])
    if not isinstance(lists, list) or not lists or not all(isinstance(n, str) for n in lists):
        raise VaultError("access.security_lists must be a list of distribution list names")
    return {
        "commands": commands,
        "meanings": meanings,
        "gates": gates,
        "lockout_after": lockout,
        "security_lists": lists,
    }


def of(vault: Vault) -> dict[str, Any]:
    """The vault's effective access settings (its "access" section over the defaults)."""
    return settings(vault.config.sections.get("access"))


def _roles(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise VaultError(f"{where} must be a list of roles")
    unknown = sorted(set(value) - set(ROLES) - {ANYONE})
    if unknown:
        raise VaultError(
            f"{where}: unknown role(s) {', '.join(unknown)}; roles: {', '.join(ROLES)}"
        )
    return list(value)


def _table(value: object, name: str) -> dict[str, list[str]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VaultError(f"access.{name} must map names to lists of roles")
    return {str(k): _roles(v, f"access.{name}.{k}") for k, v in value.items()}


def _gates(value: object) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VaultError("access.gates must map commands to {meaning, roles}")
    gates: dict[str, dict[str, Any]] = {}
    for command, gate in value.items():
        if gate is None:  # a gate switched off
            gates[str(command)] = {}
            continue
        if not isinstance(gate, dict) or gate.get("meaning") not in MEANINGS:
            raise VaultError(
                f"access.gates.{command} must name a meaning ({', '.join(MEANINGS)}) and roles"
            )
        gates[str(command)] = {
            "meaning": gate["meaning"],
            "roles": _roles(gate.get("roles"), f"access.gates.{command}.roles"),
            "independent": bool(gate.get("independent", False)),
        }
    return gates


def acting(vault: Vault) -> str:
    """Who is acting: with users, the login of the process's real uid; without, --user,
    else ATMPVAULT_USER, else git's user.name, else the login."""
    import getpass
    import subprocess

    from atmpvault.archive.core import values

    if vault.controlled:
        return os_login()
    if vault.settings.user:
        return values.user(vault.settings.user)
    result = subprocess.run(["git", "config", "user.name"], capture_output=True)
    name = result.stdout.decode("utf-8", "replace").strip()
    return values.user(name or getpass.getuser())


def os_login() -> str:
    """The login of the process's real uid, from the password database (never $USER)."""
    import pwd

    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        raise VaultError(f"this process's uid {uid} has no login name") from None


def allowed(roles: list[str], needed: list[str]) -> bool:
    """Whether a user holding `roles` may do what `needed` roles may."""
    return ANYONE in needed or bool(set(roles) & set(needed))


def authorise(vault: Vault, command: str) -> None:
    """Refuse (AccessDenied) a command the acting user may not run; in a vault without
    users, every command runs, as before."""
    if not vault.controlled:
        return
    from atmpvault.archive.core.users import read_user

    me = vault.actor
    user = read_user(vault, me)
    if user is None:
        raise AccessDenied(
            f"you ({me}) are not a user of this vault; an admin adds you with "
            f"'atmpvault users add {me} --name NAME --email ADDRESS --role ROLE ...'"
        )
    if not user["enabled"]:
        raise AccessDenied(f"user {me} is disabled; nothing was done")
    needed = of(vault)["commands"].get(command)
    if needed is None:
        raise AccessDenied(f"no role may run '{command}': it is not in the vault's access table")
    if not allowed(user["roles"], needed):
        raise AccessDenied(
            f"{me} ({', '.join(user['roles'])}) may not run '{command}'; it needs the role "
            + " or ".join(needed)
        )


def registered(vault: Vault, name: str, what: str) -> str:
    """`name` (an owner, an approver) checked to be an enabled user's login, in a vault
    with users; as given in one without."""
    if not vault.controlled:
        return name
    from atmpvault.archive.core.users import read_user

    user = read_user(vault, name)
    if user is None or not user["enabled"]:
        raise NotFound(
            f"{what} {name[:40]!r} is not an enabled user's login; this vault names people "
            "by login ('atmpvault users ls')"
        )
    return name
