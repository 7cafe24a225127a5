"""The quality workflow's configuration: the "quality" section of config/vault.json.

Deviation classes with their investigation due days, the aging buckets, the warning
window and the escalation levels differ between companies; absent, these defaults hold:

    "quality": {
      "classes": {"minor": 30, "major": 30, "critical": 15},
      "buckets": [7, 14, 30],
      "warning_days": 5,
      "escalation": [
        {"level": "qa-management", "after_days": 0, "lists": ["qa-management"]},
        {"level": "head-of-quality", "after_days": 14, "lists": ["head-of-quality"]}
      ]
    }

Buckets are the last day of each age bucket (0-7, 8-14, 15-30, over 30). An item overdue
by at least a level's `after_days` is escalated at that level, to its owner and lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

SECTION = "quality"
NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
WARNING = "warning"  # the level of an item not yet due but inside the warning window


@dataclass(frozen=True)
class Level:
    """One escalation level: from how many days overdue, to which lists."""

    name: str
    after_days: int
    lists: tuple[str, ...]


@dataclass(frozen=True)
class QualitySettings:
    """What the quality workflow reads from the vault's configuration."""

    classes: dict[str, int]  # class -> investigation due days
    buckets: tuple[int, ...]
    warning_days: int
    levels: tuple[Level, ...]

    def due_days(self, deviation_class: str) -> int:
        return self.classes[deviation_class]

    def bucket_names(self) -> list[str]:
        """The age buckets by name: 0-7, 8-14, 15-30, >30."""
        names, start = [], 0
        for end in self.buckets:
            names.append(f"{start}-{end}")
            start = end + 1
        return [*names, f">{self.buckets[-1]}"]

    def bucket(self, age_days: int) -> str:
        """The name of the bucket an age in days falls in."""
        for name, end in zip(self.bucket_names(), self.buckets, strict=False):
            if age_days <= end:
                return name
        return self.bucket_names()[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": dict(self.classes),
            "buckets": list(self.buckets),
            "warning_days": self.warning_days,
            "escalation": [
                {"level": lv.name, "after_days": lv.after_days, "lists": list(lv.lists)}
                for lv in self.levels
            ],
        }


DEFAULTS: dict[str, Any] = {
    "classes": {"minor": 30, "major": 30, "critical": 15},
    "buckets": [7, 14, 30],
    "warning_days": 5,
    "escalation": [
        {"level": "qa-management", "after_days": 0, "lists": ["qa-management"]},
        {"level": "head-of-quality", "after_days": 14, "lists": ["head-of-quality"]},
    ],
}


def quality_settings(vault: Vault) -> QualitySettings:
    """The vault's quality settings (defaults for what it does not set); a broken section
    is refused by every quality command, naming what is wrong."""
    section = vault.config.sections.get(SECTION)
    if section is not None and not isinstance(section, dict):
        raise VaultError(f'config/vault.json "{SECTION}" must be an object of settings')
    return parse({**DEFAULTS, **(section or {})})


def effective(section: object) -> dict[str, Any]:
    """The settings a "quality" section gives, defaults filled in (for `config show/set`)."""
    if section is not None and not isinstance(section, dict):
        raise VaultError(f'config/vault.json "{SECTION}" must be an object of settings')
    return parse({**DEFAULTS, **(section or {})}).to_json()


def _whole(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def parse(raw: dict[str, Any]) -> QualitySettings:
    where = f'config/vault.json "{SECTION}"'
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise VaultError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; settings: {', '.join(DEFAULTS)}"
        )
    classes = raw["classes"]
    if (
        not isinstance(classes, dict)
        or not classes
        or not all(isinstance(k, str) and NAME_RE.fullmatch(k) for k in classes)
        or not all(_whole(v, 1, 3650) for v in classes.values())
    ):
        raise VaultError(f'{where}: "classes" must map class names to 1 to 3650 due days')
    buckets = raw["buckets"]
    if (
        not isinstance(buckets, list)
        or not buckets
        or not all(_whole(b, 0, 3650) for b in buckets)
        or sorted(set(buckets)) != buckets
    ):
        raise VaultError(f'{where}: "buckets" must be increasing whole days, e.g. [7, 14, 30]')
    warning = raw["warning_days"]
    if not _whole(warning, 0, 365):
        raise VaultError(f'{where}: "warning_days" must be 0 to 365')
    levels = []
    for entry in raw["escalation"] if isinstance(raw["escalation"], list) else [None]:
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("level"), str)
            and NAME_RE.fullmatch(entry["level"])
            and entry["level"] != WARNING
            and _whole(entry.get("after_days"), 0, 3650)
            and isinstance(entry.get("lists"), list)
            and all(isinstance(n, str) for n in entry["lists"])
        ):
            raise VaultError(
                f'{where}: each "escalation" level needs "level" (a name), "after_days" '
                '(0 to 3650) and "lists" (distribution list names)'
            )
        levels.append(Level(entry["level"], entry["after_days"], tuple(entry["lists"])))
    if [lv.after_days for lv in levels] != sorted({lv.after_days for lv in levels}):
        raise VaultError(f'{where}: escalation levels must have increasing "after_days"')
    return QualitySettings(dict(classes), tuple(buckets), warning, tuple(levels))


def list_users(vault: Vault, name: str) -> list[str]:
    """Why a distribution list is still needed: escalations go to it."""
    return [
        f"quality escalations at level {lv.name} go to it"
        for lv in quality_settings(vault).levels
        if name in lv.lists
    ]
