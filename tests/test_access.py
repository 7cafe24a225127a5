"""Users and roles: how a vault becomes access-controlled, who acts, who may do what."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, cli_env, run
from tests.signing import ME, act_as, commits, make_key, team
from tests.test_verify import flip_byte, stored


def add_doc(vault: Path, tmp_path: Path, name: str = "sop.txt") -> str:
    path = tmp_path / name
    path.write_text(f"Standard operating procedure {name}")
    result = run(vault, "add", str(path), "--program", "CART-19", "--type", "sop", "--json")
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["id"])


def test_a_vault_without_users_says_so_once_per_command(vault_path: Path) -> None:
    result = run(vault_path, "ls", env={"ATMPVAULT_NO_ACCESS_NOTE": ""})
    assert result.exit_code == 0
    assert result.stderr.count("not access-controlled") == 1
    assert "'atmpvault users add'" in result.stderr


def test_the_first_user_must_be_the_real_login_as_admin(vault_path: Path, tmp_path: Path) -> None:
    _, pub = make_key(tmp_path / "keys", "someone")
    before = commits(vault_path)
    for login, role in (("someone", "admin"), (ME, "quality")):
        refused = run(vault_path, "users", "add", login, "--name", "Some One", "--email",
                      "s@example.com", "--role", role, "--public-key", str(pub),
                      "--reason", "first")  # fmt: skip
        assert refused.exit_code == 1
        assert refused.stderr.startswith("atmpvault: the first user of a vault must be you")
        assert len(refused.stderr.splitlines()) == 1
    assert commits(vault_path) == before

    added = run(vault_path, "users", "add", ME, "--name", "The Admin", "--email",
                "admin@example.com", "--role", "admin", "--public-key", str(pub),
                "--reason", "vault owner")  # fmt: skip
    assert added.exit_code == 0, added.stderr
    # The registration is the first write of a controlled vault: its actor is the login.
    log = json.loads(run(vault_path, "log", "--json").stdout)
    assert log[-1]["user"] == ME and log[-1]["action"] == "add-user"


def test_the_actor_is_the_real_uid_login_not_user_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    team(vault, tmp_path / "keys", monkeypatch, me=("admin", "quality"))
    monkeypatch.undo()  # the real login lookup, as a real process has it
    doc = tmp_path / "batch.txt"
    doc.write_text("batch record")
    env = cli_env(USER="mallory", LOGNAME="mallory", ATMPVAULT_USER="mallory")
    added = subprocess.run(
        [*CLI, "--vault", str(vault), "add", str(doc), "--program", "CART-19",
         "--type", "sop", "--user", "mallory"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert f"--user is ignored in an access-controlled vault; acting as {ME}" in added.stderr
    log = json.loads(run(vault, "log", "--json").stdout)
    assert log[-1]["action"] == "add" and log[-1]["user"] == ME


def test_unknown_disabled_and_unauthorised_users_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    t = team(vault, tmp_path / "keys", monkeypatch, ann=["auditor"], reg=["regulatory"])
    doc = tmp_path / "sop.txt"
    doc.write_text("SOP")
    before = commits(vault)

    act_as(monkeypatch, "stranger")
    refused = run(vault, "ls")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("atmpvault: you (stranger) are not a user of this vault")

    t.act("ann")  # an auditor reads everything and writes nothing
    assert run(vault, "ls").exit_code == 0
    assert run(vault, "log").exit_code == 0
    refused = run(vault, "add", str(doc), "--program", "CART-19", "--type", "sop")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "atmpvault: ann (auditor) may not run 'add'; it needs the role regulatory or quality "
        "or qa-approver or custody or scheduler\n"
    )
    refused = run(vault, "users", "disable", "reg", "--reason", "no")
    assert refused.exit_code == 1 and "may not run 'users disable'" in refused.stderr
    assert commits(vault) == before

    t.act(ME)
    assert run(vault, "users", "disable", "reg", "--reason", "left").exit_code == 0
    t.act("reg")
    refused = run(vault, "ls")
    assert (
        refused.exit_code == 1
        and refused.stderr == "atmpvault: user reg is disabled; nothing was done\n"
    )


def test_user_changes_are_audited_and_logins_never_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    t = team(vault, tmp_path / "keys", monkeypatch, sam=["custody"])
    _, other = make_key(tmp_path / "keys2", "sam2")
    t.act(ME)
    taken = run(vault, "users", "add", "sam", "--name", "Another Sam", "--email",
                "sam2@example.com", "--role", "quality", "--public-key", str(other),
                "--reason", "new hire")  # fmt: skip
    assert (
        taken.exit_code == 2
        and "login sam is taken by Sam; a login is never reused" in taken.stderr
    )
    same_key = run(vault, "users", "add", "kim", "--name", "Kim", "--email", "kim@example.com",
                   "--role", "quality", "--public-key", str(t.people["sam"].pub),
                   "--reason", "new hire")  # fmt: skip
    assert same_key.exit_code == 2 and "is registered to sam" in same_key.stderr

    assert run(vault, "users", "roles", "sam", "--role", "custody", "--role", "quality",
               "--reason", "cross-trained").exit_code == 0  # fmt: skip
    assert run(vault, "users", "disable", "sam", "--reason", "left the company").exit_code == 0
    last_admin = run(vault, "users", "roles", ME, "--role", "quality", "--reason", "oops")
    assert last_admin.exit_code == 2 and "last enabled admin" in last_admin.stderr

    users = {u["login"]: u for u in json.loads(run(vault, "users", "ls", "--json").stdout)}
    assert users["sam"]["roles"] == ["quality", "custody"] and users["sam"]["enabled"] is False
    history = json.loads(run(vault, "log", "--kind", "user", "--id", "sam", "--json").stdout)
    assert [(e["action"], e["reason"]) for e in history] == [
        ("add-user", "joins"),
        ("set-roles", "cross-trained"),
        ("disable-user", "left the company"),
    ]
    assert all(e["user"] == ME for e in history)
    assert run(vault, "verify").exit_code == 0


def test_options_naming_people_take_registered_logins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    t = team(vault, tmp_path / "keys", monkeypatch, quinn=["quality"], dana=["qa-approver"])
    t.act("quinn")
    assert run(vault, "lot", "new", "L-0042", "--program", "CART-19").exit_code == 0
    opened = run(vault, "deviation", "open", "--lot", "L-0042", "--title", "Excursion",
                 "--class", "minor", "--description", "2 h above 8 C", "--json")  # fmt: skip
    assert opened.exit_code == 0, opened.stderr
    dev = json.loads(opened.stdout)["id"]
    refused = run(vault, "deviation", "assign", dev, "--owner", "Dana Whitfield", "--due",
                  "2026-12-20")  # fmt: skip
    assert refused.exit_code == 1
    assert "'Dana Whitfield' is not an enabled user's login" in refused.stderr
    assigned = run(vault, "deviation", "assign", dev, "--owner", "dana", "--due", "2026-12-20")
    assert assigned.exit_code == 0, assigned.stderr
    # The notice of the assignment went to the address registered with the user.
    shown = json.loads(run(vault, "notices", "ls", "--json").stdout)
    assert shown[-1]["to"] == ["dana@example.com"]


def test_only_admins_change_the_access_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    t = team(vault, tmp_path / "keys", monkeypatch, quinn=["quality"])
    t.act("quinn")
    assert run(vault, "config", "set", "access.lockout_after", "5", "--reason", "r").exit_code == 1
    t.act(ME)
    changed = run(vault, "config", "set", "access.commands", '{"lot new": ["scheduler"]}',
                  "--reason", "planning creates lots")  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    t.act("quinn")
    refused = run(vault, "lot", "new", "L-0001", "--program", "CART-19")
    assert refused.exit_code == 1 and "needs the role scheduler" in refused.stderr
    bad = run(vault, "config", "set", "access.commands", '{"ls": ["wizard"]}', "--reason", "r")
    assert bad.exit_code == 1  # quinn may not; and as admin the role is refused:
    t.act(ME)
    bad = run(vault, "config", "set", "access.commands", '{"ls": ["wizard"]}', "--reason", "r")
    assert bad.exit_code == 2 and "unknown role(s) wizard" in bad.stderr
    assert run(vault, "config", "set", "access.controlled", "false", "--reason", "r").exit_code == 2


def test_every_command_is_in_the_access_table() -> None:
    """A command missing from the table could not run in a controlled vault."""
    import click

    from atmpvault.archive.core.access import DEFAULT_COMMANDS
    from atmpvault.cli import cli

    def leaves(group: click.Group, prefix: str) -> list[str]:
        found = []
        commands = group.load_all() if hasattr(group, "load_all") else group.commands
        for name, command in commands.items():
            path = f"{prefix} {name}".strip()
            if isinstance(command, click.Group):
                found += leaves(command, path)
            else:
                found.append(path)
        return found

    no_vault = {"init", "demo", "bundle verify", "init-shared", "clone"}
    assert sorted(set(leaves(cli, "")) - no_vault) == sorted(DEFAULT_COMMANDS)


@pytest.mark.parametrize("damage", ["corrupt", "gone"])
def test_a_damaged_configuration_never_opens_a_controlled_vault_to_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """The access check reads config/vault.json at the tip. If its object is corrupt or
    gone, git says "missing" as for a file that does not exist; that is refused as damage
    (exit 3), never taken for a vault without users, whose commands anyone may run."""
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    team(vault, tmp_path / "keys", monkeypatch, me=("admin", "quality"))
    repo = vault / "repo.git"

    def git(*args: str, data: str | None = None) -> str:
        return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True,
                              text=True, check=True, input=data).stdout  # fmt: skip

    git("repack", "-a", "-d", "-f")  # one pack
    blob = git("rev-parse", "HEAD:config/vault.json").strip()
    (pack,) = (repo / "objects" / "pack").glob("*.pack")
    if damage == "corrupt":
        flip_byte(pack, stored(pack)[blob][0] + 8)  # inside the object's compressed bytes
    else:  # the pack written again without it
        others = [o for o in git("cat-file", "--batch-all-objects",
                                 "--batch-check=%(objectname)").split() if o != blob]  # fmt: skip
        git("pack-objects", "-q", str(repo / "objects" / "pack" / "pack"), data="\n".join(others))
        pack.with_suffix(".idx").unlink()
        pack.unlink()

    refused = run(vault, "ls")
    assert refused.exit_code == 3, refused.stdout + refused.stderr
    assert f"object {blob} (config/vault.json at" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
