"""Electronic signatures: made with the user's real key, bound to one version's bytes,
checked by verify against the key as registered when they were made."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Clock, run
from tests.signing import ME, Team, commits, make_key, team
from tests.test_access import add_doc
from tests.test_notices import SmtpServer, smtp_server  # noqa: F401  (fixture)


@pytest.fixture
def signers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    return team(vault, tmp_path / "keys", monkeypatch, me=("admin", "quality"),
                rita=["regulatory"], ann=["auditor"])  # fmt: skip


def git(vault: Path, *args: str, data: bytes | None = None) -> str:
    out = subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", *args], input=data, capture_output=True,
        check=True,
    )  # fmt: skip
    return out.stdout.decode()


def test_a_signature_names_signer_meaning_time_and_version(signers: Team, tmp_path: Path) -> None:
    vault = signers.vault
    signers.act(ME)
    doc = add_doc(vault, tmp_path)
    signed = signers.run("rita", "sign", f"{doc}@1", "--meaning", "approval", "--comment",
                         "fit for submission", "--json", key=True)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    body = json.loads(signed.stdout)
    assert body["signer"] == "rita" and body["name"] == "Rita" and body["meaning"] == "approval"
    assert body["target"]["kind"] == "document" and body["target"]["version"] == 1
    listed = json.loads(run(vault, "signatures", doc, "--json").stdout)
    assert [s["id"] for s in listed] == [body["id"]]
    text = run(vault, "signatures", f"{doc}@1").stdout
    assert f"Rita (rita), {body['signed_at'][:19].replace('T', ' ')} UTC, approval" in text
    # One commit: the signature, its action and trailer in the audit trail.
    entry = json.loads(run(vault, "log", "--json").stdout)[-1]
    assert entry["action"] == "sign" and entry["user"] == "rita"
    assert run(vault, "verify").exit_code == 0


def test_bad_signing_input_is_refused_and_writes_nothing(signers: Team, tmp_path: Path) -> None:
    vault = signers.vault
    signers.act(ME)
    doc = add_doc(vault, tmp_path)
    add_doc_again = tmp_path / "sop.txt"
    add_doc_again.write_text("revised SOP")
    assert run(vault, "add", str(add_doc_again), "--id", doc, "--reason", "rev").exit_code == 0
    before = commits(vault)
    cases = [
        (("sign", f"{doc}@1", "--meaning", "review"), "is at v2; only its current version"),
        (("sign", f"{doc}@2", "--meaning", "blessing"), "unknown meaning 'blessing'"),
        (("sign", f"{doc}@9", "--meaning", "review"), f"no document {doc} version 9"),
        (("sign", "DOC-999999@1", "--meaning", "review"), "no document DOC-999999"),
    ]
    for args, message in cases:
        refused = signers.run("rita", *args, key=True)
        assert refused.exit_code == 1, (args, refused.stderr)
        assert message in refused.stderr and len(refused.stderr.splitlines()) == 1
    refused = signers.run("ann", "sign", f"{doc}@2", "--meaning", "review", key=True)
    assert refused.exit_code == 1 and "ann (auditor) may not run 'sign'" in refused.stderr
    assert commits(vault) == before


def test_failed_attempts_are_recorded_and_lock_signing(
    signers: Team,
    tmp_path: Path,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    vault = signers.vault
    signers.act(ME)
    assert run(vault, "lists", "set", "security", "security@example.com", "--reason",
               "Part 11 11.300(d)").exit_code == 0  # fmt: skip
    doc = add_doc(vault, tmp_path)
    before = commits(vault)
    wrong_key = signers.people[ME].key  # not rita's
    for attempt in (1, 2, 3):
        signers.act("rita")
        refused = run(vault, "sign", f"{doc}@1", "--meaning", "approval", "--key",
                      str(wrong_key), env=smtp_server.env())  # fmt: skip
        assert refused.exit_code == 1
        assert "the key given is not rita's registered key" in refused.stderr
        assert f"failed attempt {attempt} in a row recorded" in refused.stderr
    assert "signing is now locked for rita, the security list told" in refused.stderr
    # Each refusal wrote one commit: the attempt on the user's record, nothing else.
    assert commits(vault) == before + 3
    attempts = json.loads(run(vault, "log", "--kind", "user", "--id", "rita", "--json").stdout)
    assert [e["action"] for e in attempts[-3:]] == ["signature-failed"] * 3
    assert run(vault, "signatures", doc, "--json").stdout.strip() == "[]"
    [mail] = smtp_server.collector.envelopes
    assert mail.rcpt_tos == ["security@example.com"]
    assert b"Signing is locked for rita (Rita)" in mail.content

    locked = signers.run("rita", "sign", f"{doc}@1", "--meaning", "approval", key=True)
    assert locked.exit_code == 1 and "signing is locked for rita" in locked.stderr
    signers.act(ME)
    assert run(vault, "users", "unlock", "rita", "--reason", "confirmed by phone").exit_code == 0
    assert signers.run("rita", "sign", f"{doc}@1", "--meaning", "approval", key=True).exit_code == 0
    assert run(vault, "verify").exit_code == 0


def test_a_role_that_may_not_sign_so_is_a_failed_attempt(signers: Team, tmp_path: Path) -> None:
    vault = signers.vault
    signers.act(ME)
    doc = add_doc(vault, tmp_path)
    refused = signers.run("rita", "sign", f"{doc}@1", "--meaning", "release", key=True)
    assert refused.exit_code == 1
    assert "rita (regulatory) may not sign with the meaning 'release'" in refused.stderr
    assert "failed attempt 1 in a row recorded" in refused.stderr


def test_a_changed_record_byte_invalidates_its_signature(signers: Team, tmp_path: Path) -> None:
    vault = signers.vault
    signers.act(ME)
    assert run(vault, "lot", "new", "L-0042", "--program", "CART-19").exit_code == 0
    signed = signers.run(ME, "sign", "lot:L-0042@1", "--meaning", "responsibility", "--json",
                         key=True)  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    sig = json.loads(signed.stdout)["id"]
    assert run(vault, "verify").exit_code == 0

    # Someone with write access to the repository rewrites the lot's first version.
    path = git(vault, "ls-tree", "-r", "--name-only", "main").split()
    lot_path = next(p for p in path if p.startswith("lots/") and p.endswith(".json"))
    raw = git(vault, "show", f"main:{lot_path}")
    _rewrite(vault, raw, raw.replace('"CART-19"', '"CART-20"'))
    assert run(vault, "rebuild").exit_code == 0
    result = run(vault, "verify")
    assert result.exit_code == 3
    assert f"signature {sig}" in result.stdout + result.stderr
    assert "lot L-0042 v1 no longer matches the bytes signed" in result.stdout + result.stderr


def _rewrite(vault: Path, old: str, new: str) -> None:
    """Rewrite history so a stored file's bytes `old` read `new` (behind atmpvault's back,
    as anyone with write access to the repository could): export, edit, import."""
    exported = subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "fast-export", "main"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    before, after = old.encode(), new.encode()
    chunk = b"data %d\n" % len(before) + before
    assert chunk in exported
    edited = exported.replace(chunk, b"data %d\n" % len(after) + after)
    subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "fast-import", "--force", "--quiet"],
        input=edited, check=True,
    )  # fmt: skip


def test_a_copied_signature_is_refused_on_another_target(signers: Team, tmp_path: Path) -> None:
    vault = signers.vault
    signers.act(ME)
    first, second = add_doc(vault, tmp_path, "a.txt"), add_doc(vault, tmp_path, "b.txt")
    signed = signers.run("rita", "sign", f"{first}@1", "--meaning", "approval", "--json",
                         key=True)  # fmt: skip
    original = json.loads(signed.stdout)
    forged = signers.run("rita", "sign", f"{second}@1", "--meaning", "approval", "--json",
                         key=True)  # fmt: skip
    assert forged.exit_code == 0
    copy = json.loads(forged.stdout)
    # Put the first signature's bytes into the second's record, behind atmpvault's back.
    files = git(vault, "ls-tree", "-r", "--name-only", "main").split()
    where = next(p for p in files if p.endswith(f"{copy['id']}.json"))
    raw = git(vault, "show", f"main:{where}")
    stored = json.loads(raw)
    stored["signature"] = _stored_signature(vault, files, original["id"])
    _rewrite(vault, raw, json.dumps(stored, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    assert run(vault, "rebuild").exit_code == 0
    result = run(vault, "verify")
    assert result.exit_code == 3
    assert f"signature {copy['id']}" in result.stdout + result.stderr
    assert "does not match its statement" in result.stdout + result.stderr
    assert f"signature {original['id']}" not in result.stdout + result.stderr


def _stored_signature(vault: Path, files: list[str], sig_id: str) -> str:
    where = next(p for p in files if p.endswith(f"{sig_id}.json"))
    return str(json.loads(git(vault, "show", f"main:{where}"))["signature"])


def test_rotation_keeps_old_signatures_and_revocation_voids_later_ones(
    clock: Clock, signers: Team, tmp_path: Path
) -> None:
    """(The clock comes first, so the users' keys are registered on it too.)"""
    vault = signers.vault
    signers.act(ME)
    clock.at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    doc = add_doc(vault, tmp_path)
    assert signers.run("rita", "sign", f"{doc}@1", "--meaning", "review", key=True).exit_code == 0
    clock.at = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    new_key, new_pub = make_key(tmp_path / "rotated", "rita")
    signers.act(ME)
    rotated = run(vault, "users", "rotate-key", "rita", "--public-key", str(new_pub),
                  "--reason", "yearly rotation")  # fmt: skip
    assert rotated.exit_code == 0, rotated.stderr
    # The old key signs no more; the new one does; the old signature still holds.
    stale = signers.run("rita", "sign", f"{doc}@1", "--meaning", "approval", key=True)
    assert stale.exit_code == 1 and "is not rita's registered key" in stale.stderr
    signers.act("rita")
    clock.at = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    fresh = run(vault, "sign", f"{doc}@1", "--meaning", "approval", "--key", str(new_key),
                "--json")  # fmt: skip
    assert fresh.exit_code == 0, fresh.stderr
    checked = run(vault, "verify")
    assert checked.exit_code == 0, checked.stdout + checked.stderr

    # The new key is found compromised since just before the approval.
    signers.act(ME)
    when = json.loads(fresh.stdout)["signed_at"][:19]
    revoked = run(vault, "users", "revoke-key", "rita", "--from", when, "--reason", "stolen")
    assert revoked.exit_code == 0, revoked.stderr
    result = run(vault, "verify")
    assert result.exit_code == 3
    problems = [
        line for line in (result.stdout + result.stderr).splitlines() if "signature" in line
    ]
    assert len(problems) == 1 and "revoked from" in problems[0] and "approval" in problems[0]
    no_key = signers.run("rita", "sign", f"{doc}@1", "--meaning", "authorship", "--key",
                         str(new_key))  # fmt: skip
    assert no_key.exit_code == 1 and "rita has no valid key" in no_key.stderr
