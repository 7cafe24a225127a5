"""Users: unique logins with a printed name, an e-mail address, roles and signing keys.

Each user is a record (users/LOGIN.json), versioned like every other: a role change, a
new key, a revocation, a lockout and its release are each a commit by an admin with a
reason. A user is never deleted and a login never names another person; disabling
keeps the record (and every signature made with it). The first user of a vault must be
the person adding it, as an admin: that write makes the vault access-controlled.

A key is valid for signatures made from its registration until it was rotated out, and
never after a revocation's date (`revoked_from`, which may lie in the past: a key known
to be compromised since then).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import access, values
from atmpvault.archive.core.records import Columns, RecordKind
from atmpvault.errors import (
    AccessDenied,
    InvalidInput,
    NotFound,
    NothingChanged,
    SignatureRefused,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.sshsig import PublicKey
    from atmpvault.archive.core.vault import Vault

LOGIN_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")


def _user_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(status="enabled" if body.get("enabled") else "disabled", ref=body.get("email"))


USER_KIND = RecordKind(
    name="user",
    root="users",
    id_pattern=LOGIN_RE.pattern,
    sharded=False,
    distinctive=False,
    fields=frozenset(
        {
            "login",
            "name",
            "email",
            "roles",
            "enabled",
            "keys",
            "failed_signatures",
            "signing_locked",
        }
    ),  # fmt: skip
    columns=_user_columns,
)


def login(value: str) -> str:
    """A login as the operating system has it: lower-case letters, digits, . _ -."""
    if not LOGIN_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid login {value[:40]!r}: use the person's OS login (lower-case letters, "
            "digits, '.', '_' and '-', at most 32)"
        )
    return value


def roles(given: Iterable[str]) -> list[str]:
    """Roles, each one of access.ROLES, at least one, in the order ROLES lists them."""
    chosen = set(given)
    unknown = sorted(chosen - set(access.ROLES))
    if unknown:
        raise InvalidInput(
            f"unknown role(s) {', '.join(unknown)}; roles: {', '.join(access.ROLES)}"
        )
    if not chosen:
        raise InvalidInput("give at least one --role")
    return [r for r in access.ROLES if r in chosen]


def valid_key(body: Mapping[str, Any], at: str) -> dict[str, Any] | None:
    """The key of a user that was valid at `at` (ISO time), if any."""
    for key in body.get("keys", []):
        revoked = key.get("revoked_from")
        if key["from"] <= at and (key.get("until") is None or at < key["until"]):
            if revoked is None or at < revoked:
                return dict(key)
    return None


def current_key(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The key a user signs with now: the last registered, unless revoked."""
    keys = body.get("keys", [])
    if not keys or keys[-1].get("until") is not None or keys[-1].get("revoked_from"):
        return None
    return dict(keys[-1])


def read_user(vault: Vault, name: str) -> dict[str, Any] | None:
    """One user as the tip has it, read by its path (no catalog needed)."""
    if not LOGIN_RE.fullmatch(name):
        return None
    raw = vault.read_small(USER_KIND.path_for(name))
    return None if raw is None else USER_KIND.decode(raw, USER_KIND.path_for(name))


class Users:
    """The vault's users: add, change roles and keys, lock out, unlock, disable."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def all(self) -> list[dict[str, Any]]:
        """Every user (disabled ones too), by login."""
        return [r.body for r in self.vault.catalog.records(USER_KIND.name)]

    def get(self, name: str) -> dict[str, Any]:
        found = read_user(self.vault, name)
        if found is None:
            raise NotFound(f"no user {name[:40]!r} in this vault")
        return found

    def add(
        self,
        name: str,
        full_name: str,
        email: str,
        role_names: Iterable[str],
        public_key: str,
        reason: str,
    ) -> dict[str, Any]:
        """Register a user. The vault's first user must be the person running this, with
        the admin role: their registration makes the vault access-controlled."""
        from atmpvault.archive.core.notices import email_address

        name, chosen = login(name), roles(role_names)
        full_name = values.text(full_name, "name", values.MAX_USER, required=True) or ""
        address, why = email_address(email), values.reason(reason)
        key = self._key(public_key)
        vault = self.vault
        with vault.writing():
            first = not vault.controlled
            if first:
                me = access.os_login()
                if name != me or "admin" not in chosen:
                    raise AccessDenied(
                        f"the first user of a vault must be you, {me}, with the admin role "
                        f"('atmpvault users add {me} --role admin ...'): that is how a vault "
                        "becomes access-controlled"
                    )
            else:
                self._admin()
            held = read_user(vault, name)
            if held is not None:
                raise InvalidInput(
                    f"login {name} is taken by {held['name']}; a login is never reused"
                )
            self._key_free(key)
            body = {
                "login": name, "name": full_name, "email": address, "roles": chosen,
                "enabled": True, "failed_signatures": 0, "signing_locked": False,
                "keys": [],
            }  # fmt: skip
            subject = f"Add user {name} ({full_name})"
            actor = access.os_login() if first else None  # the first one acts as themselves
            with vault.unit("add-user", subject, reason=why, actor=actor) as unit:
                body["keys"] = [_key_entry(key, unit)]
                unit.put(USER_KIND, name, body)
                if first:
                    _make_controlled(vault, unit)
        if first:
            vault.forget_config()
        return body

    def set_roles(self, name: str, role_names: Iterable[str], reason: str) -> dict[str, Any]:
        chosen = roles(role_names)

        def change(body: dict[str, Any], _unit: UnitOfWork) -> str:
            if body["roles"] == chosen:
                raise NothingChanged(f"{name} already has the roles {', '.join(chosen)}")
            if "admin" not in chosen:
                self._not_last_admin(name)
            was = ", ".join(body["roles"])
            body["roles"] = chosen
            return f"Set {name}'s roles to {', '.join(chosen)} (was {was})"

        return self._change(name, "set-roles", reason, change)

    def rotate_key(self, name: str, public_key: str, reason: str) -> dict[str, Any]:
        """A new key; the old stays valid for signatures made before now."""
        key = self._key(public_key)

        def change(body: dict[str, Any], unit: UnitOfWork) -> str:
            self._key_free(key, name)
            if body["keys"] and body["keys"][-1]["fingerprint"] == key.fingerprint:
                raise NothingChanged(f"{name}'s current key is already {key.fingerprint}")
            for entry in body["keys"]:
                if entry.get("until") is None:
                    entry["until"] = values.iso(unit.when)
            body["keys"].append(_key_entry(key, unit))
            return f"Rotate {name}'s key to {key.fingerprint}"

        return self._change(name, "rotate-key", reason, change)

    def revoke_key(self, name: str, start: datetime, reason: str) -> dict[str, Any]:
        """Every key of the user valid at or after `start`: no signature from then on."""
        stamp = values.iso(start)

        def change(body: dict[str, Any], unit: UnitOfWork) -> str:
            if stamp > values.iso(unit.when):
                raise InvalidInput(f"--from {stamp[:19]} is in the future")
            hit = 0
            for entry in body["keys"]:
                ends = entry.get("until")
                revoked = entry.get("revoked_from")
                if (ends is None or ends > stamp) and (revoked is None or revoked > stamp):
                    entry["revoked_from"] = max(stamp, entry["from"])
                    hit += 1
            if not hit:
                raise NothingChanged(f"{name} has no key valid at or after {stamp[:19]}")
            return f"Revoke {name}'s key from {stamp[:19]}"

        return self._change(name, "revoke-key", reason, change)

    def unlock(self, name: str, reason: str) -> dict[str, Any]:
        def change(body: dict[str, Any], _unit: UnitOfWork) -> str:
            if not body["signing_locked"] and not body["failed_signatures"]:
                raise NothingChanged(f"{name}'s signing is not locked")
            body["signing_locked"], body["failed_signatures"] = False, 0
            return f"Unlock {name}'s signing"

        return self._change(name, "unlock-user", reason, change)

    def disable(self, name: str, reason: str) -> dict[str, Any]:
        def change(body: dict[str, Any], _unit: UnitOfWork) -> str:
            if not body["enabled"]:
                raise NothingChanged(f"{name} is already disabled")
            if "admin" in body["roles"]:
                self._not_last_admin(name)
            body["enabled"] = False
            return f"Disable user {name}"

        return self._change(name, "disable-user", reason, change)

    def failed_signature(self, name: str, why: str) -> tuple[int, bool, list[str]]:
        """Record a failed signature attempt (the caller holds the lock): (attempts in a
        row, whether this one locked signing, security lists that were not there to tell)."""
        from atmpvault.archive.core.changes import UnitOfWork

        vault = self.vault
        body = read_user(vault, name)
        if body is None:
            return 0, False, []
        limit = access.of(vault)["lockout_after"]
        body["failed_signatures"] += 1
        locked = body["failed_signatures"] >= limit and not body["signing_locked"]
        body["signing_locked"] = body["signing_locked"] or locked
        unit = UnitOfWork(vault, "signature-failed", name, values.reason(why[:400]))
        unit.subject = f"Failed signature attempt by {name} ({body['failed_signatures']} in a row)"
        unit.put(USER_KIND, name, body)
        missing: list[str] = []
        if locked:
            missing = _tell_security(vault, unit, body)
        vault.commit_units([unit])
        return body["failed_signatures"], locked, missing

    # -- helpers ---------------------------------------------------------------------

    def _change(self, name: str, action: str, reason: str, change: Any) -> dict[str, Any]:
        name, why = login(name), values.reason(reason)
        vault = self.vault
        with vault.writing():
            self._admin()
            body = self.get(name)
            with vault.unit(action, action, reason=why) as unit:
                unit.subject = change(body, unit)
                unit.put(USER_KIND, name, body)
        return body

    def _admin(self) -> None:
        """Only an admin changes users (the command table says so too; a library caller
        is held to it here)."""
        if not self.vault.controlled:
            raise AccessDenied("this vault has no users yet; add yourself first, as admin")
        me = read_user(self.vault, self.vault.actor)
        if me is None or not me["enabled"] or "admin" not in me["roles"]:
            raise AccessDenied(f"only an admin changes users; {self.vault.actor} is not one")

    def _not_last_admin(self, name: str) -> None:
        others = [
            u for u in self.all()
            if u["login"] != name and u["enabled"] and "admin" in u["roles"]
        ]  # fmt: skip
        if not others:
            raise InvalidInput(f"{name} is the vault's last enabled admin; add another first")

    def _key(self, text: str) -> PublicKey:
        from atmpvault.archive.core.sshsig import public_key

        return public_key(text, "--public-key")

    def _key_free(self, key: PublicKey, owner: str | None = None) -> None:
        """A key names one person: refuse one registered to another user."""
        for user in self.all():
            if user["login"] != owner and any(
                k["fingerprint"] == key.fingerprint for k in user["keys"]
            ):
                raise InvalidInput(
                    f"key {key.fingerprint} is registered to {user['login']}; "
                    "each person signs with their own key"
                )


def _key_entry(key: PublicKey, unit: UnitOfWork) -> dict[str, Any]:
    return {
        "key": key.line, "fingerprint": key.fingerprint, "from": values.iso(unit.when),
        "until": None, "revoked_from": None,
    }  # fmt: skip


def _make_controlled(vault: Vault, unit: UnitOfWork) -> None:
    """Mark the configuration access-controlled, in the first user's commit."""
    from atmpvault.archive.core.configuration import CONFIG_PATH

    raw: dict[str, Any] = json.loads(vault.read_file(CONFIG_PATH) or b"{}")
    raw["access"] = {**(raw.get("access") or {}), "controlled": True}
    data = (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    unit.files[CONFIG_PATH] = data


def _tell_security(vault: Vault, unit: UnitOfWork, body: Mapping[str, Any]) -> list[str]:
    """The urgent notice of a lockout (21 CFR 11.300(d)), in the lockout's commit; the
    security lists the vault lacks are returned, not failed on (the lock still holds)."""
    from atmpvault.archive.core.notices import Notices

    wanted = access.of(vault)["security_lists"]
    present = [n for n in wanted if n in vault.config.distribution_lists]
    if present:
        Notices(vault).send(
            f"signing-locked/{body['login']}/{unit.when.strftime('%Y%m%dT%H%M%S%f')}",
            present,
            "core/signing-locked",
            f"Signing locked for {body['login']} after {body['failed_signatures']} failed "
            "signature attempts",
            {"user": dict(body), "when": values.iso(unit.when)},
            unit=unit,
        )
    return [n for n in wanted if n not in present]


def record_refusal(vault: Vault, refused: SignatureRefused) -> SignatureRefused:
    """Record a refused signature attempt on its user, the one write a refusal makes; the
    error to report, saying how many attempts in a row and whether signing is now locked."""
    who = refused.login
    count, locked, missing = Users(vault).failed_signature(who, str(refused))
    text = f"{refused}; nothing else written (failed attempt {count} in a row recorded"
    if locked:
        told = (
            f"no distribution list {', '.join(missing)} to tell ('atmpvault lists set')"
            if missing
            else "the security list told"
        )
        text += f"; signing is now locked for {who}, {told}"
    return SignatureRefused(text + ")", who)
