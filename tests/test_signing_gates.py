"""Signatures where the rules need them: a submission package's finalisation (approval
by regulatory), a chain-of-custody certificate (responsibility by custody), and the
signatures of a document's versions shown by `show` and `history`. Real keys made by
ssh-keygen, real vaults through the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import Result

from atmpvault.archive.core.pdf import make_pdf
from tests.conftest import run
from tests.signing import Team, json_of, make_key, team

IND = "IND-012345"
COI = "COI-7F3K-22"
DIN = "G123498654321H"


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def git(vault: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(vault / "repo.git"), *args], capture_output=True,
                          check=True, text=True).stdout.strip()  # fmt: skip


def commits(vault: Path) -> int:
    return int(git(vault, "rev-list", "--count", "main"))


def verified(vault: Path) -> None:
    assert json_of(ok(run(vault, "verify", "--json"))) == {"ok": True, "problems": []}


# -- submission packages ---------------------------------------------------------------------


@pytest.fixture
def regulatory(vault_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    """A controlled vault with an IND whose sequence 0000 holds one document."""
    made = team(vault_path, tmp_path / "keys", monkeypatch, rita=["regulatory"],
                sam=["custody"])  # fmt: skip
    ok(made.run("rita", "app", "new", "ind", "012345", "--program", "CART-19"))
    doc = tmp_path / "protocol.pdf"
    doc.write_bytes(make_pdf([["Clinical protocol CART-19-001", "version 1"]], title="Protocol"))
    added = json_of(ok(made.run("rita", "add", str(doc), "--program", "CART-19", "--type",
                                "protocol", "--json")))  # fmt: skip
    assert isinstance(added, dict)
    ok(made.run("rita", "package", "new", IND, "--sequence", "0000", "--type", "original"))
    ok(made.run("rita", "package", "add", IND, "0000", added["id"], "--section", "m5/53/535"))
    return made


FINALISE = ("package", "finalise", IND, "0000", "--submitted", "2026-01-05")


def test_finalise_is_refused_to_a_user_without_the_regulatory_role(regulatory: Team) -> None:
    vault, before = regulatory.vault, commits(regulatory.vault)
    result = regulatory.run("sam", *FINALISE, key=True)
    assert result.exit_code == 1 and "needs the role regulatory" in result.stderr
    assert commits(vault) == before
    shown = json_of(ok(regulatory.run("rita", "package", "show", IND, "0000", "--json")))
    assert isinstance(shown, dict)
    assert (shown["status"], shown["signatures"]) == ("in-preparation", [])


def test_finalise_without_a_valid_key_writes_only_the_failed_attempt(
    regulatory: Team, tmp_path: Path
) -> None:
    vault, before = regulatory.vault, commits(regulatory.vault)
    someone_else, _pub = make_key(tmp_path / "other", "mallory")
    result = regulatory.run("rita", *FINALISE, "--key", str(someone_else))
    assert result.exit_code == 1, result.stderr
    assert "not rita's registered key" in result.stderr
    # The one write a refusal makes: the failed attempt, on rita's user record.
    assert commits(vault) == before + 1
    last = json_of(ok(run(vault, "log", "--json")))
    assert isinstance(last, list)
    assert "package-finalise" not in {e["action"] for e in last}
    assert git(vault, "tag", "--list", "seq/*") == ""
    users = json_of(ok(run(vault, "users", "ls", "--json")))
    assert isinstance(users, list)
    assert {u["login"]: u["failed_signatures"] for u in users}["rita"] == 1
    shown = json_of(ok(run(vault, "package", "show", IND, "0000", "--json")))
    assert isinstance(shown, dict) and shown["status"] == "in-preparation"
    # No key at all and no ssh-agent: refused before anything is attempted.
    regulatory.monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    result = regulatory.run("rita", *FINALISE)
    assert result.exit_code != 0 and "no --key given and no ssh-agent" in result.stderr
    assert commits(vault) == before + 1


def test_finalise_is_signed_in_the_commit_that_records_the_package(regulatory: Team) -> None:
    vault, before = regulatory.vault, commits(regulatory.vault)
    final = json_of(ok(regulatory.run("rita", *FINALISE, "--json", key=True)))
    assert isinstance(final, dict)
    assert commits(vault) == before + 1
    [signature] = final["signatures"]
    assert (signature["signer"], signature["meaning"], signature["gate"]) == (
        "rita", "approval", "package finalise",
    )  # fmt: skip
    tagged = git(vault, "rev-parse", f"seq/{IND}/0000^{{commit}}")
    assert tagged == git(vault, "rev-parse", "main")
    written = git(vault, "show", "--name-only", "--format=", "main").splitlines()
    package_file = f"regulatory/packages/{IND}/0000.json"
    assert package_file in written
    assert any(p.startswith("signatures/") for p in written)
    # The signature binds the package version this commit wrote, by its bytes.
    import hashlib

    raw = subprocess.run(["git", "-C", str(vault / "repo.git"), "show", f"main:{package_file}"],
                         capture_output=True, check=True).stdout  # fmt: skip
    assert signature["target"]["sha256"] == hashlib.sha256(raw).hexdigest()
    text = ok(run(vault, "package", "show", IND, "0000")).stdout
    assert "signed         Rita (rita), " in text and " UTC, approval" in text
    shown = json_of(ok(run(vault, "package", "show", IND, "0000", "--json")))
    assert isinstance(shown, dict)
    assert [s["id"] for s in shown["signatures"]] == [signature["id"]]
    verified(vault)
