"""Signatures at the lot and quality gates: `lot release`/`reject` signed by a qa-approver,
`deviation close` approved by a qa-approver who is not the owner, and the manifestation
(printed name, UTC date and time, meaning) wherever those records are shown: `lot show`,
`deviation show`, the closure package and the auditor bundle's audit trail."""

from __future__ import annotations

import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from atmpvault.archive.core.pdf import pdf_text
from tests.conftest import run
from tests.signing import Team, commits, team

LOT = "L-0042"


@pytest.fixture
def signers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    """A controlled vault: quinn (quality), dana and erin (qa-approvers), no ssh-agent."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # no key but the one given
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    return team(vault, tmp_path / "keys", monkeypatch, quinn=["quality"],
                dana=["qa-approver"], erin=["qa-approver"])  # fmt: skip


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.stderr
    return result.stdout


def last_action(vault: Path) -> str:
    return str(json.loads(run(vault, "log", "--json").stdout)[-1]["action"])


def status(t: Team, lot: str = LOT) -> str:
    return str(json.loads(ok(t.run("quinn", "lot", "show", lot, "--json")))["lot"]["status"])


def manufactured(t: Team, lot: str = LOT) -> None:
    """A lot made by quality: new, started, complete."""
    ok(t.run("quinn", "lot", "new", lot, "--program", "CART-19", "--coi", "COI-7F3K-22"))
    ok(t.run("quinn", "lot", "start", lot))
    ok(t.run("quinn", "lot", "complete", lot, "--comment", "final formulation filled"))


def investigated_deviation(t: Team, tmp_path: Path, owner: str) -> str:
    """A deviation on LOT, opened and investigated by quality, owned by `owner`, with a
    CAPA done; ready to close."""
    dev = json.loads(ok(t.run(
        "quinn", "deviation", "open", "--lot", LOT, "--class", "major", "--title",
        "port weld leak", "--description", "bag port weld leaked during thaw", "--json",
    )))["id"]  # fmt: skip
    ok(t.run("quinn", "deviation", "assign", dev, "--owner", owner))
    ok(t.run("quinn", "deviation", "investigate", dev, "--root-cause",
             "sealer temperature drift", "--impact", "one bag; product sterile",
             "--product-impact", "no", "--patient-impact", "no"))  # fmt: skip
    due = date.today() + timedelta(days=90)
    capa = json.loads(ok(t.run(
        "quinn", "deviation", "capa", "add", dev, "--action", "recalibrate the sealer",
        "--owner", "quinn", "--due", due.isoformat(), "--json",
    )))["id"]  # fmt: skip
    proof = tmp_path / "calibration.txt"
    proof.write_text("sealer calibration certificate\n")
    doc = ok(t.run("quinn", "add", str(proof), "--program", "CART-19", "--type", "capa",
                   "--lot", LOT)).split()[0]  # fmt: skip
    ok(t.run("quinn", "deviation", "capa", "done", capa, "--evidence", doc))
    return str(dev)


def shown(name: str, login: str, meaning: str, signed_at: str) -> str:
    return f"{name} ({login}), {signed_at[:19].replace('T', ' ')} UTC, {meaning}"


def test_a_lot_campaign_signed_at_each_gate(signers: Team, tmp_path: Path) -> None:
    t, vault = signers, signers.vault
    manufactured(t)
    dev = investigated_deviation(t, tmp_path, owner="dana")
    assert "cannot be released" in t.run("erin", "lot", "release", LOT, "--by", "erin",
                                         key=True).stderr  # fmt: skip

    # The owner may not approve the closure of their own deviation: nothing written.
    before = commits(vault)
    refused = t.run("dana", "deviation", "close", dev, "--summary", "fixed", key=True)
    assert refused.exit_code == 1 and "dana owns " + dev in refused.stderr
    assert commits(vault) == before

    closed = json.loads(ok(t.run("erin", "deviation", "close", dev, "--summary",
                                 "root cause fixed; CAPA done", "--json", key=True)))  # fmt: skip
    assert commits(vault) == before + 1  # the closure, its signature and package: one commit
    approval = json.loads(ok(t.run("erin", "signatures", f"deviation:{dev}", "--json")))
    assert [(s["signer"], s["meaning"], s["gate"]) for s in approval] == [
        ("erin", "approval", "deviation close")
    ]
    assert approval[0]["target"]["version"] == closed["version"]
    closing = shown("Erin", "erin", "approval", approval[0]["signed_at"])

    # The package shows the signature made in its own commit.
    package = tmp_path / "package.pdf"
    ok(t.run("quinn", "get", closed["package"]["id"], "-o", str(package)))
    text = pdf_text(package.read_bytes())
    assert "Signatures" in text and closing in " ".join(text.split()), text
    # deviation show: the signature under the version it signs.
    history = json.loads(ok(t.run("quinn", "deviation", "show", dev, "--json")))["history"]
    assert [s["manifestation"] for s in history[-1]["signatures"]] == [closing]
    assert all(h["signatures"] == [] for h in history[:-1])
    assert f"signed {approval[0]['id']}: {closing}" in ok(t.run("quinn", "deviation", "show", dev))

    released = json.loads(ok(t.run("erin", "lot", "release", LOT, "--by", "erin", "--json",
                                   key=True)))  # fmt: skip
    assert released["status"] == "released" and last_action(vault) == "lot-release"
    shown_lot = json.loads(ok(t.run("quinn", "lot", "show", LOT, "--json")))
    signed = shown_lot["signatures"]
    assert [(s["target"]["kind"], s["target"]["id"], s["meaning"]) for s in signed] == [
        ("deviation", dev, "approval"), ("lot", LOT, "release"),
    ]  # fmt: skip
    assert signed[1]["target"]["version"] == released["version"]
    release = shown("Erin", "erin", "release", signed[1]["signed_at"])
    assert [s["manifestation"] for s in signed] == [closing, release]
    text = ok(t.run("quinn", "lot", "show", LOT))
    assert closing in text and release in text
    assert ok(t.run("quinn", "verify")) is not None

    # The auditor bundle: the signature records, and their manifestations in the PDF.
    bundle = tmp_path / "bundle.zip"
    ok(t.run("quinn", "lot", "export", LOT, "-o", str(bundle)))
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        trail = pdf_text(archive.read("audit-trail.pdf"))
    for s in signed:
        assert f"records/signature/{s['id']}/v1.json" in names
    flat = " ".join(trail.split())
    assert closing in flat and release in flat
    assert ok(run(None, "bundle", "verify", str(bundle)))


def test_release_without_a_valid_signature_writes_only_the_attempt(signers: Team) -> None:
    t, vault = signers, signers.vault
    manufactured(t)
    # No key given and no ssh-agent: refused before any attempt is made.
    before = commits(vault)
    refused = t.run("erin", "lot", "release", LOT, "--by", "erin")
    assert refused.exit_code != 0 and "no --key given" in refused.stderr
    assert commits(vault) == before and status(t) == "pending-release"
    # Someone else's key: refused, and the failed attempt is the one thing written.
    refused = t.run("erin", "lot", "release", LOT, "--by", "erin", "--key",
                    str(t.people["dana"].key))  # fmt: skip
    assert refused.exit_code == 1 and "failed attempt 1 in a row" in refused.stderr
    assert "not erin's registered key" in refused.stderr
    assert commits(vault) == before + 1 and status(t) == "pending-release"
    assert last_action(vault) != "lot-release"
    erin = json.loads(ok(t.run("quinn", "users", "ls", "--json")))
    assert [u["failed_signatures"] for u in erin if u["login"] == "erin"] == [1]
    assert json.loads(ok(t.run("quinn", "lot", "show", LOT, "--json")))["signatures"] == []
    # quality may not release at all; --by must name a login of this vault.
    before = commits(vault)
    refused = t.run("quinn", "lot", "release", LOT, "--by", "quinn", key=True)
    assert refused.exit_code == 1 and "may not run 'lot release'" in refused.stderr
    refused = t.run("erin", "lot", "release", LOT, "--by", "Q. Approver", key=True)
    assert refused.exit_code != 0 and "is not an enabled user's login" in refused.stderr
    assert commits(vault) == before
    ok(t.run("erin", "lot", "release", LOT, "--by", "erin", key=True))
    assert ok(t.run("quinn", "verify")) is not None


def test_a_rejection_is_signed_with_the_meaning_release(signers: Team) -> None:
    t = signers
    manufactured(t)
    rejected = json.loads(ok(t.run("dana", "lot", "reject", LOT, "--by", "dana", "--reason",
                                   "sterility failure", "--json", key=True)))  # fmt: skip
    assert rejected["status"] == "rejected"
    [signed] = json.loads(ok(t.run("quinn", "lot", "show", LOT, "--json")))["signatures"]
    assert (signed["gate"], signed["target"]["version"]) == ("lot reject", rejected["version"])
    assert signed["manifestation"] == shown("Dana", "dana", "release", signed["signed_at"])
    assert ok(t.run("quinn", "verify")) is not None


def test_without_users_nothing_is_signed_and_nothing_is_asked(vault_path: Path) -> None:
    def done(*args: str) -> str:
        return ok(run(vault_path, *args))

    done("lot", "new", LOT, "--program", "CART-19")
    done("lot", "start", LOT)
    done("lot", "release", LOT, "--by", "Q. Approver")
    assert json.loads(done("lot", "show", LOT, "--json"))["signatures"] == []
    assert done("lot", "show", LOT).rstrip().endswith("Signatures\nnone")
