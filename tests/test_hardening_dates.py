"""Dates people enter are plausible, once-only events happen once, and one absurd date
in an old vault never takes the calendar, the alerts or later writes down with it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from atmpvault.archive.core import values
from atmpvault.archive.core.configuration import CONFIG_PATH
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.applications import Application, Event, event_path
from atmpvault.archive.regulatory.derivation import correct_hint, derive_checked
from atmpvault.archive.regulatory.kinds import EVENT_KIND
from atmpvault.archive.regulatory.rules import packaged_rules
from atmpvault.config import Settings
from tests.conftest import run

IND = "IND-012345"
BLA = "BLA-125123"
TODAY = values.now().date()


def ok(vault: Path, *args: str) -> Any:
    result = run(vault, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: Result, code: int, *words: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    return result.stderr


def ahead(days: int) -> str:
    return (TODAY + timedelta(days=days)).isoformat()


@pytest.fixture
def apps(vault_path: Path) -> Path:
    """A vault with an IND and a BLA registered, no events yet."""
    ok(vault_path, "app", "new", "ind", "012345", "--program", "CART-19")
    ok(vault_path, "app", "new", "bla", "125123", "--program", "CART-19")
    return vault_path


def open_vault(path: Path) -> Vault:
    return Vault.open(Settings(vault=path, user="old.release", lock_timeout=10), domains())


def plant(path: Path, event_id: str, app: str, trigger: str, on: str, **fields: Any) -> None:
    """An event as an earlier release wrote it, its date never checked."""
    body = Event(
        id=event_id,
        app=app,
        program="CART-19",
        trigger=trigger,
        on=date(2026, 1, 1),
        version=1,
        recorded_at="2026-01-01T00:00:00.000000+00:00",
        user="old.release",
        **fields,
    ).to_json() | {"on": on}
    with open_vault(path) as vault, vault.unit("event-add", f"Record {event_id}") as unit:
        unit.put(EVENT_KIND, event_id, body, event_path(app, event_id))


def set_config(path: Path, **keys: Any) -> None:
    with open_vault(path) as vault:
        data = json.loads(vault.read_file(CONFIG_PATH) or b"{}") | keys
        vault.commit_files(
            {CONFIG_PATH: json.dumps(data).encode()},
            "configure dates",
            {"Action": "config-set"},
            reason="site policy",
        )


# -- the range of dates people may enter -------------------------------------------------------


@pytest.mark.parametrize("on", ["9999-12-31", "0001-01-01", "1989-12-31", ahead(3660 + 10)])
def test_implausible_event_dates_are_refused_and_nothing_is_written(apps: Path, on: str) -> None:
    refused(
        run(apps, "event", "add", IND, "protocol-change-planned", "--on", on),
        2,
        f"--on {on} is outside the dates this vault accepts, 1990-01-01 to",
    )
    assert ok(apps, "event", "ls", IND) == []


def test_the_range_applies_to_every_date_typed(apps: Path) -> None:
    ok(apps, "event", "add", IND, "ind-received", "--on", "2026-01-05")
    refused(
        run(apps, "event", "correct", "EV-000001", "--on", "9999-12-31", "--reason", "typo"),
        2,
        "outside the dates",
    )
    for option in ("--today", "--from", "--to"):
        refused(run(apps, "calendar", option, "9999-12-30"), 2, f"{option} 9999-12-30 is outside")
    refused(run(apps, "app", "show", IND, "--today", "0001-01-01"), 2, "--today 0001-01-01")
    refused(run(apps, "alerts", "--today", "9999-12-30"), 2, "--today 9999-12-30 is outside")
    refused(
        run(apps, "package", "finalise", IND, "0000", "--submitted", "1900-01-01"),
        2,
        "--submitted 1900-01-01 is outside",
    )
    assert [e["on"] for e in ok(apps, "event", "ls", IND)] == ["2026-01-05"]


def test_calendar_days_is_bounded(apps: Path) -> None:
    refused(run(apps, "calendar", "--days", "99999999999"), 2, "0<=x<=36600")
    assert run(apps, "calendar", "--days", "36600").exit_code == 0


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00+14:00"]
)
def test_times_at_the_ends_of_the_calendar_are_bad_input(apps: Path, value: str) -> None:
    refused(run(apps, "log", "--since", value), 2, "cannot read")


def test_a_vault_configures_its_range(apps: Path) -> None:
    set_config(apps, dates={"earliest": "1980-01-01", "years_ahead": 2})
    ok(apps, "event", "add", IND, "ind-received", "--on", "1985-06-01")
    ok(apps, "event", "add", IND, "protocol-change-planned", "--on", ahead(365))
    refused(
        run(apps, "event", "add", IND, "protocol-change-planned", "--on", ahead(3 * 366)),
        2,
        "outside the dates this vault accepts, 1980-01-01 to",
    )
    refused(run(apps, "event", "add", IND, "safety-case", "--on", "1979-12-31"), 2, "1980-01-01")


def test_a_vault_without_dates_keeps_the_defaults(apps: Path) -> None:
    with open_vault(apps) as vault:
        assert vault.config.dates == values.DateRange(date(1990, 1, 1), 10)
        assert b"dates" not in (vault.read_file(CONFIG_PATH) or b"")


@pytest.mark.parametrize(
    ("dates", "words"),
    [
        ({"earliest": "soon"}, '"dates"."earliest"'),
        ({"earliest": "1066-10-14"}, "from 1900-01-01"),
        ({"years_ahead": 1000}, '"dates"."years_ahead" 1000'),
        ({"years_ahead": "ten"}, "whole number"),
        ({"latest": "2030-01-01"}, '"dates" must be an object'),
    ],
)
def test_a_broken_range_is_named(apps: Path, dates: dict[str, Any], words: str) -> None:
    set_config(apps, dates=dates)
    refused(run(apps, "event", "add", IND, "ind-received", "--on", "2026-01-05"), 1, words)


# -- events that report what has happened --------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "trigger", "extra"),
    [
        (IND, "ind-received", []),
        (IND, "safety-case", []),
        (IND, "meeting-request-received", ["--meeting-type", "C"]),
        (BLA, "bla-received", ["--review", "standard"]),
        (BLA, "bla-approved", []),
        (BLA, "pas-received", []),
    ],
)
def test_events_that_happened_cannot_be_in_the_future(
    apps: Path, app: str, trigger: str, extra: list[str]
) -> None:
    refused(
        run(apps, "event", "add", app, trigger, "--on", ahead(30), *extra),
        2,
        f"--on {ahead(30)} is in the future: {trigger} records something that has happened",
    )
    assert ok(apps, "event", "ls", app) == []
    # A day's grace: east of UTC it is already tomorrow.
    ok(apps, "event", "add", app, trigger, "--on", ahead(1), *extra)


def test_a_planned_protocol_change_may_be_ahead(apps: Path) -> None:
    data = ok(apps, "event", "add", IND, "protocol-change-planned", "--on", ahead(90))
    assert [m["due"] for m in data["milestones"]] == [ahead(90)]


def test_a_correction_cannot_move_a_fact_into_the_future(apps: Path) -> None:
    ok(apps, "event", "add", IND, "ind-received", "--on", "2026-01-05")
    refused(
        run(apps, "event", "correct", "EV-000001", "--on", ahead(30), "--reason", "x"),
        2,
        "in the future",
    )
    ok(apps, "event", "add", IND, "protocol-change-planned", "--on", ahead(10))
    ok(apps, "event", "correct", "EV-000002", "--on", ahead(40), "--reason", "slipped")


def test_a_submission_date_cannot_be_in_the_future(apps: Path) -> None:
    refused(
        run(apps, "package", "finalise", IND, "0000", "--submitted", ahead(30)), 2, "in the future"
    )


# -- triggers that happen once per application ------------------------------------------------


@pytest.mark.parametrize(
    ("app", "trigger", "extra"),
    [
        (IND, "ind-received", []),
        (IND, "ind-effective", []),
        (BLA, "bla-received", ["--review", "priority"]),
        (BLA, "bla-approved", []),
    ],
)
def test_a_once_only_trigger_is_refused_the_second_time(
    apps: Path, app: str, trigger: str, extra: list[str]
) -> None:
    first = ok(apps, "event", "add", app, trigger, "--on", "2026-01-05", *extra)
    before = ok(apps, "calendar", "--from", "2026-01-01", "--to", "2036-01-01")
    refused(
        run(apps, "event", "add", app, trigger, "--on", "2026-02-05", *extra),
        1,
        f"{app} already has {trigger} {first['event']['id']} on 2026-01-05",
        f"atmpvault event correct {first['event']['id']} --on YYYY-MM-DD",
    )
    assert len(ok(apps, "event", "ls", app)) == 1
    assert ok(apps, "calendar", "--from", "2026-01-01", "--to", "2036-01-01") == before


def test_three_ind_received_leave_one_effective_date(apps: Path) -> None:
    ok(apps, "event", "add", IND, "ind-received", "--on", "2026-01-05")
    for on in ("2026-01-06", "2026-02-01"):
        refused(run(apps, "event", "add", IND, "ind-received", "--on", on), 1, "already has")
    found = ok(apps, "calendar", "--from", "2026-01-01", "--to", "2026-12-31")
    assert [m["due"] for m in found if m["rule"] == "IND_EFFECTIVE"] == ["2026-02-04"]
    ok(apps, "event", "correct", "EV-000001", "--on", "2026-01-06", "--reason", "FDA letter")
    found = ok(apps, "calendar", "--from", "2026-01-01", "--to", "2026-12-31")
    assert [m["due"] for m in found if m["rule"] == "IND_EFFECTIVE"] == ["2026-02-05"]


def test_repeating_triggers_are_still_recorded_again(apps: Path) -> None:
    for on in ("2026-01-05", "2026-02-05", "2026-03-05"):
        ok(apps, "event", "add", IND, "safety-case", "--on", on)
    assert len(ok(apps, "event", "ls", IND)) == 3


# -- an old vault with an absurd date -----------------------------------------------------------


@pytest.fixture
def old(apps: Path) -> Path:
    """IND-012345 with a sane safety case and an ind-received dated 9999-12-31 by an
    earlier release; the BLA with a sane PAS."""
    ok(apps, "event", "add", IND, "safety-case", "--on", "2026-11-20")
    ok(apps, "event", "add", BLA, "pas-received", "--on", "2026-10-01")
    plant(apps, "EV-000003", IND, "ind-received", "9999-12-31")
    return apps


def test_the_calendar_shows_the_rest_and_names_the_absurd_event(old: Path) -> None:
    result = run(old, "calendar", "--today", "2026-11-25", "--days", "400", "--json")
    message = refused(result, 1, "EV-000003 (IND-012345): ind-received on 9999-12-31")
    assert "atmpvault event correct EV-000003" in message
    assert "1 record(s) left out" in message
    rows = json.loads(result.stdout)
    assert {(m["rule"], m["event"]) for m in rows} == {
        ("SAFETY_15D", "EV-000001"),
        ("PAS", "EV-000002"),
    }
    text = run(old, "calendar", "--today", "2026-11-25", "--days", "400")
    assert "SAFETY_15D" in text.stdout and "PAS" in text.stdout and text.exit_code == 1


def test_an_absurd_event_does_not_stop_later_writes_or_alerts(old: Path) -> None:
    result = run(old, "event", "add", IND, "investigator-added", "--on", "2026-11-01", "--json")
    assert result.exit_code == 0, result.stderr
    assert "warning: EV-000003 (IND-012345)" in result.stderr
    assert [m["rule"] for m in json.loads(result.stdout)["milestones"]] == ["NEW_INVESTIGATOR"]
    alerts = run(old, "alerts", "--today", "2026-11-25", "--json")
    assert alerts.exit_code == 0, alerts.stderr
    assert {a["event"] for a in json.loads(alerts.stdout)} <= {
        "EV-000001", "EV-000002", "EV-000004",
    }  # fmt: skip
    shown = run(old, "app", "show", IND, "--json")
    refused(shown, 1, "EV-000003")
    assert json.loads(shown.stdout)["problems"][0]["record"] == "EV-000003"


def test_verify_names_the_absurd_event_until_it_is_corrected(old: Path) -> None:
    checked = run(old, "verify")
    assert checked.exit_code == 3, checked.stderr
    assert "EV-000003 (IND-012345): milestones cannot be derived" in checked.stdout
    ok(old, "event", "correct", "EV-000003", "--on", "2026-01-05", "--reason", "FDA letter")
    assert run(old, "verify").exit_code == 0
    result = run(old, "calendar", "--today", "2026-11-25", "--from", "2026-01-01", "--json")
    assert result.exit_code == 0, result.stderr
    assert "IND_EFFECTIVE" in {m["rule"] for m in json.loads(result.stdout)}
    assert run(old, "rebuild").exit_code == 0
    assert run(old, "calendar", "--today", "2026-11-25").exit_code == 0


def test_an_event_of_year_one_is_left_out_not_alerted(apps: Path) -> None:
    plant(apps, "EV-000001", IND, "ind-received", "0001-01-01")
    ok(apps, "event", "add", IND, "safety-case", "--on", "2026-11-20")
    result = run(apps, "calendar", "--today", "2026-11-25", "--json")
    refused(result, 1, "EV-000001 (IND-012345): ind-received on 0001-01-01 is outside the dates")
    assert [m["event"] for m in json.loads(result.stdout)] == ["EV-000002"]
    alerts = run(apps, "alerts", "--today", "2026-11-25")
    assert alerts.exit_code == 0, alerts.stderr
    assert "739" not in alerts.stdout and "EV-000001" not in alerts.stdout
    shown = run(apps, "app", "show", IND, "--json")
    [problem] = json.loads(shown.stdout)["problems"]
    assert (problem["app"], problem["record"]) == (IND, "EV-000001")
    assert problem["problem"].startswith("ind-received on 0001-01-01 is outside the dates")
    assert problem["problem"].endswith(correct_hint("EV-000001"))


def test_a_yearly_series_near_year_9999_is_left_out(apps: Path) -> None:
    plant(apps, "EV-000001", IND, "ind-effective", "9998-12-31")
    ok(apps, "event", "add", BLA, "bla-approved", "--on", "2026-01-05")
    result = run(apps, "calendar", "--today", "2026-11-25", "--days", "36600", "--json")
    refused(result, 1, "EV-000001 (IND-012345): ind-effective on 9998-12-31")
    # What the approval starts: the annual report and the periodic safety reports.
    assert {m["rule"] for m in json.loads(result.stdout)} == {
        "BLA_ANNUAL",
        "PADER_QUARTERLY",
        "PADER_ANNUAL",
    }


def test_an_unreadable_event_is_named_and_the_rest_derived(apps: Path) -> None:
    ok(apps, "event", "add", IND, "safety-case", "--on", "2026-11-20")
    plant(apps, "EV-000002", IND, "safety-case", "2026-13-45")
    result = run(apps, "calendar", "--today", "2026-11-25", "--json")
    refused(result, 1, "EV-000002 (IND-012345): the record cannot be read")
    assert [m["event"] for m in json.loads(result.stdout)] == ["EV-000001"]


def test_derivation_leaves_out_one_event_whole() -> None:
    app = Application(IND, "ind", "012345", "CART-19", "active", "2026-01-01", "qa")

    def event(number: int, trigger: str, on: date) -> Event:
        return Event(f"EV-{number:06d}", IND, "CART-19", trigger, on, 1, "2026", "qa")

    events = [
        event(1, "ind-received", date(9999, 12, 15)),
        event(2, "safety-case", date(2026, 3, 1)),
    ]
    found, problems = derive_checked(app, events, packaged_rules(), date(2026, 3, 2))
    assert [(m.rule, m.event) for m in found] == [("SAFETY_15D", "EV-000002")]
    assert [(p.record, p.app) for p in problems] == [("EV-000001", IND)]
    assert "IND_EFFECTIVE falls outside the dates a calendar can hold" in problems[0].message
