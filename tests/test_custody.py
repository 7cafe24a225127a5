"""Chain of custody: a clean chain, each kind of break escalated once, resolution,
corrections, refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Clock, run
from tests.test_lots import head, ok, refused
from tests.test_notices import SmtpServer, smtp_server  # noqa: F401  (fixture)

DIN = "G123498654321H"
NEW_DIN = "A9999211234563"
COI = "COI-7F3K-22"
CLEAN = [  # step, at, extra options
    ("collection", "2026-10-01T08:00", ["--temp", "4.1", "--din", DIN, "--coi", COI]),
    ("labeling", "2026-10-01T08:30", ["--temp", "4.3", "--din", DIN]),
    ("cryopreservation", "2026-10-01T12:00", []),
    ("shipment-to-manufacturing", "2026-10-02T09:00",
     ["--temp", "-185", "--shipper", "CRYO-22", "--seal", "intact"]),
    ("receipt-at-manufacturing", "2026-10-03T10:00", ["--temp", "-182", "--seal", "intact"]),
    ("manufacturing-start", "2026-10-04T08:00", []),
    ("release-testing", "2026-10-20T08:00", []),
]  # fmt: skip
AFTER_RELEASE = [
    ("shipment-to-site", "2026-11-02T09:00", ["--temp", "-186", "--seal", "intact"]),
    ("receipt-at-site", "2026-11-03T11:00", ["--temp", "-184", "--seal", "intact"]),
    ("thaw", "2026-11-05T09:00", []),
    ("bedside-identity-check", "2026-11-05T09:40", ["--coi", COI, "--din", DIN]),
    ("administration", "2026-11-05T10:00", []),
]
LISTS = {"manufacturing-leadership": "mfg.lead@example.com", "qa-management": "qa.head@example.com"}


@pytest.fixture
def lot(vault_path: Path) -> Path:
    ok(vault_path, "lot", "new", "L-0042", "--program", "CART-19", "--coi", COI)
    for name, address in LISTS.items():
        ok(vault_path, "lists", "set", name, address, "--reason", "custody escalations")
    return vault_path


def log(vault: Path, step: str, at: str, *extra: str, env: dict[str, str] | None = None) -> dict:
    args = ["custody", "log", "L-0042", "--step", step, "--by", "R. Coordinator", "--site",
            "APH-01", "--at", at, *extra, "--json"]  # fmt: skip
    result = run(vault, *args, env=env)
    assert result.exit_code == 0, (args, result.stderr)
    return dict(json.loads(result.stdout))


def test_a_clean_chain_from_collection_to_administration(lot: Path, clock: Clock) -> None:
    clock.at = datetime(2026, 10, 25, 9, tzinfo=UTC)  # QA releases the lot on 25 October
    for step, at, extra in CLEAN:
        event = log(lot, step, at, *extra)
        assert all(c["ok"] for c in event["checks"]), event["checks"]
        assert event["breaks"] == []
    assert (
        json.loads(ok(lot, "lot", "show", "L-0042", "--json"))["lot"]["status"]
        == "in-manufacturing"
    )
    ok(lot, "lot", "complete", "L-0042")
    ok(lot, "lot", "release", "L-0042", "--by", "Q. Approver")
    shown = json.loads(ok(lot, "custody", "show", "L-0042", "--json"))
    release = shown["events"][-1]
    assert (release["step"], release["by"]) == ("qa-release", "Q. Approver")
    assert all(c["ok"] for c in release["checks"])
    clock.at = datetime(2026, 11, 6, tzinfo=UTC)
    for step, at, extra in AFTER_RELEASE:
        event = log(lot, step, at, *extra)
        assert all(c["ok"] for c in event["checks"]), (step, event["checks"])
        if step == "shipment-to-site":
            assert (
                json.loads(ok(lot, "lot", "show", "L-0042", "--json"))["lot"]["status"] == "shipped"
            )
    assert json.loads(ok(lot, "lot", "show", "L-0042", "--json"))["lot"]["status"] == "administered"
    # A certificate after receipt at manufacturing, re-issued after administration.
    [certificate] = json.loads(ok(lot, "ls", "--type", "coc-certificate", "--json"))
    assert (certificate["lot"], certificate["version"]) == ("L-0042", 2)
    out = lot.parent / "certificate.pdf"
    ok(lot, "get", certificate["id"], "-o", str(out))
    from atmpvault.archive.core.pdf import embedded_files

    record = json.loads(embedded_files(out.read_bytes())["certificate.json"])
    assert (record["through"], record["events"]) == ("administration", 13)
    status = json.loads(ok(lot, "custody", "status", "--json"))
    assert [(s["lot"], s["step"], s["open_breaks"]) for s in status] == [
        ("L-0042", "administration", 0)
    ]
    hits = json.loads(ok(lot, "search", DIN, "--json"))["hits"]
    assert {h["id"] for h in hits} >= {"L-0042/0001", "L-0042/0002"}


BREAKS = [  # what goes wrong, the event logged, the check that fails
    ("skipped labeling", [("collection", "2026-10-01T08:00", ["--din", DIN]),
                          ("cryopreservation", "2026-10-01T12:00", [])], "order"),
    ("another patient", [("collection", "2026-10-01T08:00", ["--coi", "COI-OTHER-1"])], "identity"),
    ("DIN changed", [("collection", "2026-10-01T08:00", ["--din", DIN]),
                     ("labeling", "2026-10-01T08:30", ["--din", NEW_DIN])], "din"),
    ("too warm", [("collection", "2026-10-01T08:00", ["--temp", "12.5"])], "temperature"),
    ("past hold time", [("collection", "2026-10-01T08:00", []),
                        ("labeling", "2026-10-01T08:30", []),
                        ("shipment-to-manufacturing", "2026-10-02T09:00", ["--shipper", "CRYO-22"]),
                        ("receipt-at-manufacturing", "2026-10-14T09:00", [])], "hold-time"),
    ("broken seal", [("collection", "2026-10-01T08:00", ["--seal", "broken"])], "seal"),
    ("earlier than the last", [("collection", "2026-10-01T08:00", []),
                               ("labeling", "2026-09-30T08:30", [])], "time"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "events", "failing"), BREAKS, ids=[b[0] for b in BREAKS])
def test_each_break_is_recorded_and_escalated_once(
    lot: Path,
    smtp_server: SmtpServer,  # noqa: F811
    what: str,
    events: list,
    failing: str,  # noqa: F811
) -> None:
    env = smtp_server.env()
    for step, at, extra in events:
        last = log(lot, step, at, *extra, env=env)
    assert [b["check"] for b in last["break_records"]] == [failing], last["checks"]
    brk = last["break_records"][0]
    assert brk["status"] == "open" and sorted(brk["escalated"]) == sorted(LISTS)
    [envelope] = smtp_server.collector.envelopes
    assert sorted(envelope.rcpt_tos) == sorted(LISTS.values())
    assert "CHAIN BREAK lot L-0042" in smtp_server.collector.messages()[0]["Subject"]
    # Exactly once: nothing more is sent, however often the escalation is asked for.
    ok(lot, "custody", "escalate", env=env)
    assert len(smtp_server.collector.envelopes) == 1
    ok(lot, "lot", "start", "L-0042")
    held = refused(lot, 1, "lot", "release", "L-0042", "--by", "Q")
    assert f"chain break BRK-001 ({failing} at " in held
    open_breaks = json.loads(ok(lot, "custody", "status", "--open-breaks", "--json"))
    assert [b["id"] for b in open_breaks] == ["L-0042/BRK-001"]
    resolved = json.loads(
        ok(lot, "custody", "resolve", "L-0042", "--break", "BRK-001", "--by", "Q. Approver",
           "--reason", "investigated under DEV-2026-0001", "--json")
    )  # fmt: skip
    assert resolved["status"] == "resolved"
    assert json.loads(ok(lot, "custody", "status", "--open-breaks", "--json")) == []
    assert "was resolved" in refused(lot, 1, "custody", "resolve", "L-0042", "--break",
        "BRK-001", "--by", "Q", "--reason", "again")  # fmt: skip


def test_a_missing_list_is_reported_loudly_and_escalated_later(vault_path: Path) -> None:
    lot = vault_path
    ok(lot, "lot", "new", "L-0042", "--program", "CART-19", "--coi", COI)
    ok(lot, "lists", "set", "manufacturing-leadership", LISTS["manufacturing-leadership"],
       "--reason", "r")  # fmt: skip
    result = run(lot, "custody", "log", "L-0042", "--step", "collection", "--by", "R", "--site",
                 "APH-01", "--seal", "broken", "--json")  # fmt: skip
    assert result.exit_code == 1  # kept, but not delivered everywhere
    assert "not escalated to list 'qa-management'" in result.stderr
    event = json.loads(result.stdout)
    assert event["breaks"] == ["L-0042/BRK-001"]  # the event and its break are kept
    assert event["break_records"][0]["escalated"] == ["manufacturing-leadership"]
    ok(lot, "lists", "set", "qa-management", "qa.head@example.com", "--reason", "back")
    escalated = json.loads(ok(lot, "custody", "escalate", "--json"))["escalated"]
    assert escalated[0]["escalated"] == sorted(LISTS)
    assert json.loads(ok(lot, "custody", "escalate", "--json"))["escalated"] == []


def test_a_correction_never_erases_the_original(lot: Path) -> None:
    log(lot, "collection", "2026-10-01T08:00", "--din", DIN, "--temp", "4")
    wrong = log(lot, "labeling", "2026-10-01T08:30", "--din", NEW_DIN)
    assert [b["check"] for b in wrong["break_records"]] == ["din"]
    fixed = log(lot, "labeling", "2026-10-01T08:30", "--din", DIN, "--corrects", wrong["id"],
                "--note", "typo in the DIN")  # fmt: skip
    assert fixed["corrects"] == "L-0042/0002" and all(c["ok"] for c in fixed["checks"])
    shown = json.loads(ok(lot, "custody", "show", "L-0042", "--json"))
    assert [e["id"] for e in shown["events"]] == ["L-0042/0001", "L-0042/0002", "L-0042/0003"]
    assert shown["events"][1]["din"] == NEW_DIN  # the original is kept as it was logged
    # The chain goes on from the correction: the next step is in order.
    assert all(c["ok"] for c in log(lot, "cryopreservation", "2026-10-01T12:00")["checks"])


def test_bad_input_is_refused_and_writes_nothing(lot: Path, tmp_path: Path) -> None:
    before = head(lot)
    base = ["custody", "log", "L-0042", "--by", "R", "--site", "APH-01"]
    assert "check character" in refused(lot, 2, *base, "--step", "collection", "--din",
                                        "G123498654321X")  # fmt: skip
    refused(lot, 2, *base, "--step", "collection", "--din", "G12349865432")  # too short
    refused(lot, 2, *base, "--step", "collection", "--din", "G12349865432!H")
    assert "in the future" in refused(lot, 2, *base, "--step", "collection", "--at", "2030-01-01")
    assert "unknown step" in refused(lot, 2, *base, "--step", "teleport")
    assert "lot release" in refused(lot, 2, *base, "--step", "qa-release")
    refused(lot, 2, *base, "--step", "collection", "--temp", "cold")
    refused(lot, 2, *base, "--step", "collection", "--seal", "taped")
    assert "unknown lot" in refused(lot, 1, "custody", "log", "L-404", "--step", "collection",
                                    "--by", "R", "--site", "S")  # fmt: skip
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    refused(lot, 2, *base, "--step", "collection", "--logger", str(empty))
    bad = tmp_path / "bad.csv"
    bad.write_text("time,temp\n2026-10-01T08:00:00Z,4.0\n2026-10-01T08:05:00Z,warm\n")
    assert "line 3" in refused(lot, 2, *base, "--step", "collection", "--logger", str(bad))
    assert head(lot) == before


def test_a_logger_file_is_archived_and_summarised(lot: Path, tmp_path: Path) -> None:
    data = tmp_path / "shipper-22.csv"
    data.write_text(
        "Timestamp;Temp (°C)\n02/10/2026 09:00;-185,0\n02/10/2026 10:00;-140,0\n"
        "02/10/2026 10:30;-184,0\n"
    )
    log(lot, "collection", "2026-10-01T08:00")
    log(lot, "labeling", "2026-10-01T08:30")
    event = log(lot, "shipment-to-manufacturing", "2026-10-02T09:00", "--logger", str(data))
    summary = event["logger"]["summary"]
    assert (summary["min_celsius"], summary["max_celsius"]) == (-185.0, -140.0)
    assert summary["minutes_out_of_range"] == 30
    assert [b["check"] for b in event["break_records"]] == ["temperature"]
    shown = json.loads(ok(lot, "show", event["logger"]["doc"], "--json"))
    assert shown["lot"] == "L-0042" and shown["meta"]["role"] == "temperature-log"


# -- certificates ------------------------------------------------------------------------------


def pdftotext(data: bytes, tmp_path: Path) -> str:
    """Text as an ordinary tool reads it (poppler-utils; CI installs it: never skipped)."""
    import subprocess

    path = tmp_path / "certificate.pdf"
    path.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          check=True, text=True).stdout  # fmt: skip


def certificate_bytes(vault: Path, doc: str, tmp_path: Path, version: int | None = None) -> bytes:
    out = tmp_path / f"{doc}-{version}.pdf"
    args = ["get", doc, "-o", str(out), "--force"] + (
        ["--version", str(version)] if version else []
    )
    ok(vault, *args)
    return out.read_bytes()


def test_a_certificate_is_issued_after_receipt_at_manufacturing(lot: Path, tmp_path: Path) -> None:
    import hashlib

    from atmpvault.archive.core.pdf import embedded_files

    for step, at, extra in CLEAN[:4]:
        log(lot, step, at, *extra)
    receipt = log(lot, *CLEAN[4][:2], *CLEAN[4][2])  # a certificate step by default
    shown = json.loads(ok(lot, "ls", "--lot", "L-0042", "--type", "coc-certificate", "--json"))
    [certificate] = shown
    data = certificate_bytes(lot, certificate["id"], tmp_path)
    text = pdftotext(data, tmp_path)
    for expected in ("Chain-of-Custody Certificate", "L-0042", COI, DIN, "receipt-at-manufacturing",
                     "APH-01", "R. Coordinator", "-185", "SHA-256 of the custody log",
                     "Not signed electronically", "handwritten review"):  # fmt: skip
        assert expected in text, expected
    files = embedded_files(data)
    record = json.loads(files["certificate.json"])
    lines = files["custody-log.jsonl"].decode().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [s for s, _a, _e in CLEAN[:5]]
    assert json.loads(lines[-1])["id"] == receipt["id"]
    assert record["custody_log_sha256"] == hashlib.sha256(files["custody-log.jsonl"]).hexdigest()
    assert record["custody_log_sha256"] in text.replace("\n", "").replace(" ", "")
    assert data.count(b"pdfaid:part") and b"/AFRelationship /Data" in data
    path = tmp_path / "issued.pdf"
    path.write_bytes(data)
    assert ok(lot, "custody", "verify-certificate", str(path)).startswith("ok: ")
    hits = json.loads(ok(lot, "search", "chain of custody certificate", "--json"))["hits"]
    assert certificate["id"] in {h["id"] for h in hits}


def test_verify_certificate_catches_an_altered_file_and_a_changed_log(
    lot: Path, tmp_path: Path
) -> None:
    import subprocess

    for step, at, extra in CLEAN[:5]:
        log(lot, step, at, *extra)
    [certificate] = json.loads(ok(lot, "ls", "--type", "coc-certificate", "--json"))
    data = certificate_bytes(lot, certificate["id"], tmp_path)
    altered = tmp_path / "altered.pdf"
    altered.write_bytes(data.replace(b"R. Coordinator", b"X. Coordinator", 1))
    result = run(lot, "custody", "verify-certificate", str(altered))
    assert result.exit_code == 3 and "not an archived certificate" in result.stdout
    # The custody log changed since issue: a record rewritten behind the archive's back.
    good = tmp_path / "good.pdf"
    good.write_bytes(data)
    path = "custody/events/L-0042/0002.json"
    blob = subprocess.run(["git", "-C", str(lot / "repo.git"), "show", f"HEAD:{path}"], capture_output=True,
                          check=True).stdout  # fmt: skip
    from tests.test_mutation_kills import commit_tree_with  # real git plumbing, one commit

    commit_tree_with(lot, {path: blob.replace(b"R. Coordinator", b"Someone Else")}, "edit")
    ok(lot, "rebuild")
    result = run(lot, "custody", "verify-certificate", str(good))
    assert result.exit_code == 3
    assert "custody log as archived no longer matches" in result.stdout


def test_no_certificate_while_a_break_is_open_then_one_after_resolution(lot: Path) -> None:
    log(lot, "collection", "2026-10-01T08:00", "--seal", "broken")
    result = run(lot, "custody", "certificate", "L-0042")
    assert result.exit_code == 1 and "unresolved chain break: BRK-001 (seal" in result.stderr
    ok(lot, "custody", "resolve", "L-0042", "--break", "BRK-001", "--by", "Q. Approver",
       "--reason", "outer bag seal only; inner seal intact")  # fmt: skip
    first = json.loads(ok(lot, "custody", "certificate", "L-0042", "--json"))
    assert (first["through"], first["document"]["version"]) == ("collection", 1)
    log(lot, "labeling", "2026-10-01T08:30")
    again = json.loads(ok(lot, "custody", "certificate", "L-0042", "--json"))
    # A re-issue is the next version of the same certificate document.
    assert again["document"]["id"] == first["document"]["id"]
    assert (again["through"], again["document"]["version"]) == ("labeling", 2)
    through = json.loads(
        ok(lot, "custody", "certificate", "L-0042", "--through", "collection", "--json")
    )
    assert through["events"] == 1


def test_relabel_changes_the_din_and_notify_tells_the_clinical_team(
    lot: Path,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    env = smtp_server.env()
    log(lot, "collection", "2026-10-01T08:00", "--din", DIN, env=env)
    relabel = log(lot, "relabel", "2026-10-01T08:10", "--din", NEW_DIN, "--note", "label torn",
                  env=env)  # fmt: skip
    assert (relabel["old_din"], relabel["din"]) == (DIN, NEW_DIN)
    assert all(c["ok"] for c in log(lot, "labeling", "2026-10-01T08:30", "--din", NEW_DIN,
                                    env=env)["checks"])  # fmt: skip
    assert smtp_server.collector.envelopes == []  # no break, nothing escalated
    for name in ("clinical-team", "patient-scheduling"):
        ok(lot, "lists", "set", name, f"{name}@example.com", "--reason", "status updates")
    notice = json.loads(ok(lot, "custody", "notify", "L-0042", "--json", env=env))
    assert notice["lists"] == ["clinical-team", "patient-scheduling"]
    [envelope] = smtp_server.collector.envelopes
    assert sorted(envelope.rcpt_tos) == ["clinical-team@example.com",
                                         "patient-scheduling@example.com"]  # fmt: skip
    body = smtp_server.collector.messages()[0].get_body(("plain",)).get_content()
    assert "labeling at APH-01" in body and "No open chain breaks" in body
    assert json.loads(ok(lot, "log", "--json"))[-1]["action"] == "custody-notify"


def test_custody_steps_and_limits_live_in_the_configuration(lot: Path) -> None:
    steps = json.loads(ok(lot, "config", "show", "--json"))["custody"]["steps"]
    steps[0] = {"step": "collection", "low": 2, "high": 25}  # a fresh product at room temp
    ok(lot, "config", "set", "custody.steps", json.dumps(steps), "--reason", "SOP-CUS-3 rev 2")
    assert all(
        c["ok"] for c in log(lot, "collection", "2026-10-01T08:00", "--temp", "21")["checks"]
    )
    assert "custody.steps" in refused(lot, 2, "config", "set", "custody.steps", "[]",
                                      "--reason", "r")  # fmt: skip


def test_an_optional_step_may_repeat_a_required_one_may_not(lot: Path) -> None:
    log(lot, "collection", "2026-10-01T08:00")
    log(lot, "labeling", "2026-10-01T08:30")
    log(lot, "cryopreservation", "2026-10-01T12:00")
    again = log(lot, "cryopreservation", "2026-10-01T15:00")  # a second bag frozen
    assert all(c["ok"] for c in again["checks"]), again["checks"]
    twice = log(lot, "labeling", "2026-10-01T16:00")
    assert [b["check"] for b in twice["break_records"]] == ["order"]
