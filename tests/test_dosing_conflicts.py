"""The dosing conflict rules (REGULATORY.md §6) on fixed dates: each rule triggered by
moving one date of a clean default plan, and the boundary that must not trigger it."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmpvault.archive.core.workdays import non_working
from atmpvault.archive.dosing import conflicts, planning, settings
from atmpvault.archive.dosing.model import FIELDS, Conflict, Profile, Schedule
from atmpvault.errors import VaultError

D = date.fromisoformat
DAY = timedelta(days=1)
SETTINGS = settings.parse(
    {**settings.DEFAULTS, "sites": {"BOS": {"holidays": "US-MA"}, "NONE": {"holidays": "none"}}}
)
PROFILE = SETTINGS.profiles["autologous-cart"]
LONG_AGO = D("2020-01-01")  # a `today` that no LD is near
ACTS = {"scheduler", "qa", "site", "logistics", "manufacturing"}


def us_working(day: date) -> bool:
    return non_working(day, "US") is None


def schedule(apheresis: str = "2026-03-04", profile: Profile = PROFILE, **changes: Any) -> Schedule:
    """The default plan from `apheresis` (US calendar) with `changes`: dates (ISO) by field,
    or Schedule fields."""
    dates = planning.plan(profile, D(apheresis), us_working)
    dates.update({k: D(v) for k, v in changes.items() if k in FIELDS})
    rest = {"site": None, **{k: v for k, v in changes.items() if k not in FIELDS}}
    return Schedule("C19-2026-001", "CART-19", None, profile.name, "MFG-01", dates=dates, **rest)


def find(found: Schedule, today: date = LONG_AGO, profile: Profile = PROFILE) -> list[Conflict]:
    results = conflicts.find(found, profile, SETTINGS, today)
    for c in results:
        assert len(c.message) <= conflicts.MAX_MESSAGE, c.message
        assert c.act in ACTS and c.rule in conflicts.RULES
        assert all(d.isoformat() in c.message for d in c.dates.values()), c.message
    return results


def rules(found: list[Conflict]) -> list[tuple[str, tuple[str, ...]]]:
    return [(c.rule, tuple(sorted(c.dates))) for c in found]


def test_the_base_plan_is_clean() -> None:
    # Wed 2026-03-04: manufacturing from Thu 03-05, released Sun 03-29, shipped Mon 03-30,
    # delivered Tue 03-31 to Wed 04-01, LD Sun 03-29 to Tue 03-31, infusion Thu 04-02.
    base = schedule()
    assert base.dates["expected_release"] == D("2026-03-29") == base.dates["ld_start"]
    assert (base.dates["ship"], base.dates["delivery_to"]) == (D("2026-03-30"), D("2026-04-01"))
    assert (base.dates["ld_end"], base.dates["infusion"]) == (D("2026-03-31"), D("2026-04-02"))
    assert find(base) == []


LD_RELEASE = ("ld-before-release", ("expected_release", "ld_start"))
WINDOW = ("infusion-window", ("infusion", "ld_end"))
REPEAT = ("ld-repeat", ("infusion", "ld_end"))
TRANSIT = ("transit-hold", ("delivery_to", "ship"))


def order(earlier: str, later: str) -> tuple[str, tuple[str, ...]]:
    return ("dates-out-of-order", tuple(sorted((earlier, later))))


def off_day(field: str) -> tuple[str, tuple[str, ...]]:
    return ("non-working-day", (field,))


CASES = [
    # (id, changes to the base plan, the conflicts expected, words of the first one's message)
    ("ld-on-release-day", {"ld_start": "2026-03-29"}, [], ""),
    ("ld-a-day-before-release", {"ld_start": "2026-03-28"}, [LD_RELEASE],
     "LD starts 2026-03-28, before the planned release on 2026-03-29"),
    ("actual-release-after-ld", {"actual": {"expected_release": D("2026-03-30")}}, [LD_RELEASE],
     "before the actual release on 2026-03-30; LD may not start before release"),
    ("actual-ld-after-release", {"ld_start": "2026-03-27", "actual": {"ld_start": D("2026-03-29")}},
     [], ""),
    ("infusion-at-min", {"infusion": "2026-04-02"}, [], ""),
    ("infusion-below-min", {"infusion": "2026-04-01"}, [WINDOW],
     "infusion 2026-04-01 is 1 days after LD end 2026-03-31; the window is 2-14 days: infuse "
     "from 2026-04-02 to 2026-04-14"),
    ("infusion-at-max", {"infusion": "2026-04-14"}, [], ""),
    ("infusion-past-max", {"infusion": "2026-04-15"}, [WINDOW, REPEAT], "15 days after"),
    ("actual-infusion-past-max",
     {"infusion": "2026-04-02", "actual": {"infusion": D("2026-04-15")}}, [WINDOW, REPEAT], ""),
    ("ship-on-release-sunday", {"ship": "2026-03-29"}, [off_day("ship")],
     "ship 2026-03-29 is a non-working day at facility MFG-01 (Sunday)"),
    ("delivery-ends-saturday", {"delivery_to": "2026-04-04"}, [off_day("delivery_to")],
     "delivery_to 2026-04-04 is a non-working day at the site (Saturday); it must fall on a "
     "working day: move the delivery window's end"),
    ("transit-at-hold", {"delivery_to": "2026-04-09"}, [], ""),
    ("transit-past-hold", {"delivery_to": "2026-04-10"}, [TRANSIT],
     "transit from ship 2026-03-30 to delivery end 2026-04-10 is 264 h, over the shipper's "
     "240 h hold: deliver by 2026-04-09"),
    ("ship-before-release", {"ship": "2026-03-27"}, [order("expected_release", "ship")],
     "ship 2026-03-27 is before expected_release 2026-03-29; ship may not come before "
     "expected_release"),
    ("ld-end-before-ld-start", {"ld_end": "2026-03-28"}, [order("ld_start", "ld_end")],
     "ld_end 2026-03-28 is before ld_start 2026-03-29"),
    ("infusion-before-ld-end", {"infusion": "2026-03-30"},
     [order("delivery_from", "infusion"), order("ld_end", "infusion"), WINDOW], ""),
    ("release-before-completion", {"expected_release": "2026-03-21"},
     [order("expected_completion", "expected_release")], ""),
    ("actual-ship-before-release", {"actual": {"ship": D("2026-03-27")}},
     [order("expected_release", "ship")], "ship 2026-03-27 is before"),
    ("held-not-released",
     {"lot_status": "pending-release",
      "holds": ("deviation DEV-2026-0007 (major, open, no impact assessment: bag leak)",
                "chain break 3 (temperature at ship: 9.1 C)")},
     [("release-hold", ("expected_release",))],
     "release planned 2026-03-29 with 2 open holds (deviation DEV-2026-0007, chain break 3); "
     "no release with an open hold"),
    ("held-once-released", {"lot_status": "released", "holds": ("chain break 3 (seal)",)}, [], ""),
    ("held-in-manufacturing", {"lot_status": "in-manufacturing", "holds": ("deviation D-1",)},
     [("release-hold", ("expected_release",))], "1 open hold (deviation D-1)"),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "expected", "says"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_one_date_moved(changes: dict[str, Any], expected: list[Any], says: str) -> None:
    found = find(schedule(**changes))
    assert sorted(rules(found)) == sorted(expected)
    if says:
        assert says in found[0].message


def test_who_acts() -> None:
    acts = {
        c.rule: c.act
        for changes in ({"ld_start": "2026-03-28", "infusion": "2026-04-15", "ship": "2026-03-27",
                         "delivery_to": "2026-04-11", "holds": ("deviation D-1",)},
                        {"ship": "2026-03-29"})
        for c in find(schedule(**changes), today=D("2026-03-27"))
    }  # fmt: skip
    assert acts == {
        "ld-before-release": "scheduler", "ld-unconfirmed": "manufacturing",
        "infusion-window": "site", "ld-repeat": "site", "non-working-day": "logistics",
        "transit-hold": "logistics", "release-hold": "qa", "dates-out-of-order": "scheduler",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("today", "confirmed", "flagged"),
    [
        ("2026-03-26", None, False),  # LD (03-29) three days out
        ("2026-03-27", None, True),  # today + 2 days
        ("2026-03-29", None, True),
        ("2026-04-02", None, True),  # started and still unconfirmed
        ("2026-03-27", "2026-03-20", False),
    ],
)
def test_ld_needs_availability_confirmed(today: str, confirmed: str | None, flagged: bool) -> None:
    found = find(schedule(availability_confirmed=confirmed and D(confirmed)), today=D(today))
    assert rules(found) == ([("ld-unconfirmed", ("ld_start",))] if flagged else [])
    if flagged:
        assert found[0].message == (
            f"LD starts 2026-03-29, on or before {D(today) + 2 * DAY} (today + 2 days), "
            "availability unconfirmed: confirm availability before starting the "
            "lymphodepleting regimen"
        )


def test_repeating_ld_has_its_own_limit() -> None:
    # A profile whose window outlasts the point LD must be repeated (the Carvykti example).
    carvykti = dataclasses.replace(PROFILE, infusion_after_ld=(2, 21), ld_repeat_after_days=14)
    assert find(schedule(profile=carvykti, infusion="2026-04-14"), profile=carvykti) == []
    found = find(schedule(profile=carvykti, infusion="2026-04-15"), profile=carvykti)
    assert rules(found) == [REPEAT]
    assert found[0].message == (
        "infusion 2026-04-15 is 15 days after LD end 2026-03-31, more than 14: LD must be "
        "repeated, or infuse by 2026-04-14"
    )


HOLIDAYS = [
    # (apheresis, site, field moved onto the day, the day, why)
    ("2026-11-27", None, "ship", "2026-12-25", "facility MFG-01 (holiday: Christmas Day)"),
    ("2025-06-06", None, "delivery_from", "2025-07-04", "the site (holiday: Independence Day)"),
    ("2026-06-01", None, "delivery_to", "2026-07-03",
     "the site (holiday: Independence Day (observed))"),
    ("2026-03-24", "BOS", "delivery_from", "2026-04-20", "site BOS (holiday: Patriots' Day)"),
]  # fmt: skip


@pytest.mark.parametrize(("apheresis", "site", "field", "day", "why"), HOLIDAYS)
def test_holidays_of_the_facility_and_the_site(
    apheresis: str, site: str | None, field: str, day: str, why: str
) -> None:
    assert find(schedule(apheresis, site=site)) == []
    found = find(schedule(apheresis, site=site, **{field: day}))
    assert rules(found) == [off_day(field)]
    assert found[0].message.startswith(f"{field} {day} is a non-working day at {why}; ")


def test_each_calendar_is_its_own() -> None:
    # Patriots' Day is a Massachusetts holiday: the site's, not the facility's (US).
    assert schedule("2026-03-24").dates["ship"] == D("2026-04-20")
    assert find(schedule("2026-03-24", site="BOS")) == []
    # "none": no holidays, but weekends are still days off.
    saturday = schedule(site="NONE", delivery_to="2026-04-04")
    assert rules(find(saturday)) == [off_day("delivery_to")]
    christmas = schedule("2026-11-27", site="NONE", delivery_from="2026-12-25")
    assert find(christmas) == []  # weekends only: Christmas is a working day


def test_facility_closures() -> None:
    closed = settings.parse(
        {**settings.DEFAULTS, "facilities": {"MFG-01": {"closures": ["2026-03-30"]}}}
    )
    found = conflicts.find(schedule(), PROFILE, closed, LONG_AGO)
    assert [(c.rule, c.dates) for c in found] == [("non-working-day", {"ship": D("2026-03-30")})]
    assert "at facility MFG-01 (closure)" in found[0].message


def test_an_unconfigured_facility_keeps_the_defaults() -> None:
    elsewhere = dataclasses.replace(schedule(ship="2026-03-29"), facility="MFG-09")
    assert "facility MFG-09 (Sunday)" in find(elsewhere)[0].message


RESERVATIONS_SETTINGS = settings.parse(
    {**settings.DEFAULTS, "facilities": {
        "MFG-01": {"slots": 1, "closures": ["2026-03-11"]},
        "MFG-02": {"slots": 2, "working_days_only": False},
        "MFG-03": {"slots": 0},
    }}
)  # fmt: skip


@pytest.mark.parametrize(
    ("reservations", "expected"),
    [
        ([("MFG-01", "2026-03-09", "L-1"), ("MFG-01", "2026-03-10", "L-2")], []),
        ([("MFG-01", "2026-03-09", "L-1"), ("MFG-02", "2026-03-09", "L-2")], []),
        ([("MFG-01", "2026-03-09", "L-1"), ("MFG-01", "2026-03-09", "L-1")], []),
        (
            [("MFG-01", "2026-03-09", "L-1"), ("MFG-01", "2026-03-09", "L-2")],
            [("L-1", "double-booked", "2 lots reserved at MFG-01 on 2026-03-09 (also L-2), "
              "over its 1 slot a day: move a lot to another day"),
             ("L-2", "double-booked", "(also L-1)")],
        ),
        ([("MFG-02", "2026-03-09", "L-1"), ("MFG-02", "2026-03-09", "L-2")], []),
        (
            [("MFG-02", "2026-03-09", f"L-{n}") for n in (1, 2, 3)],
            [("L-1", "double-booked", "3 lots reserved at MFG-02 on 2026-03-09 (also L-2, L-3), "
              "over its 2 slots a day"),
             ("L-2", "double-booked", "(also L-1, L-3)"), ("L-3", "double-booked", "(also L-1, L-2)")],
        ),
        (
            [("MFG-01", "2026-03-11", "L-1")],
            [("L-1", "slot-closed", "slot at MFG-01 on 2026-03-11, a closed day (closure); no "
              "slots on closed days: move the manufacturing start")],
        ),
        (
            [("MFG-01", "2026-12-25", "L-1"), ("MFG-01", "2026-12-25", "L-2")],
            [("L-1", "slot-closed", "(holiday: Christmas Day); no slots on closed days: move the "
              "manufacturing start; also reserved: L-2"),
             ("L-2", "slot-closed", "also reserved: L-1")],
        ),
        ([("MFG-01", "2026-03-14", "L-1")], [("L-1", "slot-closed", "a closed day (Saturday)")]),
        ([("MFG-02", "2026-03-14", "L-1"), ("MFG-02", "2026-12-25", "L-2")], []),
        ([("MFG-03", "2026-03-09", "L-1")],
         [("L-1", "double-booked", "1 lot reserved at MFG-03 on 2026-03-09, over its 0 slots")]),
        ([("MFG-09", "2026-03-09", "L-1"), ("MFG-09", "2026-03-09", "L-2")],
         [("L-1", "double-booked", "over its 1 slot"), ("L-2", "double-booked", "(also L-1)")]),
    ],
)  # fmt: skip
def test_slot_reservations(
    reservations: list[tuple[str, str, str]], expected: list[tuple[str, str, str]]
) -> None:
    found = conflicts.double_bookings(
        [(f, D(d), lot) for f, d, lot in reservations], RESERVATIONS_SETTINGS
    )
    assert [(c.lot, c.rule) for c in found] == [(lot, rule) for lot, rule, _ in expected]
    for c, (_, _, says) in zip(found, expected, strict=True):
        assert says in c.message and len(c.message) <= conflicts.MAX_MESSAGE
        assert c.act == "manufacturing" and list(c.dates) == ["manufacturing_start"]


def test_for_lots_sorts_by_first_date_then_lot_then_rule() -> None:
    late = dataclasses.replace(schedule("2026-03-05", ld_start="2026-03-28"), lot="L-B")
    early = dataclasses.replace(schedule(delivery_to="2026-04-10", ship="2026-03-27"), lot="L-A")
    reservations = [("MFG-01", D("2026-03-05"), "L-B"), ("MFG-01", D("2026-03-05"), "L-A")]
    found = conflicts.for_lots(
        [late, early], SETTINGS.profiles, SETTINGS, reservations, today=LONG_AGO
    )
    assert [(c.lot, c.rule, min(c.dates.values()).isoformat()) for c in found] == [
        ("L-A", "double-booked", "2026-03-05"),
        ("L-B", "double-booked", "2026-03-05"),
        ("L-A", "dates-out-of-order", "2026-03-27"),
        ("L-A", "transit-hold", "2026-03-27"),
        ("L-B", "ld-before-release", "2026-03-28"),
    ]
    assert len({c.key() for c in found}) == len(found)
    stray = dataclasses.replace(early, profile="retired")
    with pytest.raises(VaultError, match="profile 'retired' is not configured"):
        conflicts.for_lots([stray], SETTINGS.profiles, SETTINGS, [], today=LONG_AGO)


# --- a year of default plans ---------------------------------------------------------------

YEAR = [D("2026-01-01") + n * DAY for n in range(365)]
WEEKDAYS = [day for day in YEAR if day.weekday() < 5]


def year_of_conflicts() -> list[Conflict]:
    return [c for day in WEEKDAYS for c in find(schedule(day.isoformat()))]


def test_a_year_of_default_plans_has_no_conflicts() -> None:
    """`plan()` waits for release before LD and keeps the delivery window to working days."""
    assert year_of_conflicts() == []


# --- properties ----------------------------------------------------------------------------

apheresis_days = st.sampled_from(WEEKDAYS)


@given(apheresis_days, st.integers(-5, 40))
def test_infusion_window_and_repeat_follow_the_days_after_ld(start: date, after: int) -> None:
    base = schedule(start.isoformat())
    moved = dataclasses.replace(
        base, dates={**base.dates, "infusion": base.dates["ld_end"] + after * DAY}
    )
    found = {c.rule for c in find(moved)}
    assert ("infusion-window" in found) == (not 2 <= after <= 14)
    assert ("ld-repeat" in found) == (after > 14)


@given(apheresis_days, st.integers(0, 30), st.sampled_from([24.0, 100.0, 240.0, 241.5]))
def test_transit_is_counted_in_whole_days(start: date, days: int, hold: float) -> None:
    profile = dataclasses.replace(PROFILE, shipper_hold_hours=hold)
    base = schedule(start.isoformat(), profile=profile)
    moved = dataclasses.replace(
        base, dates={**base.dates, "delivery_to": base.dates["ship"] + days * DAY}
    )
    found = {c.rule for c in find(moved, profile=profile)}
    assert ("transit-hold" in found) == (days * 24 > hold)


@given(apheresis_days, st.sampled_from(FIELDS), st.integers(-20, 20))
def test_actual_dates_override_planned_ones(start: date, field: str, shift: int) -> None:
    planned = schedule(start.isoformat())
    moved = planned.dates[field] + shift * DAY
    recorded = dataclasses.replace(planned, actual={field: moved})
    replanned = dataclasses.replace(planned, dates={**planned.dates, field: moved})
    assert [(c.rule, c.dates) for c in find(recorded)] == [
        (c.rule, c.dates) for c in find(replanned)
    ]


names = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=64)


@given(st.lists(names, min_size=1, max_size=30, unique=True))
def test_messages_fit_one_line_however_many_names(lots: list[str]) -> None:
    day = D("2026-03-09")
    found = conflicts.double_bookings([("MFG-01", day, lot) for lot in lots], RESERVATIONS_SETTINGS)
    assert [c.lot for c in found] == (sorted(lots) if len(lots) > 1 else [])
    for c in found:
        assert len(c.message) <= conflicts.MAX_MESSAGE and "2026-03-09" in c.message
        assert c.lot not in c.message.split("(also ")[1].split(")")[0].split(", ")
    held = find(schedule(holds=tuple(f"deviation {lot} (open)" for lot in lots)))
    assert rules(held) == [("release-hold", ("expected_release",))]
    assert f"{len(lots)} open hold" in held[0].message
