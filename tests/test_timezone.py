"""The vault's time zone: "today", due days and typed times are in it; times stored in UTC.

A vault that never set a zone is a UTC vault and answers as it always did. The clock is
pinned (`clock`) at moments where New York and UTC are on different days.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from atmpvault.archive.core.configuration import CONFIG_PATH
from atmpvault.archive.core.pdf import make_pdf
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.config import Settings
from tests.conftest import Clock, run

NY = "America/New_York"
# 2026-03-01 is a Sunday in EST (UTC-5; daylight time starts on 2026-03-08).
EVENING_ON_DUE_DAY = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)  # 23:30 on 03-01 in New York
NEXT_MORNING = datetime(2026, 3, 2, 5, 30, tzinfo=UTC)  # 00:30 on 03-02 in New York
CASE_DAY = "2026-02-14"  # a safety case on this day: its 15-day report is due 2026-03-01
DUE = "2026-03-01"


def ok(vault: Path, *args: str) -> Any:
    """Run a command that must succeed with --json; its parsed output."""
    result = run(vault, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def refused(result: Result, code: int, message: str) -> None:
    """The command failed with `code` and one line on stderr saying `message`."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def config_file(vault: Path) -> dict[str, Any]:
    shown = subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "show", "HEAD:config/vault.json"],
        capture_output=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(shown.stdout)
    return data


def new_vault(tmp_path: Path, name: str, zone: str | None = None) -> Path:
    vault = tmp_path / name
    assert run(vault, "init").exit_code == 0
    if zone is not None:
        ok(vault, "config", "set", "timezone", zone, "--reason", "the site's time zone")
    return vault


def safety_report(vault: Path) -> Path:
    """IND-012345 with a safety case on CASE_DAY: SAFETY_15D due on DUE."""
    ok(vault, "app", "new", "ind", "IND 012345", "--program", "CART-19")
    ok(vault, "event", "add", "IND-012345", "safety-case", "--on", CASE_DAY)
    return vault


def safety_15d(vault: Path, *args: str) -> list[tuple[str, int]]:
    """The SAFETY_15D rows of `calendar` (due, days left) with these options."""
    rows = ok(vault, "calendar", *args)
    return [(m["due"], m["days_left"]) for m in rows if m["rule"] == "SAFETY_15D"]


def alert_thresholds(vault: Path) -> list[str]:
    """The thresholds a dry-run `alerts` would alert SAFETY_15D at today."""
    return [a["threshold"] for a in ok(vault, "alerts") if "SAFETY_15D" in a["key"]]


def log_actions(vault: Path, *args: str) -> list[str]:
    return [e["action"] for e in ok(vault, "log", *args)]


# -- a vault that never set a zone ------------------------------------------------------------


def test_a_vault_that_never_set_a_zone_keeps_utc_days(clock: Clock, tmp_path: Path) -> None:
    vault = safety_report(new_vault(tmp_path, "utc"))
    assert "timezone" not in config_file(vault)
    clock.at = EVENING_ON_DUE_DAY
    assert {
        k: v
        for k, v in ok(vault, "config", "show").items()
        if k not in ("quality", "custody", "dosing")
    } == {
        "timezone": "UTC",
        "dates": {"earliest": "1990-01-01", "years_ahead": 10},
        "holidays": "US",
        "targets": {},
        "today": "2026-03-02",
    }
    # 04:30 UTC is the next day in UTC: the report is overdue, as it always was.
    assert safety_15d(vault) == [(DUE, -1)]
    assert safety_15d(vault, "--overdue") == [(DUE, -1)]
    assert alert_thresholds(vault) == ["overdue"]
    # A time with an offset is converted to the UTC day; one without is a UTC time.
    assert safety_15d(vault, "--today", "2026-03-01T23:30:00-05:00") == [(DUE, -1)]
    assert safety_15d(vault, "--today", "2026-03-01T23:30:00") == [(DUE, 0)]
    # Days typed for --since/--until are UTC days.
    assert log_actions(vault, "--since", "2026-03-02") == []
    assert log_actions(vault, "--until", "2026-03-01") == ["init", "app-new", "event-add"]


# -- config ------------------------------------------------------------------------------------


def test_config_set_timezone_is_one_audited_commit(clock: Clock, tmp_path: Path) -> None:
    vault = new_vault(tmp_path, "vault")
    change = ok(vault, "config", "set", "timezone", NY, "--reason", "sponsor site in New York")
    assert change["key"] == "timezone" and change["value"] == NY and change["previous"] == "UTC"
    assert config_file(vault)["timezone"] == NY
    clock.at = EVENING_ON_DUE_DAY
    assert {
        k: v
        for k, v in ok(vault, "config", "show").items()
        if k not in ("quality", "custody", "dosing")
    } == {
        "timezone": NY,
        "dates": {"earliest": "1990-01-01", "years_ahead": 10},
        "holidays": "US",
        "targets": {},
        "today": "2026-03-01",
    }
    text = run(vault, "config", "show")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[1].split() == ["timezone", NY]

    entries = [e for e in ok(vault, "log") if e["action"] == "set-config"]
    assert [(e["user"], e["reason"], e["summary"], e["commit"]) for e in entries] == [
        (
            "qa.tester",
            "sponsor site in New York",
            f"Set timezone to {NY} (was UTC)",
            change["commit"],
        )
    ]
    message = subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "log", "-1", "--format=%B", change["commit"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Action: set-config\n" in message and "Key: timezone\n" in message

    # Back to UTC: the key goes, and the file is again that of a vault that never set one.
    ok(vault, "config", "set", "timezone", "UTC", "--reason", "moved to UTC")
    assert "timezone" not in config_file(vault)
    assert ok(vault, "config", "show")["today"] == "2026-03-02"


def test_config_set_dates(tmp_path: Path) -> None:
    vault = new_vault(tmp_path, "vault")
    ok(vault, "config", "set", "dates.earliest", "2015-01-01", "--reason", "no older program")
    ok(vault, "config", "set", "dates.years_ahead", "20", "--reason", "long-term follow-up")
    assert config_file(vault)["dates"] == {"earliest": "2015-01-01", "years_ahead": 20}
    assert ok(vault, "config", "show")["dates"] == {"earliest": "2015-01-01", "years_ahead": 20}
    refused(
        run(vault, "event", "add", "IND-1", "ind-received", "--on", "2014-12-31"),
        2,
        "outside the dates this vault accepts, 2015-01-01 to",
    )


@pytest.mark.parametrize(
    ("key", "value", "code", "message"),
    [
        ("timezone", "Mars/Olympus_Mons", 2, "timezone 'Mars/Olympus_Mons' is not an IANA"),
        ("timezone", "america/new_york", 2, "timezone 'america/new_york' is not an IANA"),
        ("timezone", "../../etc/passwd", 2, "is not an IANA time zone name"),
        ("timezone", "localtime", 2, "timezone 'localtime' is not an IANA"),
        ("timezone", "", 2, "timezone '' is not an IANA"),
        ("timezone", "UTC", 1, "timezone is already UTC; nothing was changed"),
        ("dates.earliest", "2015-02-30", 2, "dates.earliest '2015-02-30' must be a date"),
        ("dates.earliest", "2999-01-01", 2, "must be a date (YYYY-MM-DD) from 1900-01-01 to"),
        ("dates.earliest", "1990-01-01", 1, "dates.earliest is already 1990-01-01"),
        ("dates.years_ahead", "101", 2, "must be a whole number of years from 0 to 100"),
        ("dates.years_ahead", "1.5", 2, "dates.years_ahead '1.5' must be a whole number"),
        ("dates.years_ahead", "ten", 2, "dates.years_ahead 'ten' must be a whole number"),
        ("dates.years_ahead", "10", 1, "dates.years_ahead is already 10"),
        ("index.engine", "whoosh", 2, "unknown setting 'index.engine'; settings: timezone,"),
    ],
)
def test_config_set_refuses(tmp_path: Path, key: str, value: str, code: int, message: str) -> None:
    vault = new_vault(tmp_path, "vault")
    before = config_file(vault)
    refused(run(vault, "config", "set", key, value, "--reason", "r"), code, message)
    assert config_file(vault) == before
    assert log_actions(vault) == ["init"]


def test_config_set_needs_a_reason(tmp_path: Path) -> None:
    vault = new_vault(tmp_path, "vault")
    assert run(vault, "config", "set", "timezone", NY).exit_code == 2
    refused(run(vault, "config", "set", "timezone", NY, "--reason", " "), 2, "--reason is required")
    assert log_actions(vault) == ["init"]


# -- the issue: a 15-day safety report at 23:30 in New York on its due day ---------------------


def test_a_report_due_today_in_new_york_is_not_overdue_before_midnight_there(
    clock: Clock, tmp_path: Path
) -> None:
    vault = safety_report(new_vault(tmp_path, "ny", NY))
    clock.at = EVENING_ON_DUE_DAY
    assert safety_15d(vault) == [(DUE, 0)]
    assert safety_15d(vault, "--overdue") == []
    assert alert_thresholds(vault) == ["due-7d"]
    app = ok(vault, "app", "show", "IND-012345")
    assert [(m["rule"], m["days_left"]) for m in app["milestones"]] == [("SAFETY_15D", 0)]

    clock.at = NEXT_MORNING
    assert safety_15d(vault) == [(DUE, -1)]
    assert safety_15d(vault, "--overdue") == [(DUE, -1)]
    assert alert_thresholds(vault) == ["overdue"]


def test_today_typed_with_an_offset_is_the_day_in_the_vault_zone(tmp_path: Path) -> None:
    vault = safety_report(new_vault(tmp_path, "ny", NY))
    assert safety_15d(vault, "--today", "2026-03-01T23:30:00-05:00") == [(DUE, 0)]
    assert safety_15d(vault, "--today", "2026-03-02T04:30:00Z") == [(DUE, 0)]
    assert safety_15d(vault, "--today", "2026-03-02T05:00:00Z") == [(DUE, -1)]
    assert safety_15d(vault, "--today", "2026-03-01T23:59:59") == [(DUE, 0)]  # New York time
    assert safety_15d(vault, "--today", DUE) == [(DUE, 0)]
    assert safety_15d(vault, "--today", "2026-03-02") == [(DUE, -1)]


# -- --on: a calendar date as typed, a time converted to the vault's day ------------------------


@pytest.mark.parametrize(
    ("typed", "ny_day", "utc_day"),
    [
        ("2026-02-14", "2026-02-14", "2026-02-14"),  # a date is that day, whatever the zone
        ("2026-02-14T23:30:00-05:00", "2026-02-14", "2026-02-15"),
        ("2026-02-15T04:30:00Z", "2026-02-14", "2026-02-15"),
        ("2026-02-15T04:30:00+00:00", "2026-02-14", "2026-02-15"),
        ("2026-02-14T23:30", "2026-02-14", "2026-02-14"),  # no offset: the vault's own zone
        ("2026-02-15 00:10", "2026-02-15", "2026-02-15"),
        ("2026-02-15T06:00:00+09:00", "2026-02-14", "2026-02-14"),  # Tokyo morning
    ],
)
def test_on_takes_a_date_or_a_time_in_the_vault_zone(
    tmp_path: Path, typed: str, ny_day: str, utc_day: str
) -> None:
    for name, zone, expected in (("ny", NY, ny_day), ("utc", None, utc_day)):
        vault = new_vault(tmp_path, name, zone)
        ok(vault, "app", "new", "ind", "IND 012345", "--program", "CART-19")
        added = ok(vault, "event", "add", "IND-012345", "safety-case", "--on", typed)
        assert added["event"]["on"] == expected, name
        assert [(e["trigger"], e["on"]) for e in ok(vault, "event", "ls", "IND-012345")] == [
            ("safety-case", expected)
        ], name


@pytest.mark.parametrize(
    "typed",
    [
        "2026-02-14T25:00",
        "2026-02-14T23:30:00+25:00",
        "tomorrow",
        "2026-02-14Z",
        "2026-02-14+05:00",
    ],
)
def test_on_refuses_what_is_neither_date_nor_time(tmp_path: Path, typed: str) -> None:
    vault = new_vault(tmp_path, "ny", NY)
    ok(vault, "app", "new", "ind", "IND 012345", "--program", "CART-19")
    refused(
        run(vault, "event", "add", "IND-012345", "safety-case", "--on", typed),
        2,
        f"--on {typed!r} is not a date: use YYYY-MM-DD, or a time with its offset",
    )


def test_an_event_may_not_be_dated_after_tomorrow_in_the_vault_zone(
    clock: Clock, tmp_path: Path
) -> None:
    ny = new_vault(tmp_path, "ny", NY)
    utc = new_vault(tmp_path, "utc")
    for vault in (ny, utc):
        ok(vault, "app", "new", "ind", "IND 012345", "--program", "CART-19")
    clock.at = EVENING_ON_DUE_DAY  # 03-01 in New York, 03-02 in UTC; a day's grace on each
    added = ok(utc, "event", "add", "IND-012345", "safety-case", "--on", "2026-03-03")
    assert added["event"]["on"] == "2026-03-03"
    refused(
        run(ny, "event", "add", "IND-012345", "safety-case", "--on", "2026-03-03"),
        2,
        "--on 2026-03-03 is in the future",
    )
    added = ok(ny, "event", "add", "IND-012345", "safety-case", "--on", "2026-03-02")
    assert added["event"]["on"] == "2026-03-02"
    assert [e["on"] for e in ok(ny, "event", "ls", "IND-012345")] == ["2026-03-02"]


# -- --as-of, --since, --until: typed without an offset, in the vault's zone --------------------


@pytest.fixture
def two_nights(clock: Clock, tmp_path: Path) -> Path:
    """A New York vault with DOC-000001 v1 at 23:30 on 03-01 there, v2 at 00:30 on 03-02."""
    vault = new_vault(tmp_path, "ny", NY)
    pdf = tmp_path / "br.pdf"
    pdf.write_bytes(make_pdf([["Batch record L-0042", "Viability 93%"]]))
    clock.at = EVENING_ON_DUE_DAY
    add = ["add", str(pdf), "--program", "CART-19", "--type", "batch-record"]
    assert ok(vault, *add)["id"] == "DOC-000001"
    clock.at = NEXT_MORNING
    pdf.write_bytes(make_pdf([["Batch record L-0042", "Viability 94%, QA corrections"]]))
    ok(vault, "add", str(pdf), "--id", "DOC-000001", "--reason", "QA corrections")
    return vault


def test_recorded_times_stay_in_utc(two_nights: Path) -> None:
    history = ok(two_nights, "history", "DOC-000001")
    assert [h["recorded_at"][:19] for h in history] == [
        "2026-03-02T04:30:00",
        "2026-03-02T05:30:00",
    ]
    assert all(h["recorded_at"].endswith("+00:00") for h in history)


def test_as_of_typed_without_offset_is_in_the_vault_zone(two_nights: Path) -> None:
    def version(as_of: str) -> int:
        return int(ok(two_nights, "show", "DOC-000001", "--as-of", as_of)["version"])

    assert version("2026-03-01") == 1  # the end of 03-01 in New York: 05:00 UTC on 03-02
    assert version("2026-03-02") == 2
    assert version("2026-03-01T23:59") == 1
    assert version("2026-03-02T00:31") == 2
    assert version("2026-03-02T05:00:00Z") == 1  # an offset is taken as typed
    assert version("2026-03-02T00:00:00-05:00") == 1
    assert version("2026-03-02T05:30:01+00:00") == 2
    listed = ok(two_nights, "ls", "--as-of", "2026-03-01")
    assert [(r["id"], r["version"]) for r in listed] == [("DOC-000001", 1)]


def test_since_and_until_typed_without_offset_are_in_the_vault_zone(two_nights: Path) -> None:
    both = ["add", "revise"]
    assert log_actions(two_nights) == ["init", "set-config", *both]
    assert log_actions(two_nights, "--since", "2026-03-02") == ["revise"]
    assert log_actions(two_nights, "--until", "2026-03-01") == ["init", "set-config", "add"]
    # init and set-config at 18:59 on 03-01 in New York (23:59 UTC): before 20:00 there.
    assert log_actions(two_nights, "--since", "2026-03-01T20:00", "--until", "2026-03-02") == both
    assert log_actions(two_nights, "--since", "2026-03-01T20:00Z") == ["init", "set-config", *both]
    assert log_actions(two_nights, "--since", "2026-03-02T00:00") == ["revise"]
    assert log_actions(two_nights, "--until", "2026-03-01T23:59") == ["init", "set-config", "add"]
    assert log_actions(two_nights, "--since", "2026-03-02T00:00Z") == both
    assert log_actions(two_nights, "--since", "2026-03-02T04:00:00+00:00") == both

    def versions(*args: str) -> list[int]:
        found = ok(two_nights, "search", "viability", "--all-versions", *args)
        return sorted(h["version"] for h in found["hits"])

    assert versions() == [1, 2]
    assert versions("--since", "2026-03-02") == [2]
    assert versions("--until", "2026-03-01") == [1]
    assert versions("--until", "2026-03-01T23:30") == [1]
    assert versions("--since", "2026-03-01T23:31") == [2]
    assert versions("--since", "2026-03-02T04:00Z") == [1, 2]


def test_a_zone_that_does_not_load_is_named_by_every_command_that_needs_it(tmp_path: Path) -> None:
    vault = new_vault(tmp_path, "vault", NY)
    # As a person with git could: config/vault.json edited by hand, bypassing `config set`.
    with Vault.open(Settings(vault=vault, user="by.hand", lock_timeout=10), domains()) as v:
        data = json.loads(v.read_file(CONFIG_PATH) or b"{}") | {"timezone": "Nowhere/Land"}
        v.commit_files({CONFIG_PATH: json.dumps(data).encode()}, "edit", {"Action": "edit"})
    message = "config/vault.json: \"timezone\": time zone 'Nowhere/Land' is not an IANA"
    refused(run(vault, "calendar"), 1, message)
    refused(run(vault, "log", "--since", "2026-03-01"), 1, message)
    refused(run(vault, "config", "show"), 1, message)
    refused(run(vault, "config", "set", "timezone", NY, "--reason", "fix"), 1, message)


def test_dates_in_the_search_query_are_in_the_vault_zone(two_nights: Path) -> None:
    def versions(query: str) -> list[int]:
        found = ok(two_nights, "search", query, "--all-versions")
        return sorted(h["version"] for h in found["hits"])

    assert versions("viability AND recorded_at:2026-03-01") == [1]
    assert versions("viability AND recorded_at:2026-03-02") == [2]
    assert versions("viability AND recorded_at:[2026-03-01 TO 2026-03-01]") == [1]
    assert versions("viability AND recorded_at:[2026-03-01T23:00 TO 2026-03-01T23:59]") == [1]
    assert versions("viability AND recorded_at:[2026-03-02T00:00 TO *]") == [2]
    assert versions("viability AND recorded_at:[* TO 2026-02-28]") == []
