"""The dosing workflow's configuration: the "dosing" section of config/vault.json.

Manufacturing facilities (slots a day, working days only, closed days, holiday
calendar), product profiles, clinical sites (holiday calendar, the lists that get their
confirmations) and the list conflicts go to. Absent, these defaults hold, so a fresh
vault works:

    "dosing": {
      "facilities": {"MFG-01": {"slots": 1, "working_days_only": true, "closures": [],
                                "holidays": "US"}},
      "profiles": {"autologous-cart": {
          "manufacturing_days": 17, "release_testing_days": 7, "transit_days": 1,
          "delivery_window_days": 2, "ld_days": 3, "infusion_after_ld": [2, 14],
          "ld_repeat_after_days": 14, "shipper_hold_hours": 240,
          "working_days_only": ["manufacturing_start", "ship", "delivery_from",
                                "delivery_to"]}},
      "sites": {},
      "scheduling_lists": ["patient-scheduling"]
    }

`autologous-cart` is illustrative, shaped like the label examples (REGULATORY.md §6):
about 3-4 weeks from manufacturing start to release, LD of three days, infusion 2 to 14
days after LD ends. A site is {"holidays": "US-MA", "scheduler_list": "...",
"nursing_list": "..."}: slot confirmations go to its scheduler list, shipping
confirmations to its nursing list (both default to "patient-scheduling").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.dosing.model import FIELDS, Profile
from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

SECTION = "dosing"
CODE_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,39}")
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
DEFAULT_LIST = "patient-scheduling"


@dataclass(frozen=True)
class Facility:
    code: str
    slots: int
    working_days_only: bool
    closures: tuple[date, ...]
    holidays: str


@dataclass(frozen=True)
class Site:
    code: str
    holidays: str
    scheduler_list: str
    nursing_list: str


@dataclass(frozen=True)
class DosingSettings:
    facilities: dict[str, Facility]
    profiles: dict[str, Profile]
    sites: dict[str, Site]
    scheduling_lists: tuple[str, ...]

    def site(self, code: str | None) -> Site:
        """A site's settings (defaults for one the configuration does not name)."""
        if code is not None and code in self.sites:
            return self.sites[code]
        return Site(code or "", "US", DEFAULT_LIST, DEFAULT_LIST)

    def to_json(self) -> dict[str, Any]:
        return {
            "facilities": {
                f.code: {"slots": f.slots, "working_days_only": f.working_days_only,
                         "closures": [d.isoformat() for d in f.closures], "holidays": f.holidays}
                for f in self.facilities.values()
            },
            "profiles": {p.name: p.to_json() for p in self.profiles.values()},
            "sites": {
                s.code: {"holidays": s.holidays, "scheduler_list": s.scheduler_list,
                         "nursing_list": s.nursing_list}
                for s in self.sites.values()
            },
            "scheduling_lists": list(self.scheduling_lists),
        }  # fmt: skip


DEFAULTS: dict[str, Any] = {
    "facilities": {
        "MFG-01": {"slots": 1, "working_days_only": True, "closures": [], "holidays": "US"}
    },
    "profiles": {
        "autologous-cart": {
            "manufacturing_days": 17, "release_testing_days": 7, "transit_days": 1,
            "delivery_window_days": 2, "ld_days": 3, "infusion_after_ld": [2, 14],
            "ld_repeat_after_days": 14, "shipper_hold_hours": 240,
            "working_days_only": ["manufacturing_start", "ship", "delivery_from", "delivery_to"],
        }
    },
    "sites": {},
    "scheduling_lists": [DEFAULT_LIST],
}  # fmt: skip


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _bad(what: str) -> VaultError:
    return VaultError(f'config/vault.json "{SECTION}": {what}')


def parse(raw: dict[str, Any]) -> DosingSettings:
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise _bad(f"unknown setting(s) {', '.join(unknown)}")
    facilities = {}
    for code, f in _mapping(raw["facilities"], "facilities").items():
        if not (CODE_RE.fullmatch(code) and isinstance(f, dict) and _whole(f.get("slots", 1), 0, 100)
                and isinstance(f.get("working_days_only", True), bool)
                and isinstance(f.get("closures", []), list)):  # fmt: skip
            raise _bad(
                f'facility {code!r} needs "slots" (0 to 100), "working_days_only", "closures"'
            )
        try:
            closures = tuple(date.fromisoformat(str(d)) for d in f.get("closures", []))
        except ValueError:
            raise _bad(f"facility {code!r}: closures are dates, YYYY-MM-DD") from None
        facilities[code] = Facility(
            code, f.get("slots", 1), f.get("working_days_only", True), closures,
            _calendar(f.get("holidays", "US"), f"facility {code!r}"),
        )  # fmt: skip
    if not facilities:
        raise _bad('"facilities" must name at least one facility')
    profiles = {}
    for name, p in _mapping(raw["profiles"], "profiles").items():
        profiles[name] = _profile(name, p)
    sites = {}
    for code, s in _mapping(raw["sites"], "sites").items():
        if not (CODE_RE.fullmatch(code) and isinstance(s, dict)
                and all(isinstance(s.get(k, ""), str) for k in ("holidays", "scheduler_list", "nursing_list"))):  # fmt: skip
            raise _bad(f'site {code!r} is {{"holidays", "scheduler_list", "nursing_list"}}')
        sites[code] = Site(
            code, _calendar(s.get("holidays", "US"), f"site {code!r}"),
            s.get("scheduler_list", DEFAULT_LIST),
            s.get("nursing_list", DEFAULT_LIST),
        )  # fmt: skip
    lists = raw["scheduling_lists"]
    if not (isinstance(lists, list) and all(isinstance(n, str) for n in lists)):
        raise _bad('"scheduling_lists" must be a list of distribution list names')
    return DosingSettings(facilities, profiles, sites, tuple(lists))


def _calendar(code: object, where: str) -> str:
    """A holiday calendar code the `holidays` package knows (checked, so a typo is named
    here and not deep inside a conflict check)."""
    from atmpvault.archive.core.workdays import holiday_calendar
    from atmpvault.errors import InvalidInput

    try:
        return holiday_calendar(str(code))
    except InvalidInput as exc:
        raise _bad(f"{where}: {exc}") from None


def _mapping(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f'"{what}" must be an object')
    return value


def _profile(name: str, p: object) -> Profile:
    keys = set(DEFAULTS["profiles"]["autologous-cart"])
    if not (NAME_RE.fullmatch(name) and isinstance(p, dict) and set(p) == keys):
        raise _bad(f"profile {name!r} needs exactly: {', '.join(sorted(keys))}")
    window = p["infusion_after_ld"]
    whole = ("manufacturing_days", "release_testing_days", "transit_days",
             "delivery_window_days", "ld_days", "ld_repeat_after_days")  # fmt: skip
    if not (all(_whole(p[k], 0, 365) for k in whole) and p["delivery_window_days"] >= 1
            and p["ld_days"] >= 1 and isinstance(window, list) and len(window) == 2
            and all(_whole(w, 0, 365) for w in window) and window[0] <= window[1]
            and isinstance(p["shipper_hold_hours"], int | float) and p["shipper_hold_hours"] > 0
            and isinstance(p["working_days_only"], list)
            and set(p["working_days_only"]) <= set(FIELDS)):  # fmt: skip
        raise _bad(f"profile {name!r} has a value out of range")
    return Profile(
        name, p["manufacturing_days"], p["release_testing_days"], p["transit_days"],
        p["delivery_window_days"], p["ld_days"], (window[0], window[1]),
        p["ld_repeat_after_days"], float(p["shipper_hold_hours"]),
        tuple(p["working_days_only"]),
    )  # fmt: skip


def effective(section: object) -> dict[str, Any]:
    """The settings a "dosing" section gives, defaults filled in (for `config show/set`)."""
    if section is not None and not isinstance(section, dict):
        raise _bad("must be an object of settings")
    return parse({**DEFAULTS, **(section or {})}).to_json()


def dosing_settings(vault: Vault) -> DosingSettings:
    section = vault.config.sections.get(SECTION)
    if section is not None and not isinstance(section, dict):
        raise _bad("must be an object of settings")
    return parse({**DEFAULTS, **(section or {})})


def list_users(vault: Vault, name: str) -> list[str]:
    found = dosing_settings(vault)
    users = ["dosing conflicts go to it" for _ in [0] if name in found.scheduling_lists]
    users += [
        f"dosing confirmations for site {s.code} go to it"
        for s in found.sites.values()
        if name in (s.scheduler_list, s.nursing_list)
    ]
    return users
