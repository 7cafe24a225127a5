"""Dosing: reserve manufacturing slots, plan each lot's schedule from its product profile,
re-plan with a reason, confirm availability; confirmations go out as archived notices,
each once.

Every write is one commit. A schedule's dates are planned; actual dates come from the
lot's custody events (collection, manufacturing-start, qa-release, shipment-to-site,
receipt-at-site, administration) and are shown beside the plan.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.workdays import non_working
from atmpvault.archive.dosing.model import FIELDS, Conflict, Schedule
from atmpvault.archive.dosing.records import CANCELLED, RESERVED, SCHEDULE_KIND, SLOT_KIND
from atmpvault.archive.dosing.settings import DosingSettings, Facility, dosing_settings
from atmpvault.errors import DeliveryFailed, InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.records import Record
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.lots.service import Lot

# Custody steps whose day is the actual date of a schedule's field.
ACTUAL = {
    "collection": "apheresis", "manufacturing-start": "manufacturing_start",
    "qa-release": "expected_release", "shipment-to-site": "ship",
    "receipt-at-site": "delivery_from", "administration": "infusion",
}  # fmt: skip
DONE = ("administered", "rejected")  # lots no longer on the board
# Fields that must not come before another, as (earlier, later).
# (LD before release is allowed: it is a conflict to flag, `dosing conflicts`, not a typo.)
ORDER = [(FIELDS[i], FIELDS[i + 1]) for i in range(6)] + [
    ("ld_start", "ld_end"), ("ld_end", "infusion"),
]  # fmt: skip


def field_name(option: str) -> str:
    """A schedule field from its option name (ld-start) or JSON name (ld_start)."""
    name = option.replace("-", "_")
    if name not in FIELDS:
        shown = ", ".join(f.replace("_", "-") for f in FIELDS)
        raise InvalidInput(f"unknown date field {option!r}; fields: {shown}")
    return name


class Dosing:
    """Slots and dosing schedules of one vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    @cached_property
    def settings(self) -> DosingSettings:
        return dosing_settings(self.vault)

    def facility(self, code: str) -> Facility:
        found = self.settings.facilities.get(code)
        if found is None:
            raise NotFound(
                f"unknown facility {code!r}; facilities: {', '.join(self.settings.facilities)}"
            )
        return found

    def closed(self, facility: Facility, day: date) -> str | None:
        """Why a facility makes nothing on `day` (a closure, a weekend or holiday), or None."""
        if day in facility.closures:
            return "closed"
        return non_working(day, facility.holidays) if facility.working_days_only else None

    # -- slots -----------------------------------------------------------------------------

    def reservations(
        self, facility: str | None = None, start: date | None = None, end: date | None = None,
        lot: str | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Active reservations, by SQL on the catalog, by day."""
        from atmpvault.archive.core.record_tables import records

        where = [records.c.status == RESERVED]
        if facility is not None:
            where.append(records.c.ref == facility)
        if start is not None:
            where.append(records.c.due >= start.isoformat())
        if end is not None:
            where.append(records.c.due <= end.isoformat())
        if lot is not None:
            where.append(records.c.lot == lot)
        found = self.vault.catalog.records(SLOT_KIND.name, where=where, order=[records.c.due])
        return [r.body for r in found]

    def reserve(
        self, facility: str, day: date, lot: str, actor: str | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """Reserve a manufacturing slot for a lot; the site's scheduler is sent a confirmation."""
        from atmpvault.archive.lots.service import Lots

        place = self.facility(facility)
        why = self.closed(place, day)
        if why:
            raise VaultError(f"{facility} makes nothing on {day.isoformat()} ({why})")
        problems: list[str] = []
        with self.vault.unit("slot-reserve", "", actor=actor) as unit:
            found = Lots(self.vault).get(lot)
            held = self.reservations(lot=found.id)
            if held:
                raise VaultError(
                    f"lot {found.id} already holds {held[0]['facility']} on {held[0]['day']}; cancel it first"
                )
            taken = self.reservations(facility, day, day)
            if len(taken) >= place.slots:
                holders = ", ".join(r["lot"] for r in taken)
                raise VaultError(
                    f"{facility} on {day.isoformat()} is full ({place.slots} slot(s)): held by {holders}"
                )
            body: dict[str, Any] = {
                "id": f"{facility}/{day.isoformat()}/{found.id}", "facility": facility,
                "day": day.isoformat(), "lot": found.id, "status": RESERVED, "reason": None,
                "version": 1, "recorded_at": values.iso(unit.when), "user": unit.actor,
            }  # fmt: skip
            unit.put(SLOT_KIND, body["id"], body, f"{SLOT_KIND.root}/{body['id']}.json")
            unit.subject = f"Reserve {facility} on {day.isoformat()} for lot {found.id}"
            unit.trailers.update({"Lot": found.id, "Slot": body["id"]})
            schedule = self.schedule_record(found.id)
            site = schedule.body.get("site") if schedule else None
            self.confirm(
                unit, f"dosing/{found.id}/slot/{facility}/{day.isoformat()}",
                self.settings.site(site).scheduler_list, "dosing/slot-confirmation",
                f"Slot confirmed: lot {found.id} starts manufacturing at {facility} on {day.isoformat()}",
                {"lot": found.to_json(), "slot": body, "site": site}, problems,
            )  # fmt: skip
        return body, problems

    def cancel(self, lot: str, reason: str, actor: str | None = None) -> dict[str, Any]:
        """Give a lot's slot back (the reservation stays in history, cancelled)."""
        why = values.reason(reason)
        with self.vault.unit("slot-cancel", "", reason=why, actor=actor) as unit:
            held = self.reservations(lot=lot)
            if not held:
                raise NotFound(f"lot {lot} holds no slot")
            body = {**held[0], "status": CANCELLED, "reason": why, "version": held[0]["version"] + 1,
                    "recorded_at": values.iso(unit.when), "user": unit.actor}  # fmt: skip
            unit.put(SLOT_KIND, body["id"], body)
            unit.subject = f"Cancel {body['facility']} on {body['day']} for lot {lot}"
            unit.trailers.update({"Lot": lot, "Slot": body["id"]})
        return body

    def free(self, facility: str | None, start: date, end: date) -> list[dict[str, Any]]:
        """Per facility and open day from `start` to `end`: its slots, taken and free."""
        places = [self.facility(facility)] if facility else list(self.settings.facilities.values())
        taken: dict[tuple[str, str], int] = {}
        for r in self.reservations(facility, start, end):
            taken[(r["facility"], r["day"])] = taken.get((r["facility"], r["day"]), 0) + 1
        rows = []
        day = start
        while day <= end:
            for place in places:
                if not self.closed(place, day):
                    used = taken.get((place.code, day.isoformat()), 0)
                    rows.append({"facility": place.code, "day": day.isoformat(), "slots": place.slots,
                                 "taken": used, "free": max(place.slots - used, 0)})  # fmt: skip
            day += timedelta(days=1)
        return rows

    # -- schedules ---------------------------------------------------------------------------

    def schedule_record(self, lot: str, as_of: str | None = None) -> Record | None:
        return self.vault.catalog.record(SCHEDULE_KIND.name, lot, as_of=as_of)

    def plan(
        self, lot: str, profile: str, apheresis: date, slot: date | None = None,
        infusion: date | None = None, site: str | None = None, facility: str | None = None,
        actor: str | None = None,
    ) -> Schedule:  # fmt: skip
        """Plan (or re-plan from scratch) a lot's schedule from its profile; one commit."""
        from atmpvault.archive.dosing.planning import plan
        from atmpvault.archive.lots.service import Lots

        if profile not in self.settings.profiles:
            raise NotFound(
                f"unknown profile {profile!r}; profiles: {', '.join(self.settings.profiles)}"
            )
        chosen = self.settings.profiles[profile]
        with self.vault.unit("dosing-plan", "", actor=actor) as unit:
            found = Lots(self.vault).get(lot)
            held = self.reservations(lot=found.id)
            place = self.facility(
                facility or (held[0]["facility"] if held else next(iter(self.settings.facilities)))
            )
            start = slot or (date.fromisoformat(held[0]["day"]) if held else None)
            if start is not None and (why := self.closed(place, start)):
                raise VaultError(f"{place.code} makes nothing on {start.isoformat()} ({why})")
            if start is not None and start < apheresis:
                raise VaultError(
                    f"manufacturing start {start.isoformat()} is before apheresis {apheresis.isoformat()}"
                )
            calendar = self.settings.site(site).holidays

            def working(day: date) -> bool:
                return self.closed(place, day) is None and non_working(day, calendar) is None

            dates = plan(chosen, apheresis, working, start, infusion)
            _check_order(dates)
            current = self.schedule_record(found.id)
            body = {
                "id": found.id, "lot": found.id, "program": found.program, "coi": found.coi,
                "profile": profile, "facility": place.code, "site": site,
                "dates": {k: v.isoformat() for k, v in dates.items()},
                "availability_confirmed": current.body.get("availability_confirmed") if current else None,
                "action": "plan" if current is None else "re-plan", "reason": None,
            }  # fmt: skip
            self._put(unit, body, current)
            unit.subject = f"Plan dosing of lot {found.id} ({profile}): infusion {dates['infusion'].isoformat()}"
        return self.schedule(found.id)

    def _put(self, unit: UnitOfWork, body: dict[str, Any], current: Record | None) -> None:
        body.update(version=(current.body["version"] if current else 0) + 1,
                    recorded_at=values.iso(unit.when), user=unit.actor)  # fmt: skip
        unit.put(SCHEDULE_KIND, body["lot"], body, f"{SCHEDULE_KIND.root}/{body['lot']}.json")
        unit.trailers["Lot"] = body["lot"]

    def update(
        self, lot: str, changes: dict[str, date], reason: str, actor: str | None = None
    ) -> Schedule:
        """Change planned dates, with the reason; the earlier plan stays in the history."""
        why = values.reason(reason)
        if not changes:
            raise InvalidInput("name at least one date to change, e.g. --infusion 2027-01-20")
        with self.vault.unit("dosing-update", "", reason=why, actor=actor) as unit:
            current = self._current(lot)
            dates = {k: date.fromisoformat(v) for k, v in current.body["dates"].items()}
            before = dict(dates)
            dates.update(changes)
            if dates == before:
                raise VaultError(f"lot {lot}'s schedule already has these dates")
            _check_order(dates)
            body = {**current.body, "dates": {k: v.isoformat() for k, v in dates.items()},
                    "action": "update", "reason": why}  # fmt: skip
            self._put(unit, body, current)
            moved = ", ".join(f"{k.replace('_', '-')} {before[k].isoformat()} -> {v.isoformat()}"
                              for k, v in changes.items() if before[k] != v)  # fmt: skip
            unit.subject = f"Re-plan lot {lot}: {moved}"
        return self.schedule(lot)

    def _current(self, lot: str) -> Record:
        found = self.schedule_record(lot)
        if found is None:
            from atmpvault.archive.lots.service import Lots

            Lots(self.vault).get(lot)  # an unknown lot says so
            raise NotFound(
                f"lot {lot} has no dosing schedule; plan it with 'atmpvault dosing plan'"
            )
        return found

    def confirm_availability(
        self, lot: str, on: date, actor: str | None = None
    ) -> tuple[Schedule, list[str]]:
        """The product is available for infusion from `on` (clears LD to start); the site
        is told."""
        problems: list[str] = []
        with self.vault.unit("dosing-availability", "", actor=actor) as unit:
            current = self._current(lot)
            body = {**current.body, "availability_confirmed": {"on": on.isoformat(), "at": values.iso(unit.when), "by": unit.actor},
                    "action": "confirm-availability", "reason": None}  # fmt: skip
            self._put(unit, body, current)
            unit.subject = f"Product of lot {lot} available from {on.isoformat()}"
            site = self.settings.site(body.get("site"))
            self.confirm(
                unit, f"dosing/{lot}/availability/{on.isoformat()}", site.scheduler_list,
                "dosing/availability-confirmation", f"Product available: lot {lot} from {on.isoformat()}",
                {"schedule": body, "on": on.isoformat()}, problems,
            )  # fmt: skip
        return self.schedule(lot), problems

    def confirm(
        self, unit: UnitOfWork, key: str, list_name: str, template: str, subject: str,
        context: dict[str, Any], problems: list[str],
    ) -> None:  # fmt: skip
        """Send a confirmation once (its key), inside the step's commit; what could not be
        delivered is named in `problems` (the step itself is kept)."""
        from atmpvault.archive.core.notices import DistributionLists, Notices

        notices = Notices(self.vault)
        if notices.reached(key):
            return
        reach = DistributionLists(self.vault).reach([list_name])
        for name, why in reach.problems:
            problems.append(f"confirmation {key} not sent to list {name!r}: {why}")
        if reach.lists:
            try:
                notices.send(key, reach.lists, template, subject, context, unit=unit)
            except DeliveryFailed as exc:
                problems.append(f"confirmation {key} not sent: {exc}")

    # -- reading -----------------------------------------------------------------------------

    def schedule(self, lot: str, as_of: str | None = None, record: Record | None = None,
                 lot_record: Lot | None = None, holds: tuple[str, ...] | None = None,
                 actual: dict[str, date] | None = None) -> Schedule:  # fmt: skip
        """A lot's schedule (as it stood at `as_of`), with actual dates from custody."""
        from atmpvault.archive.lots.service import Lots, release_holds

        found = record or self.schedule_record(lot, as_of)
        if found is None:
            if as_of is not None and self.schedule_record(lot) is not None:
                raise NotFound(f"lot {lot} had no dosing schedule yet at {as_of}")
            self._current(lot)
            raise AssertionError("unreachable")
        b = found.body
        current = lot_record or Lots(self.vault).get(lot, as_of)
        confirmed = b.get("availability_confirmed")
        return Schedule(
            lot=b["lot"], program=b["program"], coi=b.get("coi"), profile=b["profile"],
            facility=b["facility"], site=b.get("site"),
            dates={k: date.fromisoformat(v) for k, v in b["dates"].items()},
            actual=self.actual(lot, as_of) if actual is None else actual,
            availability_confirmed=date.fromisoformat(confirmed["on"]) if confirmed else None,
            lot_status=current.status,
            holds=tuple(release_holds(self.vault, lot)) if holds is None else holds,
            version=int(b["version"]),
        )  # fmt: skip

    def actual(self, lot: str, as_of: str | None = None) -> dict[str, date]:
        """The dates custody recorded for a lot's schedule fields (the latest event of each)."""
        return self.actuals([lot], as_of).get(lot, {})

    def actuals(self, lots: list[str], as_of: str | None = None) -> dict[str, dict[str, date]]:
        """`actual` for many lots, in one query."""
        from atmpvault.archive.core.record_tables import records

        zone = self.vault.config.zone
        found = self.vault.catalog.records(
            "custody-event", as_of=as_of,
            where=[records.c.lot.in_(lots), records.c.status.in_(list(ACTUAL))],
        )  # fmt: skip
        days: dict[str, dict[str, date]] = {}
        for r in sorted(found, key=lambda r: int(r.body["seq"])):
            at = values.when(r.body["at"], zone).astimezone(zone).date()
            days.setdefault(r.body["lot"], {})[ACTUAL[r.body["step"]]] = at
        return days

    def history(self, lot: str) -> list[Record]:
        return self.vault.catalog.record_versions(SCHEDULE_KIND.name, lot)

    def active(self) -> list[Schedule]:
        """Every schedule whose lot is not yet administered or rejected, by infusion date."""
        from atmpvault.archive.core.record_tables import records
        from atmpvault.archive.lots.records import LOT_KIND
        from atmpvault.archive.lots.service import Lot, holds_of

        found = self.vault.catalog.records(SCHEDULE_KIND.name)
        if not found:
            return []
        lots = {
            r.id: Lot.from_record(r)
            for r in self.vault.catalog.records(LOT_KIND.name, where=[records.c.id.in_([f.id for f in found])])
        }  # fmt: skip
        live = [r for r in found if r.id in lots and lots[r.id].status not in DONE]
        holds = holds_of(self.vault, [r.id for r in live])
        actual = self.actuals([r.id for r in live])
        result = [
            self.schedule(r.id, record=r, lot_record=lots[r.id], holds=tuple(holds[r.id]),
                          actual=actual.get(r.id, {}))
            for r in live
        ]  # fmt: skip
        return sorted(result, key=lambda s: (s.day("infusion"), s.lot))


def find_conflicts(dosing: Dosing, today: date) -> list[Conflict]:
    """Every timing conflict of the active schedules and the slots, as of `today`."""
    from atmpvault.archive.dosing.conflicts import for_lots

    reservations = [
        (r["facility"], date.fromisoformat(r["day"]), r["lot"]) for r in dosing.reservations()
    ]
    return for_lots(dosing.active(), dosing.settings.profiles, dosing.settings, reservations, today)


def send_conflicts(dosing: Dosing, found: list[Conflict]) -> tuple[list[Conflict], list[str]]:
    """Tell the scheduling lists of each conflict not told before (one notice each, each its
    own commit); the conflicts sent, and what could not be sent."""
    from atmpvault.archive.core.notices import DistributionLists, Notices

    notices = Notices(dosing.vault)
    sent, problems = [], []
    reach = DistributionLists(dosing.vault).reach(dosing.settings.scheduling_lists)
    problems += [f"conflicts not sent to list {name!r}: {why}" for name, why in reach.problems]
    for conflict in found:
        key = "dosing/conflict/" + conflict.key().replace(",", "+")
        wanted = [n for n in reach.lists if n not in notices.reached(key)]
        if not wanted:
            continue
        try:
            notices.send(
                key, wanted, "dosing/conflict", f"Dosing conflict, lot {conflict.lot}: {conflict.rule}",
                {"conflict": conflict.to_json()},
            )  # fmt: skip
            sent.append(conflict)
        except DeliveryFailed as exc:
            problems.append(str(exc))
            break  # the server is down: the next run tries the rest
    return sent, problems


def _check_order(dates: dict[str, date]) -> None:
    for earlier, later in ORDER:
        if dates[later] < dates[earlier]:
            raise VaultError(
                f"dates out of order: {later.replace('_', '-')} {dates[later].isoformat()} is "
                f"before {earlier.replace('_', '-')} {dates[earlier].isoformat()}"
            )


def on_lot_status(vault: Vault, unit: UnitOfWork, lot: Lot, status: str) -> None:
    """Confirmations a lot's status sends: manufacturing started (to the site's scheduler),
    shipped with the expected delivery window (to its nursing staff)."""
    if status not in ("in-manufacturing", "shipped"):
        return
    dosing = Dosing(vault)
    record = dosing.schedule_record(lot.id)
    if record is None:
        return
    body = record.body
    site = dosing.settings.site(body.get("site"))
    problems: list[str] = []
    day = unit.when.astimezone(vault.config.zone).date().isoformat()
    if status == "in-manufacturing":
        dosing.confirm(
            unit, f"dosing/{lot.id}/manufacturing-start", site.scheduler_list,
            "dosing/manufacturing-start", f"Manufacturing started: lot {lot.id} on {day}",
            {"schedule": body, "day": day}, problems,
        )  # fmt: skip
    else:
        dates = body["dates"]
        dosing.confirm(
            unit, f"dosing/{lot.id}/shipped", site.nursing_list, "dosing/shipping-confirmation",
            f"Shipped: lot {lot.id}, expected {dates['delivery_from']} to {dates['delivery_to']}",
            {"schedule": body, "day": day}, problems,
        )  # fmt: skip
    for problem in problems:
        vault.say(f"warning: {problem}")
