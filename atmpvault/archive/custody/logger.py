"""Temperature data-logger files of shippers: CSV of (time, °C), as loggers export them.

Accepted: an optional header line (a first row whose temperature field is not a number
and whose time field is not a time), or an Excel "sep=;" line; comma, semicolon or tab
separators (sniffed from the first line; a decimal comma such as -151,3 is read where the
separator allows it); ISO 8601 times, with or without an offset, or locale times such as
28/11/2026 14:05 or 11/28/2026 2:05 PM read in the configured date order; extra columns
(ignored), or a header naming the time and temperature columns, which are then picked by
name; UTF-8 with or without a BOM (Windows-1252 where it is not UTF-8); CRLF, LF or CR.

A time without an offset is in the logger site's time zone, unless the time column's
header names UTC or a UTC offset ("Time (UTC)", "Date/Time (UTC+01:00)").
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from atmpvault.archive.core.values import iso
from atmpvault.errors import InvalidInput

MAX_ROWS = 1_000_000
MAX_BYTES = 256 * 1024 * 1024
DATE_ORDERS = {"DMY": "day/month/year", "MDY": "month/day/year"}
ABSOLUTE_ZERO = -273.15
# Loggers whose clock has reset show 1970 or 2000; years beyond these are not times a
# logger wrote (and year 1 or 9999 would overflow on conversion to UTC).
YEARS = (1970, 2199)

# Control characters other than tab and line breaks, and the Unicode line separators
# (str.splitlines would break lines at them where an editor does not).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_SEP_LINE_RE = re.compile(r'\s*"?sep=(.)"?\s*', re.IGNORECASE)

# [0-9], not \d, throughout: \d is any Unicode digit.
_ISO_RE = re.compile(
    r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}[Tt ][0-9]{2}(?::?[0-9]{2}){0,2}(?:[.,][0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_LOCALE_RE = re.compile(
    r"(?P<a>[0-9]{1,4})(?P<sep>[/.-])(?P<b>[0-9]{1,2})(?P=sep)(?P<c>[0-9]{4}|[0-9]{1,2})"
    r"(?:,?[ ]+|T)(?P<hour>[0-9]{1,2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,6}))?)?"
    r"(?:[ ]*(?P<half>[AaPp])\.?[Mm]\.?)?"
)
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")
_INTEGER_RE = re.compile(r"[+\u2212-]?[0-9]+")
_DIGITS_RE = re.compile(r"[0-9]+")

# Column names, the likelier first: "Elapsed time" is a time column only if nothing else
# is, and "Value" a temperature only if no column says temperature.
_TIME_NAMES = (
    re.compile(r"timestamp|date\s*[/&-]?\s*time|zeitstempel|horodatage"),
    re.compile(r"time|date|zeit|datum|heure"),
)
_TEMP_NAMES = (
    re.compile(r"temp|celsius|[°º]\s*c\b|\(c\)|\bdeg\s*c\b"),
    re.compile(r"value|reading|wert|valeur"),
)
_NOT_TEMP_RE = re.compile(
    r"humid|%\s*rh|\brh\b|pressure|battery|fahrenheit|[°º]\s*f\b|\(f\)|\bdeg\s*f\b"
)
_FAHRENHEIT_RE = re.compile(r"fahrenheit|[°º]\s*f\b|\(f\)|\bdeg\s*f\b")
_HEADER_ZONE_RE = re.compile(r"\b(?:utc|gmt)\s*(?:([+-])([0-9]{1,2})(?::?([0-9]{2}))?)?")


@dataclass(frozen=True)
class Reading:
    """One logged temperature: when (UTC) and how cold or warm, in °C."""

    at: datetime
    celsius: float


@dataclass(frozen=True)
class _Layout:
    sep: str
    time_col: int
    temp_col: int
    zone: tzinfo  # what a time without an offset is in
    date_col: int | None = None  # a date column the time column's times belong to
    named: int | None = None  # the number of columns the header names, if there is one


@dataclass(frozen=True)
class _Row:
    number: int
    moment: datetime  # with its offset, or a wall time in the layout's zone
    celsius: float


class _NotATime(ValueError):
    """A field is not a time; the message, if any, says why a time-like one is not."""


def parse(data: bytes, *, zone: tzinfo, date_order: str = "DMY") -> list[Reading]:
    """The readings of a logger file, sorted by time; InvalidInput naming the first bad
    line if it cannot be read.

    `zone`: the logger site's time zone, for times without an offset; `date_order`: "DMY"
    or "MDY", how locale dates such as 11/12/2026 are read. In the hour repeated when the
    clocks go back, a time without an offset is its first occurrence until the times in
    the file go back, then its second.
    """
    if date_order not in DATE_ORDERS:
        raise InvalidInput(f"date order {date_order!r} must be DMY or MDY")
    forced: str | None = None  # the separator an Excel "sep=" line names
    header = False
    layout: _Layout | None = None
    rows: list[_Row] = []
    for number, line in enumerate(_lines(data), start=1):
        if not line.strip(" \t,;"):
            continue
        if layout is not None:
            fields = _fields(line, layout.sep, number)
        else:
            if forced is None and (excel := _SEP_LINE_RE.fullmatch(line)):
                forced = excel.group(1)
                continue
            sep = forced or _separator(line)
            fields = _fields(line, sep, number)
            if _is_header(fields, date_order):
                layout, header = _header_layout(fields, sep, zone, number), True
                continue
            layout = _Layout(sep, 0, 1, zone)
        if len(rows) >= MAX_ROWS:
            raise InvalidInput(
                f"logger file line {number}: more than {MAX_ROWS:,} readings; split the file"
            )
        rows.append(_row(fields, number, layout, date_order))
    if layout is None or not rows:
        raise InvalidInput(
            "logger file has a header but no readings" if header else "logger file is empty"
        )
    return sorted(_resolve(rows, layout.zone), key=lambda r: r.at)


@dataclass(frozen=True)
class Summary:
    """What a logger file says about a shipment: its span, extremes and excursions."""

    first: datetime
    last: datetime
    count: int
    min_celsius: float
    max_celsius: float
    low: float | None
    high: float | None
    minutes_out_of_range: float
    readings_out_of_range: int

    def to_json(self) -> dict[str, Any]:
        return {
            "first": iso(self.first),
            "last": iso(self.last),
            "count": self.count,
            "min_celsius": self.min_celsius,
            "max_celsius": self.max_celsius,
            "low_celsius": self.low,
            "high_celsius": self.high,
            "minutes_out_of_range": self.minutes_out_of_range,
            "readings_out_of_range": self.readings_out_of_range,
        }


def summarise(readings: Sequence[Reading], low: float | None, high: float | None) -> Summary:
    """First and last time, count, coldest and warmest reading, and the time out of the
    range [low, high] °C (either bound may be None: no limit on that side).

    Time out of range is time-weighted: the interval from each reading to the next counts
    as out of range when that reading is below `low` or above `high` (a logger's reading
    stands for the time until its next one). The last reading has no interval, so it adds
    no minutes, though it does count in `readings_out_of_range`.
    """
    if not readings:
        raise InvalidInput("no logger readings to summarise")
    for name, limit in (("low", low), ("high", high)):
        if limit is not None and not math.isfinite(limit):
            raise InvalidInput(f"the {name} temperature limit {limit} is not a number")
    if low is not None and high is not None and low > high:
        raise InvalidInput(f"the low temperature limit {low} °C is above the high one, {high} °C")
    ordered = sorted(readings, key=lambda r: r.at)

    def out(reading: Reading) -> bool:
        return (low is not None and reading.celsius < low) or (
            high is not None and reading.celsius > high
        )

    outside = timedelta()
    for reading, following in zip(ordered, ordered[1:], strict=False):
        if out(reading):
            outside += following.at - reading.at
    return Summary(
        first=ordered[0].at,
        last=ordered[-1].at,
        count=len(ordered),
        min_celsius=min(r.celsius for r in ordered),
        max_celsius=max(r.celsius for r in ordered),
        low=low,
        high=high,
        minutes_out_of_range=outside.total_seconds() / 60,
        readings_out_of_range=sum(1 for r in ordered if out(r)),
    )


def _lines(data: bytes) -> list[str]:
    if len(data) > MAX_BYTES:
        raise InvalidInput(
            f"logger file is {len(data):,} bytes; the limit is {MAX_BYTES:,}: split the file"
        )
    if not data.strip():
        raise InvalidInput("logger file is empty")
    if data.startswith(b"PK\x03\x04"):
        raise InvalidInput("logger file is a spreadsheet or ZIP archive, not text: export CSV")
    if data.startswith(b"%PDF"):
        raise InvalidInput("logger file is a PDF report, not text: export the readings as CSV")
    if b"\x00" in data:
        raise InvalidInput(
            "logger file is not text: it holds NUL bytes (binary data, or UTF-16: export "
            "the CSV as UTF-8)"
        )
    body = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        # Windows tools often write the header's '°' in Windows-1252.
        try:
            text = body.decode("cp1252")
        except UnicodeDecodeError:
            raise InvalidInput("logger file is not text (neither UTF-8 nor Windows-1252)") from None
    bad = _CONTROL_RE.search(text)
    if bad:
        line = len((text[: bad.start()] + "x").splitlines())
        raise InvalidInput(
            f"logger file line {line}: control character U+{ord(bad.group()):04X}; "
            "this is not a text file of readings"
        )
    return text.splitlines()


def _separator(line: str) -> str:
    if ";" in line:
        return ";"
    return "\t" if "\t" in line else ","


def _fields(line: str, sep: str, number: int) -> list[str]:
    if '"' not in line:
        return [f.strip() for f in line.split(sep)]
    try:
        return [f.strip() for f in next(csv.reader([line], delimiter=sep, strict=True))]
    except csv.Error:
        raise InvalidInput(f"logger file line {number}: unbalanced quotes") from None


def _is_header(fields: list[str], date_order: str) -> bool:
    temperature = fields[1] if len(fields) > 1 else ""
    if _celsius(temperature) is not None:
        return False
    try:
        _moment(fields[0], date_order)
    except _NotATime:
        return True
    return False  # a time with a bad temperature: a reading, refused as such


def _header_layout(fields: list[str], sep: str, zone: tzinfo, number: int) -> _Layout:
    names = [f.lower() for f in fields]
    time_col = _column(names, _TIME_NAMES)
    date_col = None
    if time_col is not None and _TIME_NAMES[0].search(names[time_col]) is None:
        # A date column and a time column ("Date;Time;Temp"): read together.
        date = next((i for i, n in enumerate(names) if n.strip() in ("date", "datum")), None)
        time = next((i for i, n in enumerate(names) if n.strip() in ("time", "zeit")), None)
        if date is not None and time is not None:
            date_col, time_col = date, time
    temp_col = _column(names, _TEMP_NAMES, skip=time_col, unless=_NOT_TEMP_RE)
    if temp_col is None and any(_FAHRENHEIT_RE.search(n) for n in names):
        shown = next(f for f in fields if _FAHRENHEIT_RE.search(f.lower()))
        raise InvalidInput(
            f"logger file line {number}: column {_shown(shown)} is in Fahrenheit; "
            "export the readings in °C"
        )
    time_col = 0 if time_col is None else time_col
    temp_col = time_col + 1 if temp_col is None else temp_col
    named = _HEADER_ZONE_RE.search(names[time_col])
    if named:
        sign, hours, minutes = named.groups()
        offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        if offset >= timedelta(hours=24):
            raise InvalidInput(
                f"logger file line {number}: column {_shown(fields[time_col])} names an "
                "offset of 24 hours or more"
            )
        zone = timezone(-offset if sign == "-" else offset) if offset else UTC
    return _Layout(sep, time_col, temp_col, zone, date_col, len(fields))


def _column(
    names: list[str],
    tiers: tuple[re.Pattern[str], ...],
    skip: int | None = None,
    unless: re.Pattern[str] | None = None,
) -> int | None:
    """The first column a pattern names, trying the patterns in turn."""
    for pattern in tiers:
        for i, name in enumerate(names):
            if i != skip and pattern.search(name) and not (unless and unless.search(name)):
                return i
    return None


def _row(fields: list[str], number: int, layout: _Layout, date_order: str) -> _Row:
    needed = max(layout.time_col, layout.temp_col, layout.date_col or 0) + 1
    if len(fields) < needed:
        raise InvalidInput(
            f"logger file line {number}: {len(fields)} field(s); expected at least {needed} "
            f"(the time in column {layout.time_col + 1}, °C in column {layout.temp_col + 1}, "
            f"separated by {layout.sep!r})"
        )
    _check_decimal_comma(fields, number, layout)
    typed = fields[layout.time_col]
    if layout.date_col is not None:
        typed = f"{fields[layout.date_col]} {typed}"
    try:
        moment = _moment(typed, date_order)
    except _NotATime as exc:
        why = f" ({exc})" if str(exc) else ""
        raise InvalidInput(
            f"logger file line {number}: {_shown(typed)} is not a time{why}"
        ) from None
    if moment.tzinfo is None and not _exists(moment, layout.zone):
        raise InvalidInput(
            f"logger file line {number}: {_shown(typed)} does not exist in "
            f"{_zone_name(layout.zone)} (the clocks went forward): is the logger's clock "
            "on standard time or UTC?"
        )
    temperature = fields[layout.temp_col]
    celsius = _celsius(temperature)
    if celsius is None:
        raise InvalidInput(
            f"logger file line {number}: {_shown(temperature)} is not a temperature in °C"
        )
    if celsius < ABSOLUTE_ZERO:
        raise InvalidInput(
            f"logger file line {number}: {_shown(temperature)} °C is below absolute zero "
            "(a sensor error code?)"
        )
    return _Row(number, moment, celsius)


def _check_decimal_comma(fields: list[str], number: int, layout: _Layout) -> None:
    """Refuse a row that a decimal comma in a comma-separated file may have split, so
    that -1,5 is never read as -1 °C followed by an extra column holding 5."""
    if layout.sep != ",":
        return
    if layout.named is not None and layout.named > max(layout.time_col, layout.temp_col):
        if any(fields[layout.named :]):
            raise InvalidInput(
                f"logger file line {number}: {len(fields)} fields where the header names "
                f"{layout.named} (a decimal comma in a comma-separated file?)"
            )
        return
    temp = layout.temp_col
    if (
        len(fields) > temp + 1
        and _DIGITS_RE.fullmatch(fields[temp + 1])
        and _INTEGER_RE.fullmatch(fields[temp])
    ):
        raise InvalidInput(
            f"logger file line {number}: {_shown(fields[temp] + ',' + fields[temp + 1])} "
            "is ambiguous: a decimal comma in a comma-separated file? Export with ';' as "
            "the separator, or quote the temperatures"
        )


def _moment(typed: str, date_order: str) -> datetime:
    """A time as typed: with its offset if it has one, a wall time if not."""
    moment = _typed_moment(typed, date_order)
    if not YEARS[0] <= moment.year <= YEARS[1]:
        raise _NotATime(f"the year is not from {YEARS[0]} to {YEARS[1]}")
    return moment


def _typed_moment(typed: str, date_order: str) -> datetime:
    if _ISO_RE.fullmatch(typed):
        try:
            return datetime.fromisoformat(typed.upper())
        except ValueError:
            raise _NotATime() from None
    found = _LOCALE_RE.fullmatch(typed)
    if found is None:
        raise _NotATime()
    a, b, c = (int(found.group(k)) for k in ("a", "b", "c"))
    if len(found.group("a")) == 4:
        year, month, day, order = a, b, c, "year/month/day"
    elif len(found.group("a")) <= 2 and len(found.group("c")) in (2, 4):
        year = c if c >= 100 else 2000 + c
        month, day = (b, a) if date_order == "DMY" else (a, b)
        order = f"{DATE_ORDERS[date_order]}, {date_order}"
    else:
        raise _NotATime()
    hour = int(found.group("hour"))
    half = found.group("half")
    if half:
        if not 1 <= hour <= 12:
            raise _NotATime(f"hour {hour} with {half.upper()}M")
        hour = hour % 12 + (12 if half in "Pp" else 0)
    try:
        day_of = datetime(year, month, day)
    except ValueError:
        raise _NotATime(f"read as {order}") from None
    try:
        return day_of.replace(
            hour=hour,
            minute=int(found.group("minute")),
            second=int(found.group("second") or 0),
            microsecond=int((found.group("fraction") or "0").ljust(6, "0")),
        )
    except ValueError:
        raise _NotATime() from None


def _exists(wall: datetime, zone: tzinfo) -> bool:
    """Whether a wall time exists in `zone` (it does not in the hour skipped in spring)."""
    there = wall.replace(tzinfo=zone)
    return there.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _resolve(rows: list[_Row], zone: tzinfo) -> list[Reading]:
    """The readings in UTC. A wall time in the hour repeated when the clocks go back is
    taken as its second occurrence once the wall times go back within that hour (read
    from the earliest end of the file, whichever way round it is written)."""

    def first_guess(row: _Row) -> datetime:
        moment = row.moment if row.moment.tzinfo else row.moment.replace(tzinfo=zone)
        return moment.astimezone(UTC)

    found: list[Reading | None] = [None] * len(rows)
    forward = first_guess(rows[-1]) >= first_guess(rows[0])
    previous: datetime | None = None  # the last wall time seen in the repeated hour
    second = False
    for i in range(len(rows)) if forward else range(len(rows) - 1, -1, -1):
        row = rows[i]
        moment = row.moment
        if moment.tzinfo is None:
            local = moment.replace(tzinfo=zone)
            if local.utcoffset() != local.replace(fold=1).utcoffset():
                second = second or (previous is not None and moment <= previous)
                previous = moment
                local = local.replace(fold=1 if second else 0)
            else:
                previous, second = None, False
            moment = local
        found[i] = Reading(moment.astimezone(UTC), row.celsius)
    return [r for r in found if r is not None]


def _celsius(typed: str) -> float | None:
    text = typed.replace("\u2212", "-")  # a typographic minus sign
    if len(text) > 40 or not _NUMBER_RE.fullmatch(text):
        return None
    value = float(text.replace(",", "."))
    return value if math.isfinite(value) else None


def _shown(value: str) -> str:
    text = value if len(value) <= 40 else value[:40] + "..."
    return repr(text)


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", zone))
