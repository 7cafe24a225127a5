"""Applications (IND, BLA) and the regulatory events recorded against them.

Both are JSON records in the repository, each write one commit with trailers:

    regulatory/applications/IND-012345.json
    regulatory/events/IND-012345/EV-000001.json

An event is corrected, never edited: the correction is a new version of its record
that keeps the earlier dates in `history`, and git history keeps every version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.regulatory.kinds import APP_KIND, APPS_ROOT, EVENT_KIND, EVENTS_ROOT
from atmpvault.archive.regulatory.rules import load_rules
from atmpvault.errors import InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.vault import Vault


APP_KINDS = ("ind", "bla")
ACTIVE = "active"
INACTIVE = "inactive"
WITHDRAWN = "withdrawn"
APPROVED = "approved"  # set by bla-approved (and undone if that event is voided)
APP_STATUSES = (ACTIVE, INACTIVE, WITHDRAWN)
VOIDED = "voided"
# What `event correct` may change besides the date, with the option that sets it.
CORRECTABLE = {
    "review": "--review",
    "meeting_type": "--meeting-type",
    "response_days": "--response-days",
    "letter_kind": "--letter-kind",
    "meeting_date": "--meeting-date",
    "meeting_format": "--meeting-format",
    "resubmission_class": "--class",
    "doc": "--doc",
    "note": "--note",
}

# Each trigger, and the kinds of application it is recorded against.
TRIGGERS: dict[str, tuple[str, ...]] = {
    "ind-received": ("ind",),
    "ind-effective": ("ind",),
    "safety-case": ("ind",),
    "fatal-safety-case": ("ind",),
    "safety-followup-info": ("ind",),
    "investigator-added": ("ind",),
    "protocol-change-planned": ("ind",),
    "clinical-hold-imposed": ("ind",),
    "hold-response-received": ("ind",),
    "hold-lifted": ("ind",),
    "rmat-request-received": ("ind", "bla"),
    "rmat-granted": ("ind", "bla"),
    "rmat-denied": ("ind", "bla"),
    "btd-request-received": ("ind", "bla"),
    "btd-granted": ("ind", "bla"),
    "btd-denied": ("ind", "bla"),
    "rolling-piece-received": ("bla",),
    "bla-received": ("bla",),
    "review-designated": ("bla",),
    "major-amendment-received": ("bla",),
    "review-extended": ("bla",),
    "bla-approved": ("bla",),
    "complete-response-letter": ("bla",),
    "resubmission-received": ("bla",),
    "pas-received": ("bla",),
    "supplement-approved": ("bla",),
    "postmarketing-alert-case": ("bla",),
    "cbe30-submitted": ("bla",),
    "cbe0-submitted": ("bla",),
    "bpdr-discovered": ("bla",),
    "meeting-request-received": ("ind", "bla"),
    "meeting-granted": ("ind", "bla"),
    "meeting-denied": ("ind", "bla"),
    "fda-letter-received": ("ind", "bla"),
}
# Events that answer an earlier one (`--of EV`, by default the latest of these triggers
# on or before their date): FDA grants or denies a meeting request, extends a review,
# designates the review track of a BLA.
ANSWERS: dict[str, tuple[str, ...]] = {
    "meeting-granted": ("meeting-request-received",),
    "meeting-denied": ("meeting-request-received",),
    "review-extended": ("bla-received", "resubmission-received", "pas-received"),
    "review-designated": ("bla-received",),
}
MEETING_FORMATS = ("face-to-face", "teleconference", "written-response-only")
RESUBMISSION_CLASSES = ("1", "2")
# Triggers dated by a plan (the planned implementation of a protocol change): the only
# events that may lie ahead; every other one reports something that has happened.
PLANNED = ("protocol-change-planned",)
REVIEWS = ("standard", "priority")
MEETING_TYPES = ("A", "B", "B-EOP", "C", "D", "INTERACT")
LETTER_KINDS = (
    "information-request",
    "clinical-hold-letter",
    "filing-letter",
    "day-74-letter",
    "meeting-minutes",
    "complete-response",
)
MAX_NOTE = 2000
MAX_RESPONSE_DAYS = 3660

_NUMBER_RE = re.compile(r"(?:(IND|BLA)[\s-]*)?(\d{1,6})", re.IGNORECASE)
_APP_ID_RE = re.compile(r"(IND|BLA)[\s-]?(\d{6})", re.IGNORECASE)
_EVENT_ID_RE = re.compile(r"EV-(\d{6,})")


def app_id(value: str) -> str:
    """An application id such as IND-012345 (also accepted: 'IND 012345', 'ind-012345')."""
    match = _APP_ID_RE.fullmatch(value.strip())
    if not match:
        raise InvalidInput(f"invalid application {value!r}: use e.g. IND-012345 or BLA-125123")
    return f"{match.group(1).upper()}-{match.group(2)}"


def event_id(value: str) -> str:
    """An event id such as EV-000001."""
    if not _EVENT_ID_RE.fullmatch(value.strip().upper()):
        raise InvalidInput(f"invalid event id {value!r}: use e.g. EV-000001")
    return value.strip().upper()


def choice(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    """One of a controlled vocabulary, or None."""
    if value is None:
        return None
    if value not in allowed:
        raise InvalidInput(f"unknown {what} {value!r}; valid: {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Application:
    """An IND or BLA, belonging to one program."""

    id: str
    kind: str
    number: str
    program: str
    status: str
    recorded_at: str
    user: str
    status_on: str | None = None  # since when the status holds (None: since registration)
    reason: str | None = None  # why the status last changed
    statuses: tuple[dict[str, str], ...] = ()  # every change: {"status", "on"}, in order

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def paused(self) -> list[tuple[date, date | None]]:
        """The periods it was inactive or withdrawn ([from, until), None: still): no
        report cycle that begins in one is owed."""
        found: list[tuple[date, date | None]] = []
        changes = [(c["status"], date.fromisoformat(c["on"])) for c in self.statuses]
        if not changes and self.status_on:  # a record with no history: its status alone
            changes = [(self.status, date.fromisoformat(self.status_on))]
        for i, (status, on) in enumerate(changes):
            if status in (INACTIVE, WITHDRAWN):
                until = changes[i + 1][1] if i + 1 < len(changes) else None
                found.append((on, until))
        return found

    @property
    def label(self) -> str:
        """The number as FDA writes it, e.g. 'IND 012345'."""
        return f"{self.kind.upper()} {self.number}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "number": self.number,
            "label": self.label,
            "program": self.program,
            "status": self.status,
            "recorded_at": self.recorded_at,
            "user": self.user,
            **(
                {
                    "status_on": self.status_on,
                    "reason": self.reason,
                    "statuses": list(self.statuses),
                }
                if self.status_on
                else {}
            ),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Application:
        data = dict(body)
        data.pop("label", None)
        data["statuses"] = tuple(data.get("statuses", ()))
        return cls(**data)


@dataclass(frozen=True)
class Event:
    """One dated fact about an application (e.g. FDA received the IND on 2026-01-05)."""

    id: str
    app: str
    program: str
    trigger: str
    on: date
    version: int
    recorded_at: str
    user: str
    review: str | None = None
    meeting_type: str | None = None
    response_days: int | None = None
    letter_kind: str | None = None
    doc: str | None = None
    note: str | None = None
    reason: str | None = None
    history: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    status: str | None = None  # "voided": entered in error; it derives nothing
    of: str | None = None  # the event this one answers (see ANSWERS)
    meeting_date: date | None = None  # the meeting date FDA granted
    meeting_format: str | None = None
    resubmission_class: str | None = None

    @property
    def voided(self) -> bool:
        return self.status == VOIDED

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "app": self.app,
            "program": self.program,
            "trigger": self.trigger,
            "on": self.on.isoformat(),
            "review": self.review,
            "meeting_type": self.meeting_type,
            "response_days": self.response_days,
            "letter_kind": self.letter_kind,
            "doc": self.doc,
            "note": self.note,
            "version": self.version,
            "recorded_at": self.recorded_at,
            "user": self.user,
            "reason": self.reason,
            "history": [dict(h) for h in self.history],
            **({"status": self.status} if self.status else {}),
            **{
                key: value.isoformat() if isinstance(value, date) else value
                for key, value in (
                    ("of", self.of),
                    ("meeting_date", self.meeting_date),
                    ("meeting_format", self.meeting_format),
                    ("resubmission_class", self.resubmission_class),
                )
                if value is not None
            },
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Event:
        data = dict(body)
        data["on"] = date.fromisoformat(data["on"])
        data["history"] = tuple(data.get("history", ()))
        if data.get("meeting_date"):
            data["meeting_date"] = date.fromisoformat(data["meeting_date"])
        return cls(**data)


def app_path(application: str) -> str:
    return f"{APPS_ROOT}/{application}.json"


def event_path(application: str, event: str) -> str:
    return f"{EVENTS_ROOT}/{application}/{event}.json"


class Regulatory:
    """Applications and events of one vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    # -- applications ---------------------------------------------------------------------

    def new_app(self, kind: str, number: str, program: str) -> Application:
        """Register an IND or BLA: `new_app("ind", "IND 012345", "CART-19")` -> IND-012345."""
        kind = choice(kind.lower(), APP_KINDS, "application kind") or kind
        match = _NUMBER_RE.fullmatch(number.strip())
        if not match:
            raise InvalidInput(
                f"invalid {kind.upper()} number {number!r}: use digits, e.g. "
                f"'{kind.upper()} 012345' or '012345'"
            )
        prefix, digits = match.groups()
        if prefix and prefix.lower() != kind:
            raise InvalidInput(f"number {number!r} names a {prefix.upper()}, not a {kind.upper()}")
        digits = digits.zfill(6)
        application = Application(
            id=f"{kind.upper()}-{digits}",
            kind=kind,
            number=digits,
            program=values.program(program),
            status=ACTIVE,
            recorded_at=values.iso(values.now()),
            user=self.vault.actor,
        )
        subject = f"Register {application.label} for {application.program}"
        with self.vault.unit("app-new", subject, trailers={"Application": application.id}) as unit:
            if self._read_app(application.id) is not None:
                raise VaultError(f"application {application.id} already exists")
            unit.put(APP_KIND, application.id, application.to_json(), app_path(application.id))
        return application

    def _read_app(self, application: str, as_of: str | None = None) -> Application | None:
        found = self.vault.catalog.record(APP_KIND.name, application, as_of=as_of)
        return None if found is None else Application.from_json(found.body)

    def app(self, application: str, as_of: str | None = None) -> Application:
        """One application; NotFound names the ones that exist."""
        found = self._read_app(app_id(application), as_of)
        if found is None:
            known = [a.id for a in self.apps()]
            hint = f"; applications: {', '.join(known)}" if known else "; create it with 'app new'"
            raise NotFound(f"no application {app_id(application)} in this vault{hint}")
        return found

    def program(self, program: str, as_of: str | None = None) -> str:
        """A program some application belongs to; NotFound names the ones there are."""
        name = values.program(program)
        known = sorted({a.program for a in self.apps(as_of)})
        if name not in known:
            hint = f"; programs: {', '.join(known)}" if known else "; no application yet"
            raise NotFound(f"no application of program {name} in this vault{hint}")
        return name

    def set_status(self, application: str, status: str, on: date, reason: str) -> Application:
        """Make an application active, inactive or withdrawn from a date: one commit. An
        inactive or withdrawn IND owes no report whose cycle begins after that date."""
        status = choice(status, APP_STATUSES, "application status") or status
        reason = values.reason(reason)
        self._check_date("app-status", on)
        with self.vault.unit("app-status", "", reason=reason) as unit:
            current = self.app(application)
            if current.status == status:
                raise VaultError(f"{current.id} is already {status}")
            if current.status_on is not None and on.isoformat() < current.status_on:
                raise InvalidInput(
                    f"--on {on.isoformat()} is before its last change ({current.status} from "
                    f"{current.status_on})"
                )
            changed = self._put_status(unit, current, status, on, reason)
            unit.subject = f"{current.id} {status} from {on.isoformat()}"
            unit.trailers.update({"Application": current.id, "Status": status})
        return changed

    @staticmethod
    def _put_status(
        unit: UnitOfWork, current: Application, status: str, on: date, reason: str
    ) -> Application:
        change = {"status": status, "on": on.isoformat()}
        changed = replace(
            current,
            status=status,
            statuses=(*current.statuses, change),
            status_on=on.isoformat(),
            reason=reason,
            recorded_at=values.iso(unit.when),
            user=unit.actor,
        )
        unit.put(APP_KIND, current.id, changed.to_json())
        return changed

    def apps(self, as_of: str | None = None) -> list[Application]:
        """Every application, by id."""
        return [
            Application.from_json(r.body)
            for r in self.vault.catalog.records(APP_KIND.name, as_of=as_of)
        ]

    # -- events -----------------------------------------------------------------------------

    def add_event(self, application: str, trigger: str, on: date, **details: Any) -> Event:
        """Record an event, e.g. `add_event("IND-012345", "ind-received", date(2026, 1, 5))`;
        `details` are its fields (review, meeting_type, response_days, letter_kind,
        meeting_date, meeting_format, resubmission_class, of, doc, note)."""
        with self.vault.unit("event-add", "") as unit:
            return self.stage_event(unit, application, trigger, on, **details)

    def stage_event(
        self, unit: UnitOfWork, application: str, trigger: str, on: date, **details: Any
    ) -> Event:
        """Put a new event into a unit of work (its rules checked first)."""
        from atmpvault.archive.regulatory.eventfields import (
            answered,
            check_extension,
            check_trigger,
            checked_fields,
        )

        if trigger not in TRIGGERS:
            raise InvalidInput(
                f"unknown trigger {trigger!r}; valid triggers: {', '.join(TRIGGERS)}"
            )
        target = self.app(application)
        check_trigger(target, trigger)
        self._check_date(trigger, on)
        rules = load_rules(self.vault)
        given = {k: None for k in CORRECTABLE} | details
        fields = checked_fields(self.vault, rules, trigger, **given)
        fields["of"] = answered(self, target, trigger, on, details.get("of"))
        if trigger == "review-extended":
            check_extension(self.vault, target, str(fields["of"]), on, rules)
        self._check_once(target, trigger, rules.once)
        event = Event(
            id=self._next_event_id(),
            app=target.id,
            program=target.program,
            trigger=trigger,
            on=on,
            version=1,
            recorded_at=values.iso(unit.when),
            user=unit.actor,
            **fields,
        )
        event = replace(event, history=(self._history_entry(event),))
        unit.put(EVENT_KIND, event.id, event.to_json(), event_path(target.id, event.id))
        if trigger == "bla-approved":
            self._put_status(unit, target, APPROVED, on, f"{event.id} bla-approved")
        if not unit.subject or unit.subject == unit.action:
            unit.subject = f"Record {event.id} {trigger} on {on.isoformat()} for {target.id}"
            unit.trailers.update({"Application": target.id, "Event": event.id, "Version": "1"})
        return event

    def _check_date(self, trigger: str, on: date) -> None:
        """A plausible date for the trigger: in the vault's range, not ahead unless planned."""
        if trigger not in PLANNED and on > self.vault.config.dates.today() + values.GRACE:
            raise InvalidInput(
                f"--on {on.isoformat()} is in the future: {trigger} records something that "
                f"has happened (only {', '.join(PLANNED)} may be dated ahead)"
            )
        self.vault.config.dates.check(on, "--on")

    def _check_once(self, application: Application, trigger: str, once: tuple[str, ...]) -> None:
        """Triggers the rules file lists as happening once per application (FDA receives an
        IND once, a BLA is approved once): a second one would move the effective date and
        the annual reports, so the first one's date is corrected instead."""
        if trigger not in once:
            return
        earlier = [e for e in self.events(application.id) if e.trigger == trigger and not e.voided]
        if earlier:
            first = earlier[0]
            raise VaultError(
                f"{application.id} already has {trigger} {first.id} on {first.on.isoformat()}, "
                f"and it happens once: to change its date, run 'atmpvault event correct "
                f"{first.id} --on YYYY-MM-DD --reason TEXT'"
            )

    @staticmethod
    def _history_entry(event: Event) -> dict[str, Any]:
        return {
            "version": event.version,
            "on": event.on.isoformat(),
            "recorded_at": event.recorded_at,
            "user": event.user,
            "reason": event.reason,
        }

    def _next_event_id(self) -> str:
        """The next event number: ids are zero-padded, so the greatest id is the last one."""
        last = self.vault.catalog.max_id(EVENT_KIND.name, "EV-")
        match = _EVENT_ID_RE.fullmatch(last) if last else None
        return f"EV-{(int(match.group(1)) if match else 0) + 1:06d}"

    def event(self, event: str, as_of: str | None = None) -> Event:
        """One event, wherever it is filed."""
        wanted = event_id(event)
        found = self.vault.catalog.record(EVENT_KIND.name, wanted, as_of=as_of)
        if found is None:
            raise NotFound(f"no event {wanted} in this vault")
        return Event.from_json(found.body)

    def events(self, application: str | None = None, as_of: str | None = None) -> list[Event]:
        """Every event (of one application), in date order."""
        from atmpvault.archive.core.record_tables import records

        where = []
        if application is not None:
            where.append(records.c.ref == self.app(application, as_of).id)
        found = self.vault.catalog.records(EVENT_KIND.name, as_of=as_of, where=where)
        return sorted((Event.from_json(r.body) for r in found), key=lambda e: (e.on, e.id))

    def correct_event(
        self, event: str, reason: str, on: date | None = None, **changes: Any
    ) -> Event:
        """Correct an event's date or details (review, meeting type, letter kind, response
        days, document, note): a new version, each earlier value kept in its history."""
        from atmpvault.archive.regulatory.eventfields import checked_fields

        reason = values.reason(reason)
        unknown = set(changes) - set(CORRECTABLE)
        if unknown:
            raise InvalidInput(f"cannot correct {', '.join(sorted(unknown))}")
        if on is None and all(v is None for v in changes.values()):
            raise InvalidInput(f"give what to correct: --on or {', '.join(CORRECTABLE.values())}")
        with self.vault.unit("event-correct", "", reason=reason) as unit:
            current = self._changeable(event)
            given = {k: v for k, v in changes.items() if v is not None}
            if on is not None:
                self._check_date(current.trigger, on)
            merged = {k: getattr(current, k) for k in CORRECTABLE} | given
            if "letter_kind" in given and "response_days" not in given:
                merged["response_days"] = None  # the new kind's own response time
            fields = checked_fields(self.vault, load_rules(self.vault), current.trigger, **merged)
            changed = {
                k: [getattr(current, k), v]
                for k, v in fields.items()
                if v != getattr(current, k)
                and (k in given or (k == "response_days" and "letter_kind" in given))
            }
            moved = on is not None and on != current.on
            if not moved and not changed:
                said = f"dated {current.on.isoformat()}" if on is not None and not given else ""
                raise VaultError(
                    f"{current.id} is already {said or 'as given'}; nothing to correct"
                )
            corrected = replace(
                current,
                on=on if moved and on is not None else current.on,
                version=current.version + 1,
                recorded_at=values.iso(unit.when),
                user=unit.actor,
                reason=reason,
                **{k: v for k, (_old, v) in changed.items()},
            )
            entry = self._history_entry(corrected)
            if moved:
                entry["previous_on"] = current.on.isoformat()
            if changed:
                entry["changed"] = changed
            corrected = replace(corrected, history=(*current.history, entry))
            unit.put(EVENT_KIND, current.id, corrected.to_json())
            what = [f"{current.on.isoformat()} -> {corrected.on.isoformat()}"] if moved else []
            what += [f"{k} {old} -> {new}" for k, (old, new) in changed.items()]
            unit.subject = f"Correct {current.id} {current.trigger}: {'; '.join(what)}"
            self._trailers(unit, corrected)
        return corrected

    def void_event(self, event: str, reason: str) -> Event:
        """Void an event entered in error: a new version marked voided, kept in history;
        its milestones disappear (an iCalendar export cancels them)."""
        reason = values.reason(reason)
        with self.vault.unit("event-void", "", reason=reason) as unit:
            current = self._changeable(event)
            voided = replace(
                current,
                version=current.version + 1,
                recorded_at=values.iso(unit.when),
                user=unit.actor,
                reason=reason,
                status=VOIDED,
            )
            entry = self._history_entry(voided) | {"voided": True}
            voided = replace(voided, history=(*current.history, entry))
            unit.put(EVENT_KIND, current.id, voided.to_json())
            target = self.app(current.app)
            if current.trigger == "bla-approved" and target.status == APPROVED:
                earlier = [c for c in target.statuses[:-1]]
                back = earlier[-1]["status"] if earlier else ACTIVE
                self._put_status(unit, target, back, current.on, f"{current.id} voided")
            unit.subject = f"Void {current.id} {current.trigger} on {current.on.isoformat()}"
            self._trailers(unit, voided)
        return voided

    def _changeable(self, event: str) -> Event:
        current = self.event(event)
        if current.voided:
            raise VaultError(f"{current.id} was voided ({current.reason}); it cannot change")
        return current

    @staticmethod
    def _trailers(unit: UnitOfWork, event: Event) -> None:
        unit.trailers.update(
            {"Application": event.app, "Event": event.id, "Version": str(event.version)}
        )
