"""Planning: a lot's dependent dates computed from its product profile (pure).

From the apheresis date: manufacturing starts in the reserved slot (else the next
working day), completes `manufacturing_days` later, is released `release_testing_days`
after that, ships on the first working day on or after release, arrives within the
delivery window `transit_days` later; the infusion (day 0) is the given date, else the
day after the window closes, or later if LD (which ends the profile's minimum days before
day 0 and lasts `ld_days`) would otherwise start before the release. Steps the profile keeps to working days
move to the next working day.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from atmpvault.archive.dosing.model import Profile

ONE = timedelta(days=1)


def next_working(day: date, working: Callable[[date], bool]) -> date:
    """`day`, or the first working day after it."""
    for _ in range(60):  # no calendar closes for two months running
        if working(day):
            return day
        day += ONE
    return day


def plan(
    profile: Profile,
    apheresis: date,
    working: Callable[[date], bool],
    slot: date | None = None,
    infusion: date | None = None,
) -> dict[str, date]:
    """Every date of the schedule, by field (see model.FIELDS)."""

    def fix(name: str, day: date) -> date:
        return next_working(day, working) if name in profile.working_days_only else day

    start = slot or fix("manufacturing_start", apheresis + ONE)
    completion = fix("expected_completion", start + timedelta(days=profile.manufacturing_days))
    release = fix("expected_release", completion + timedelta(days=profile.release_testing_days))
    ship = fix("ship", release)
    delivery_from = fix("delivery_from", ship + timedelta(days=profile.transit_days))
    delivery_to = fix(
        "delivery_to", delivery_from + timedelta(days=profile.delivery_window_days - 1)
    )
    shortest = profile.infusion_after_ld[0]
    # Day 0 after the product arrives, and late enough that LD starts on or after release.
    earliest = release + timedelta(days=shortest + profile.ld_days - 1)
    day0 = infusion or max(delivery_to + ONE, earliest)
    ld_end = day0 - timedelta(days=shortest)
    ld_start = ld_end - timedelta(days=profile.ld_days - 1)
    return {
        "apheresis": apheresis, "manufacturing_start": start, "expected_completion": completion,
        "expected_release": release, "ship": ship, "delivery_from": delivery_from,
        "delivery_to": delivery_to, "ld_start": ld_start, "ld_end": ld_end, "infusion": day0,
    }  # fmt: skip
