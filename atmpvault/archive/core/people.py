"""The vault's directory of people: the name a workflow step names (an owner, an
approver) and the address its notices go to, kept in config/vault.json ("people").

In a vault with users (users.py) people are named by login, and a user's address is
the one registered with them; the directory still serves names that are not users.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.errors import NotFound, NothingChanged

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


class People:
    """Names and e-mail addresses of the people workflows address."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def all(self) -> dict[str, str]:
        """Name -> address, by name."""
        return dict(sorted(self.vault.config.people.items()))

    def address(self, name: str) -> str:
        """The address of one person (a user's login, or a name of the directory); NotFound
        says how to add them."""
        from atmpvault.archive.core.users import read_user

        user = read_user(self.vault, name) if self.vault.controlled else None
        if user is not None:
            return str(user["email"])
        found = self.vault.config.people.get(name)
        if found is None:
            raise NotFound(
                f"{name!r} is not in the vault's directory of people; add them with "
                f"'atmpvault people set \"{name}\" ADDRESS --reason R'"
            )
        return found

    def known(self, name: str) -> str:
        """`name` checked to be a person of the directory (an owner, an approver); in a
        vault with users, an enabled user's login."""
        from atmpvault.archive.core.access import registered

        if self.vault.controlled:
            return registered(self.vault, values.user(name), "person")
        self.address(values.user(name))
        return name

    def set(self, name: str, address: str, reason: str, actor: str | None = None) -> str:
        """Add a person or change their address: a commit with the reason."""
        from atmpvault.archive.core.configuration import CONFIG_PATH, commit_config
        from atmpvault.archive.core.notices import email_address

        name, address = values.user(name), email_address(address)
        why = values.reason(reason)
        with self.vault.writing():
            raw: dict[str, Any] = json.loads(self.vault.read_file(CONFIG_PATH) or b"{}")
            people = dict(raw.get("people", {}))
            if people.get(name) == address:
                raise NothingChanged(f"{name} already has the address {address}")
            was = people.get(name)
            people[name] = address
            raw["people"] = dict(sorted(people.items()))
            subject = f"Set {name}'s address to {address}" + (f" (was {was})" if was else "")
            commit_config(
                self.vault, raw, subject, {"Action": "set-person", "Person": name}, why, actor
            )
        return address
