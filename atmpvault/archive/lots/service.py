"""The lot registry: create lots, move them through manufacturing, release or reject them.

Every change is one commit writing the lot's next version. Release asks every workflow's
release holds (quality: open deviations; custody: unresolved chain breaks) and refuses
while any exists, unless an exceptional release names the holds it overrides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import access, values
from atmpvault.archive.core.domain import hooks, load
from atmpvault.archive.lots.records import (
    IN_MANUFACTURING,
    KINDS_OF_LOT,
    LOT_KIND,
    PENDING_RELEASE,
    PLANNED,
    REJECTED,
    RELEASED,
    STATUSES,
)
from atmpvault.errors import InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.records import Record
    from atmpvault.archive.core.vault import Vault

COI_RE = re.compile(r"[A-Z0-9](?:[A-Z0-9-]{1,38}[A-Z0-9])")
MAX_TEXT = 2000

# What each step moves a lot from, and to.
STEPS = {
    "start": ((PLANNED,), IN_MANUFACTURING),
    "complete": ((IN_MANUFACTURING,), PENDING_RELEASE),
}


def coi(value: str | None) -> str | None:
    """A chain-of-identity id: the patient's coded identity, never a name."""
    if value is None:
        return None
    if not COI_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid chain-of-identity id {value[:40]!r}: a coded id of upper-case letters, "
            "digits and hyphens (3 to 40), e.g. COI-7F3K-22; never a patient's name"
        )
    return value


def lot_id(value: str) -> str:
    """A lot id, checked (the same shape `add --lot` accepts)."""
    checked = values.lot(value)
    assert checked is not None
    return checked


@dataclass(frozen=True)
class Lot:
    """One lot as it stands (or stood at a moment)."""

    id: str
    program: str
    coi: str | None
    kind: str
    replaces: str | None
    status: str
    statuses: tuple[dict[str, Any], ...]
    disposition: dict[str, Any] | None
    version: int
    recorded_at: str
    user: str

    @classmethod
    def from_record(cls, record: Record) -> Lot:
        b = record.body
        return cls(
            id=b["id"], program=b["program"], coi=b.get("coi"), kind=b["kind"],
            replaces=b.get("replaces"), status=b["status"],
            statuses=tuple(b.get("statuses") or ()), disposition=b.get("disposition"),
            version=int(b["version"]), recorded_at=b["recorded_at"], user=b["user"],
        )  # fmt: skip

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id, "program": self.program, "coi": self.coi, "kind": self.kind,
            "replaces": self.replaces, "status": self.status, "statuses": list(self.statuses),
            "disposition": self.disposition, "version": self.version,
            "recorded_at": self.recorded_at, "user": self.user,
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return self.body()


def release_holds(vault: Vault, lot: str) -> list[str]:
    """Every reason any workflow gives why `lot` may not be released now, one line each."""
    return [reason for hook in hooks(vault.domains, "release_holds") for reason in hook(vault, lot)]


def holds_of(vault: Vault, lots: Iterable[str]) -> dict[str, list[str]]:
    """The release holds of many lots at once: asked lot by lot only of those a workflow
    says it holds (a workflow without `held_lots` is asked of every lot)."""
    wanted = list(dict.fromkeys(lots))
    candidates: set[str] = set()
    for domain in vault.domains:
        if domain.release_holds is None:
            continue
        if domain.held_lots is None:
            candidates.update(wanted)
        else:
            candidates.update(load(domain.held_lots)(vault))
    return {lot: release_holds(vault, lot) if lot in candidates else [] for lot in wanted}


class Lots:
    """The lots of one vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def get(self, lot: str, as_of: str | None = None) -> Lot:
        """A lot as it stands (or stood at `as_of`); NotFound if there was none."""
        record = self.vault.catalog.record(LOT_KIND.name, lot_id(lot), as_of=as_of)
        if record is None:
            if as_of is not None and self.vault.catalog.record(LOT_KIND.name, lot) is not None:
                first = self.vault.catalog.record(LOT_KIND.name, lot, version=1)
                assert first is not None
                raise NotFound(
                    f"lot {lot} did not exist yet at {as_of} (created {first.recorded_at})"
                )
            raise NotFound(f"unknown lot {lot}; create it with 'atmpvault lot new'")
        return Lot.from_record(record)

    def ls(self, program: str | None = None, status: str | None = None) -> list[Lot]:
        """Every lot, optionally of one program and/or status, by id."""
        from atmpvault.archive.core.record_tables import records

        where = []
        if program is not None:
            where.append(records.c.program == values.program(program))
        if status is not None:
            if status not in STATUSES:
                raise InvalidInput(f"unknown status {status!r}; statuses: {', '.join(STATUSES)}")
            where.append(records.c.status == status)
        return [Lot.from_record(r) for r in self.vault.catalog.records(LOT_KIND.name, where=where)]

    def new(
        self,
        lot: str,
        program: str,
        coi_id: str | None = None,
        kind: str = "autologous",
        replaces: str | None = None,
        actor: str | None = None,
    ) -> Lot:
        """Register a lot (planned); a replacement lot is refused while the lot it replaces
        is held (an open deviation), or if it is another patient's."""
        lot, program = lot_id(lot), values.program(program)
        coi_id = coi(coi_id)
        if kind not in KINDS_OF_LOT:
            raise InvalidInput(f"unknown lot kind {kind!r}; kinds: {', '.join(KINDS_OF_LOT)}")
        with self.vault.unit("lot-new", "", actor=actor) as unit:
            if self.vault.catalog.record(LOT_KIND.name, lot) is not None:
                raise VaultError(f"lot {lot} already exists")
            if replaces is not None:
                original = self.get(replaces)
                if original.id == lot:
                    raise InvalidInput(f"lot {lot} cannot replace itself")
                if coi_id is not None and original.coi is not None and coi_id != original.coi:
                    raise VaultError(
                        f"lot {lot} (--coi {coi_id}) cannot replace {original.id}: that lot is "
                        f"another patient's ({original.coi})"
                    )
                coi_id = coi_id or original.coi
                holds = release_holds(self.vault, original.id)
                if holds:
                    raise VaultError(
                        f"lot {lot} cannot replace {original.id} yet: " + "; ".join(holds)
                    )
            created = Lot(
                id=lot, program=program, coi=coi_id, kind=kind, replaces=replaces,
                status=PLANNED,
                statuses=({"status": PLANNED, "at": values.iso(unit.when), "by": unit.actor},),
                disposition=None, version=1, recorded_at=values.iso(unit.when),
                user=unit.actor,
            )  # fmt: skip
            unit.put(LOT_KIND, lot, created.body())
            unit.subject = (
                f"New lot {lot} ({program}{f', replaces {replaces}' if replaces else ''})"
            )
            unit.trailers["Lot"] = lot
        return created

    def step(
        self, lot: str, step: str, comment: str | None = None, actor: str | None = None
    ) -> Lot:
        """Move a lot one step of manufacturing: start, complete."""
        allowed, to = STEPS[step]
        note = values.text(comment, "--comment", MAX_TEXT)
        with self.vault.unit(f"lot-{step}", "", actor=actor) as unit:
            current = self.get(lot)
            if current.status not in allowed:
                raise VaultError(
                    f"lot {current.id} is {current.status}; '{step}' moves a lot that is "
                    f"{' or '.join(allowed)}"
                )
            changed = self.move(unit, current, to, comment=note)
            unit.subject = f"Lot {current.id}: {current.status} -> {to}"
        return changed

    def move(
        self,
        unit: UnitOfWork,
        current: Lot,
        status: str,
        disposition: dict[str, Any] | None = None,
        comment: str | None = None,
        reason: str | None = None,
    ) -> Lot:
        """Write the lot's next version with a new status, inside a unit of work (so
        another workflow's step, such as a custody event, moves the lot in its commit)."""
        entry: dict[str, Any] = {"status": status, "at": values.iso(unit.when), "by": unit.actor}
        if comment:
            entry["comment"] = comment
        if reason:
            entry["reason"] = reason
        from dataclasses import replace

        changed = replace(
            current, status=status, statuses=(*current.statuses, entry),
            disposition=disposition if disposition is not None else current.disposition,
            version=current.version + 1, recorded_at=values.iso(unit.when), user=unit.actor,
        )  # fmt: skip
        unit.put(LOT_KIND, current.id, changed.body())
        unit.trailers["Lot"] = current.id
        unit.trailers["Status"] = status
        for hook in hooks(self.vault.domains, "on_lot_status"):
            hook(self.vault, unit, changed, status)
        return changed

    def release(
        self,
        lot: str,
        by: str,
        reason: str | None = None,
        exceptional: bool = False,
        actor: str | None = None,
        key_file: Path | None = None,
    ) -> Lot:
        """Record the QA disposition "released", refused while any workflow holds the lot;
        an exceptional release needs a reason and records the holds it overrode. In a
        vault with users, the new version is signed (meaning release) in the same commit."""
        return self._dispose(lot, RELEASED, by, reason, exceptional, actor, key_file)

    def reject(
        self, lot: str, by: str, reason: str, actor: str | None = None,
        key_file: Path | None = None,
    ) -> Lot:  # fmt: skip
        """Record the QA disposition "rejected" (with the reason), signed like a release."""
        return self._dispose(lot, REJECTED, by, values.reason(reason), False, actor, key_file)

    def _dispose(
        self, lot: str, decision: str, by: str, reason: str | None, exceptional: bool,
        actor: str | None, key_file: Path | None,
    ) -> Lot:  # fmt: skip
        from atmpvault.archive.core.signatures import Signatures

        who = access.registered(self.vault, values.user(by), "--by")
        why = values.text(reason, "--reason", values.MAX_REASON)
        if exceptional and why is None:
            raise InvalidInput(
                "an exceptional release needs --reason: why the holds are overridden"
            )
        action = "lot-release" if decision == RELEASED else "lot-reject"
        with self.vault.unit(action, "", reason=why, actor=actor) as unit:
            current = self.get(lot)
            if current.status in (RELEASED, REJECTED) or current.disposition is not None:
                d = current.disposition or {}
                by_whom = f" by {d.get('by')} at {d.get('at')}" if d else ""
                raise VaultError(f"lot {current.id} is already {current.status}{by_whom}")
            if current.status not in (IN_MANUFACTURING, PENDING_RELEASE):
                raise VaultError(
                    f"lot {current.id} is {current.status}; only a lot in manufacturing or "
                    "pending release gets a QA disposition"
                )
            holds = release_holds(self.vault, current.id) if decision == RELEASED else []
            if holds and not exceptional:
                raise VaultError(
                    f"lot {current.id} cannot be released: "
                    + "; ".join(holds)
                    + " (an exceptional release needs --exceptional --reason)"
                )
            disposition: dict[str, Any] = {
                "decision": decision, "by": who, "at": values.iso(unit.when), "reason": why,
                "exceptional": bool(exceptional), "overridden": holds,
            }  # fmt: skip
            changed = self.move(unit, current, decision, disposition=disposition, reason=why)
            # Signed before any other workflow reacts, so a refused signature is all it writes.
            command = "lot release" if decision == RELEASED else "lot reject"
            Signatures(self.vault).gate(unit, command, LOT_KIND.name, current.id, key_file)
            if decision == RELEASED:
                for hook in hooks(self.vault.domains, "on_release"):
                    hook(self.vault, unit, changed, disposition)
            verb = "Exceptional release of" if exceptional else decision.capitalize()
            unit.subject = f"{verb} lot {current.id} (QA disposition by {who})"
            unit.trailers["Disposition"] = decision + (" (exceptional)" if exceptional else "")
        return changed


@dataclass(frozen=True)
class LotContents:
    """Everything archived for one lot, as it stood at a moment: its record, every document
    whose lot it is (each with its versions), and every record that concerns it."""

    lot: Lot
    as_of: str | None
    documents: tuple[tuple[Any, ...], ...]  # per document: its DocumentVersions, oldest first
    records: tuple[Record, ...]

    @property
    def signatures(self) -> list[dict[str, Any]]:
        """The signatures of the lot's versions and of its records' (a release, a
        deviation's closure), oldest first, each with its manifestation (21 CFR 11.50)."""
        from atmpvault.archive.core.signatures import SIGNATURE_KIND

        found = [r.body for r in self.records if r.kind == SIGNATURE_KIND.name]
        from atmpvault.archive.core.signatures import shown

        return [shown(b) for b in sorted(found, key=lambda b: (b["signed_at"], b["id"]))]

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot.to_json(),
            "as_of": self.as_of,
            "documents": [
                {
                    "id": versions[-1].id,
                    "type": versions[-1].type,
                    "title": versions[-1].title,
                    "status": versions[-1].status,
                    "versions": [
                        {
                            "version": v.version,
                            "recorded_at": v.recorded_at,
                            "user": v.user,
                            "action": v.action,
                            "sha256": v.sha256,
                            "filename": v.filename,
                        }
                        for v in versions
                    ],  # fmt: skip
                }
                for versions in self.documents
            ],
            "records": [
                {
                    "kind": r.kind,
                    "id": r.id,
                    "version": r.version,
                    "status": r.columns.status,
                    "recorded_at": r.recorded_at,
                    "actor": r.actor,
                }
                for r in self.records
            ],  # fmt: skip
            "signatures": self.signatures,
        }


def contents(vault: Vault, lot: str, as_of: str | None = None) -> LotContents:
    """What the archive held for `lot` at `as_of` (now, without it)."""
    from atmpvault.archive.documents.tables import Filters
    from atmpvault.archive.documents.versions import Documents

    found = Lots(vault).get(lot, as_of)
    docs = Documents(vault).catalog
    documents = []
    for latest in docs.latest(Filters(lot=found.id), as_of):
        versions = [v for v in docs.versions(latest.id) if v.version <= latest.version]
        documents.append(tuple(versions))
    records = tuple(
        r for r in vault.catalog.lot_records(found.id, as_of=as_of) if r.kind != LOT_KIND.name
    )
    return LotContents(found, as_of, tuple(documents), records)
