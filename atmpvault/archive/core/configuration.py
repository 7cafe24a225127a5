"""The vault's own configuration, versioned in the repository at config/vault.json.

Document types, the index engine, distribution lists, the vault's time zone and the
dates people may enter: what differs between companies, changed by a commit with a
reason like any record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo

from atmpvault.archive.core import values
from atmpvault.archive.core.domain import Domain
from atmpvault.config import DEFAULT_DOCUMENT_TYPES
from atmpvault.errors import InvalidInput, VaultError

CONFIG_PATH = "config/vault.json"
CONFIG_FORMAT = 1


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


def _dates(raw: object, zone: tzinfo) -> values.DateRange:
    """The configured date range; a broken one is refused by every command that reads it."""
    try:
        return values.date_range(raw, CONFIG_PATH, zone)
    except InvalidInput as exc:
        raise VaultError(str(exc)) from None
