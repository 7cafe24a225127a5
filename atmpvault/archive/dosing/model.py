"""The dosing schedule of one lot, its product profile, and the conflicts found in it.

Pure data: the service (service.py) reads and writes them; the conflict rules
(conflicts.py) and the coordination board (board.py) are computed from them.
Day 0 is the infusion; dates are calendar days in the vault's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from atmpvault.archive.dosing.fields import FIELDS

__all__ = ["FIELDS", "Conflict", "Profile", "Schedule"]


@dataclass(frozen=True)
class Profile:
    """A product's timing, shaped like the label examples (REGULATORY.md §6)."""

    name: str
    manufacturing_days: int  # manufacturing start to expected completion
    release_testing_days: int  # completion to expected release
    transit_days: int  # ship to the first day of the delivery window
    delivery_window_days: int  # days the delivery window spans (1: one day)
    ld_days: int  # days of the lymphodepleting regimen (e.g. 3: days -5, -4, -3)
    infusion_after_ld: tuple[int, int]  # infusion so many days after LD ends, min and max
    ld_repeat_after_days: int  # infusion later than this after LD ends: repeat LD
    shipper_hold_hours: float
    working_days_only: tuple[str, ...]  # fields that must fall on working days

    def to_json(self) -> dict[str, Any]:
        return {
            "manufacturing_days": self.manufacturing_days,
            "release_testing_days": self.release_testing_days,
            "transit_days": self.transit_days,
            "delivery_window_days": self.delivery_window_days,
            "ld_days": self.ld_days,
            "infusion_after_ld": list(self.infusion_after_ld),
            "ld_repeat_after_days": self.ld_repeat_after_days,
            "shipper_hold_hours": self.shipper_hold_hours,
            "working_days_only": list(self.working_days_only),
        }


@dataclass(frozen=True)
class Schedule:
    """One lot's dosing schedule as planned (with `actual` dates from custody beside it)."""

    lot: str
    program: str
    coi: str | None
    profile: str
    facility: str
    site: str | None  # the clinical site that infuses
    dates: dict[str, date]  # FIELDS -> planned date
    actual: dict[str, date] = field(default_factory=dict)  # from custody events, where any
    availability_confirmed: date | None = None
    lot_status: str = "planned"
    holds: tuple[str, ...] = ()  # the lot's release holds now (deviations, chain breaks)
    version: int = 1

    def day(self, name: str) -> date:
        """The actual date where custody recorded one, else the planned one."""
        return self.actual.get(name) or self.dates[name]


@dataclass(frozen=True)
class Conflict:
    """One timing conflict: the rule broken, the dates involved, who must act."""

    lot: str
    rule: str  # e.g. "ld-before-release", "infusion-window", "non-working-day"
    dates: dict[str, date]  # the dates involved, by field
    message: str  # one line a coordinator can act on
    act: str  # who must act: "scheduler", "qa", "site", "logistics", "manufacturing"

    def key(self) -> str:
        """A stable key: the same conflict on the same dates is the same conflict."""
        shown = ",".join(f"{k}={v.isoformat()}" for k, v in sorted(self.dates.items()))
        return f"{self.lot}/{self.rule}/{shown}"

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "rule": self.rule,
            "dates": {k: v.isoformat() for k, v in self.dates.items()},
            "message": self.message,
            "act": self.act,
        }
