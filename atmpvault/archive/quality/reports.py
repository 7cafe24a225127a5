"""Generated quality documents: the closed deviation package (data assembled here, then
rendered from templates/quality/ through the one PDF adapter)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.differences import shown, shown_change
from atmpvault.archive.core.signatures import manifestation

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.records import Record
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.quality.service import HistoryEntry


def history_rows(entries: list[HistoryEntry]) -> list[dict[str, Any]]:
    """History entries as template rows: one row per changed field, old -> new."""
    rows = []
    for e in entries:
        note = e.comment or e.reason or ""
        changes = e.changes or (("", None, None),)
        for number, (field, old, new) in enumerate(changes):
            before, after = shown_change(old, new)
            rows.append(
                {
                    "version": e.version if number == 0 else "",
                    "at": e.recorded_at[:19].replace("T", " ") if number == 0 else "",
                    "actor": e.actor if number == 0 else "",
                    "action": e.action if number == 0 else "",
                    "note": note if number == 0 else "",
                    "field": field,
                    "old": before,
                    "new": after,
                }
            )
    return rows


def closure_package(
    vault: Vault, body: dict[str, Any], versions: list[Record], capas: list[Record],
    unit: UnitOfWork, signatures: Sequence[Mapping[str, Any]],
) -> bytes:  # fmt: skip
    """The closed deviation package as PDF: record, investigation, CAPA, extensions, the
    full history (the closing step included) and the deviation's signatures, each as its
    manifestation (21 CFR 11.50), as of the closing commit."""
    from atmpvault.archive.core.pdf import html_pdf
    from atmpvault.archive.core.render import render
    from atmpvault.archive.quality.capas import SHOWN_FIELDS as CAPA_FIELDS
    from atmpvault.archive.quality.service import SHOWN_FIELDS, history

    closing = versions[-1]._replace(
        version=versions[-1].version + 1,
        body={**body, "action": "close", "comment": None},
        recorded_at=values.iso(unit.when),
        actor=unit.actor,
    )
    entries = history([*versions, closing], SHOWN_FIELDS)
    capa_rows = []
    for capa in capas:
        capa_versions = vault.catalog.record_versions(capa.kind, capa.id)
        capa_rows.append(
            {"body": capa.body, "history": history_rows(history(capa_versions, CAPA_FIELDS))}
        )
    context = {
        "d": body,
        "investigation": body.get("investigation") or {},
        "capas": capa_rows,
        "history": history_rows(entries),
        "signatures": [
            {
                "id": s["id"],
                "version": s["target"]["version"],
                "shown": manifestation(s),
                "comment": s.get("comment") or "",
            }
            for s in signatures
        ],  # fmt: skip
        "generated_at": values.iso(unit.when)[:19].replace("T", " ") + " UTC",
        "generated_by": unit.actor,
        "shown": shown,
    }
    html = render("quality/closure-package.html.j2", context)
    return html_pdf(
        html, title=f"{body['id']} closed deviation package", created=unit.when, landscape=True
    )
