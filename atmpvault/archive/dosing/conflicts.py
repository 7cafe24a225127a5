"""The timing conflicts of dosing schedules (REGULATORY.md §6), pure: no vault, no I/O.

`find` checks one lot's schedule against its product profile, `double_bookings` the
active manufacturing slot reservations against the facilities' capacity and closed days,
`for_lots` both over many lots. A schedule's dates are the actual ones where custody
recorded them, else the planned ones. Every message names the dates involved and the
limit broken, in one line of at most 160 characters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from functools import partial

from atmpvault.archive.core.workdays import non_working
from atmpvault.archive.dosing.model import Conflict, Profile, Schedule
from atmpvault.archive.dosing.settings import DosingSettings, Facility
from atmpvault.archive.lots.records import IN_MANUFACTURING, PENDING_RELEASE, PLANNED
from atmpvault.errors import VaultError

LD_BEFORE_RELEASE = "ld-before-release"
LD_UNCONFIRMED = "ld-unconfirmed"
INFUSION_WINDOW = "infusion-window"
LD_REPEAT = "ld-repeat"
NON_WORKING_DAY = "non-working-day"
TRANSIT_HOLD = "transit-hold"
RELEASE_HOLD = "release-hold"
OUT_OF_ORDER = "dates-out-of-order"
DOUBLE_BOOKED = "double-booked"
SLOT_CLOSED = "slot-closed"
RULES = (
    LD_BEFORE_RELEASE, LD_UNCONFIRMED, INFUSION_WINDOW, LD_REPEAT, NON_WORKING_DAY,
    TRANSIT_HOLD, RELEASE_HOLD, OUT_OF_ORDER, DOUBLE_BOOKED, SLOT_CLOSED,
)  # fmt: skip

SCHEDULER, QA, SITE, LOGISTICS, MANUFACTURING = (
    "scheduler", "qa", "site", "logistics", "manufacturing",
)  # fmt: skip

MAX_MESSAGE = 160
CONFIRM_AHEAD_DAYS = 2  # LD this close to today needs the product's availability confirmed
NOT_RELEASED = (PLANNED, IN_MANUFACTURING, PENDING_RELEASE)
CLOSURE = "closure"

# Pairs (earlier, later) that may share a day but never run backwards: the product's
# path from apheresis to the site, the patient's from LD to the infusion, and the
# infusion not before the product can have arrived.
ORDER = (
    ("apheresis", "manufacturing_start"),
    ("manufacturing_start", "expected_completion"),
    ("expected_completion", "expected_release"),
    ("expected_release", "ship"),
    ("ship", "delivery_from"),
    ("delivery_from", "delivery_to"),
    ("ld_start", "ld_end"),
    ("ld_end", "infusion"),
    ("delivery_from", "infusion"),
)

# The days the product moves, and whose calendar they must be working days of.
AT_FACILITY = ("ship",)
AT_SITE = ("delivery_from", "delivery_to")
MOVES = {"ship": "the shipment", "delivery_from": "the delivery window's start",
         "delivery_to": "the delivery window's end"}  # fmt: skip


def find(
    schedule: Schedule, profile: Profile, settings: DosingSettings, today: date
) -> list[Conflict]:
    """Every timing conflict of one lot's schedule, by first date involved then rule."""
    day = schedule.day
    found: list[Conflict] = []

    def flag(rule: str, dates: dict[str, date], message: str, act: str) -> None:
        found.append(Conflict(schedule.lot, rule, dates, _line(message), act))

    ld_start, ld_end, infusion = day("ld_start"), day("ld_end"), day("infusion")
    release = day("expected_release")
    if ld_start < release:
        which = "actual" if "expected_release" in schedule.actual else "planned"
        flag(
            LD_BEFORE_RELEASE,
            {"ld_start": ld_start, "expected_release": release},
            f"LD starts {ld_start}, before the {which} release on {release}; LD may not "
            f"start before release: move LD to {release} or later",
            SCHEDULER,
        )
    limit = today + timedelta(days=CONFIRM_AHEAD_DAYS)
    if ld_start <= limit and schedule.availability_confirmed is None:
        flag(
            LD_UNCONFIRMED,
            {"ld_start": ld_start},
            f"LD starts {ld_start}, on or before {limit} (today + {CONFIRM_AHEAD_DAYS} days), "
            "availability unconfirmed: confirm availability before starting the "
            "lymphodepleting regimen",
            MANUFACTURING,
        )

    after = (infusion - ld_end).days
    low, high = profile.infusion_after_ld
    involved = {"ld_end": ld_end, "infusion": infusion}
    if not low <= after <= high:
        flag(
            INFUSION_WINDOW,
            involved,
            f"infusion {infusion} is {after} days after LD end {ld_end}; the window is "
            f"{low}-{high} days: infuse from {ld_end + timedelta(days=low)} to "
            f"{ld_end + timedelta(days=high)}",
            SITE,
        )
    if after > profile.ld_repeat_after_days:
        flag(
            LD_REPEAT,
            involved,
            f"infusion {infusion} is {after} days after LD end {ld_end}, more than "
            f"{profile.ld_repeat_after_days}: LD must be repeated, or infuse by "
            f"{ld_end + timedelta(days=profile.ld_repeat_after_days)}",
            SITE,
        )

    facility = _facility(settings, schedule.facility)
    site = settings.site(schedule.site)
    calendars = [(n, f"facility {facility.code}", _closed(facility, True)) for n in AT_FACILITY]
    calendars += [
        (n, f"site {site.code}" if site.code else "the site", _calendar(site.holidays))
        for n in AT_SITE
    ]
    for name, place, closed in calendars:
        why = closed(day(name))
        if why:
            flag(
                NON_WORKING_DAY,
                {name: day(name)},
                f"{name} {day(name)} is a non-working day at {place} ({why[:40]}); it must "
                f"fall on a working day: move {MOVES[name]}",
                LOGISTICS,
            )

    ship, delivery_to = day("ship"), day("delivery_to")
    hours = (delivery_to - ship).days * 24
    if hours > profile.shipper_hold_hours:
        latest = ship + timedelta(days=int(profile.shipper_hold_hours // 24))
        flag(
            TRANSIT_HOLD,
            {"ship": ship, "delivery_to": delivery_to},
            f"transit from ship {ship} to delivery end {delivery_to} is {hours} h, over the "
            f"shipper's {profile.shipper_hold_hours:g} h hold: deliver by {latest}",
            LOGISTICS,
        )

    if schedule.lot_status in NOT_RELEASED and schedule.holds:
        names = [hold.partition(" (")[0][:40] for hold in schedule.holds]
        message = _fit(partial(_held, release, len(names)), names, "holds")
        flag(RELEASE_HOLD, {"expected_release": release}, message, QA)

    for earlier, later in ORDER:
        if day(later) < day(earlier):
            flag(
                OUT_OF_ORDER,
                {earlier: day(earlier), later: day(later)},
                f"{later} {day(later)} is before {earlier} {day(earlier)}; {later} may not "
                f"come before {earlier}: correct the schedule",
                SCHEDULER,
            )
    return sorted(found, key=_order)


def double_bookings(
    reservations: Sequence[tuple[str, date, str]], settings: DosingSettings
) -> list[Conflict]:
    """Manufacturing slots over a facility's capacity for the day, or on a closed day."""
    booked: dict[tuple[str, date], list[str]] = {}
    for code, day, lot in reservations:
        lots = booked.setdefault((code, day), [])
        if lot not in lots:  # a lot reserved twice on one day holds one slot
            lots.append(lot)
    found = []
    for (code, day), lots in sorted(booked.items()):
        facility = _facility(settings, code)
        why = _closed(facility, facility.working_days_only)(day)
        for lot in lots:
            others = [other for other in lots if other != lot]
            if why:
                rule, build = SLOT_CLOSED, partial(_slot_closed, code, day, why)
            elif len(lots) > facility.slots:
                rule, build = DOUBLE_BOOKED, partial(_over, code, day, facility.slots, len(lots))
            else:
                continue
            message = _fit(build, others, "other lots")
            found.append(Conflict(lot, rule, {"manufacturing_start": day}, message, MANUFACTURING))
    return sorted(found, key=_order)


def for_lots(
    schedules: Iterable[Schedule],
    profiles: Mapping[str, Profile],
    settings: DosingSettings,
    reservations: Sequence[tuple[str, date, str]],
    today: date,
) -> list[Conflict]:
    """Every conflict of these lots' schedules and slot reservations, sorted by (first
    date involved, lot, rule); `profiles` by name, as the schedules name them."""
    found = double_bookings(reservations, settings)
    for schedule in schedules:
        profile = profiles.get(schedule.profile)
        if profile is None:
            raise VaultError(
                f"lot {schedule.lot}'s dosing profile {schedule.profile!r} is not configured: "
                'add it to the "dosing" section\'s "profiles" in config/vault.json'
            )
        found += find(schedule, profile, settings, today)
    return sorted(found, key=_order)


def _held(release: date, count: int, listed: str) -> str:
    return (
        f"release planned {release} with {count} open hold{'s' if count > 1 else ''} "
        f"({listed}); no release with an open hold: resolve them or move the release"
    )


def _slot_closed(code: str, day: date, why: str, listed: str) -> str:
    also = f"; also reserved: {listed}" if listed else ""
    return (
        f"slot at {code} on {day}, a closed day ({why[:40]}); no slots on closed days: "
        f"move the manufacturing start{also}"
    )


def _over(code: str, day: date, slots: int, count: int, listed: str) -> str:
    lots = f"{count} lot{'' if count == 1 else 's'}"
    also = f" (also {listed})" if listed else ""
    return (
        f"{lots} reserved at {code} on {day}{also}, over its {slots} slot"
        f"{'' if slots == 1 else 's'} a day: move a lot to another day"
    )


def _order(conflict: Conflict) -> tuple[date, str, str, str]:
    return (min(conflict.dates.values()), conflict.lot, conflict.rule, conflict.key())


def _facility(settings: DosingSettings, code: str) -> Facility:
    """A facility's settings; one the configuration no longer names gets the defaults."""
    return settings.facilities.get(code) or Facility(code, 1, True, (), "US")


def _calendar(code: str) -> Callable[[date], str | None]:
    return lambda day: non_working(day, code)


def _closed(facility: Facility, working_days_only: bool) -> Callable[[date], str | None]:
    """Why a day is closed at a facility: a closure, or (working days only) a weekend
    day or holiday of its calendar; None when open."""

    def why(day: date) -> str | None:
        if day in facility.closures:
            return CLOSURE
        return non_working(day, facility.holidays) if working_days_only else None

    return why


def _fit(build: Callable[[str], str], names: list[str], noun: str) -> str:
    """`build(listed)` naming as many of `names` as the message has room for."""
    for shown in range(len(names), -1, -1):
        rest = len(names) - shown
        listed = ", ".join(names[:shown]) + (f" +{rest} more" if rest and shown else "")
        message = build(listed if shown or not names else f"{rest} {noun}")
        if len(message) <= MAX_MESSAGE:
            return message
    return _line(message)


def _line(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
