"""Deviations: open, affect, assign, extend, investigate, attach, close; show and list.

Each operation checks its rules, then writes one unit of work: the deviation's next
version and whatever else the step touches (a lot's record is never edited here; a
document attached or generated; a notice to the owner). A due date never changes
silently: only `extend` moves it, with a reason and an approver, and it is listed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import access, values
from atmpvault.archive.core.differences import field_changes
from atmpvault.archive.quality.records import (
    CAPA_KIND,
    CLOSED,
    DEVIATION_KIND,
    OPEN,
)
from atmpvault.archive.quality.settings import QualitySettings, quality_settings
from atmpvault.errors import InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.records import Record
    from atmpvault.archive.core.vault import Vault

MAX_TEXT = 5000
YES_NO = ("yes", "no")
# The fields whose changes a deviation's history shows, old -> new.
SHOWN_FIELDS = (
    "status", "lots", "class", "title", "description", "owner", "due", "investigation",
    "capas", "attachments", "closure",
)  # fmt: skip


def deviation_id(value: str) -> str:
    if not DEVIATION_KIND.is_id(value):
        raise InvalidInput(f"invalid deviation id {value[:40]!r}: e.g. DEV-2026-0001")
    return value


def capa_id(value: str) -> str:
    if not CAPA_KIND.is_id(value):
        raise InvalidInput(f"invalid CAPA id {value[:40]!r}: e.g. CAPA-2026-0001")
    return value


def long_text(value: str | None, what: str, required: bool = True) -> str | None:
    """Free text that may span lines (a description, a root cause), bounded."""
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{what} is required and cannot be empty")
        return None
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{what} is {len(value):,} characters long; the limit is {MAX_TEXT:,}")
    if values.CONTROL_RE.search(value.replace("\r\n", "\n").replace("\n", " ").replace("\t", " ")):
        raise InvalidInput(f"{what} contains control characters")
    return value.strip()


def stamp(unit: UnitOfWork, body: dict[str, Any], action: str, comment: str | None) -> None:
    """A quality record's next version: the step, its comment, who and when (also a trailer)."""
    body.update(
        action=action, comment=comment, version=int(body.get("version", 0)) + 1,
        recorded_at=values.iso(unit.when), user=unit.actor,
    )  # fmt: skip
    if comment:
        unit.trailers["Comment"] = " ".join(comment.split())[:200]


def next_id(vault: Vault, kind_name: str, prefix: str, year: int) -> str:
    """The next id of a kind in a year: DEV-2026-0001, then -0002 ..."""
    found = vault.catalog.max_id(kind_name, f"{prefix}-{year}-")
    number = int(found.rsplit("-", 1)[1]) + 1 if found else 1
    return f"{prefix}-{year}-{number:04d}"


@dataclass(frozen=True)
class HistoryEntry:
    """One version of a record: who changed it, when, doing what, and old -> new."""

    version: int
    recorded_at: str
    actor: str
    action: str
    comment: str | None
    reason: str | None
    changes: tuple[tuple[str, Any, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "recorded_at": self.recorded_at,
            "actor": self.actor,
            "action": self.action,
            "comment": self.comment,
            "reason": self.reason,
            "changes": [{"field": f, "old": o, "new": n} for f, o, n in self.changes],
        }


OWN_STAMP = (".at", ".by")  # a step's own time and actor (closure.at): the entry's


def history(versions: list[Record], fields: tuple[str, ...]) -> list[HistoryEntry]:
    """The versions of a record as a history of changes, oldest first."""
    entries: list[HistoryEntry] = []
    before: dict[str, Any] = {}
    for record in versions:
        body = record.body
        changes = tuple(
            (c.name, c.old, c.new)
            for c in field_changes(before, body, fields)
            if before and not c.name.endswith(OWN_STAMP)
        ) or tuple((name, None, body.get(name)) for name in fields if body.get(name))
        entries.append(
            HistoryEntry(
                record.version,
                record.recorded_at,
                record.actor,
                str(body.get("action", "")),
                body.get("comment"),
                body.get("reason"),
                changes,
            )  # fmt: skip
        )
        before = body
    return entries


class Deviations:
    """The deviations of one vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    @cached_property
    def settings(self) -> QualitySettings:
        return quality_settings(self.vault)

    # -- reading -------------------------------------------------------------------------

    def get(self, dev: str, as_of: str | None = None) -> Record:
        """The deviation's newest version (or the one current at `as_of`)."""
        found = self.vault.catalog.record(DEVIATION_KIND.name, deviation_id(dev), as_of=as_of)
        if found is None:
            raise NotFound(f"unknown deviation {dev}")
        return found

    def capas(self, dev: str) -> list[Record]:
        """The CAPAs of a deviation, by id."""
        from atmpvault.archive.core.record_tables import records

        return self.vault.catalog.records(CAPA_KIND.name, where=[records.c.ref == dev])

    def history(self, dev: str) -> list[HistoryEntry]:
        versions = self.vault.catalog.record_versions(DEVIATION_KIND.name, deviation_id(dev))
        if not versions:
            raise NotFound(f"unknown deviation {dev}")
        return history(versions, SHOWN_FIELDS)

    def ls(
        self,
        open_only: bool = False,
        lot: str | None = None,
        deviation_class: str | None = None,
        owner: str | None = None,
    ) -> list[Record]:
        """Deviations, newest version of each, by id; filtered by SQL on the catalog."""
        from atmpvault.archive.core.record_tables import records

        if deviation_class is not None and deviation_class not in self.settings.classes:
            raise InvalidInput(
                f"unknown class {deviation_class!r}; classes: {', '.join(self.settings.classes)}"
            )
        if lot is not None:
            from atmpvault.archive.lots.service import Lots

            known = Lots(self.vault).get(lot).id  # an unknown lot is refused, not empty
            found = self.vault.catalog.lot_records(known, DEVIATION_KIND.name)
        else:
            where = [records.c.status == OPEN] if open_only else []
            if owner is not None:
                where.append(records.c.ref == owner)
            found = self.vault.catalog.records(DEVIATION_KIND.name, where=where)
        return [
            r
            for r in found
            if (not open_only or r.body["status"] == OPEN)
            and (owner is None or r.body.get("owner") == owner)
            and (deviation_class is None or r.body["class"] == deviation_class)
        ]

    # -- writing -------------------------------------------------------------------------

    def open(
        self,
        lots: list[str],
        deviation_class: str,
        title: str,
        description: str,
        discovered: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Open a deviation on the lots it affects (each held until it closes)."""
        from atmpvault.archive.lots.service import Lots

        if not lots:
            raise InvalidInput("a deviation needs at least one --lot it affects")
        if deviation_class not in self.settings.classes:
            raise InvalidInput(
                f"unknown class {deviation_class!r}; classes: {', '.join(self.settings.classes)}"
            )
        name = values.text(title, "--title", values.MAX_TITLE, required=True)
        text = long_text(description, "--description")
        zone = self.vault.config.zone
        found = values.when(discovered, zone, start_of_day=True) if discovered else None
        with self.vault.unit("deviation-open", "", actor=actor) as unit:
            moment = found or unit.when
            if moment > unit.when + values.GRACE:
                raise InvalidInput(f"--discovered {discovered} is in the future")
            day = moment.astimezone(zone).date()
            self.vault.config.dates.check(day, "--discovered")
            affected = [Lots(self.vault).get(lot) for lot in dict.fromkeys(lots)]
            dev = next_id(self.vault, DEVIATION_KIND.name, "DEV", day.year)
            due = day + timedelta(days=self.settings.due_days(deviation_class))
            body: dict[str, Any] = {
                "id": dev, "program": affected[0].program, "lots": [x.id for x in affected],
                "class": deviation_class, "title": name, "description": text,
                "discovered": values.iso(moment), "status": OPEN, "owner": None,
                "due": due.isoformat(), "extensions": [], "investigation": None, "capas": [],
                "attachments": [], "closure": None,
            }  # fmt: skip
            self._put(unit, body, "open", None)
            unit.subject = f"Open {dev} ({deviation_class}) on {', '.join(body['lots'])}: {name}"
        return body

    def _put(
        self, unit: UnitOfWork, body: dict[str, Any], action: str, comment: str | None
    ) -> None:
        stamp(unit, body, action, comment)
        unit.put(DEVIATION_KIND, body["id"], body)
        unit.trailers.update({"Deviation": body["id"], "Step": action})

    def _open_one(self, dev: str, step: str) -> dict[str, Any]:
        body = dict(self.get(dev).body)
        if body["status"] != OPEN:
            closed = body.get("closure") or {}
            raise VaultError(
                f"{dev} was closed at {closed.get('at', '?')} by {closed.get('by', '?')}; "
                f"it cannot be {step}"
            )
        return body

    def affect(self, dev: str, lot: str, comment: str, actor: str | None = None) -> dict[str, Any]:
        """Add a lot the deviation affects (it is held until the deviation closes)."""
        from atmpvault.archive.lots.service import Lots

        note = values.text(comment, "--comment", MAX_TEXT, required=True)
        with self.vault.unit("deviation-affect", "", actor=actor) as unit:
            body = self._open_one(dev, "extended to another lot")
            found = Lots(self.vault).get(lot)
            if found.id in body["lots"]:
                raise VaultError(f"{dev} already affects lot {found.id}")
            body["lots"] = [*body["lots"], found.id]
            self._put(unit, body, "affect", note)
            unit.subject = f"{dev} affects lot {found.id} too"
        return body

    def assign(
        self,
        dev: str,
        owner: str,
        due: date | None = None,
        comment: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Give the investigation an owner (and, the first time, its due date); the owner
        gets a notice with the deadline."""
        from atmpvault.archive.core.notices import Notices
        from atmpvault.archive.core.people import People

        note = values.text(comment, "--comment", MAX_TEXT)
        with self.vault.unit("deviation-assign", "", actor=actor) as unit:
            body = self._open_one(dev, "assigned")
            People(self.vault).known(owner)
            if due is not None and due.isoformat() != body["due"]:
                self._check_due(body, due, "--due")
                if body["owner"] is not None or body["extensions"]:
                    raise VaultError(
                        f"{dev} is due {body['due']}; a due date changes only by "
                        "'atmpvault deviation extend' (with a reason and an approver)"
                    )
                body["due"] = due.isoformat()
            if body["owner"] == owner and due is None:
                raise VaultError(f"{dev} is already assigned to {owner}")
            body["owner"] = owner
            self._put(unit, body, "assign", note)
            unit.subject = f"Assign {dev} to {owner}, due {body['due']}"
            Notices(self.vault).send(
                f"quality/{dev}/assign/{body['version']}",
                [],
                "quality/deviation-assigned",
                f"{dev} assigned to you: investigation due {body['due']}",
                {"deviation": body, "owner": owner},
                people=[owner],
                unit=unit,
            )
        return body

    def _check_due(self, body: dict[str, Any], due: date, what: str) -> None:
        discovered = values.when(body["discovered"], self.vault.config.zone)
        first = discovered.astimezone(self.vault.config.zone).date()
        if due < first:
            raise VaultError(
                f"{what} {due.isoformat()} is before {body['id']} was discovered "
                f"({first.isoformat()})"
            )

    def extend(
        self, dev: str, to: date, reason: str, approved_by: str, actor: str | None = None
    ) -> dict[str, Any]:
        """Move the due date later, with the reason and who approved it (listed for ever)."""
        why = values.reason(reason)
        approver = access.registered(self.vault, values.user(approved_by), "--approved-by")
        with self.vault.unit("deviation-extend", "", reason=why, actor=actor) as unit:
            body = self._open_one(dev, "extended")
            if to.isoformat() <= body["due"]:
                raise VaultError(
                    f"--to {to.isoformat()} is not after {dev}'s due date {body['due']}: an "
                    "extension moves it later"
                )
            self.vault.config.dates.check(to, "--to")
            body["extensions"] = [
                *body["extensions"],
                {"from": body["due"], "to": to.isoformat(), "reason": why,
                 "approved_by": approver, "at": values.iso(unit.when), "by": unit.actor},
            ]  # fmt: skip
            body["due"] = to.isoformat()
            self._put(unit, body, "extend", None)
            unit.subject = f"Extend {dev} to {to.isoformat()} (approved by {approver})"
        return body

    def investigate(
        self,
        dev: str,
        root_cause: str,
        impact: str,
        product_impact: str | None = None,
        patient_impact: str | None = None,
        comment: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Record the investigation's conclusions: root cause and impact assessment."""
        cause = long_text(root_cause, "--root-cause")
        assessed = long_text(impact, "--impact")
        for name, value in (("--product-impact", product_impact), ("--patient-impact", patient_impact)):  # fmt: skip
            if value is not None and value not in YES_NO:
                raise InvalidInput(f"{name} must be yes or no")
        note = values.text(comment, "--comment", MAX_TEXT)
        with self.vault.unit("deviation-investigate", "", actor=actor) as unit:
            body = self._open_one(dev, "investigated")
            body["investigation"] = {
                "root_cause": cause, "impact": assessed, "product_impact": product_impact,
                "patient_impact": patient_impact, "at": values.iso(unit.when),
                "by": unit.actor,
            }  # fmt: skip
            self._put(unit, body, "investigate", note)
            unit.subject = f"Investigation of {dev}: root cause and impact recorded"
        return body

    def attach(
        self, dev: str, path: Path, doc_type: str = "deviation-package", title: str | None = None,
        actor: str | None = None,
    ) -> tuple[dict[str, Any], Any]:  # fmt: skip
        """Archive a file as a document of the deviation's lot, linked to the deviation."""
        from atmpvault.archive.documents.versions import Documents, max_bytes, read_file

        data = read_file(path, max_bytes(self.vault))
        documents = Documents(self.vault)
        with self.vault.unit("deviation-attach", "", actor=actor) as unit:
            body = self._open_one(dev, "attached to")
            version = documents.stage_new(
                unit, data, path.name, body["program"], doc_type,
                title=title or f"{dev} attachment: {path.name}", lot=body["lots"][0],
                meta={"deviation": dev, "role": "attachment"},
            )  # fmt: skip
            body["attachments"] = [
                *body["attachments"],
                {"doc": version.id, "version": version.version, "filename": path.name,
                 "at": values.iso(unit.when), "by": unit.actor},
            ]  # fmt: skip
            self._put(unit, body, "attach", None)
            unit.subject = f"Attach {version.id} ({path.name}) to {dev}"
        return body, replace(version, commit=unit.commit or "")

    def close(
        self, dev: str, summary: str, actor: str | None = None, key_file: Path | None = None
    ) -> tuple[dict[str, Any], Any]:
        """Close a deviation: its closure package (a PDF of the record, investigation, CAPA,
        extensions, full history and signatures) joins the lot's batch record in the same
        commit. In a vault with users a qa-approver other than the owner signs the closed
        version (meaning approval) first, so the package shows that signature too."""
        from atmpvault.archive.core.signatures import Signatures
        from atmpvault.archive.documents.records import doc_id_for
        from atmpvault.archive.documents.versions import Documents
        from atmpvault.archive.quality.reports import closure_package

        text = long_text(summary, "--summary")
        documents = Documents(self.vault)
        with self.vault.unit("deviation-close", "", actor=actor) as unit:
            body = self._open_one(dev, "closed again")
            missing = [
                what
                for what, key in (("root cause", "root_cause"), ("impact assessment", "impact"))
                if not (body.get("investigation") or {}).get(key)
            ]
            if missing:
                raise VaultError(
                    f"{dev} cannot close: its {' and '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} missing "
                    "(record them with 'atmpvault deviation investigate')"
                )
            capas = self.capas(dev)
            undated = [c.id for c in capas if not c.body.get("due")]
            if undated:
                raise VaultError(f"{dev} cannot close: CAPA {', '.join(undated)} has no due date")
            versions = self.vault.catalog.record_versions(DEVIATION_KIND.name, dev)
            # The closed version names its package, and is signed, before the package is
            # made: the package shows the signature, and the signature covers the pointer.
            package_id = doc_id_for(documents.next_seq(unit))
            body["status"] = CLOSED
            body["closure"] = {
                "summary": text, "at": values.iso(unit.when), "by": unit.actor,
                "package": package_id,
            }  # fmt: skip
            self._put(unit, body, "close", None)
            signing = Signatures(self.vault)
            made = signing.gate(
                unit, "deviation close", DEVIATION_KIND.name, dev, key_file, owner=body["owner"]
            )
            signed = [*signing.of(DEVIATION_KIND.name, dev), *([made] if made else [])]
            pdf = closure_package(self.vault, body, versions, capas, unit, signed)
            package = documents.stage_new(
                unit, pdf, f"{dev}-closure-package.pdf", body["program"], "deviation-package",
                title=f"{dev} closed deviation package: {body['title']}", lot=body["lots"][0],
                meta={"deviation": dev, "role": "closure-package", "lots": ",".join(body["lots"])},
            )  # fmt: skip
            if package.id != package_id:
                raise VaultError(f"{dev}: its package became {package.id}, not {package_id}")
            unit.subject = f"Close {dev}: closure package {package.id} into lot {body['lots'][0]}"
        return body, replace(package, commit=unit.commit or "")
