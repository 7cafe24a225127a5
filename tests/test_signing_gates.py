"""Signatures where the rules need them: a submission package's finalisation (approval
by regulatory), a chain-of-custody certificate (responsibility by custody), and the
signatures of a document's versions shown by `show` and `history`. Real keys made by
ssh-keygen, real vaults through the command line."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result

from atmpvault.archive.core.pdf import make_pdf
from tests.conftest import run
from tests.signing import ME, Team, act_as, json_of, make_key, team

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


# -- chain-of-custody certificates -----------------------------------------------------------

STEPS = [  # step, at, extra options; receipt-at-manufacturing issues a certificate by default
    ("collection", "2026-10-01T08:00", ["--temp", "4.1", "--din", DIN, "--coi", COI]),
    ("labeling", "2026-10-01T08:30", ["--temp", "4.3", "--din", DIN]),
    ("cryopreservation", "2026-10-01T12:00", []),
    ("shipment-to-manufacturing", "2026-10-02T09:00",
     ["--temp", "-185", "--shipper", "CRYO-22", "--seal", "intact"]),
    ("receipt-at-manufacturing", "2026-10-03T10:00", ["--temp", "-182", "--seal", "intact"]),
]  # fmt: skip


@pytest.fixture
def custody(vault_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    """A controlled vault with lot L-0042, a custody coordinator (sam) and QA (quinn)."""
    made = Team(vault_path, tmp_path / "keys", monkeypatch)
    made.add(ME, "admin")
    made.add("sam", "custody", name="Sam Okafor")
    made.add("quinn", "quality", "qa-approver", name="Quinn Reyes")
    ok(made.run("quinn", "lot", "new", "L-0042", "--program", "CART-19", "--coi", COI))
    return made


def log_step(people: Team, login: str, step: str, at: str, *extra: str, key: bool = True) -> Result:
    return people.run(login, "custody", "log", "L-0042", "--step", step, "--by", login,
                      "--site", "APH-01", "--at", at, *extra, key=key)  # fmt: skip


def certificate_pdf(vault: Path, tmp_path: Path, version: int | None = None) -> Path:
    """The lot's certificate document (one version, or the latest) as a file."""
    listed = json.loads(ok(run(vault, "ls", "--type", "coc-certificate", "--json")).stdout)
    [found] = listed
    out = tmp_path / f"certificate-{version or 'latest'}.pdf"
    args = ["get", found["id"], "-o", str(out), "--force"]
    ok(run(vault, *args, *(["--version", str(version)] if version else [])))
    return out


def text_of(path: Path) -> str:
    """The certificate's text as an ordinary tool reads it (poppler's pdftotext)."""
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=True, text=True).stdout  # fmt: skip


def test_the_automatic_certificate_after_a_flagged_step_is_signed_by_custody(
    custody: Team, tmp_path: Path
) -> None:
    import hashlib

    from atmpvault.archive.core.pdf import embedded_files

    vault = custody.vault
    for step, at, extra in STEPS[:4]:
        ok(log_step(custody, "sam", step, at, *extra, key=False))  # no certificate: no key
    before = commits(vault)
    logged = ok(log_step(custody, "sam", *STEPS[4][:2], *STEPS[4][2])).stdout
    assert commits(vault) == before + 1  # the event, the certificate and its signature
    assert "certificate DOC-" in logged and "Sam Okafor (sam), " in logged
    assert " UTC, responsibility" in logged
    shown = json_of(ok(run(vault, "custody", "show", "L-0042", "--json")))
    assert isinstance(shown, dict)
    [signature] = shown["signatures"]
    assert signature["target"] == {**signature["target"], "kind": "custody-certificate",
                                   "id": "L-0042", "version": 1}  # fmt: skip
    assert (signature["signer"], signature["meaning"], signature["gate"]) == (
        "sam", "responsibility", "custody certificate",
    )  # fmt: skip
    written = git(vault, "show", "--name-only", "--format=", "main").splitlines()
    assert "custody/certificates/L-0042.json" in written
    assert any(p.startswith("signatures/") for p in written)
    # The PDF shows the manifestation; it embeds the signed record's bytes.
    path = certificate_pdf(vault, tmp_path)
    text = " ".join(text_of(path).split())
    from atmpvault.archive.core.signatures import manifestation

    assert "Signed" in text and manifestation(signature) in text
    files = embedded_files(path.read_bytes())
    assert hashlib.sha256(files["certificate.json"]).hexdigest() == signature["target"]["sha256"]
    assert ok(run(vault, "custody", "verify-certificate", str(path))).stdout.startswith("ok: ")
    assert "signed certificate L-0042" in ok(run(vault, "custody", "show", "L-0042")).stdout
    verified(vault)


def test_an_automatic_certificate_whose_signature_is_refused_refuses_the_event(
    custody: Team, tmp_path: Path
) -> None:
    vault = custody.vault
    for step, at, extra in STEPS[:4]:
        ok(log_step(custody, "sam", step, at, *extra, key=False))
    before = commits(vault)
    wrong, _pub = make_key(tmp_path / "other", "mallory")
    result = log_step(custody, "sam", *STEPS[4][:2], *STEPS[4][2], "--key", str(wrong), key=False)
    assert result.exit_code == 1 and "not sam's registered key" in result.stderr
    assert commits(vault) == before + 1  # the failed attempt, nothing else
    shown = json_of(ok(run(vault, "custody", "show", "L-0042", "--json")))
    assert isinstance(shown, dict) and len(shown["events"]) == 4
    assert json_of(ok(run(vault, "ls", "--type", "coc-certificate", "--json"))) == []


def test_a_certificate_on_demand_is_signed_by_custody_and_shown_in_the_pdf(
    custody: Team, tmp_path: Path
) -> None:
    vault = custody.vault
    for step, at, extra in STEPS[:3]:
        ok(log_step(custody, "sam", step, at, *extra, key=False))
    # QA may not issue it: the command is custody's.
    refused = custody.run("quinn", "custody", "certificate", "L-0042", key=True)
    assert refused.exit_code == 1 and "needs the role custody" in refused.stderr
    before = commits(vault)
    issued = json_of(ok(custody.run("sam", "custody", "certificate", "L-0042", "--json",
                                    key=True)))  # fmt: skip
    assert isinstance(issued, dict) and commits(vault) == before + 1
    assert (issued["through"], issued["record_version"]) == ("cryopreservation", 1)
    [signature] = issued["signatures"]
    assert signature["target"]["version"] == 1 and signature["signer"] == "sam"
    path = certificate_pdf(vault, tmp_path)
    text = " ".join(text_of(path).split())
    from atmpvault.archive.core.signatures import manifestation

    assert f"Electronically signed: {manifestation(signature)}" in text
    assert "Sam Okafor (sam)" in text and "responsibility" in text
    assert "handwritten review" not in text  # no blank wet-ink table beside an e-signature
    # A re-issue: the record's next version, signed again; the first stays valid.
    again = json_of(ok(custody.run("sam", "custody", "certificate", "L-0042", "--json",
                                   key=True)))  # fmt: skip
    assert isinstance(again, dict) and again["record_version"] == 2
    assert again["signatures"][0]["target"]["version"] == 2
    shown = json_of(ok(run(vault, "custody", "show", "L-0042", "--json")))
    assert isinstance(shown, dict)
    assert [s["target"]["version"] for s in shown["signatures"]] == [1, 2]
    listed = json_of(ok(run(vault, "signatures", "custody-certificate:L-0042@1", "--json")))
    assert isinstance(listed, list) and [s["id"] for s in listed] == [signature["id"]]
    first = certificate_pdf(vault, tmp_path, version=1)
    assert ok(run(vault, "custody", "verify-certificate", str(first))).stdout.startswith("ok: ")
    verified(vault)


# -- documents -------------------------------------------------------------------------------


def test_a_signed_document_version_shows_its_signature_in_show_and_history(
    regulatory: Team, tmp_path: Path
) -> None:
    vault = regulatory.vault
    doc = "DOC-000001"
    revised = tmp_path / "protocol-v2.pdf"
    revised.write_bytes(make_pdf([["Clinical protocol CART-19-001", "version 2"]], title="P"))
    ok(regulatory.run("rita", "add", str(revised), "--id", doc, "--reason", "amendment 1"))
    signed = json_of(ok(regulatory.run("sam", "sign", f"{doc}@2", "--meaning", "review",
                                       "--json", key=True)))  # fmt: skip
    assert isinstance(signed, dict)
    from atmpvault.archive.core.signatures import manifestation

    line = manifestation(signed)
    assert line.startswith("Sam (sam), ") and line.endswith(" UTC, review")
    text = ok(run(vault, "show", doc)).stdout
    assert f"signed       {line}" in text
    assert line not in ok(run(vault, "show", doc, "--version", "1")).stdout
    shown = json_of(ok(run(vault, "show", doc, "--json")))
    assert isinstance(shown, dict)
    assert [(s["id"], s["meaning"], s["target"]["version"]) for s in shown["signatures"]] == [
        (signed["id"], "review", 2)
    ]
    history = json_of(ok(run(vault, "history", doc, "--json")))
    assert isinstance(history, list)
    assert [[s["signer"] for s in v["signatures"]] for v in history] == [[], ["sam"]]
    assert f"v2 signed  {line}" in ok(run(vault, "history", doc)).stdout
    verified(vault)


# -- a passphrase-protected key in a real ssh-agent ------------------------------------------


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ssh-agent on a socket of its own: (socket, folder); killed at the end."""
    import os
    import re
    import signal
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="agent-"))  # short: a socket path has a limit
    sock = folder / "agent.sock"
    started = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True,
                             check=True, text=True).stdout  # fmt: skip
    match = re.search(r"SSH_AGENT_PID=(\d+)", started)
    assert match, started
    try:
        yield str(sock), folder
    finally:
        os.kill(int(match[1]), signal.SIGTERM)
        sock.unlink(missing_ok=True)
        for left in folder.iterdir():
            left.unlink()
        folder.rmdir()


def load_key(sock: str, folder: Path, key: Path, passphrase: str) -> None:
    """ssh-add the key, its passphrase given by an askpass program (as a desktop would)."""
    import os

    askpass = folder / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{passphrase}'\n", encoding="ascii")
    askpass.chmod(0o700)
    env = {**os.environ, "SSH_AUTH_SOCK": sock, "SSH_ASKPASS": str(askpass),
           "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": os.environ.get("DISPLAY", ":0")}  # fmt: skip
    subprocess.run(["ssh-add", str(key)], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                   check=True)  # fmt: skip
    listed = subprocess.run(["ssh-add", "-l"], env={**env, "SSH_ASKPASS": ""}, capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert "pat" in listed, listed


def test_finalise_signed_with_a_passphrase_protected_key_held_by_ssh_agent(
    regulatory: Team, tmp_path: Path, agent: tuple[str, Path]
) -> None:
    sock, folder = agent
    vault = regulatory.vault
    private, public = make_key(tmp_path / "pat", "pat", passphrase="correct horse battery")
    act_as(regulatory.monkeypatch, ME)
    ok(run(vault, "users", "add", "pat", "--name", "Pat Lindqvist", "--email", "pat@example.com",
           "--role", "regulatory", "--public-key", str(public), "--reason", "joins RA"))  # fmt: skip
    act_as(regulatory.monkeypatch, "pat")
    # An agent that does not hold pat's key makes no signature (the attempt is recorded).
    regulatory.monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    refused = run(vault, *FINALISE)
    assert refused.exit_code == 1 and "signature was not made" in refused.stderr
    load_key(sock, folder, private, "correct horse battery")
    before = commits(vault)
    final = json_of(ok(run(vault, *FINALISE, "--json", env={"SSH_AUTH_SOCK": sock})))
    assert isinstance(final, dict) and commits(vault) == before + 1
    [signature] = final["signatures"]
    assert (signature["signer"], signature["name"], signature["meaning"]) == (
        "pat", "Pat Lindqvist", "approval",
    )  # fmt: skip
    users = json_of(ok(run(vault, "users", "ls", "--json")))
    assert isinstance(users, list)
    pat = next(u for u in users if u["login"] == "pat")
    assert signature["key"] == pat["key"] and pat["failed_signatures"] == 0
    verified(vault)
