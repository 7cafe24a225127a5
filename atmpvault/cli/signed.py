"""The signatures of what a command shows, as people and programs read them (21 CFR
11.50: printed name, date and time, meaning wherever the signed version is shown)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click


def signature_json(body: Mapping[str, Any]) -> dict[str, Any]:
    """One signature as JSON: who, what it means, when, the version it binds, and the
    manifestation (the same in every command)."""
    from atmpvault.archive.core.signatures import shown

    return shown(body)


def manifestation_line(body: Mapping[str, Any]) -> str:
    """'Printed Name (login), YYYY-MM-DD HH:MM:SS UTC, meaning', then the version signed
    and the signature's id (a record's later versions are not what it signed)."""
    from atmpvault.archive.core.signatures import manifestation

    comment = f"  {body['comment']}" if body.get("comment") else ""
    return f"{manifestation(body)}  (v{body['target']['version']}, {body['id']}){comment}"


def echo_signatures(
    bodies: Iterable[Mapping[str, Any]], label: str = "signed", width: int = 14
) -> None:
    """One 'signed' line per signature, aligned with the record's other fields."""
    for body in bodies:
        click.echo(f"{label:{width}} {manifestation_line(body)}")
