"""Milestones that close: obligation keys, done/waive/reopen, automatic completion by
finalised sequences and FDA action events, obligations that stay overdue, statuses and
gates that are never overdue, clinical holds, letters that expect a response, and an
iCalendar export whose entries follow the obligation."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import icalendar
import pytest
import vobject

from atmpvault.archive.regulatory.derivation import derive
from atmpvault.archive.regulatory.rules import packaged_rules
from tests.conftest import run
from tests.test_packages import archive, ok, ok_json, pdf, refused
from tests.test_rules import D, application, event

IND = "IND-012345"
BLA = "BLA-125123"
RULES = packaged_rules()


def calendar(vault: Path, today: str, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok_json(run(vault, "calendar", "--today", today, *args, "--json"))
    return rows


def keyed(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["key"], m["due"]) for m in rows]


@pytest.fixture
def ind(vault_path: Path) -> Path:
    """IND-012345 in effect on 2025-01-10: annual reports due 2026-03-11, 2027-03-11..."""
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(vault_path, "event", "add", IND, "ind-effective", "--on", "2025-01-10"))
    return vault_path


# -- clinical hold within the 30-day review (21 CFR 312.40(b)(1)) -----------------------------


def test_a_hold_within_30_days_keeps_the_ind_from_going_into_effect() -> None:
    events = [
        event(1, "ind-received", "2026-01-05"),
        event(2, "clinical-hold-imposed", "2026-01-30"),
    ]
    held = derive(application(), events, RULES, today=D("2026-02-04"), end=D("2028-12-31"))
    assert [m.rule for m in held if m.rule in ("IND_EFFECTIVE", "IND_ANNUAL")] == []
    lifted = [*events, event(3, "hold-lifted", "2026-03-10")]
    found = derive(application(), lifted, RULES, today=D("2026-04-01"), end=D("2027-12-31"))
    effective = [(m.rule, m.due) for m in found if m.rule in ("IND_EFFECTIVE", "IND_ANNUAL")]
    # In effect when the hold is lifted; the annual report runs from that date.
    assert effective == [("IND_EFFECTIVE", D("2026-03-10")), ("IND_ANNUAL", D("2027-05-09"))]


def test_a_hold_after_the_30_days_leaves_the_effective_date_alone() -> None:
    events = [
        event(1, "ind-received", "2026-01-05"),
        event(2, "clinical-hold-imposed", "2026-02-10"),
    ]
    found = derive(application(), events, RULES, today=D("2026-02-11"))
    assert [m.due for m in found if m.rule == "IND_EFFECTIVE"] == [D("2026-02-04")]


def test_the_hold_reaches_the_calendar(vault_path: Path) -> None:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(vault_path, "event", "add", IND, "ind-received", "--on", "2026-01-05"))
    ok(run(vault_path, "event", "add", IND, "clinical-hold-imposed", "--on", "2026-01-30"))
    window = ["--from", "2026-01-01", "--to", "2027-12-31"]
    assert [m["rule"] for m in calendar(vault_path, "2026-02-04", *window)] == ["HOLD_LETTER"]
    ok(run(vault_path, "event", "add", IND, "hold-lifted", "--on", "2026-03-10"))
    rows = calendar(vault_path, "2026-03-11", *window)
    assert (f"{IND}/IND_EFFECTIVE/EV-000001", "2026-03-10") in keyed(rows)
    assert (f"{IND}/IND_ANNUAL/1", "2027-05-09") in keyed(rows)


# -- obligations stay owed; statuses and gates pass --------------------------------------------


def test_a_missed_annual_report_stays_overdue_after_the_next_anniversary(ind: Path) -> None:
    overdue = calendar(ind, "2027-04-01", "--overdue")
    assert keyed(overdue) == [
        (f"{IND}/IND_ANNUAL/1", "2026-03-11"),
        (f"{IND}/IND_ANNUAL/2", "2027-03-11"),
    ]
    assert all(m["overdue"] and m["state"] == "open" for m in overdue)
    default = calendar(ind, "2027-04-01")
    assert [m["key"] for m in default] == [f"{IND}/IND_ANNUAL/1", f"{IND}/IND_ANNUAL/2"]


def test_statuses_and_gates_are_never_overdue(vault_path: Path) -> None:
    ok(run(vault_path, "app", "new", "bla", "125123", "--program", "CART-19"))
    ok(run(vault_path, "event", "add", BLA, "cbe30-submitted", "--on", "2026-01-05"))
    assert calendar(vault_path, "2026-03-01", "--overdue") == []
    assert calendar(vault_path, "2026-03-01") == []
    [gate] = calendar(vault_path, "2026-03-01", "--from", "2026-01-01")
    assert (gate["rule"], gate["kind"], gate["days_left"], gate["overdue"]) == (
        "CBE30",
        "gate",
        -25,
        False,
    )
    alerts = ok_json(run(vault_path, "alerts", "--today", "2026-03-01", "--json"))
    assert alerts == []


# -- recorded completion --------------------------------------------------------------------


def test_done_closes_one_obligation_with_its_evidence(ind: Path, tmp_path: Path) -> None:
    doc = archive(ind, tmp_path, "annual-report-2026.pdf", pdf("IND annual report 2026"))
    done = ok_json(
        run(
            ind, "milestone", "done", IND, "IND_ANNUAL", "--cycle", "1", "--on", "2026-03-02",
            "--evidence", doc, "--reason", "submitted by courier", "--user", "ra.lead", "--json",
        )
    )  # fmt: skip
    assert done["key"] == f"{IND}/IND_ANNUAL/1"
    assert done["state"] == "done"
    assert done["closed"] == {
        "state": "done", "on": "2026-03-02", "by": "ra.lead", "how": "recorded",
        "evidence": f"{doc}@1", "reason": "submitted by courier",
    }  # fmt: skip
    # It leaves the calendar and the alerts; the next cycle is what is owed.
    assert [m["key"] for m in calendar(ind, "2027-04-01")] == [f"{IND}/IND_ANNUAL/2"]
    alerted = ok_json(run(ind, "alerts", "--today", "2027-04-01", "--json"))
    assert [a["key"].split("/")[1:4] for a in alerted] == [[IND, "EV-000001", "IND_ANNUAL"]]
    assert alerted[0]["due"] == "2027-03-11"
    # --all shows it, with when, by whom, with what.
    every = calendar(ind, "2027-04-01", "--all")
    assert [(m["key"], m["state"]) for m in every] == [
        (f"{IND}/IND_ANNUAL/1", "done"),
        (f"{IND}/IND_ANNUAL/2", "open"),
    ]
    table = run(ind, "calendar", "--today", "2027-04-01", "--all")
    assert f"done 2026-03-02 by ra.lead ({doc}@1)" in table.stdout
    log = ok_json(run(ind, "log", "--id", f"{IND}/IND_ANNUAL/1", "--json"))
    assert [(e["action"], e["user"], e["reason"]) for e in log] == [
        ("milestone-done", "ra.lead", "submitted by courier")
    ]
    assert ok_json(run(ind, "verify", "--json"))["ok"] is True


def test_waive_and_reopen_keep_both_in_history(ind: Path) -> None:
    key = f"{IND}/IND_ANNUAL/1"
    ok(run(ind, "milestone", "waive", IND, "IND_ANNUAL", "--today", "2026-04-01",
           "--reason", "IND inactive that year"))  # fmt: skip
    assert calendar(ind, "2026-04-01") == []
    waived = calendar(ind, "2026-04-01", "--all")[0]
    assert (waived["state"], waived["closed"]["reason"]) == ("waived", "IND inactive that year")
    ok(run(ind, "milestone", "reopen", IND, "IND_ANNUAL", "--cycle", "1",
           "--reason", "waived in error", "--today", "2026-04-01"))  # fmt: skip
    reopened = calendar(ind, "2026-04-01")
    assert [(m["key"], m["state"], m["overdue"]) for m in reopened] == [(key, "open", True)]
    log = ok_json(run(ind, "log", "--id", key, "--json"))
    assert [e["action"] for e in log] == ["milestone-waive", "milestone-reopen"]
    assert ok_json(run(ind, "verify", "--json"))["ok"] is True


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["done", IND, "IND_ANNUAL", "--cycle", "1", "--reason", "r"], 2, ["--on"]),
        (["done", IND, "NO_SUCH_RULE", "--on", "2026-03-01", "--reason", "r"], 1, ["unknown rule"]),
        (["done", IND, "IND_ANNUAL", "--event", "EV-000001", "--on", "2026-03-01", "--reason", "r"],
         2, ["recurs", "--cycle"]),
        (["done", IND, "IND_ANNUAL", "--cycle", "9", "--on", "2026-03-01", "--reason", "r"],
         1, ["has no obligation IND_ANNUAL 9", f"{IND}/IND_ANNUAL/1"]),
        (["done", IND, "IND_ANNUAL", "--cycle", "1", "--on", "2031-03-01", "--reason", "r"],
         2, ["future"]),
        (["done", IND, "IND_ANNUAL", "--cycle", "1", "--on", "2026-03-01", "--reason", " "],
         2, ["--reason"]),
        (["done", IND, "IND_ANNUAL", "--cycle", "1", "--on", "2026-03-01", "--evidence",
          "DOC-000099", "--reason", "r"], 1, ["no document DOC-000099"]),
        (["reopen", IND, "IND_ANNUAL", "--reason", "r"], 1, ["0 closed IND_ANNUAL"]),
        (["done", "IND-999999", "IND_ANNUAL", "--on", "2026-03-01", "--reason", "r"],
         1, ["no application IND-999999"]),
    ],
)  # fmt: skip
def test_bad_completions_are_refused_and_change_nothing(
    ind: Path, args: list[str], code: int, words: list[str]
) -> None:
    before = ok_json(run(ind, "log", "--json"))
    refused(run(ind, "milestone", *args, "--today", "2026-04-01"), code, *words)
    assert ok_json(run(ind, "log", "--json")) == before


def test_done_twice_is_refused_naming_the_first(ind: Path) -> None:
    args = ["milestone", "done", IND, "IND_ANNUAL", "--cycle", "1", "--on", "2026-03-01",
            "--reason", "r", "--today", "2026-04-01"]  # fmt: skip
    ok(run(ind, *args))
    refused(run(ind, *args), 1, "already done on 2026-03-01", "reopen it first")


# -- automatic completion -----------------------------------------------------------------------


def submit(vault: Path, tmp: Path, seq: str, sub_type: str, on: str, app: str = IND) -> None:
    doc = archive(vault, tmp, f"{sub_type}-{seq}.pdf", pdf(f"{sub_type} {seq}"))
    ok(run(vault, "package", "new", app, "--sequence", seq, "--type", sub_type))
    ok(run(vault, "package", "add", app, seq, doc, "--section", "m1/us"))
    ok(run(vault, "package", "finalise", app, seq, "--submitted", on))


def test_a_finalised_annual_report_closes_the_oldest_open_cycle(ind: Path, tmp_path: Path) -> None:
    submit(ind, tmp_path, "0001", "annual-report", "2026-03-05")
    every = calendar(ind, "2026-11-30", "--all")
    first = every[0]
    assert (first["key"], first["state"]) == (f"{IND}/IND_ANNUAL/1", "done")
    assert first["closed"]["how"] == "sequence" and first["closed"]["evidence"] == f"{IND}/0001"
    assert first["closed"]["on"] == "2026-03-05"
    assert calendar(ind, "2026-11-30") == []  # the next report is due 2027-03-11
    assert [m["key"] for m in calendar(ind, "2027-04-01")] == [f"{IND}/IND_ANNUAL/2"]
    # A reopened cycle stays open: the sequence does not move to another one.
    ok(run(ind, "milestone", "reopen", IND, "IND_ANNUAL", "--cycle", "1",
           "--reason", "that sequence was the 2024 report", "--today", "2026-11-30"))  # fmt: skip
    assert [m["key"] for m in calendar(ind, "2027-04-01")] == [
        f"{IND}/IND_ANNUAL/1", f"{IND}/IND_ANNUAL/2",
    ]  # fmt: skip
    assert ok_json(run(ind, "verify", "--json"))["ok"] is True


def test_an_approval_answers_the_review_goal(vault_path: Path) -> None:
    ok(run(vault_path, "app", "new", "bla", "125123", "--program", "CART-19"))
    ok(run(vault_path, "event", "add", BLA, "bla-received", "--on", "2025-01-15",
           "--review", "priority"))  # fmt: skip
    goal = next(m for m in calendar(vault_path, "2025-10-01") if m["rule"] == "BLA_PRIORITY")
    assert (goal["due"], goal["kind"], goal["overdue"]) == ("2025-09-16", "fda-goal", True)
    ok(run(vault_path, "event", "add", BLA, "bla-approved", "--on", "2025-09-12"))
    rows = calendar(vault_path, "2025-10-01")
    assert "BLA_PRIORITY" not in [m["rule"] for m in rows]
    closed = next(
        m for m in calendar(vault_path, "2025-10-01", "--all") if m["rule"] == "BLA_PRIORITY"
    )
    assert closed["closed"]["how"] == "event" and closed["closed"]["evidence"] == "EV-000002"


# -- letters that expect a response ------------------------------------------------------------


def test_an_information_request_takes_the_default_response_time(ind: Path) -> None:
    added = ok_json(run(ind, "event", "add", IND, "fda-letter-received", "--on", "2026-03-02",
                        "--letter-kind", "information-request", "--json"))  # fmt: skip
    assert added["event"]["response_days"] == 30
    assert [(m["rule"], m["due"]) for m in added["milestones"]] == [
        ("FDA_LETTER_RESPONSE", "2026-04-01")
    ]


@pytest.mark.parametrize("days", ["0", "-3"])
def test_a_response_time_must_be_positive(ind: Path, days: str) -> None:
    refused(run(ind, "event", "add", IND, "fda-letter-received", "--on", "2026-03-02",
                "--letter-kind", "information-request", "--response-days", days), 2, "1 to")  # fmt: skip


def test_a_letter_that_expects_no_response_derives_nothing(ind: Path) -> None:
    added = ok_json(run(ind, "event", "add", IND, "fda-letter-received", "--on", "2026-03-02",
                        "--letter-kind", "meeting-minutes", "--json"))  # fmt: skip
    assert added["event"]["response_days"] is None and added["milestones"] == []


# -- labels and sources -----------------------------------------------------------------------


def test_pdufa_goals_are_labelled_goals() -> None:
    goals = [r.id for r in RULES.rules if r.kind == "fda-goal"]
    assert {"BLA_DAY74", "MEETING_MINUTES", "MEETING_A_REPLY", "MEETING_C_HELD"} <= set(goals)
    assert RULES.get("BTD_DESIGNATION").source == "FD&C Act 506(a)(3)"
    assert RULES.once == ("ind-received", "ind-effective", "bla-received", "bla-approved")


def test_the_once_only_refusal_reads_the_rules_file(ind: Path) -> None:
    refused(run(ind, "event", "add", IND, "ind-effective", "--on", "2025-01-11"), 1, "happens once")
    from importlib import resources

    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.domains import domains
    from atmpvault.archive.regulatory.rules import VAULT_RULES_PATH
    from atmpvault.config import Settings

    data = json.loads(
        resources.files("atmpvault").joinpath("rules", "fda_milestones.json").read_bytes()
    )
    data["once_per_application"] = ["bla-approved"]
    with Vault.open(Settings(vault=ind, user="ra.lead"), domains()) as vault:
        vault.commit_files({VAULT_RULES_PATH: json.dumps(data).encode()}, "Local rules",
                           {"Action": "rules-set"}, reason="site rules")  # fmt: skip
    ok(run(ind, "event", "add", IND, "ind-effective", "--on", "2025-01-11"))


# -- iCalendar: the entry follows the obligation ------------------------------------------------


def entries(path: Path) -> dict[str, Any]:
    parsed = icalendar.Calendar.from_ical(path.read_bytes())
    found = {str(e["UID"]): e for e in parsed.walk("VEVENT")}
    other = {v.uid.value: v for v in vobject.readOne(path.read_text()).vevent_list}
    assert set(other) == set(found)  # two parsers, one answer
    for uid, item in other.items():
        assert item.dtstart.value == found[uid].decoded("DTSTART")
        assert item.status.value == str(found[uid]["STATUS"])
    return found


def test_ics_entries_keep_their_uid_and_cancel_what_closed(
    vault_path: Path, tmp_path: Path
) -> None:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(vault_path, "event", "add", IND, "ind-received", "--on", "2025-01-05"))
    window = ["--today", "2026-01-20", "--from", "2025-01-01", "--to", "2026-12-31"]
    first, second, third = (tmp_path / f"{n}.ics" for n in ("1", "2", "3"))
    ok(run(vault_path, "calendar", *window, "--ics", str(first)))
    # The effective date recorded after the receipt moves the annual report, not its UID.
    ok(run(vault_path, "event", "add", IND, "ind-effective", "--on", "2025-02-10"))
    ok(run(vault_path, "calendar", *window, "--ics", str(second)))
    before, after = entries(first), entries(second)
    annual = f"{IND}.IND_ANNUAL.1@atmpvault"
    assert before[annual].decoded("DTSTART") == date(2026, 4, 5)
    assert after[annual].decoded("DTSTART") == date(2026, 4, 11)
    assert after[annual].decoded("SEQUENCE") > before[annual].decoded("SEQUENCE")
    assert set(before) <= set(after)
    # Done: still exported, CANCELLED, so a subscribed calendar removes it.
    ok(run(vault_path, "milestone", "done", IND, "IND_ANNUAL", "--cycle", "1", "--on", "2026-01-15",
           "--reason", "submitted", "--today", "2026-01-20"))  # fmt: skip
    ok(run(vault_path, "calendar", *window, "--ics", str(third)))
    done = entries(third)
    assert set(done) == set(after)
    assert str(done[annual]["STATUS"]) == "CANCELLED"
    assert done[annual].decoded("SEQUENCE") > after[annual].decoded("SEQUENCE")
    assert all(str(e["STATUS"]) == "CONFIRMED" for uid, e in done.items() if uid != annual)


def test_a_reexport_after_corrections_completions_and_voids(
    vault_path: Path, tmp_path: Path
) -> None:
    """The Done-when of the calendar lifecycle: after a correction, a completion and a
    void, the re-export parsed by two parsers has no duplicate and cancels what went."""
    v = vault_path
    ok(run(v, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(v, "event", "add", IND, "ind-received", "--on", "2025-01-06"))  # EV-000001
    ok(run(v, "event", "add", IND, "safety-case", "--on", "2025-12-01"))  # EV-000002
    ok(run(v, "event", "add", IND, "investigator-added", "--on", "2025-12-03"))  # EV-000003
    window = ["--today", "2025-12-10", "--from", "2025-01-01", "--to", "2026-06-30"]
    first, second = tmp_path / "first.ics", tmp_path / "second.ics"
    ok(run(v, "calendar", *window, "--ics", str(first)))
    ok(run(v, "event", "correct", "EV-000001", "--on", "2025-01-08", "--reason", "per letter"))
    ok(run(v, "milestone", "done", IND, "SAFETY_15D", "--on", "2025-12-09",
           "--reason", "submitted", "--today", "2025-12-10"))  # fmt: skip
    ok(run(v, "event", "void", "EV-000003", "--reason", "wrong IND"))
    ok(run(v, "calendar", *window, "--ics", str(second)))
    before, after = entries(first), entries(second)
    assert len(after) == len(set(after))  # entries() keys by UID: check the raw count too
    raw = second.read_text()
    assert raw.count("BEGIN:VEVENT") == len(after)
    assert set(before) <= set(after)
    status = {uid: str(e["STATUS"]) for uid, e in after.items()}
    assert status[f"{IND}.SAFETY_15D.EV-000002@atmpvault"] == "CANCELLED"
    assert status[f"{IND}.NEW_INVESTIGATOR.EV-000003@atmpvault"] == "CANCELLED"
    moved = f"{IND}.IND_EFFECTIVE.EV-000001@atmpvault"
    assert (status[moved], after[moved].decoded("DTSTART")) == ("CONFIRMED", date(2025, 2, 7))
    assert after[moved].decoded("SEQUENCE") > before[moved].decoded("SEQUENCE")


def test_a_sequence_named_as_evidence_closes_only_that_obligation(
    vault_path: Path, tmp_path: Path
) -> None:
    # Three annual reports owed by February 2025; sequence 0001 closes the oldest by
    # itself. It was in fact the 2024 report, and the user marks that one done with it:
    # the sequence then closes that one only, and the 2023 report is owed again.
    v = vault_path
    ok(run(v, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(v, "event", "add", IND, "ind-effective", "--on", "2022-01-10"))
    submit(v, tmp_path, "0001", "annual-report", "2025-02-01")
    first = {m["key"]: m["state"] for m in calendar(v, "2025-03-01", "--all")}
    assert [first[f"{IND}/IND_ANNUAL/{n}"] for n in (1, 2, 3)] == ["done", "open", "open"]
    ok(run(v, "milestone", "done", IND, "IND_ANNUAL", "--cycle", "2", "--on", "2025-02-01",
           "--sequence", "0001", "--reason", "the 2024 report", "--today", "2025-03-01"))  # fmt: skip
    every = {m["key"]: m for m in calendar(v, "2025-03-01", "--all")}
    assert [every[f"{IND}/IND_ANNUAL/{n}"]["state"] for n in (1, 2, 3)] == ["open", "done", "open"]
    assert every[f"{IND}/IND_ANNUAL/2"]["closed"]["evidence"] == f"{IND}/0001"
