"""Users and keys for tests of access control and signatures: real keys made by
ssh-keygen, and the acting login switched the way a different person at another
terminal would be (the one thing not real: the OS login lookup, patched in-process)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result

from atmpvault.archive.core import access
from tests.conftest import run

ME = access.os_login()  # the real login: the first user of every controlled vault


@dataclass(frozen=True)
class Person:
    login: str
    name: str
    key: Path  # the private key file
    pub: Path

    def __str__(self) -> str:
        return self.login


def make_key(folder: Path, login: str, passphrase: str = "") -> tuple[Path, Path]:
    """A new ed25519 key pair written by ssh-keygen: (private, public)."""
    folder.mkdir(parents=True, exist_ok=True)
    private = folder / f"{login}_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", login, "-f", str(private)],
        check=True,
    )
    return private, private.with_name(private.name + ".pub")


def act_as(monkeypatch: pytest.MonkeyPatch, login: str) -> None:
    """Every later command runs as `login` (as if that person ran it at their terminal)."""
    monkeypatch.setattr(access, "os_login", lambda: login)


class Team:
    """A controlled vault's people: the real login as admin, then the others."""

    def __init__(self, vault: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.vault, self.folder, self.monkeypatch = vault, folder, monkeypatch
        self.people: dict[str, Person] = {}

    def add(self, login: str, *roles: str, name: str | None = None) -> Person:
        """Register a user (the first one: the real login, with admin among its roles)."""
        private, public = make_key(self.folder, login)
        person = Person(login, name or login.replace(".", " ").title(), private, public)
        act_as(self.monkeypatch, ME)
        argv = [
            "users",
            "add",
            login,
            "--name",
            person.name,
            "--email",
            f"{login}@example.com",
            "--public-key",
            str(public),
            "--reason",
            "joins",
        ]
        for role in roles:
            argv += ["--role", role]
        result = run(self.vault, *argv)
        assert result.exit_code == 0, result.stderr
        self.people[login] = person
        return person

    def act(self, login: str) -> Person:
        act_as(self.monkeypatch, login)
        return self.people[login]

    def run(self, login: str, *args: str, key: bool = False) -> Result:
        """Run a command as `login` (with --key their key file, when `key`)."""
        person = self.act(login)
        return run(self.vault, *args, *(["--key", str(person.key)] if key else []))


def team(
    vault: Path,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    me: tuple[str, ...] = ("admin",),
    **roles: list[str],
) -> Team:
    """A controlled vault with the real login as admin (and `me` roles) and the named
    users: team(v, f, mp, dana=["qa-approver"], sam=["custody"])."""
    made = Team(vault, folder, monkeypatch)
    made.add(ME, *dict.fromkeys(("admin", *me)))
    for login, held in roles.items():
        made.add(login, *held)
    return made


def commits(vault: Path) -> int:
    """How many commits the vault's branch holds (a refusal must not add one)."""
    out = subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "rev-list", "--count", "main"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout)


def json_of(result: Result) -> object:
    return json.loads(result.stdout)
