"""Applications (IND, BLA) and the regulatory events recorded against them.

Both are JSON records in the repository, each write one commit with trailers:

    regulatory/applications/IND-012345.json
    regulatory/events/IND-012345/EV-000001.json

An event is corrected, never edited: the correction is a new version of its record
that keeps the earlier dates in `history`, and git history keeps every version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.errors import InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

APPS_ROOT = "regulatory/applications"
EVENTS_ROOT = "regulatory/events"

APP_KINDS = ("ind", "bla")
ACTIVE = "active"

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
    "rmat-request-received": ("ind",),
    "btd-request-received": ("ind",),
    "bla-received": ("bla",),
    "major-amendment-received": ("bla",),
    "bla-approved": ("bla",),
    "pas-received": ("bla",),
    "cbe30-submitted": ("bla",),
    "cbe0-submitted": ("bla",),
    "bpdr-discovered": ("bla",),
    "meeting-request-received": ("ind", "bla"),
    "fda-letter-received": ("ind", "bla"),
}
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


def day(value: str, what: str = "--on") -> date:
    """A calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} {value!r} is not a date: use YYYY-MM-DD") from None


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

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def label(self) -> str:
        """The number as FDA writes it, e.g. 'IND 012345'."""
        return f"{self.kind.upper()} {self.number}"

    def record(self) -> bytes:
        return _dump(self.to_json())

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
        }

    @classmethod
    def from_record(cls, raw: bytes) -> Application:
        data = json.loads(raw)
        data.pop("label", None)
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
        }

    def record(self) -> bytes:
        return _dump(self.to_json())

    @classmethod
    def from_record(cls, raw: bytes) -> Event:
        data = json.loads(raw)
        data["on"] = date.fromisoformat(data["on"])
        data["history"] = tuple(data.get("history", ()))
        return cls(**data)


def _dump(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


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
        with self.vault.writing():
            if self._read_app(application.id) is not None:
                raise VaultError(f"application {application.id} already exists")
            self.vault.commit_records(
                {app_path(application.id): application.record()},
                f"Register {application.label} for {application.program}",
                {"Action": "app-new", "Application": application.id},
            )
        return application

    def _read_app(self, application: str) -> Application | None:
        raw = self.vault.read_records(APPS_ROOT).get(app_path(application))
        return None if raw is None else Application.from_record(raw)

    def app(self, application: str) -> Application:
        """One application; NotFound names the ones that exist."""
        found = self._read_app(app_id(application))
        if found is None:
            known = [a.id for a in self.apps()]
            hint = f"; applications: {', '.join(known)}" if known else "; create it with 'app new'"
            raise NotFound(f"no application {app_id(application)} in this vault{hint}")
        return found

    def apps(self) -> list[Application]:
        """Every application, by id."""
        records = self.vault.read_records(APPS_ROOT)
        return sorted((Application.from_record(r) for r in records.values()), key=lambda a: a.id)

    # -- events -----------------------------------------------------------------------------

    def add_event(
        self,
        application: str,
        trigger: str,
        on: date,
        review: str | None = None,
        meeting_type: str | None = None,
        response_days: int | None = None,
        letter_kind: str | None = None,
        doc: str | None = None,
        note: str | None = None,
    ) -> Event:
        """Record an event, e.g. `add_event("IND-012345", "ind-received", date(2026, 1, 5))`."""
        if trigger not in TRIGGERS:
            raise InvalidInput(
                f"unknown trigger {trigger!r}; valid triggers: {', '.join(TRIGGERS)}"
            )
        target = self.app(application)
        self._check_trigger(target, trigger)
        review = choice(review, REVIEWS, "review")
        meeting_type = choice(
            meeting_type.upper() if meeting_type else None, MEETING_TYPES, "meeting type"
        )
        letter_kind = choice(letter_kind, LETTER_KINDS, "letter kind")
        only = {
            "--review": (review, "bla-received"),
            "--meeting-type": (meeting_type, "meeting-request-received"),
            "--letter-kind": (letter_kind, "fda-letter-received"),
            "--response-days": (response_days, "fda-letter-received"),
        }
        for option, (value, owner) in only.items():
            if value is not None and trigger != owner:
                raise InvalidInput(f"{option} applies only to {owner}, not {trigger}")
        needed = {
            "bla-received": ("--review", review),
            "meeting-request-received": ("--meeting-type", meeting_type),
            "fda-letter-received": ("--letter-kind", letter_kind),
        }
        if trigger in needed and needed[trigger][1] is None:
            raise InvalidInput(f"{trigger} needs {needed[trigger][0]}")
        if response_days is not None and not 0 <= response_days <= MAX_RESPONSE_DAYS:
            raise InvalidInput(f"--response-days must be 0 to {MAX_RESPONSE_DAYS}")
        note = values.text(note, "--note", MAX_NOTE)
        if doc is not None:
            doc = self.vault.documents.show(values.doc_id(doc)).id
        with self.vault.writing():
            event = Event(
                id=self._next_event_id(),
                app=target.id,
                program=target.program,
                trigger=trigger,
                on=on,
                version=1,
                recorded_at=values.iso(values.now()),
                user=self.vault.actor,
                review=review,
                meeting_type=meeting_type,
                response_days=response_days,
                letter_kind=letter_kind,
                doc=doc,
                note=note,
            )
            event = replace(event, history=(self._history_entry(event),))
            self.vault.commit_records(
                {event_path(target.id, event.id): event.record()},
                f"Record {event.id} {trigger} on {on.isoformat()} for {target.id}",
                {
                    "Action": "event-add",
                    "Application": target.id,
                    "Event": event.id,
                    "Version": "1",
                },
            )
        return event

    def _check_trigger(self, application: Application, trigger: str) -> None:
        if application.kind not in TRIGGERS[trigger]:
            fitting = [t for t, kinds in TRIGGERS.items() if application.kind in kinds]
            raise InvalidInput(
                f"{trigger} is not recorded against an {application.kind.upper()}; "
                f"triggers for {application.id}: {', '.join(fitting)}"
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

    def _event_paths(self) -> list[str]:
        head = self.vault.store.head()
        return [] if head is None else self.vault.store.paths(head, EVENTS_ROOT)

    def _next_event_id(self) -> str:
        numbers = [0]
        for path in self._event_paths():
            match = _EVENT_ID_RE.fullmatch(path.rsplit("/", 1)[-1].removesuffix(".json"))
            if match:
                numbers.append(int(match.group(1)))
        return f"EV-{max(numbers) + 1:06d}"

    def event(self, event: str) -> Event:
        """One event, wherever it is filed."""
        wanted = event_id(event)
        for path in self._event_paths():
            if path.endswith(f"/{wanted}.json"):
                return Event.from_record(self.vault.read_records(path)[path])
        raise NotFound(f"no event {wanted} in this vault")

    def events(self, application: str | None = None) -> list[Event]:
        """Every event (of one application), in date order."""
        prefix = EVENTS_ROOT
        if application is not None:
            prefix = f"{EVENTS_ROOT}/{self.app(application).id}"
        found = [Event.from_record(raw) for raw in self.vault.read_records(prefix).values()]
        return sorted(found, key=lambda e: (e.on, e.id))

    def correct_event(self, event: str, on: date, reason: str) -> Event:
        """Move an event to its right date: a new version, the earlier date kept in history."""
        reason = values.reason(reason)
        with self.vault.writing():
            current = self.event(event)
            if on == current.on:
                raise VaultError(f"{current.id} is already dated {on.isoformat()}")
            corrected = replace(
                current,
                on=on,
                version=current.version + 1,
                recorded_at=values.iso(values.now()),
                user=self.vault.actor,
                reason=reason,
            )
            entry = self._history_entry(corrected) | {"previous_on": current.on.isoformat()}
            corrected = replace(corrected, history=(*current.history, entry))
            self.vault.commit_records(
                {event_path(current.app, current.id): corrected.record()},
                f"Correct {current.id} {current.trigger}: {current.on.isoformat()} -> "
                f"{on.isoformat()}",
                {
                    "Action": "event-correct",
                    "Application": current.app,
                    "Event": current.id,
                    "Version": str(corrected.version),
                },
                reason=reason,
            )
        return corrected
