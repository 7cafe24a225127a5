"""Events entered in error are voided, not deleted; any detail of an event, not only its
date, is corrected as a new version with the old value kept in its history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import icalendar
import pytest

from tests.conftest import run
from tests.test_packages import ok, ok_json, refused

IND = "IND-012345"
TODAY = "2026-03-10"


def calendar(vault: Path, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ok_json(
        run(vault, "calendar", "--today", TODAY, "--from", "2026-01-01", "--to", "2026-12-31",
            *args, "--json")
    )  # fmt: skip
    return rows


@pytest.fixture
def ind(vault_path: Path) -> Path:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(vault_path, "event", "add", IND, "ind-received", "--on", "2026-01-05"))  # EV-000001
    ok(run(vault_path, "event", "add", IND, "investigator-added", "--on", "2026-02-02"))  # 2
    return vault_path


def test_a_voided_event_derives_nothing_and_stays_in_history(ind: Path, tmp_path: Path) -> None:
    before = tmp_path / "before.ics"
    ok(run(ind, "calendar", "--today", TODAY, "--from", "2026-01-01", "--ics", str(before)))
    assert "NEW_INVESTIGATOR" in [m["rule"] for m in calendar(ind)]
    voided = ok_json(run(ind, "event", "void", "EV-000002", "--reason", "wrong IND",
                         "--user", "ra.lead", "--json"))  # fmt: skip
    assert voided["event"]["status"] == "voided" and voided["event"]["version"] == 2
    assert voided["milestones"] == []
    assert "NEW_INVESTIGATOR" not in [m["rule"] for m in calendar(ind, "--all")]
    listed = ok_json(run(ind, "event", "ls", IND, "--json"))
    assert [(e["id"], e.get("status")) for e in listed] == [
        ("EV-000001", None), ("EV-000002", "voided"),
    ]  # fmt: skip
    assert "VOIDED: wrong IND" in run(ind, "event", "ls", IND).stdout
    log = ok_json(run(ind, "log", "--id", "EV-000002", "--json"))
    assert [(e["action"], e["user"], e["reason"]) for e in log][-1] == (
        "event-void", "ra.lead", "wrong IND",
    )  # fmt: skip
    # An export after the void cancels the entry a subscribed calendar holds.
    after = tmp_path / "after.ics"
    ok(run(ind, "calendar", "--today", TODAY, "--from", "2026-01-01", "--ics", str(after)))
    uid = f"{IND}.NEW_INVESTIGATOR.EV-000002@atmpvault"

    def status(path: Path) -> dict[str, str]:
        cal = icalendar.Calendar.from_ical(path.read_bytes())
        return {str(e["UID"]): str(e["STATUS"]) for e in cal.walk("VEVENT")}

    assert status(before)[uid] == "CONFIRMED"
    assert status(after)[uid] == "CANCELLED"
    assert set(status(before)) <= set(status(after))
    assert ok_json(run(ind, "verify", "--json"))["ok"] is True


def test_a_voided_event_cannot_change(ind: Path) -> None:
    ok(run(ind, "event", "void", "EV-000002", "--reason", "wrong IND"))
    refused(run(ind, "event", "void", "EV-000002", "--reason", "again"), 1, "was voided")
    refused(
        run(ind, "event", "correct", "EV-000002", "--on", "2026-02-03", "--reason", "r"),
        1,
        "was voided",
    )


def test_a_voided_once_only_event_can_be_recorded_again(ind: Path) -> None:
    refused(run(ind, "event", "add", IND, "ind-received", "--on", "2026-01-06"), 1, "happens once")
    ok(run(ind, "event", "void", "EV-000001", "--reason", "recorded on the wrong IND"))
    ok(run(ind, "event", "add", IND, "ind-received", "--on", "2026-01-06"))
    effective = [m for m in calendar(ind) if m["rule"] == "IND_EFFECTIVE"]
    assert [(m["event"], m["due"]) for m in effective] == [("EV-000003", "2026-02-05")]


def test_correct_any_detail_keeps_the_old_value(ind: Path) -> None:
    ok(
        run(
            ind,
            "event",
            "add",
            IND,
            "fda-letter-received",
            "--on",
            "2026-03-02",
            "--letter-kind",
            "information-request",
        )
    )  # fmt: skip  EV-000003, 30 days
    due = {m["rule"]: m["due"] for m in calendar(ind)}
    assert due["FDA_LETTER_RESPONSE"] == "2026-04-01"
    fixed = ok_json(run(ind, "event", "correct", "EV-000003", "--response-days", "45",
                        "--note", "the letter allows 45 days", "--reason", "per letter",
                        "--json"))  # fmt: skip
    assert fixed["event"]["response_days"] == 45 and fixed["event"]["version"] == 2
    assert fixed["event"]["history"][-1]["changed"] == {
        "response_days": [30, 45],
        "note": [None, "the letter allows 45 days"],
    }
    assert {m["rule"]: m["due"] for m in calendar(ind)}["FDA_LETTER_RESPONSE"] == "2026-04-16"
    # Another kind of letter: its own response time (none expected of minutes).
    ok(run(ind, "event", "correct", "EV-000003", "--letter-kind", "meeting-minutes",
           "--reason", "it was the minutes"))  # fmt: skip
    assert "FDA_LETTER_RESPONSE" not in [m["rule"] for m in calendar(ind)]
    subjects = [e["summary"] for e in ok_json(run(ind, "log", "--id", "EV-000003", "--json"))]
    assert "response_days 30 -> 45" in subjects[1]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["EV-000002", "--reason", "r"], 2, ["give what to correct"]),
        (["EV-000002", "--review", "priority", "--reason", "r"], 2,
         ["--review applies only to bla-received"]),
        (["EV-000002", "--on", "2026-02-02", "--reason", "r"], 1, ["already dated 2026-02-02"]),
        (["EV-000002", "--doc", "DOC-000042", "--reason", "r"], 1, ["no document DOC-000042"]),
    ],
)  # fmt: skip
def test_bad_corrections_are_refused(
    ind: Path, args: list[str], code: int, words: list[str]
) -> None:
    before = ok_json(run(ind, "log", "--json"))
    refused(run(ind, "event", "correct", *args), code, *words)
    assert ok_json(run(ind, "log", "--json")) == before
