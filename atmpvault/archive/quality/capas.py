"""CAPA: corrective and preventive actions of a deviation, done with evidence and checked
for effectiveness (an ineffective CAPA opens again)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.quality.records import (
    CAPA_DONE,
    CAPA_KIND,
    CAPA_OPEN,
    CAPA_VERIFIED,
)
from atmpvault.archive.quality.service import (
    MAX_TEXT,
    Deviations,
    HistoryEntry,
    capa_id,
    history,
    long_text,
    next_id,
    stamp,
)
from atmpvault.errors import InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.records import Record
    from atmpvault.archive.core.vault import Vault

SHOWN_FIELDS = ("status", "action_text", "owner", "due", "effectiveness_check", "done", "checks")


class Capas:
    """The CAPAs of one vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.deviations = Deviations(vault)

    def get(self, capa: str) -> Record:
        found = self.vault.catalog.record(CAPA_KIND.name, capa_id(capa))
        if found is None:
            raise NotFound(f"unknown CAPA {capa}")
        return found

    def history(self, capa: str) -> list[HistoryEntry]:
        return history(
            self.vault.catalog.record_versions(CAPA_KIND.name, capa_id(capa)), SHOWN_FIELDS
        )

    def add(
        self,
        dev: str,
        action: str,
        owner: str,
        due: date,
        effectiveness_check: date | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Add a CAPA to an open deviation: one commit writes it and the deviation's list."""
        from atmpvault.archive.core.people import People

        text = long_text(action, "--action")
        with self.vault.unit("capa-add", "", actor=actor) as unit:
            deviation = self.deviations._open_one(dev, "given a CAPA")
            People(self.vault).known(owner)
            self.vault.config.dates.check(due, "--due")
            self.deviations._check_due(deviation, due, "--due")
            if effectiveness_check is not None and effectiveness_check < due:
                raise VaultError(
                    f"--effectiveness-check {effectiveness_check.isoformat()} is before the "
                    f"CAPA's due date {due.isoformat()}: effectiveness is checked after it is done"
                )
            today = unit.when.astimezone(self.vault.config.zone).date()
            new_id = next_id(self.vault, CAPA_KIND.name, "CAPA", today.year)
            body = {
                "id": new_id, "deviation": dev, "program": deviation["program"],
                "lots": list(deviation["lots"]), "action_text": text, "owner": owner,
                "due": due.isoformat(),
                "effectiveness_check": effectiveness_check.isoformat() if effectiveness_check else None,
                "opened": values.iso(unit.when), "status": CAPA_OPEN, "done": None, "checks": [],
            }  # fmt: skip
            self._put(unit, body, "add", None)
            deviation["capas"] = [*deviation["capas"], new_id]
            self.deviations._put(unit, deviation, "capa-add", None)
            unit.subject = f"CAPA {new_id} for {dev}: owner {owner}, due {due.isoformat()}"
        return body

    def _put(
        self, unit: UnitOfWork, body: dict[str, Any], action: str, comment: str | None
    ) -> None:
        stamp(unit, body, action, comment)
        unit.put(CAPA_KIND, body["id"], body)
        unit.trailers.update(
            {"CAPA": body["id"], "Deviation": body["deviation"], "Step": f"capa-{action}"}
        )

    def done(
        self, capa: str, evidence: str, comment: str | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        """The CAPA is implemented: the document version that shows it."""
        note = values.text(comment, "--comment", MAX_TEXT)
        with self.vault.unit("capa-done", "", actor=actor) as unit:
            body = dict(self.get(capa).body)
            if body["status"] != CAPA_OPEN:
                raise VaultError(f"{capa} is {body['status']}; only an open CAPA is marked done")
            body["status"] = CAPA_DONE
            body["done"] = {
                "evidence": self._evidence(evidence),
                "at": values.iso(unit.when),
                "by": unit.actor,
            }
            self._put(unit, body, "done", note)
            unit.subject = f"CAPA {capa} done ({body['done']['evidence']})"
        return body

    def verify(
        self, capa: str, effective: bool, evidence: str, comment: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The effectiveness check: effective closes the CAPA as verified; not effective
        opens it again, to be done anew."""
        note = values.text(comment, "--comment", MAX_TEXT)
        with self.vault.unit("capa-verify", "", actor=actor) as unit:
            body = dict(self.get(capa).body)
            if body["status"] != CAPA_DONE:
                raise VaultError(
                    f"{capa} is {body['status']}; effectiveness is checked once it is done"
                )
            check = {
                "effective": effective, "evidence": self._evidence(evidence), "comment": note,
                "at": values.iso(unit.when), "by": unit.actor,
            }  # fmt: skip
            body["checks"] = [*body["checks"], check]
            body["status"] = CAPA_VERIFIED if effective else CAPA_OPEN
            if not effective:
                body["done"] = None
            self._put(unit, body, "verify", note)
            verdict = "effective: verified" if effective else "not effective: open again"
            unit.subject = f"CAPA {capa} {verdict}"
        return body

    def _evidence(self, value: str) -> str:
        from atmpvault.archive.documents.records import parse_doc_ref
        from atmpvault.archive.documents.versions import Documents

        doc, number = parse_doc_ref(value)
        found = Documents(self.vault).show(doc, number)
        return f"{found.id}@{found.version}"


def parse_yes_no(value: str, what: str) -> bool:
    if value not in ("yes", "no"):
        raise InvalidInput(f"{what} must be yes or no")
    return value == "yes"
