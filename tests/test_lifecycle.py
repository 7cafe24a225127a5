"""An application's life as FDA decides it: meetings granted or denied, reviews extended
and designated, complete response letters and resubmissions, rolling BLAs, inactive
INDs, and the safety reports an approval starts (21 CFR 600.80)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import icalendar
import pytest

from tests.conftest import run
from tests.test_packages import archive, ok, ok_json, pdf, refused

IND = "IND-012345"
BLA = "BLA-125123"


def calendar(vault: Path, today: str, *args: str, to: str = "2032-12-31") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok_json(
        run(vault, "calendar", "--today", today, "--from", "2020-01-01", "--to", to,
            "--all", *args, "--json")
    )  # fmt: skip
    return rows


def by_rule(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["rule"]: m for m in rows}


def event(vault: Path, app: str, trigger: str, on: str, *extra: str) -> dict[str, Any]:
    added: dict[str, Any] = ok_json(
        run(vault, "event", "add", app, trigger, "--on", on, *extra, "--json")
    )
    return added


@pytest.fixture
def ind(vault_path: Path) -> Path:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    return vault_path


@pytest.fixture
def bla(vault_path: Path) -> Path:
    ok(run(vault_path, "app", "new", "bla", "125123", "--program", "CART-19"))
    return vault_path


# -- formal meetings: the date FDA grants ------------------------------------------------------


def test_meeting_dates_are_provisional_until_granted(ind: Path) -> None:
    event(ind, IND, "meeting-request-received", "2026-01-01", "--meeting-type", "C")
    rows = by_rule(calendar(ind, "2026-01-10"))
    provisional = {r: (m["due"], m["provisional"]) for r, m in rows.items()}
    assert provisional == {
        "MEETING_C_REPLY": ("2026-01-22", False),
        "MEETING_C_HELD": ("2026-03-17", True),
        "MEETING_C_PACKAGE": ("2026-01-29", True),
        "MEETING_C_PRELIMINARY": ("2026-03-12", True),
        "MEETING_MINUTES": ("2026-04-16", True),
    }
    table = run(ind, "calendar", "--today", "2026-01-10", "--days", "90").stdout
    assert "2026-03-17?" in table and "2026-01-22 " in table
    granted = event(ind, IND, "meeting-granted", "2026-01-20", "--meeting-date", "2026-03-05",
                    "--meeting-format", "teleconference")  # fmt: skip
    assert granted["event"]["of"] == "EV-000001"
    assert granted["event"]["meeting_format"] == "teleconference"
    rows = by_rule(calendar(ind, "2026-01-21"))
    assert {r: (m["due"], m["provisional"], m["state"]) for r, m in rows.items()} == {
        "MEETING_C_REPLY": ("2026-01-22", False, "done"),  # FDA answered on 01-20
        "MEETING_C_HELD": ("2026-03-05", False, "open"),
        "MEETING_C_PACKAGE": ("2026-01-17", False, "open"),  # 47 days before the meeting
        "MEETING_C_PRELIMINARY": ("2026-02-28", False, "open"),
        "MEETING_MINUTES": ("2026-04-04", False, "open"),
    }


def test_type_b_preliminary_responses_come_2_days_before(ind: Path) -> None:
    event(ind, IND, "meeting-request-received", "2026-01-01", "--meeting-type", "B")
    event(ind, IND, "meeting-granted", "2026-01-15", "--meeting-date", "2026-02-20")
    assert by_rule(calendar(ind, "2026-01-16"))["MEETING_B_PRELIMINARY"]["due"] == "2026-02-18"


def test_a_denied_meeting_cancels_what_counts_back_from_it(ind: Path, tmp_path: Path) -> None:
    event(ind, IND, "meeting-request-received", "2026-01-01", "--meeting-type", "C")
    event(ind, IND, "meeting-denied", "2026-01-19")
    rows = by_rule(calendar(ind, "2026-01-20"))
    assert {r: m["state"] for r, m in rows.items()} == {
        "MEETING_C_REPLY": "done",
        "MEETING_C_HELD": "cancelled",
        "MEETING_C_PACKAGE": "cancelled",
        "MEETING_C_PRELIMINARY": "cancelled",
        "MEETING_MINUTES": "cancelled",
    }
    assert ok_json(run(ind, "calendar", "--today", "2026-01-20", "--json")) == []
    target = tmp_path / "m.ics"
    ok(run(ind, "calendar", "--today", "2026-01-20", "--from", "2026-01-01", "--ics", str(target)))
    cal = icalendar.Calendar.from_ical(target.read_bytes())
    assert {str(e["STATUS"]) for e in cal.walk("VEVENT")} == {"CANCELLED"}


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["meeting-granted", "--on", "2026-01-20", "--meeting-date", "2026-03-01"], 1,
         ["answers a meeting-request-received", "has none"]),
        (["meeting-denied", "--on", "2026-01-20"], 1, ["has none"]),
        (["safety-case", "--on", "2026-01-20", "--of", "EV-000001"], 2, ["--of applies only"]),
        (["meeting-request-received", "--on", "2026-01-20", "--meeting-type", "C",
          "--meeting-date", "2026-03-01"], 2, ["--meeting-date applies only to meeting-granted"]),
    ],
)  # fmt: skip
def test_meeting_answers_need_a_request(
    ind: Path, args: list[str], code: int, words: list[str]
) -> None:
    refused(run(ind, "event", "add", IND, *args), code, *words)


def test_a_grant_needs_its_meeting_date(ind: Path) -> None:
    event(ind, IND, "meeting-request-received", "2026-01-01", "--meeting-type", "C")
    refused(run(ind, "event", "add", IND, "meeting-granted", "--on", "2026-01-20"), 2,
            "meeting-granted needs --meeting-date")  # fmt: skip


# -- reviews: extended, designated, answered -------------------------------------------------


def test_an_extension_supersedes_the_goal(bla: Path, tmp_path: Path) -> None:
    event(bla, BLA, "bla-received", "2025-03-03", "--review", "standard")  # goal 2026-03-02
    before = tmp_path / "before.ics"
    ok(run(bla, "calendar", "--today", "2026-01-10", "--from", "2025-01-01", "--ics", str(before)))
    event(bla, BLA, "major-amendment-received", "2026-01-05")  # a fact, not FDA's decision
    assert by_rule(calendar(bla, "2026-01-10"))["BLA_STANDARD"]["state"] == "open"
    extended = event(bla, BLA, "review-extended", "2026-01-15")
    assert extended["event"]["of"] == "EV-000001"
    assert [(m["rule"], m["due"]) for m in extended["milestones"]] == [
        ("BLA_REVIEW_EXTENDED", "2026-06-02")
    ]
    rows = by_rule(calendar(bla, "2026-03-10"))
    assert rows["BLA_STANDARD"]["state"] == "superseded"
    assert rows["BLA_STANDARD"]["closed"]["evidence"] == "EV-000003"
    open_goals = [
        m["rule"]
        for m in ok_json(run(bla, "calendar", "--today", "2026-03-10", "--days", "120", "--json"))
    ]
    assert "BLA_STANDARD" not in open_goals and "BLA_REVIEW_EXTENDED" in open_goals
    after = tmp_path / "after.ics"
    ok(run(bla, "calendar", "--today", "2026-03-10", "--from", "2025-01-01", "--ics", str(after)))
    statuses = {str(e["UID"]): str(e["STATUS"])
                for e in icalendar.Calendar.from_ical(after.read_bytes()).walk("VEVENT")}  # fmt: skip
    assert statuses[f"{BLA}.BLA_STANDARD.EV-000001@atmpvault"] == "CANCELLED"
    # A second extension of the same review, and one after FDA acted, are refused.
    refused(run(bla, "event", "add", BLA, "review-extended", "--on", "2026-02-01"), 1,
            "already extended")  # fmt: skip
    event(bla, BLA, "bla-approved", "2026-05-20")
    assert by_rule(calendar(bla, "2026-06-10"))["BLA_REVIEW_EXTENDED"]["state"] == "done"


def test_an_extension_needs_a_review_under_way(bla: Path) -> None:
    refused(run(bla, "event", "add", BLA, "review-extended", "--on", "2026-01-15"), 1,
            "answers a bla-received or resubmission-received or pas-received")  # fmt: skip
    event(bla, BLA, "bla-received", "2025-01-06", "--review", "priority")
    event(bla, BLA, "complete-response-letter", "2025-09-01")
    refused(run(bla, "event", "add", BLA, "review-extended", "--on", "2025-10-01"), 1,
            "is done", "cannot be extended")  # fmt: skip


def test_a_supplement_review_extends_by_two_months(bla: Path) -> None:
    event(bla, BLA, "pas-received", "2026-01-10")  # goal 2026-05-10
    event(bla, BLA, "review-extended", "2026-03-01", "--of", "EV-000001")
    rows = by_rule(calendar(bla, "2026-03-02"))
    assert rows["SUPPLEMENT_EXTENDED"]["due"] == "2026-07-10"
    assert rows["PAS"]["state"] == "superseded"
    event(bla, BLA, "supplement-approved", "2026-06-30")
    assert by_rule(calendar(bla, "2026-07-01"))["SUPPLEMENT_EXTENDED"]["state"] == "done"


def test_a_designation_at_day_60_sets_the_goal(bla: Path, tmp_path: Path) -> None:
    event(bla, BLA, "rolling-piece-received", "2024-12-02")
    assert ok_json(run(bla, "calendar", "--today", "2025-01-01", "--json")) == []
    event(bla, BLA, "bla-received", "2025-03-03", "--review", "standard")  # the last piece
    assert by_rule(calendar(bla, "2025-03-04"))["BLA_FILING"]["due"] == "2025-05-02"
    event(bla, BLA, "review-designated", "2025-05-02", "--review", "priority")
    rows = by_rule(calendar(bla, "2025-05-03"))
    assert rows["BLA_PRIORITY"]["due"] == "2025-11-02" and "BLA_STANDARD" not in rows
    # A calendar client that held the standard goal is told to drop it.
    target = tmp_path / "m.ics"
    ok(run(bla, "calendar", "--today", "2025-05-03", "--from", "2025-01-01", "--ics", str(target)))
    statuses = {str(e["UID"]): str(e["STATUS"])
                for e in icalendar.Calendar.from_ical(target.read_bytes()).walk("VEVENT")}  # fmt: skip
    assert statuses[f"{BLA}.BLA_STANDARD.EV-000002@atmpvault"] == "CANCELLED"
    assert statuses[f"{BLA}.BLA_PRIORITY.EV-000002@atmpvault"] == "CONFIRMED"


def test_a_complete_response_then_a_resubmission(bla: Path) -> None:
    event(bla, BLA, "bla-received", "2025-01-06", "--review", "priority")
    event(bla, BLA, "complete-response-letter", "2025-09-01")
    rows = by_rule(calendar(bla, "2025-09-02"))
    assert rows["BLA_PRIORITY"]["state"] == "done"
    assert rows["BLA_PRIORITY"]["closed"]["evidence"] == "EV-000002"
    second = event(bla, BLA, "resubmission-received", "2026-02-02", "--class", "2")
    assert [(m["rule"], m["due"]) for m in second["milestones"]] == [
        ("RESUBMISSION_CLASS2", "2026-08-02")
    ]
    refused(run(bla, "event", "add", BLA, "resubmission-received", "--on", "2026-02-03"), 2,
            "--class 1 or 2")  # fmt: skip


# -- an IND that goes inactive ----------------------------------------------------------------


def test_an_inactive_ind_owes_no_later_annual_report(ind: Path) -> None:
    event(ind, IND, "ind-effective", "2023-01-10")
    changed = ok_json(run(ind, "app", "status", IND, "inactive", "--on", "2025-06-01",
                          "--reason", "no subjects enrolled (312.45)", "--json"))  # fmt: skip
    assert (changed["status"], changed["status_on"]) == ("inactive", "2025-06-01")
    annual = [m["key"] for m in calendar(ind, "2026-11-30") if m["rule"] == "IND_ANNUAL"]
    assert annual == [f"{IND}/IND_ANNUAL/1", f"{IND}/IND_ANNUAL/2"]  # 2024, 2025 still owed
    assert "inactive from 2025-06-01" in run(ind, "app", "show", IND).stdout
    log = ok_json(run(ind, "log", "--id", IND, "--json"))
    assert (
        log[-1]["action"] == "app-status" and log[-1]["reason"] == "no subjects enrolled (312.45)"
    )
    refused(run(ind, "app", "status", IND, "inactive", "--on", "2025-07-01", "--reason", "r"), 1,
            "already inactive")  # fmt: skip
    refused(run(ind, "app", "status", IND, "dormant", "--on", "2025-07-01", "--reason", "r"), 2,
            "unknown application status")  # fmt: skip
    ok(run(ind, "app", "status", IND, "active", "--on", "2026-02-01", "--reason", "enrolling"))
    annual = [m["key"] for m in calendar(ind, "2026-11-30") if m["rule"] == "IND_ANNUAL"]
    annual = [
        m["key"] for m in calendar(ind, "2026-11-30", to="2027-12-31") if m["rule"] == "IND_ANNUAL"
    ]
    # Active again from 2026-02-01: the 2027 report is owed; the 2026 anniversary fell
    # while the IND was inactive, so no report for that year.
    assert annual == [f"{IND}/IND_ANNUAL/1", f"{IND}/IND_ANNUAL/2", f"{IND}/IND_ANNUAL/4"]
    assert ok_json(run(ind, "verify", "--json"))["ok"] is True


# -- after approval: periodic and 15-day alert reports (21 CFR 600.80) --------------------------


def test_an_approval_starts_quarterly_reports_closed_by_periodic_sequences(
    bla: Path, tmp_path: Path
) -> None:
    event(bla, BLA, "bla-approved", "2025-01-31")
    quarterly = [
        m for m in calendar(bla, "2025-09-01", to="2025-12-31") if m["rule"] == "PADER_QUARTERLY"
    ]
    assert [(m["cycle"], m["due"], m["state"]) for m in quarterly] == [
        (1, "2025-05-29", "open"),
        (2, "2025-08-29", "open"),
        (3, "2025-11-29", "open"),
    ]
    doc = archive(bla, tmp_path, "pader-q1.pdf", pdf("Periodic report Q1"))
    ok(run(bla, "package", "new", BLA, "--sequence", "0001", "--type", "periodic-safety-report"))
    ok(run(bla, "package", "add", BLA, "0001", doc, "--section", "m1/us"))
    ok(run(bla, "package", "finalise", BLA, "0001", "--submitted", "2025-05-20"))
    states = [(m["cycle"], m["state"]) for m in calendar(bla, "2025-09-01", to="2025-12-31")
              if m["rule"] == "PADER_QUARTERLY"]  # fmt: skip
    assert states == [(1, "done"), (2, "open"), (3, "open")]
    case = event(bla, BLA, "postmarketing-alert-case", "2025-08-20")
    assert [(m["rule"], m["due"]) for m in case["milestones"]] == [("ALERT_15D", "2025-09-04")]


def test_an_approval_sets_the_status_and_a_void_undoes_it(bla: Path) -> None:
    event(bla, BLA, "bla-received", "2025-01-06", "--review", "priority")
    approved = event(bla, BLA, "bla-approved", "2025-08-20")
    [app] = ok_json(run(bla, "app", "ls", "--json"))
    assert (app["status"], app["status_on"]) == ("approved", "2025-08-20")
    log = ok_json(run(bla, "log", "--json"))
    assert log[-1]["action"] == "event-add" and {BLA, approved["event"]["id"]} <= {
        e["id"] for e in ok_json(run(bla, "log", "--id", BLA, "--json"))
    } | {approved["event"]["id"]}
    assert len({e["commit"] for e in log[-1:]}) == 1  # the event and the status: one commit
    ok(run(bla, "event", "void", approved["event"]["id"], "--reason", "entered on the wrong BLA"))
    [app] = ok_json(run(bla, "app", "ls", "--json"))
    assert app["status"] == "active"
    assert "PADER_QUARTERLY" not in {m["rule"] for m in calendar(bla, "2026-01-01")}


def test_an_extension_cannot_put_the_goal_before_the_notice(bla: Path) -> None:
    event(bla, BLA, "bla-received", "2025-01-06", "--review", "priority")  # goal 2025-09-07
    refused(run(bla, "event", "add", BLA, "review-extended", "--on", "2025-12-10"), 1,
            "would put the new goal on 2025-12-07, before FDA's notice on 2025-12-10")  # fmt: skip
    assert [e["trigger"] for e in ok_json(run(bla, "event", "ls", BLA, "--json"))] == [
        "bla-received"
    ]
