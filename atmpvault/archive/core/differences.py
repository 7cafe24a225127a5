"""What differs between two versions of a record, and recorded values as a person reads
them (a history, a lot's trail, a closure report)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldChange:
    """One field whose value differs between two versions of a record."""

    name: str  # "title", or "meta.site" for one key of a mapping field
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        return {"field": self.name, "old": self.old, "new": self.new}


def field_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], names: Iterable[str]
) -> list[FieldChange]:
    """The named fields that differ, in the order named; a mapping field (meta) by its keys."""
    changes = []
    for name in names:
        old, new = before.get(name), after.get(name)
        if isinstance(old, Mapping) or isinstance(new, Mapping):
            old, new = dict(old or {}), dict(new or {})
            changes += [
                FieldChange(f"{name}.{key}", old.get(key), new.get(key))
                for key in sorted(set(old) | set(new))
                if old.get(key) != new.get(key)
            ]
        elif old != new:
            changes.append(FieldChange(name, old, new))
    return changes


EMPTY: tuple[Any, ...] = (None, "", [], {})
STORED_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def shown(value: Any) -> str:
    """A recorded value as a person reads it: lists joined, mappings as key: value, stored
    times to the second (the CSV keeps every value exactly)."""
    if value in EMPTY:
        return "\u2014"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and STORED_TIME.fullmatch(value):
        return value[:19].replace("T", " ")
    if isinstance(value, dict) and "doc" in value and "version" in value:  # an attachment
        return f"{value['doc']} v{value['version']} {value.get('filename') or ''}".strip()
    if isinstance(value, dict) and "from" in value and "to" in value:  # an extension
        return f"{value['from']} \u2192 {value['to']} ({value.get('reason') or ''})"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {shown(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, list):
        return ", ".join(shown(v) if not isinstance(v, dict) else f"({shown(v)})" for v in value)
    return str(value)


def shown_change(old: Any, new: Any) -> tuple[str, str]:
    """Old and new as a person reads them; a list that only grew (a lot's statuses, a
    deviation's extensions) as its earlier entries and what was added."""
    if isinstance(old, list) and isinstance(new, list) and old and new[: len(old)] == old:
        earlier = f"{len(old)} {'entry' if len(old) == 1 else 'entries'}"
        return f"({earlier})", f"({earlier}) + {shown(new[len(old) :])}"
    return shown(old), shown(new)
