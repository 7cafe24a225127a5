"""Validation of the values users type, and the one way times are parsed.

Everything here raises InvalidInput (exit 2) before anything is written. Dates and times
typed without an offset, and "today", are in the vault's time zone (`DateRange.zone`,
UTC unless the vault set one); times are stored in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple

from atmpvault.errors import InvalidInput

PROGRAM_RE = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")
DOC_ID_RE = PROGRAM_RE
LOT_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.))*")
META_KEY_RE = re.compile(r"[a-z][a-z0-9_.-]*")
# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: none
# belongs in one-line text, and each could break a commit trailer or a mail header.
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

MAX_CODE = 40
MAX_LOT = 64
MAX_TITLE = 500
MAX_META_KEY = 64
MAX_META_VALUE = 2000
MAX_META_ITEMS = 50
MAX_REASON = 2000
MAX_USER = 100
MAX_ZONE = 64  # the longest IANA name is 32 characters


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def today(zone: tzinfo = UTC) -> date:
    """Today's date in `zone` (the vault's time zone)."""
    return now().astimezone(zone).date()


def zone(name: str, what: str = "time zone", known: bool = False) -> tzinfo:
    """An IANA time zone such as America/New_York (UTC itself for "UTC").

    `known`: the name must be one the zone database lists (for a name being set; reading a
    vault's configuration only needs the zone to load, without listing the database).
    """
    if name == "UTC":
        return UTC
    import zoneinfo  # the zone database is read only by vaults that set a zone

    try:
        # "localtime" is this machine's zone, not a place: the vault's days would move
        # with whichever machine reads it.
        if len(name) > MAX_ZONE or name == "localtime":
            raise ValueError(name)
        if known and name not in zoneinfo.available_timezones():
            raise ValueError(name)
        return zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        raise InvalidInput(
            f"{what} {_shown(name)} is not an IANA time zone name such as America/New_York, "
            "Europe/Berlin or UTC"
        ) from None


def zone_name(zone: tzinfo) -> str:
    """The IANA name of a zone made by `zone` ("UTC" for UTC)."""
    return str(getattr(zone, "key", "UTC"))


def _shown(value: str) -> str:
    text = value if len(value) <= 40 else value[:40] + "..."
    return repr(text)


def program(value: str) -> str:
    """A program code such as CART-19."""
    if len(value) > MAX_CODE or not PROGRAM_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid program {_shown(value)}: use upper-case letters, digits and hyphens, e.g. CART-19"
        )
    return value


def doc_id(value: str) -> str:
    """A document id such as DOC-000042."""
    if len(value) > MAX_CODE or not DOC_ID_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid document id {_shown(value)}: ids are upper-case letters, digits and hyphens, e.g. DOC-000042"
        )
    return value


def lot(value: str | None) -> str | None:
    """A lot number such as L-0042 or CAR19.2026.007."""
    if value is None:
        return None
    if len(value) > MAX_LOT or not LOT_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid lot {_shown(value)}: use letters, digits, '.', '_' and '-' "
            f"(no '/', '..' or control characters), at most {MAX_LOT}"
        )
    return value


def text(value: str | None, what: str, limit: int, required: bool = False) -> str | None:
    """Free text on one line: no control characters, bounded length."""
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{what} is required and cannot be empty")
        return None
    if len(value) > limit:
        raise InvalidInput(f"{what} is {len(value):,} characters long; the limit is {limit:,}")
    if CONTROL_RE.search(value):
        raise InvalidInput(f"{what} contains control characters")
    return value.strip()


def title(value: str | None) -> str | None:
    return text(value, "title", MAX_TITLE)


def reason(value: str | None) -> str:
    result = text(value, "--reason", MAX_REASON, required=True)
    assert result is not None
    return result


def user(value: str) -> str:
    """An actor name as it appears in git history."""
    result = text(value, "user name", MAX_USER, required=True)
    assert result is not None
    if "<" in result or ">" in result:
        raise InvalidInput(f"user name {_shown(result)} cannot contain '<' or '>'")
    return result


def meta(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """KEY=VALUE pairs from --meta."""
    if len(pairs) > MAX_META_ITEMS:
        raise InvalidInput(f"at most {MAX_META_ITEMS} --meta values")
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--meta {_shown(pair)} must be KEY=VALUE")
        if len(key) > MAX_META_KEY or not META_KEY_RE.fullmatch(key):
            raise InvalidInput(
                f"invalid --meta key {_shown(key)}: lower-case letters, digits, '_', '.', '-'"
            )
        checked = text(value, f"--meta {key}", MAX_META_VALUE, required=True)
        assert checked is not None
        result[key] = checked
    return result


_DATE_RE = re.compile(r"\d{4}-?\d{2}-?\d{2}")

EARLIEST = date(1990, 1, 1)
YEARS_AHEAD = 10
# The widest range a vault may configure: far enough from year 1 and year 9999 that the
# milestone arithmetic (offsets of years, yearly series) never leaves what `date` holds.
FIRST_ALLOWED = date(1900, 1, 1)
MAX_YEARS_AHEAD = 100
# A day's grace for "has happened": east of the vault's time zone it is already tomorrow.
GRACE = timedelta(days=1)


class DateRange(NamedTuple):
    """The dates people may enter: from `earliest` to `years_ahead` years after today,
    as calendar days in the vault's time zone `zone` (which says what today is, and what
    a time typed without an offset means)."""

    earliest: date = EARLIEST
    years_ahead: int = YEARS_AHEAD
    zone: tzinfo = UTC

    def today(self) -> date:
        """The real today, in the vault's time zone."""
        return today(self.zone)

    def latest(self, today: date | None = None) -> date:
        """The last date accepted on `today` (default: the real today)."""
        base = today or self.today()
        year = base.year + self.years_ahead
        import calendar  # only date arithmetic needs it; the CLI starts without it

        return date(year, base.month, min(base.day, calendar.monthrange(year, base.month)[1]))

    def describe(self, today: date | None = None) -> str:
        return f"{self.earliest.isoformat()} to {self.latest(today).isoformat()}"

    def contains(self, found: date, today: date | None = None) -> bool:
        return self.earliest <= found <= self.latest(today)

    def check(self, found: date, what: str, happened: bool = False) -> date:
        """`found` if plausible; InvalidInput naming the range (or the future) if not.

        `happened`: the date reports something that has already happened, so it may not
        be in the future (today in the real clock, whatever --today says).
        """
        today = self.today()
        if happened and found > today + GRACE:
            raise InvalidInput(
                f"{what} {found.isoformat()} is in the future: give the date it happened"
            )
        if not self.contains(found, today):
            raise InvalidInput(
                f"{what} {found.isoformat()} is outside the dates this vault accepts, "
                f'{self.describe(today)} (config/vault.json "dates")'
            )
        return found


DEFAULT_DATES = DateRange()


def day(
    value: str, what: str = "--on", within: DateRange = DEFAULT_DATES, happened: bool = False
) -> date:
    """A calendar date (due dates, event dates, --today), checked to lie in the vault's
    date range (`within`) and, if `happened`, not in the future.

    YYYY-MM-DD is that day as typed. A datetime names the day it falls on in the vault's
    time zone: one with an offset is converted (23:30 in New York is still that day
    there, though already the next in UTC); one without is a time in the vault's zone.
    """
    raw = value.strip()
    try:
        found = date.fromisoformat(raw)
    except ValueError:
        try:
            found = _moment(raw, within.zone).astimezone(within.zone).date()
        except (ValueError, OverflowError):
            raise InvalidInput(
                f"{what} {_shown(value)} is not a date: use YYYY-MM-DD, or a time with its "
                "offset such as 2026-03-01T23:30:00-05:00"
            ) from None
    return within.check(found, what, happened)


def date_range(raw: object, origin: str, zone: tzinfo = UTC) -> DateRange:
    """The "dates" of a vault's configuration: {"earliest": "1990-01-01", "years_ahead": 10},
    as days in the vault's time zone `zone`."""
    if raw is None:
        return DateRange(zone=zone)
    if not isinstance(raw, dict) or set(raw) - {"earliest", "years_ahead"}:
        raise InvalidInput(
            f'{origin}: "dates" must be an object with "earliest" (YYYY-MM-DD) and '
            f'"years_ahead" (0 to {MAX_YEARS_AHEAD}), e.g. {{"earliest": "1990-01-01", '
            f'"years_ahead": 10}}'
        )
    earliest_raw = raw.get("earliest", EARLIEST.isoformat())
    try:
        earliest = date.fromisoformat(earliest_raw) if isinstance(earliest_raw, str) else None
    except ValueError:
        earliest = None
    if earliest is None or not FIRST_ALLOWED <= earliest <= today(zone):
        raise InvalidInput(
            f'{origin}: "dates"."earliest" {earliest_raw!r} must be a date (YYYY-MM-DD) from '
            f"{FIRST_ALLOWED.isoformat()} to today"
        )
    ahead = raw.get("years_ahead", YEARS_AHEAD)
    if isinstance(ahead, bool) or not isinstance(ahead, int) or not 0 <= ahead <= MAX_YEARS_AHEAD:
        raise InvalidInput(
            f'{origin}: "dates"."years_ahead" {ahead!r} must be a whole number of years '
            f"from 0 to {MAX_YEARS_AHEAD}"
        )
    return DateRange(earliest, ahead, zone)


def when(value: str, zone: tzinfo, start_of_day: bool = False) -> datetime:
    """An ISO date or datetime, in the vault's time zone `zone` unless an offset is given;
    in UTC, the form times are stored in.

    A value names all of the day, minute, second or fraction it is typed to: its end
    (everything recorded within it counts, so a time copied from `history` finds that
    version), or its start where the caller asks, as for --since. A date is that day in
    `zone`: from its first moment there to its last.
    """
    raw = value.strip()
    try:
        if _DATE_RE.fullmatch(raw):
            day = date.fromisoformat(raw)
            local = datetime.combine(day, time.min if start_of_day else time.max, tzinfo=zone)
            return local.astimezone(UTC)
        moment = _moment(raw, zone).astimezone(UTC)  # year 1 or 9999 may overflow here
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"cannot read {_shown(value)} as a date: use YYYY-MM-DD or an ISO datetime "
            "such as 2026-03-01T14:30:00+01:00"
        ) from None
    if not start_of_day:
        try:
            moment += _typed_span(raw) - timedelta(microseconds=1)
        except OverflowError:
            raise InvalidInput(f"{_shown(value)} is past the last time a date can hold") from None
    return moment


def _moment(raw: str, zone: tzinfo) -> datetime:
    """An ISO datetime as typed; without an offset, a time in `zone`. ValueError if not one.

    A time of day is required: Python reads "2026-03-01+05:00" as midnight, dropping the
    offset, so a date with an offset but no time would silently name the wrong moment.
    """
    if _TIME_RE.search(raw) is None:
        raise ValueError(raw)
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


_TIME_RE = re.compile(r"[T ]\d{2}(:?\d{2})?(:?\d{2})?(?:[.,](\d+))?")


def _typed_span(raw: str) -> timedelta:
    """How long the time typed in `raw` lasts: an hour, a minute, a second or a fraction."""
    found = _TIME_RE.search(raw)
    if found is None:
        return timedelta(hours=1)
    minutes, seconds, fraction = found.groups()
    if fraction:
        return timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    if seconds:
        return timedelta(seconds=1)
    return timedelta(minutes=1) if minutes else timedelta(hours=1)


def iso(moment: datetime) -> str:
    """The one stored form of a time: UTC, microseconds, sortable as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
