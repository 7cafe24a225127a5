"""Due dates on non-working days are flagged (the rules stay calendar days), and the
sponsor's own target dates per kind of milestone are shown beside the regulatory date."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run
from tests.test_packages import ok, ok_json, refused

IND = "IND-012345"


@pytest.fixture
def ind(vault_path: Path) -> Path:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    # SAFETY_15D due on Thanksgiving (Thu 2026-11-26), on Sat 2026-11-28, on Mon 2026-11-30
    for on in ("2026-11-11", "2026-11-13", "2026-11-15"):
        ok(run(vault_path, "event", "add", IND, "safety-case", "--on", on))
    return vault_path


def rows(vault: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok_json(run(vault, "calendar", "--today", "2026-11-20", "--json"))
    return found


def test_weekends_and_us_federal_holidays_are_flagged(ind: Path) -> None:
    assert [(m["due"], m["non_working"]) for m in rows(ind)] == [
        ("2026-11-26", "holiday: Thanksgiving Day"),
        ("2026-11-28", "Saturday"),
        ("2026-11-30", None),
    ]
    table = run(ind, "calendar", "--today", "2026-11-20").stdout.splitlines()
    assert "NOTE" in table[0].split()
    assert table[1].startswith("2026-11-26*") and "holiday: Thanksgiving Day" in table[1]
    assert table[3].startswith("2026-11-30 ")


def test_the_holiday_calendar_is_the_vaults_choice(ind: Path) -> None:
    changed = ok_json(run(ind, "config", "set", "holidays", "none", "--reason", "weekends only",
                          "--json"))  # fmt: skip
    assert (changed["key"], changed["value"], changed["previous"]) == ("holidays", "none", "US")
    assert [m["non_working"] for m in rows(ind)] == [None, "Saturday", None]
    ok(run(ind, "config", "set", "holidays", "de-by", "--reason", "Munich site"))
    assert ok_json(run(ind, "config", "show", "--json"))["holidays"] == "DE-BY"
    assert ok_json(run(ind, "log", "--json"))[-1]["action"] == "set-config"
    for bad in ("XX", "US-ZZ", "United States"):
        refused(run(ind, "config", "set", "holidays", bad, "--reason", "r"), 2,
                "holiday calendar" if bad != "US-ZZ" else "no subdivision")  # fmt: skip


def test_sponsor_targets_sit_beside_the_regulatory_date(ind: Path) -> None:
    ok(run(ind, "config", "set", "targets.sponsor-due", "10", "--reason", "package ready early"))
    assert [(m["due"], m["target"]) for m in rows(ind)] == [
        ("2026-11-26", "2026-11-16"),
        ("2026-11-28", "2026-11-18"),
        ("2026-11-30", "2026-11-20"),
    ]
    table = run(ind, "calendar", "--today", "2026-11-20").stdout.splitlines()
    assert table[0].split()[:3] == ["DUE", "DAYS", "TARGET"]
    assert table[3].split()[:3] == ["2026-11-30", "10", "2026-11-20"]
    assert ok_json(run(ind, "config", "show", "--json"))["targets"] == {"sponsor-due": 10}
    ok(run(ind, "config", "set", "targets.sponsor-due", "0", "--reason", "no targets"))
    assert {m["target"] for m in rows(ind)} == {None}
    refused(run(ind, "config", "set", "targets.sponsor-due", "3d", "--reason", "r"), 2, "0 (none)")
    refused(run(ind, "config", "set", "targets.sponsor-due", "0", "--reason", "r"), 1, "already")
    refused(
        run(ind, "config", "set", "targets.Sponsor", "3", "--reason", "r"), 2, "unknown setting"
    )
