"""Applications, events and the milestone calendar through the CLI, on real vaults."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import icalendar
import pytest
import vobject  # type: ignore[import-untyped]

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.rules import VAULT_RULES_PATH
from atmpvault.config import Settings
from tests.conftest import run

TODAY = "2026-03-01"


def ok(vault: Path, *args: str) -> Any:
    """Run a command that must succeed with --json; its parsed output."""
    result = run(vault, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def ind(vault_path: Path) -> Path:
    """A vault with IND-012345 (CART-19), received 2026-01-05, and a fatal case."""
    ok(vault_path, "app", "new", "ind", "IND 012345", "--program", "CART-19")
    ok(vault_path, "event", "add", "IND-012345", "ind-received", "--on", "2026-01-05")
    ok(vault_path, "event", "add", "IND-012345", "fatal-safety-case", "--on", "2026-02-20")
    return vault_path


def git_log(vault: Path, path: str) -> list[str]:
    out = subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "log", "--format=%s", "--", path],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


# -- applications -----------------------------------------------------------------------------


def test_app_new_and_ls(vault_path: Path) -> None:
    created = ok(vault_path, "app", "new", "ind", "IND 012345", "--program", "CART-19")
    assert created["id"] == "IND-012345" and created["label"] == "IND 012345"
    ok(vault_path, "app", "new", "bla", "125123", "--program", "CART-19")
    ok(vault_path, "app", "new", "ind", "7", "--program", "AAV-2")
    listed = ok(vault_path, "app", "ls")
    assert [a["id"] for a in listed] == ["BLA-125123", "IND-000007", "IND-012345"]
    assert {a["status"] for a in listed} == {"active"}
    text = run(vault_path, "app", "ls")
    assert "IND 012345" in text.stdout and "CART-19" in text.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ind", "IND 01234X", "--program", "CART-19"], 2, "invalid IND number"),
        (["ind", "1234567", "--program", "CART-19"], 2, "invalid IND number"),
        (["bla", "IND 012345", "--program", "CART-19"], 2, "names a IND, not a BLA"),
        (["nda", "012345", "--program", "CART-19"], 2, "unknown application kind"),
        (["ind", "012345", "--program", "cart 19"], 2, "invalid program"),
    ],
)
def test_app_new_refuses_bad_input(
    vault_path: Path, args: list[str], code: int, message: str
) -> None:
    result = run(vault_path, "app", "new", *args)
    assert result.exit_code == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert ok(vault_path, "app", "ls") == []


def test_app_new_refuses_a_duplicate(vault_path: Path) -> None:
    ok(vault_path, "app", "new", "ind", "012345", "--program", "CART-19")
    result = run(vault_path, "app", "new", "ind", "IND 012345", "--program", "CART-19")
    assert result.exit_code == 1
    assert "IND-012345 already exists" in result.stderr


# -- events -----------------------------------------------------------------------------------


def test_event_add_prints_its_milestones_with_rule_and_source(ind: Path) -> None:
    result = run(ind, "event", "add", "IND-012345", "fatal-safety-case", "--on", "2026-02-25")
    assert result.exit_code == 0, result.stderr
    assert "EV-000003" in result.stdout
    assert "SAFETY_7D" in result.stdout and "21 CFR 312.32(c)(2)" in result.stdout
    assert "SAFETY_15D" in result.stdout and "21 CFR 312.32(c)(1)" in result.stdout

    ok(ind, "app", "new", "ind", "7", "--program", "AAV-2")
    data = ok(ind, "event", "add", "IND-000007", "ind-received", "--on", "2026-01-05")
    assert data["event"]["id"] == "EV-000004"
    rules = {m["rule"]: m for m in data["milestones"]}
    assert rules["IND_EFFECTIVE"]["due"] == "2026-02-04"
    assert rules["IND_EFFECTIVE"]["source"] == "21 CFR 312.40(b)"
    assert rules["IND_ANNUAL"]["due"] == "2027-04-05"


def test_event_ids_are_unique_across_applications(ind: Path) -> None:
    ok(ind, "app", "new", "bla", "125123", "--program", "CART-19")
    data = ok(
        ind, "event", "add", "BLA-125123", "bla-received", "--on", "2026-01-31",
        "--review", "priority",
    )  # fmt: skip
    assert data["event"]["id"] == "EV-000003"
    assert {m["rule"]: m["due"] for m in data["milestones"]} == {
        "BLA_FILING": "2026-04-01",
        "BLA_DAY74": "2026-04-15",
        "BLA_PRIORITY": "2026-10-01",
    }


def test_event_ls(ind: Path) -> None:
    events = ok(ind, "event", "ls", "IND-012345")
    assert [(e["id"], e["trigger"], e["on"], e["version"]) for e in events] == [
        ("EV-000001", "ind-received", "2026-01-05", 1),
        ("EV-000002", "fatal-safety-case", "2026-02-20", 1),
    ]
    text = run(ind, "event", "ls", "IND-012345")
    assert "ind-received" in text.stdout and "2026-02-20" in text.stdout


def test_meeting_and_letter_events(ind: Path, sample_pdf: Path) -> None:
    meeting = ok(
        ind, "event", "add", "IND-012345", "meeting-request-received", "--on", "2026-01-01",
        "--meeting-type", "b-eop",
    )  # fmt: skip
    assert meeting["event"]["meeting_type"] == "B-EOP"
    assert {m["rule"]: m["due"] for m in meeting["milestones"]}["MEETING_B_EOP_HELD"] == (
        "2026-03-12"
    )
    doc = ok(ind, "add", str(sample_pdf), "--program", "CART-19", "--type", "correspondence")
    letter = ok(
        ind, "event", "add", "IND-012345", "fda-letter-received", "--on", "2026-04-01",
        "--letter-kind", "information-request", "--response-days", "30", "--doc", doc["id"],
        "--note", "CMC information request",
    )  # fmt: skip
    assert letter["event"]["doc"] == doc["id"]
    assert [(m["rule"], m["due"]) for m in letter["milestones"]] == [
        ("FDA_LETTER_RESPONSE", "2026-05-01")
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["IND-999999", "ind-received", "--on", "2026-01-05"], 1, "no application IND-999999"),
        (["IND-012345", "ind-recieved", "--on", "2026-01-05"], 2, "unknown trigger 'ind-recieved'"),
        (["IND-012345", "bla-received", "--on", "2026-01-05"], 2, "not recorded against an IND"),
        (["IND-012345", "ind-received", "--on", "05/01/2026"], 2, "is not a date"),
        (["IND-012345", "meeting-request-received", "--on", "2026-01-05"], 2, "--meeting-type"),
        (
            ["IND-012345", "meeting-request-received", "--on", "2026-01-05", "--meeting-type", "E"],
            2,
            "unknown meeting type 'E'",
        ),
        (["IND-012345", "ind-received", "--on", "2026-01-05", "--review", "standard"], 2,
         "--review applies only to bla-received"),
        (["IND-012345", "fda-letter-received", "--on", "2026-01-05"], 2, "--letter-kind"),
        (
            ["IND-012345", "fda-letter-received", "--on", "2026-01-05", "--letter-kind", "memo"],
            2,
            "unknown letter kind 'memo'",
        ),
        (["IND-012345", "ind-received", "--on", "2026-01-05", "--doc", "DOC-000042"], 1,
         "no document DOC-000042"),
        (["IND 12", "ind-received", "--on", "2026-01-05"], 2, "invalid application"),
    ],
)  # fmt: skip
def test_event_add_refuses_bad_input(ind: Path, args: list[str], code: int, message: str) -> None:
    result = run(ind, "event", "add", *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(ok(ind, "event", "ls", "IND-012345")) == 2


def test_unknown_trigger_lists_the_valid_ones(ind: Path) -> None:
    result = run(ind, "event", "add", "IND-012345", "nonsense", "--on", "2026-01-05")
    assert result.exit_code == 2
    assert "ind-received" in result.stderr and "meeting-request-received" in result.stderr


def test_unknown_application_elsewhere(ind: Path) -> None:
    assert run(ind, "event", "ls", "IND-000001").exit_code == 1
    result = run(ind, "calendar", "--app", "BLA-000001")
    assert result.exit_code == 1 and "no application BLA-000001" in result.stderr
    assert "IND-012345" in result.stderr  # names the ones that exist


# -- correction -------------------------------------------------------------------------------


def test_correction_rederives_and_keeps_history(ind: Path) -> None:
    before = ok(ind, "calendar", "--app", "IND-012345", "--today", TODAY, "--from", "2026-01-01",
                "--to", "2026-12-31")  # fmt: skip
    assert ("IND_EFFECTIVE", "2026-02-04") in [(m["rule"], m["due"]) for m in before]

    corrected = ok(
        ind, "event", "correct", "EV-000001", "--on", "2026-01-06",
        "--reason", "FDA receipt date per acknowledgment letter", "--today", TODAY,
    )  # fmt: skip
    record = corrected["event"]
    assert record["version"] == 2 and record["on"] == "2026-01-06"
    assert record["reason"] == "FDA receipt date per acknowledgment letter"
    assert [(h["version"], h["on"]) for h in record["history"]] == [
        (1, "2026-01-05"),
        (2, "2026-01-06"),
    ]
    assert record["history"][1]["previous_on"] == "2026-01-05"
    assert {m["rule"]: m["due"] for m in corrected["milestones"]}["IND_EFFECTIVE"] == "2026-02-05"

    after = ok(ind, "calendar", "--app", "IND-012345", "--today", TODAY, "--from", "2026-01-01",
               "--to", "2026-12-31")  # fmt: skip
    dues = [(m["rule"], m["due"]) for m in after]
    assert ("IND_EFFECTIVE", "2026-02-05") in dues and ("IND_EFFECTIVE", "2026-02-04") not in dues

    log = git_log(ind, "regulatory/events/IND-012345/EV-000001.json")
    assert len(log) == 2
    assert log[0].startswith("Correct EV-000001") and log[1].startswith("Record EV-000001")
    entries = run(ind, "log", "--json")
    actions = [e["action"] for e in json.loads(entries.stdout)]
    assert actions.count("event-add") == 2 and actions.count("event-correct") == 1
    reasons = [e["reason"] for e in json.loads(entries.stdout) if e["action"] == "event-correct"]
    assert reasons == ["FDA receipt date per acknowledgment letter"]


def test_correction_refusals(ind: Path) -> None:
    missing = run(ind, "event", "correct", "EV-000099", "--on", "2026-01-06", "--reason", "x")
    assert missing.exit_code == 1 and "no event EV-000099" in missing.stderr
    same = run(ind, "event", "correct", "EV-000001", "--on", "2026-01-05", "--reason", "x")
    assert same.exit_code == 1 and "already dated 2026-01-05" in same.stderr
    blank = run(ind, "event", "correct", "EV-000001", "--on", "2026-01-06", "--reason", " ")
    assert blank.exit_code == 2 and "--reason is required" in blank.stderr


# -- the calendar -----------------------------------------------------------------------------


def test_calendar_default_window_is_overdue_plus_30_days(ind: Path) -> None:
    ok(ind, "event", "add", "IND-012345", "investigator-added", "--on", "2026-02-15")  # 03-17
    ok(ind, "event", "add", "IND-012345", "rmat-request-received", "--on", "2026-02-15")  # 04-16
    rows = ok(ind, "calendar", "--today", TODAY)
    # The IND went into effect on 02-04: a status that has passed, not an overdue item.
    assert [(m["rule"], m["due"], m["days_left"]) for m in rows] == [
        ("SAFETY_7D", "2026-02-27", -2),
        ("SAFETY_15D", "2026-03-07", 6),
        ("NEW_INVESTIGATOR", "2026-03-17", 16),
    ]
    keys = {"app", "rule", "kind", "due", "days_left", "source", "trigger", "trigger_date"}
    assert keys | {"event", "produces", "program"} <= set(rows[0])
    assert rows[0]["trigger"] == "fatal-safety-case" and rows[0]["trigger_date"] == "2026-02-20"
    assert rows[0]["app"] == "IND-012345" and rows[0]["program"] == "CART-19"
    assert rows[0]["key"] == "IND-012345/SAFETY_7D/EV-000002"
    assert (rows[0]["state"], rows[0]["overdue"], rows[0]["closed"]) == ("open", True, None)
    assert [m["overdue"] for m in rows[1:]] == [False, False]
    text = run(ind, "calendar", "--today", TODAY)
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["DUE", "DAYS", "KEY", "KIND"]
    assert lines[1].split()[:4] == [
        "2026-02-27",
        "-2",
        "IND-012345/SAFETY_7D/EV-000002",
        "sponsor-due",
    ]
    assert "21 CFR 312.32(c)(2)" in lines[1]
    # The passed status is history: a window that starts before it lists it, not overdue.
    history = ok(ind, "calendar", "--today", TODAY, "--from", "2026-01-01", "--to", "2026-02-10")
    assert [(m["rule"], m["overdue"]) for m in history] == [("IND_EFFECTIVE", False)]


def test_calendar_filters(ind: Path) -> None:
    ok(ind, "app", "new", "bla", "125123", "--program", "AAV-2")
    ok(ind, "event", "add", "BLA-125123", "cbe30-submitted", "--on", "2026-02-20")  # 03-22
    ok(ind, "event", "add", "BLA-125123", "pas-received", "--on", "2026-02-20")  # 06-20

    def rules(*args: str) -> list[str]:
        return [m["rule"] for m in ok(ind, "calendar", "--today", TODAY, *args)]

    assert rules("--days", "5") == ["SAFETY_7D"]
    assert rules("--days", "200") == ["SAFETY_7D", "SAFETY_15D", "CBE30", "PAS"]
    assert rules("--overdue") == ["SAFETY_7D"]  # a status that passed is not overdue
    assert rules("--program", "AAV-2") == ["CBE30"]
    assert rules("--app", "BLA-125123", "--days", "200") == ["CBE30", "PAS"]
    assert rules("--kind", "gate") == ["CBE30"]
    assert rules("--kind", "sponsor-due", "--overdue") == ["SAFETY_7D"]
    assert rules("--from", "2026-03-01", "--to", "2026-06-30") == ["SAFETY_15D", "CBE30", "PAS"]
    assert rules("--from", "2026-06-01") == ["PAS", "IND_ANNUAL"]
    assert rules("--to", "2026-02-10") == ["IND_EFFECTIVE"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "deadline"], "unknown milestone kind 'deadline'"),
        (["--days", "5", "--from", "2026-01-01"], "use --days or --from/--to"),
        (["--from", "2026-05-01", "--to", "2026-04-01"], "starts (2026-05-01) after it ends"),
        (["--from", "soon"], "--from 'soon' is not a date"),
        (["--today", "2026-02-30"], "--today '2026-02-30' is not a date"),
        (["--program", "cart 19"], "invalid program"),
    ],
)
def test_calendar_refuses_bad_input(ind: Path, args: list[str], message: str) -> None:
    result = run(ind, "calendar", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_empty_calendar(vault_path: Path) -> None:
    assert ok(vault_path, "calendar") == []
    result = run(vault_path, "calendar")
    assert result.exit_code == 0 and "no milestones" in result.stderr


# -- the vault's own rules --------------------------------------------------------------------


def commit_rules(vault_path: Path, data: bytes) -> None:
    with Vault.open(Settings(vault=vault_path, user="ra.lead"), domains()) as vault:
        vault.commit_files(
            {VAULT_RULES_PATH: data},
            "Local FDA milestone rules",
            {"Action": "rules-set"},
            reason="site interpretation",
        )


def packaged() -> dict[str, Any]:
    from importlib import resources

    raw = resources.files("atmpvault").joinpath("rules", "fda_milestones.json").read_bytes()
    data: dict[str, Any] = json.loads(raw)
    return data


def test_vault_rules_replace_the_packaged_ones(ind: Path) -> None:
    data = packaged()
    for rule in data["rules"]:
        if rule["id"] == "IND_EFFECTIVE":
            rule["offset"] = {"days": 31}
            rule["source"] = "local SOP RA-12"
    commit_rules(ind, json.dumps(data).encode())
    rows = ok(ind, "calendar", "--today", TODAY, "--from", "2026-01-01", "--to", TODAY)
    effective = next(m for m in rows if m["rule"] == "IND_EFFECTIVE")
    assert effective["due"] == "2026-02-05" and effective["source"] == "local SOP RA-12"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"triggers": ["ind-recieved"]}, "rule IND_EFFECTIVE: unknown trigger 'ind-recieved'"),
        ({"offset": {"days": "thirty"}}, "rule IND_EFFECTIVE: bad offset"),
    ],
)
def test_bad_vault_rules_are_refused_naming_the_rule(
    ind: Path, change: dict[str, Any], message: str
) -> None:
    data = packaged()
    for rule in data["rules"]:
        if rule["id"] == "IND_EFFECTIVE":
            rule.update(change)
    commit_rules(ind, json.dumps(data).encode())
    result = run(ind, "calendar", "--today", TODAY)
    assert result.exit_code == 2
    assert message in result.stderr and VAULT_RULES_PATH in result.stderr
    assert "Traceback" not in result.stderr


# -- iCalendar --------------------------------------------------------------------------------


def test_ics_export_parses_with_two_parsers(ind: Path, tmp_path: Path) -> None:
    target = tmp_path / "milestones.ics"
    window = ["--today", TODAY, "--from", "2026-01-01", "--to", "2027-04-30"]
    result = run(ind, "calendar", *window, "--ics", str(target))
    assert result.exit_code == 0, result.stderr
    assert "milestones ->" in result.stderr
    rows = ok(ind, "calendar", *window)
    raw = target.read_bytes()
    assert b"DTSTART;VALUE=DATE:20260204" in raw

    parsed = icalendar.Calendar.from_ical(raw)
    events = list(parsed.walk("VEVENT"))
    assert len(events) == len(rows) == 4
    by_uid = {str(e["UID"]): e for e in events}
    effective = by_uid["IND-012345.IND_EFFECTIVE.EV-000001@atmpvault"]
    assert (effective["STATUS"], effective.decoded("SEQUENCE")) == ("CONFIRMED", 2)
    assert effective.decoded("DTSTART") == date(2026, 2, 4)
    assert not hasattr(effective.decoded("DTSTART"), "hour")  # an all-day DATE
    assert str(effective["SUMMARY"]).startswith("IND-012345 IND_EFFECTIVE")
    description = str(effective["DESCRIPTION"])
    assert "Rule: IND_EFFECTIVE" in description and "Source: 21 CFR 312.40(b)" in description
    assert "Trigger: ind-received on 2026-01-05 (EV-000001)" in description
    assert "Obligation: IND-012345/IND_EFFECTIVE/EV-000001" in description
    assert "IND-012345.IND_ANNUAL.1@atmpvault" in by_uid

    second = vobject.readOne(raw.decode("utf-8"))
    other = {v.uid.value: v for v in second.vevent_list}
    assert set(other) == set(by_uid)
    for uid, item in other.items():
        assert item.dtstart.value == by_uid[uid].decoded("DTSTART")
        assert item.summary.value == str(by_uid[uid]["SUMMARY"])
    assert {r["due"] for r in rows} == {v.dtstart.value.isoformat() for v in other.values()}


def test_ics_uids_are_stable_across_exports(ind: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first.ics", tmp_path / "second.ics"
    window = ["--today", TODAY, "--from", "2026-01-01", "--to", "2027-12-31"]
    assert run(ind, "calendar", *window, "--ics", str(first)).exit_code == 0
    ok(ind, "event", "correct", "EV-000001", "--on", "2026-01-07", "--reason", "receipt date")
    assert run(ind, "calendar", *window, "--ics", str(second)).exit_code == 0

    def uids(path: Path) -> dict[str, date]:
        cal = icalendar.Calendar.from_ical(path.read_bytes())
        return {str(e["UID"]): e.decoded("DTSTART") for e in cal.walk("VEVENT")}

    before, after = uids(first), uids(second)
    assert set(before) == set(after)  # same entries: updated in place, not duplicated
    key = "IND-012345.IND_EFFECTIVE.EV-000001@atmpvault"
    assert (before[key], after[key]) == (date(2026, 2, 4), date(2026, 2, 6))


def test_ics_unwritable_path_is_a_clear_error(ind: Path, tmp_path: Path) -> None:
    result = run(ind, "calendar", "--ics", str(tmp_path / "no-such-dir" / "m.ics"))
    assert result.exit_code == 1
    assert "cannot write" in result.stderr and "Traceback" not in result.stderr
