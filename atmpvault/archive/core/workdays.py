"""Working days: whether a date falls on a weekend or on a holiday of the vault's holiday
calendar. The only module that imports the `holidays` package.

A calendar is a country code with an optional subdivision ("US", the default: US
federal holidays; "US-CA"; "DE-BY"), or "none" for weekends only. Rules stay in calendar
days; a due date on a non-working day is flagged so people plan for it.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any

from atmpvault.errors import InvalidInput

DEFAULT_CALENDAR = "US"
NO_HOLIDAYS = "none"
_CODE_RE = re.compile(r"([A-Z]{2})(?:-([A-Z0-9]{1,3}))?")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def holiday_calendar(value: str) -> str:
    """A holiday calendar the `holidays` package knows, e.g. US, US-CA; or "none"."""
    import holidays

    text = value.strip()
    if text.lower() == NO_HOLIDAYS:
        return NO_HOLIDAYS
    match = _CODE_RE.fullmatch(text.upper())
    supported = holidays.list_supported_countries()
    if match is None or match[1] not in supported:
        raise InvalidInput(
            f"unknown holiday calendar {value[:20]!r}: use a country code such as US, "
            "optionally with a subdivision (US-CA), or none"
        )
    if match[2] is not None and match[2] not in supported[match[1]]:
        raise InvalidInput(f"{match[1]} has no subdivision {match[2]!r}")
    return match[0]


@lru_cache(maxsize=8)
def _holidays(code: str) -> Any:
    import holidays

    country, _, subdiv = code.partition("-")
    return holidays.country_holidays(country, subdiv=subdiv or None)


def non_working(day: date, code: str = DEFAULT_CALENDAR) -> str | None:
    """Why `day` is not a working day ("Saturday", "holiday: Thanksgiving Day"), or None."""
    if day.weekday() >= 5:
        return _DAYS[day.weekday()]
    if code == NO_HOLIDAYS:
        return None
    name = _holidays(code).get(day)
    return f"holiday: {name}" if name else None
