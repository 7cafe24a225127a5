"""The vault's own configuration, versioned in the repository at config/vault.json.

Document types, the index engine, distribution lists, the vault's time zone and the
dates people may enter: what differs between companies, changed by a commit with a
reason like any record (`Configuration` here for the time zone and dates, `atmpvault config`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, tzinfo
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.domain import Domain, load
from atmpvault.config import CONFIG_PATH, DEFAULT_DOCUMENT_TYPES
from atmpvault.errors import InvalidInput, NothingChanged, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

CONFIG_FORMAT = 1
# Sections of config/vault.json that a workflow reads and checks itself.
WORKFLOW_SECTIONS = ("quality", "custody", "dosing")
# Sections the core keeps and checks itself, by the hook that reads them.
CORE_SECTIONS = {"access": "atmpvault.archive.core.access:settings"}


@dataclass(frozen=True)
class VaultConfig:
    """The vault's own configuration, versioned in the repository."""

    document_types: tuple[str, ...]
    index_engine: str = "tantivy"
    # list name -> e-mail addresses, for notices (see archive/notices.py)
    distribution_lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the dates people may enter (absent from the file: 1990-01-01 to 10 years ahead), as
    # days in the vault's time zone (its "timezone"; absent: UTC)
    dates: values.DateRange = values.DEFAULT_DATES
    # the holiday calendar due dates are checked against (see workdays.py)
    holidays: str = "US"
    # per kind of milestone, the sponsor's own target: so many days before the due date
    targets: dict[str, int] = field(default_factory=dict)
    # the directory of people (name -> e-mail address) workflow steps name (see people.py)
    people: dict[str, str] = field(default_factory=dict)
    # the sections workflows keep for themselves (e.g. "quality"), as read
    sections: dict[str, Any] = field(default_factory=dict)

    @property
    def zone(self) -> tzinfo:
        """The vault's time zone: what "today" is, and what a time without offset means."""
        return self.dates.zone

    @property
    def timezone(self) -> str:
        """The IANA name of the vault's time zone ("UTC" for a vault that never set one)."""
        return values.zone_name(self.dates.zone)

    @classmethod
    def default(cls, domains: Iterable[Domain] = ()) -> VaultConfig:
        """The configuration of a new vault: the default types, then those workflows add."""
        types = list(DEFAULT_DOCUMENT_TYPES)
        types += [t for d in domains for t in d.document_types if t not in types]
        return cls(document_types=tuple(dict.fromkeys(types)))

    @classmethod
    def parse(cls, raw: bytes) -> VaultConfig:
        data = json.loads(raw)
        return cls(
            document_types=tuple(data.get("document_types", DEFAULT_DOCUMENT_TYPES)),
            index_engine=data.get("index", {}).get("engine", "tantivy"),
            distribution_lists={
                str(name): tuple(addresses)
                for name, addresses in data.get("distribution_lists", {}).items()
            },
            dates=_dates(data.get("dates"), _zone(data.get("timezone"))),
            holidays=str(data.get("holidays", "US")),
            targets=_targets(data.get("targets")),
            people={str(k): str(v) for k, v in (data.get("people") or {}).items()},
            sections={
                k: v for k, v in data.items() if k in WORKFLOW_SECTIONS or k in CORE_SECTIONS
            },
        )

    def serialise(self) -> bytes:
        data = {
            "format": CONFIG_FORMAT,
            "document_types": list(self.document_types),
            "index": {"engine": self.index_engine},
        }
        if self.distribution_lists:
            data["distribution_lists"] = {
                name: list(addresses) for name, addresses in sorted(self.distribution_lists.items())
            }
        if self.dates.zone is not UTC:
            data["timezone"] = self.timezone
        if self.holidays != "US":
            data["holidays"] = self.holidays
        if self.targets:
            data["targets"] = dict(sorted(self.targets.items()))
        if self.people:
            data["people"] = dict(sorted(self.people.items()))
        data.update(self.sections)
        if (self.dates.earliest, self.dates.years_ahead) != (values.EARLIEST, values.YEARS_AHEAD):
            data["dates"] = {
                "earliest": self.dates.earliest.isoformat(),
                "years_ahead": self.dates.years_ahead,
            }
        return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _zone(raw: object) -> tzinfo:
    """The configured time zone; a broken one is refused by every command that reads it."""
    if raw is None:
        return UTC
    try:
        if not isinstance(raw, str):
            raise InvalidInput(f"time zone {raw!r} is not a name")
        return values.zone(raw)
    except InvalidInput as exc:
        raise VaultError(f'{CONFIG_PATH}: "timezone": {exc}') from None


def _targets(raw: object) -> dict[str, int]:
    """The sponsor's target days per kind of milestone; a broken entry is refused."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 366
        for k, v in raw.items()
    ):
        raise VaultError(f'{CONFIG_PATH}: "targets" must map kinds to 1 to 366 days')
    return dict(raw)


def _dates(raw: object, zone: tzinfo) -> values.DateRange:
    """The configured date range; a broken one is refused by every command that reads it."""
    try:
        return values.date_range(raw, CONFIG_PATH, zone)
    except InvalidInput as exc:
        raise VaultError(str(exc)) from None


# -- the settings `atmpvault config` shows and sets ---------------------------------------

SETTINGS = ("timezone", "dates.earliest", "dates.years_ahead", "holidays")
TARGETS = "targets."  # targets.<kind>: days before the due date (0 removes the target)
_KIND_RE = re.compile(r"[a-z][a-z-]{0,30}")


def settings_of(config: VaultConfig) -> dict[str, Any]:
    """The settable values of a configuration, by key (absent ones at their defaults)."""
    return {
        "timezone": config.timezone,
        "dates.earliest": config.dates.earliest.isoformat(),
        "dates.years_ahead": config.dates.years_ahead,
        "holidays": config.holidays,
        **{f"{TARGETS}{kind}": days for kind, days in sorted(config.targets.items())},
    }


@dataclass(frozen=True)
class SettingChange:
    """One setting changed by one commit."""

    key: str
    value: Any
    previous: Any
    commit: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": self.value,
            "previous": self.previous,
            "commit": self.commit,
        }


class Configuration:
    """The vault's settings (time zone, dates people may enter), kept in config/vault.json."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def show(self) -> dict[str, Any]:
        """Every setting, by key, as the vault was opened (a workflow's as section.key)."""
        shown = settings_of(self.vault.config)
        for name, hook in self._section_hooks().items():
            for key, value in load(hook)(self.vault.config.sections.get(name)).items():
                shown[f"{name}.{key}"] = value
        return shown

    def _section_hooks(self) -> dict[str, str]:
        """The sections of config/vault.json read by a hook: the core's, each workflow's."""
        found = dict(CORE_SECTIONS)
        found.update({d.name: d.settings for d in self.vault.domains if d.settings is not None})
        return found

    def set(self, key: str, value: str, reason: str, actor: str | None = None) -> SettingChange:
        """Change one setting: a commit with the reason, audited as set-config.

        InvalidInput for an unknown key or a malformed value; NothingChanged if the
        setting already has that value.
        """
        targeted = key.startswith(TARGETS) and _KIND_RE.fullmatch(key[len(TARGETS) :])
        workflow = self._workflow_setting(key)
        if key not in SETTINGS and not targeted and workflow is None:
            raise InvalidInput(
                f"unknown setting {key[:40]!r}; settings: {', '.join(SETTINGS)}, "
                f"{TARGETS}KIND (e.g. {TARGETS}sponsor-due)"
            )
        why = values.reason(reason)
        vault = self.vault
        with vault.writing():
            # Read the configuration as the tip has it now, under the lock, and change only
            # this key, so settings other modules keep in the same file are left untouched.
            current = vault.read_file(CONFIG_PATH) or b"{}"
            config = VaultConfig.parse(current)
            before = settings_of(config)
            raw: dict[str, Any] = json.loads(current)
            if workflow is not None:
                before[key] = workflow[1](raw.get(workflow[0])).get(key.partition(".")[2])
                new = _set_section(raw, key, value, workflow[1])
            else:
                new = _set(raw, key, value, config.zone)
            if new == before.get(key, 0):
                raise NothingChanged(f"{key} is already {new}; nothing was changed")
            commit = commit_config(
                vault,
                raw,
                f"Set {key} to {new} (was {before.get(key, 0)})",
                {"Action": "set-config", "Key": key},
                why,
                actor,
            )
        return SettingChange(key, new, before.get(key, 0), commit)

    def _workflow_setting(self, key: str) -> tuple[str, Any] | None:
        """(section, the workflow's settings hook) for a key such as quality.buckets."""
        section, _, name = key.partition(".")
        ref = self._section_hooks().get(section)
        if ref is None or not name:
            return None
        hook = load(ref)
        if name not in hook(None):
            known = ", ".join(f"{section}.{k}" for k in hook(None))
            raise InvalidInput(f"unknown setting {key[:60]!r}; {section} settings: {known}")
        return section, hook


def _set_section(raw: dict[str, Any], key: str, typed: str, hook: Any) -> Any:
    """Put a workflow's setting (a JSON value: 45, [7, 14, 30], {...}) into its section,
    checked by the workflow; the value as it now reads."""
    section, _, name = key.partition(".")
    try:
        value = json.loads(typed)
    except ValueError:
        value = typed  # a bare word is a string
    changed = {**(raw.get(section) or {}), name: value}
    try:
        effective = hook(changed)
    except VaultError as exc:
        raise InvalidInput(f"{key}: {exc}") from None
    raw[section] = changed
    return effective[name]


def commit_config(
    vault: Vault,
    raw: dict[str, Any],
    subject: str,
    trailers: dict[str, str],
    reason: str,
    actor: str | None,
) -> str:
    """Write the changed configuration as one commit, once it is known to read back.
    The caller holds the writer lock and read `raw` under it from the tip."""
    data = (json.dumps(raw, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    VaultConfig.parse(data)  # what we write must read back
    return vault.commit_files({CONFIG_PATH: data}, subject, trailers, reason=reason, actor=actor)


def _set(raw: dict[str, Any], key: str, typed: str, zone: tzinfo) -> Any:
    """Put the checked value of `key` into the raw configuration; the value as shown."""
    text = typed.strip()
    if key == "holidays":
        from atmpvault.archive.core.workdays import holiday_calendar

        code = holiday_calendar(text)
        if code == "US":
            raw.pop("holidays", None)  # absent means US federal holidays
        else:
            raw["holidays"] = code
        return code
    if key.startswith(TARGETS):
        if not (text.isascii() and text.isdigit()) or int(text) > 366:
            raise InvalidInput(f"{key} {text[:20]!r} must be 0 (none) to 366 days")
        targets = dict(raw.get("targets") or {})
        kind = key[len(TARGETS) :]
        if int(text):
            targets[kind] = int(text)
        else:
            targets.pop(kind, None)
        if targets:
            raw["targets"] = dict(sorted(targets.items()))
        else:
            raw.pop("targets", None)
        return int(text)
    if key == "timezone":
        name = values.zone_name(values.zone(text, "timezone", known=True))
        if name == "UTC":
            raw.pop("timezone", None)  # absent means UTC: the file a new vault has
        else:
            raw["timezone"] = name
        return name
    dates = dict(raw.get("dates") or {})
    if key == "dates.earliest":
        earliest = _earliest(text, zone)
        dates["earliest"] = earliest
        result: Any = earliest
    else:
        if not (text.isascii() and text.isdigit()) or int(text) > values.MAX_YEARS_AHEAD:
            raise InvalidInput(
                f"dates.years_ahead {text[:40]!r} must be a whole number of years from 0 to "
                f"{values.MAX_YEARS_AHEAD}"
            )
        result = dates["years_ahead"] = int(text)
    raw["dates"] = dates
    return result


def _earliest(text: str, zone: tzinfo) -> str:
    """A first accepted date: YYYY-MM-DD from 1900-01-01 to today in the vault's zone."""
    try:
        found = date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        found = None
    last = values.today(zone)
    if found is None or not values.FIRST_ALLOWED <= found <= last:
        raise InvalidInput(
            f"dates.earliest {text[:40]!r} must be a date (YYYY-MM-DD) from "
            f"{values.FIRST_ALLOWED.isoformat()} to today, {last.isoformat()}"
        )
    return found.isoformat()
