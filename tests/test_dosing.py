"""Dosing: slots, schedules from a profile, re-plans with history, actual dates from
custody, confirmations received by a real SMTP server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Clock, run
from tests.test_lots import head, ok, refused
from tests.test_notices import SmtpServer, smtp_server  # noqa: F401  (fixture)

SITE_LISTS = {"onc-scheduling": "scheduler@onc.example.com", "onc-nursing": "nurses@onc.example.com",
              "patient-scheduling": "coordinators@example.com"}  # fmt: skip


@pytest.fixture
def lots(vault_path: Path) -> Path:
    for lot, coi in (("L-0042", "COI-AAA-1"), ("L-0043", "COI-BBB-2")):
        ok(vault_path, "lot", "new", lot, "--program", "CART-19", "--coi", coi)
    for name, address in SITE_LISTS.items():
        ok(vault_path, "lists", "set", name, address, "--reason", "dosing confirmations")
    site = {"ONC-BOS-04": {"holidays": "US-MA", "scheduler_list": "onc-scheduling",
                           "nursing_list": "onc-nursing"}}  # fmt: skip
    ok(vault_path, "config", "set", "dosing.sites", json.dumps(site), "--reason", "site")
    return vault_path


def test_slots_refuse_double_booking_over_capacity_and_closed_days(lots: Path) -> None:
    ok(lots, "slot", "reserve", "--facility", "MFG-01", "--date", "2026-12-07", "--lot", "L-0042")
    before = head(lots)
    assert "full (1 slot(s)): held by L-0042" in refused(
        lots,
        1,
        "slot",
        "reserve",
        "--facility",
        "MFG-01",
        "--date",
        "2026-12-07",
        "--lot",
        "L-0043",
    )
    assert "already holds MFG-01 on 2026-12-07" in refused(
        lots,
        1,
        "slot",
        "reserve",
        "--facility",
        "MFG-01",
        "--date",
        "2026-12-08",
        "--lot",
        "L-0042",
    )
    assert "(Saturday)" in refused(
        lots,
        1,
        "slot",
        "reserve",
        "--facility",
        "MFG-01",
        "--date",
        "2026-12-05",
        "--lot",
        "L-0043",
    )
    assert "holiday: Christmas Day" in refused(
        lots,
        1,
        "slot",
        "reserve",
        "--facility",
        "MFG-01",
        "--date",
        "2026-12-25",
        "--lot",
        "L-0043",
    )
    assert "unknown facility" in refused(
        lots,
        1,
        "slot",
        "reserve",
        "--facility",
        "MFG-99",
        "--date",
        "2026-12-08",
        "--lot",
        "L-0043",
    )
    assert "unknown lot" in refused(
        lots, 1, "slot", "reserve", "--facility", "MFG-01", "--date", "2026-12-08", "--lot", "L-404"
    )
    assert head(lots) == before
    # Two slots a day, and a closure.
    facilities = {"MFG-01": {"slots": 2, "working_days_only": True, "closures": ["2026-12-09"],
                             "holidays": "US"}}  # fmt: skip
    ok(lots, "config", "set", "dosing.facilities", json.dumps(facilities), "--reason", "2nd suite")
    ok(lots, "slot", "reserve", "--facility", "MFG-01", "--date", "2026-12-07", "--lot", "L-0043")
    assert "(closed)" in refused(
        lots,
        1,
        "slot",
        "reserve",
        "--facility",
        "MFG-01",
        "--date",
        "2026-12-09",
        "--lot",
        "L-0043",
    )
    free = json.loads(ok(lots, "slot", "ls", "--free", "--from", "2026-12-07", "--to",
                         "2026-12-11", "--json"))  # fmt: skip
    assert [(r["day"], r["taken"], r["free"]) for r in free] == [
        ("2026-12-07", 2, 0), ("2026-12-08", 0, 2), ("2026-12-10", 0, 2), ("2026-12-11", 0, 2),
    ]  # fmt: skip
    ok(lots, "slot", "cancel", "--lot", "L-0043", "--reason", "apheresis postponed")
    listed = json.loads(ok(lots, "slot", "ls", "--from", "2026-12-01", "--json"))
    assert [r["lot"] for r in listed] == ["L-0042"]
    refused(lots, 1, "slot", "cancel", "--lot", "L-0043", "--reason", "again")


def test_plan_update_history_and_bad_input(lots: Path) -> None:
    ok(lots, "slot", "reserve", "--facility", "MFG-01", "--date", "2026-12-08", "--lot", "L-0042")
    planned = json.loads(
        ok(lots, "dosing", "plan", "L-0042", "--profile", "autologous-cart", "--apheresis",
           "2026-12-07", "--site", "ONC-BOS-04", "--json")
    )  # fmt: skip
    d = planned["dates"]
    assert d["manufacturing_start"] == "2026-12-08"  # its slot
    assert d["expected_completion"] == "2026-12-25" and d["expected_release"] == "2027-01-01"
    assert d["ship"] == "2027-01-04"  # the first working day on or after release (a Monday)
    assert (d["ld_start"], d["ld_end"], d["infusion"]) == ("2027-01-03", "2027-01-05", "2027-01-07")
    before = head(lots)
    assert "dates out of order: infusion" in refused(
        lots, 1, "dosing", "update", "L-0042", "--infusion", "2027-01-04", "--reason", "r"
    )
    assert "dates out of order: ship" in refused(
        lots, 1, "dosing", "update", "L-0042", "--ship", "2026-12-30", "--reason", "r"
    )
    refused(lots, 2, "dosing", "update", "L-0042", "--infusion", "2027-01-10")  # no reason
    refused(lots, 2, "dosing", "update", "L-0042", "--teleport", "2027-01-10", "--reason", "r")
    assert "unknown profile" in refused(lots, 1, "dosing", "plan", "L-0043", "--profile",
                                        "gene-edit", "--apheresis", "2026-12-07")  # fmt: skip
    assert "no dosing schedule" in refused(lots, 1, "dosing", "show", "L-0043")
    assert "unknown lot" in refused(lots, 1, "dosing", "show", "L-404")
    assert head(lots) == before
    ok(lots, "dosing", "update", "L-0042", "--infusion", "2027-01-10", "--ld-start", "2027-01-05",
       "--ld-end", "2027-01-07", "--reason", "patient febrile; infusion moved")  # fmt: skip
    shown = json.loads(ok(lots, "dosing", "show", "L-0042", "--json"))
    assert shown["dates"]["infusion"] == "2027-01-10"
    assert [(h["version"], h["action"], h["reason"]) for h in shown["history"]] == [
        (1, "plan", None), (2, "update", "patient febrile; infusion moved"),
    ]  # fmt: skip
    assert shown["history"][0]["dates"]["infusion"] == "2027-01-07"  # the earlier plan kept
    then = json.loads(ok(lots, "dosing", "show", "L-0042", "--as-of",
                         shown["history"][0]["recorded_at"], "--json"))  # fmt: skip
    assert then["dates"]["infusion"] == "2027-01-07"


def test_actual_dates_come_from_custody(lots: Path, clock: Clock) -> None:
    clock.at = datetime(2026, 12, 20, tzinfo=UTC)
    ok(lots, "dosing", "plan", "L-0042", "--profile", "autologous-cart", "--apheresis",
       "2026-12-07")  # fmt: skip
    base = ["custody", "log", "L-0042", "--by", "R", "--site", "APH-01"]
    ok(lots, *base, "--step", "collection", "--at", "2026-12-08T09:00")
    ok(lots, *base, "--step", "labeling", "--at", "2026-12-08T09:30")
    ok(lots, *base, "--step", "shipment-to-manufacturing", "--at", "2026-12-08T12:00")
    ok(lots, *base, "--step", "receipt-at-manufacturing", "--at", "2026-12-09T09:00")
    ok(lots, *base, "--step", "manufacturing-start", "--at", "2026-12-10T08:00")
    shown = json.loads(ok(lots, "dosing", "show", "L-0042", "--json"))
    assert shown["actual"] == {"apheresis": "2026-12-08", "manufacturing_start": "2026-12-10"}
    assert shown["dates"]["apheresis"] == "2026-12-07"  # the plan is kept beside them
    assert shown["lot_status"] == "in-manufacturing"


def test_confirmations_are_sent_once_each(
    lots: Path,
    smtp_server: SmtpServer,  # noqa: F811
    clock: Clock,
) -> None:
    env = smtp_server.env()
    clock.at = datetime(2026, 12, 1, tzinfo=UTC)
    ok(lots, "dosing", "plan", "L-0042", "--profile", "autologous-cart", "--apheresis",
       "2026-12-07", "--site", "ONC-BOS-04", env=env)  # fmt: skip
    ok(lots, "slot", "reserve", "--facility", "MFG-01", "--date", "2026-12-08", "--lot", "L-0042",
       env=env)  # fmt: skip
    ok(lots, "lot", "start", "L-0042", env=env)
    ok(lots, "dosing", "confirm-availability", "L-0042", "--on", "2027-01-02", env=env)
    ok(lots, "dosing", "confirm-availability", "L-0042", "--on", "2027-01-02", env=env)  # again
    ok(lots, "lot", "complete", "L-0042", env=env)
    ok(lots, "lot", "release", "L-0042", "--by", "Q. Approver", env=env)
    clock.at = datetime(2027, 1, 4, 9, tzinfo=UTC)
    # Logged alone, the shipment breaks the chain (steps skipped); the break's escalation
    # is the custody workflow's business: only the confirmations are looked at here.
    run(lots, "custody", "log", "L-0042", "--step", "shipment-to-site", "--by", "J. Courier",
        "--site", "MFG-01", env=env)  # fmt: skip
    confirmations = [(m, e) for m, e in zip(smtp_server.collector.messages(),
                     smtp_server.collector.envelopes, strict=True)
                     if not str(m["Subject"]).startswith("CHAIN BREAK")]  # fmt: skip
    messages = [m for m, _e in confirmations]
    received = [(str(m["Subject"]).split(":")[0], sorted(e.rcpt_tos)) for m, e in confirmations]
    scheduler, nurses = [SITE_LISTS["onc-scheduling"]], [SITE_LISTS["onc-nursing"]]
    assert received == [
        ("Slot confirmed", scheduler), ("Manufacturing started", scheduler),
        ("Product available", scheduler), ("Shipped", nurses),
    ]  # fmt: skip
    shipped = messages[-1].get_body(("plain",)).get_content()
    assert "Expected delivery between 2027-01-05 and 2027-01-06" in shipped
    assert "COI-AAA-1" in shipped
    notices = json.loads(ok(lots, "notices", "ls", "--json"))
    assert len([n for n in notices if n["key"].startswith("dosing/")]) == 4  # each archived


def test_conflicts_are_found_and_each_new_one_sent_once(
    lots: Path,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    env = smtp_server.env()
    ok(lots, "dosing", "plan", "L-0042", "--profile", "autologous-cart", "--apheresis",
       "2026-12-07", "--site", "ONC-BOS-04")  # fmt: skip
    assert json.loads(ok(lots, "dosing", "conflicts", "--today", "2026-12-01", "--json")) == []
    # LD moved before the release: a conflict the scheduler must act on.
    ok(lots, "dosing", "update", "L-0042", "--ld-start", "2026-12-28", "--ld-end", "2026-12-30",
       "--infusion", "2027-01-01", "--reason", "patient's conditioning brought forward")  # fmt: skip
    found = json.loads(ok(lots, "dosing", "conflicts", "--today", "2026-12-01", "--json"))
    rules = {c["rule"] for c in found}
    assert "ld-before-release" in rules
    ld = next(c for c in found if c["rule"] == "ld-before-release")
    assert ld["dates"] == {"ld_start": "2026-12-28", "expected_release": "2027-01-01"}
    assert ld["act"] == "scheduler" and "2026-12-28" in ld["message"]
    ok(lots, "dosing", "conflicts", "--today", "2026-12-01", "--send", env=env)
    sent = len(smtp_server.collector.envelopes)
    assert sent == len(found)
    assert {tuple(e.rcpt_tos) for e in smtp_server.collector.envelopes} == {
        (SITE_LISTS["patient-scheduling"],)
    }
    ok(lots, "dosing", "conflicts", "--today", "2026-12-01", "--send", env=env)  # nothing new
    assert len(smtp_server.collector.envelopes) == sent
    # An open deviation on the lot at planned release.
    ok(lots, "lot", "start", "L-0042")
    ok(lots, "deviation", "open", "--lot", "L-0042", "--class", "major", "--title", "t",
       "--description", "d")  # fmt: skip
    rules = {c["rule"] for c in json.loads(ok(lots, "dosing", "conflicts", "--today",
                                               "2026-12-01", "--json"))}  # fmt: skip
    assert "release-hold" in rules
    board = ok(lots, "dosing", "board", "--today", "2026-12-20", "--days", "28")
    assert "L-0042" in board and "COI-AAA-1" in board and "!" in board.split("Legend")[0]
    html = lots.parent / "board.html"
    ok(lots, "dosing", "board", "--today", "2026-12-20", "--format", "html", "-o", str(html))
    assert "L-0042" in html.read_text() and "<script" not in html.read_text()
    refused(lots, 1, "dosing", "board", "--format", "html", "-o", str(html))  # exists
