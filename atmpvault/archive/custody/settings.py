"""The custody workflow's configuration: the "custody" section of config/vault.json.

The steps of the chain (in order, with temperature limits, which may be skipped, and
after which a certificate is issued), shippers' hold times, the lists told of a chain
break and of status updates, and how each site's logger files write their times.
Absent, these defaults hold (an autologous CAR-T chain, cryopreserved after collection):

    "custody": {
      "steps": [
        {"step": "collection", "low": 2, "high": 8},
        {"step": "labeling", "low": 2, "high": 8},
        {"step": "cryopreservation", "optional": true},
        {"step": "shipment-to-manufacturing", "high": -150},
        {"step": "receipt-at-manufacturing", "high": -150, "certificate": true},
        {"step": "manufacturing-start"},
        {"step": "release-testing"},
        {"step": "qa-release"},
        {"step": "shipment-to-site", "high": -150},
        {"step": "receipt-at-site", "high": -150},
        {"step": "thaw"},
        {"step": "bedside-identity-check"},
        {"step": "administration", "certificate": true}
      ],
      "hold_hours": {"default": 240},
      "break_lists": ["manufacturing-leadership", "qa-management"],
      "status_lists": ["clinical-team", "patient-scheduling"],
      "sites": {}
    }

`relabel` may occur at any point (it changes the unit's DIN). A shipment step's transit
runs from it to the receipt step after it; it must be within the shipper's hold time
(`hold_hours` by shipper id, else "default"). `sites` names, per site, the time zone and
date order ("DMY" or "MDY") of its logger files: {"SITE": {"timezone": "Europe/Berlin",
"date_order": "DMY"}}.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

SECTION = "custody"
RELABEL = "relabel"
QA_RELEASE = "qa-release"
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
SHIPMENTS = {"shipment-to-manufacturing": "receipt-at-manufacturing",
             "shipment-to-site": "receipt-at-site"}  # fmt: skip


@dataclass(frozen=True)
class Step:
    """One step of the chain."""

    name: str
    low: float | None = None
    high: float | None = None
    optional: bool = False
    certificate: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"step": self.name}
        if self.low is not None:
            data["low"] = self.low
        if self.high is not None:
            data["high"] = self.high
        if self.optional:
            data["optional"] = True
        if self.certificate:
            data["certificate"] = True
        return data


@dataclass(frozen=True)
class Site:
    timezone: str
    date_order: str


@dataclass(frozen=True)
class CustodySettings:
    steps: tuple[Step, ...]
    hold_hours: dict[str, float]
    break_lists: tuple[str, ...]
    status_lists: tuple[str, ...]
    sites: dict[str, Site]

    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        if name == RELABEL:
            return Step(RELABEL)
        raise KeyError(name)

    def hold(self, shipper: str | None) -> float:
        return self.hold_hours.get(shipper or "", self.hold_hours["default"])

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "hold_hours": dict(self.hold_hours),
            "break_lists": list(self.break_lists),
            "status_lists": list(self.status_lists),
            "sites": {k: {"timezone": v.timezone, "date_order": v.date_order}
                      for k, v in self.sites.items()},
        }  # fmt: skip


DEFAULTS: dict[str, Any] = {
    "steps": [
        {"step": "collection", "low": 2, "high": 8},
        {"step": "labeling", "low": 2, "high": 8},
        {"step": "cryopreservation", "optional": True},
        {"step": "shipment-to-manufacturing", "high": -150},
        {"step": "receipt-at-manufacturing", "high": -150, "certificate": True},
        {"step": "manufacturing-start"},
        {"step": "release-testing"},
        {"step": QA_RELEASE},
        {"step": "shipment-to-site", "high": -150},
        {"step": "receipt-at-site", "high": -150},
        {"step": "thaw"},
        {"step": "bedside-identity-check"},
        {"step": "administration", "certificate": True},
    ],
    "hold_hours": {"default": 240},
    "break_lists": ["manufacturing-leadership", "qa-management"],
    "status_lists": ["clinical-team", "patient-scheduling"],
    "sites": {},
}


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse(raw: dict[str, Any]) -> CustodySettings:
    where = f'config/vault.json "{SECTION}"'
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise VaultError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    steps = []
    for entry in raw["steps"] if isinstance(raw["steps"], list) else [None]:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("step"), str)
            and NAME_RE.fullmatch(entry["step"])
            and entry["step"] != RELABEL
            and set(entry) <= {"step", "low", "high", "optional", "certificate"}
            and all(_number(entry[k]) for k in ("low", "high") if k in entry)
            and all(isinstance(entry.get(k, False), bool) for k in ("optional", "certificate"))
        ):
            raise VaultError(
                f'{where}: each of "steps" needs "step" (a name) and may have "low" and '
                '"high" (°C), "optional" and "certificate" (true or false)'
            )
        steps.append(
            Step(entry["step"], entry.get("low"), entry.get("high"),
                 entry.get("optional", False), entry.get("certificate", False))
        )  # fmt: skip
    if not steps or len({s.name for s in steps}) != len(steps):
        raise VaultError(f'{where}: "steps" must name each step once')
    hold = raw["hold_hours"]
    if not (isinstance(hold, dict) and "default" in hold
            and all(_number(v) and 0 < v <= 10_000 for v in hold.values())):  # fmt: skip
        raise VaultError(f'{where}: "hold_hours" maps shippers (and "default") to hours')
    lists = {}
    for key in ("break_lists", "status_lists"):
        value = raw[key]
        if not (isinstance(value, list) and all(isinstance(n, str) for n in value)):
            raise VaultError(f'{where}: "{key}" must be a list of distribution list names')
        lists[key] = tuple(value)
    sites = {}
    for name, site in (
        (raw["sites"] or {}).items() if isinstance(raw["sites"], dict) else [(None, None)]
    ):
        if not (isinstance(site, dict) and isinstance(site.get("timezone", "UTC"), str)
                and site.get("date_order", "DMY") in ("DMY", "MDY")):  # fmt: skip
            raise VaultError(f'{where}: "sites" maps sites to {{"timezone", "date_order"}}')
        sites[str(name)] = Site(site.get("timezone", "UTC"), site.get("date_order", "DMY"))
    return CustodySettings(
        tuple(steps), {str(k): float(v) for k, v in hold.items()}, lists["break_lists"],
        lists["status_lists"], sites,
    )  # fmt: skip


def effective(section: object) -> dict[str, Any]:
    """The settings a "custody" section gives, defaults filled in (for `config show/set`)."""
    if section is not None and not isinstance(section, dict):
        raise VaultError(f'config/vault.json "{SECTION}" must be an object of settings')
    return parse({**DEFAULTS, **(section or {})}).to_json()


def custody_settings(vault: Vault) -> CustodySettings:
    """The vault's custody settings; a broken section is refused, naming what is wrong."""
    section = vault.config.sections.get(SECTION)
    if section is not None and not isinstance(section, dict):
        raise VaultError(f'config/vault.json "{SECTION}" must be an object of settings')
    return parse({**DEFAULTS, **(section or {})})


def list_users(vault: Vault, name: str) -> list[str]:
    """Why a distribution list is still needed: chain breaks or status updates go to it."""
    found = custody_settings(vault)
    return [
        f"custody {what} go to it"
        for what, lists in (
            ("chain breaks", found.break_lists),
            ("status updates", found.status_lists),
        )
        if name in lists
    ]
