"""Custody events: log each handoff of a patient's material, check it against the chain,
record and escalate chain breaks, resolve them, tell the clinical team.

`log` is one commit: the event, any temperature logger file (a document of the lot), a
chain break per failed check with its escalation notice, the lot's new status when
the step means one (shipped, administered), and the certificate (with its custody
signature, in a vault with users) after a step flagged `certificate`. Events are never
edited; a correction is a new event naming the one it corrects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import access, values
from atmpvault.archive.custody.checks import Check, check, effective
from atmpvault.archive.custody.records import BREAK_KIND, EVENT_KIND, KINDS, OPEN, RESOLVED
from atmpvault.archive.custody.settings import (
    QA_RELEASE,
    RELABEL,
    CustodySettings,
    custody_settings,
)
from atmpvault.errors import DeliveryFailed, InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.lots.service import Lot

MAX_TEMPS = 50
# The lot statuses a custody step means (from the statuses it may move a lot from).
MOVES = {
    "manufacturing-start": (("planned",), "in-manufacturing"),
    "shipment-to-site": (("released",), "shipped"),
    "administration": (("released", "shipped"), "administered"),
}


@dataclass
class Logged:
    """What one `custody log` wrote, and what it could not deliver."""

    event: dict[str, Any]
    breaks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # escalations not delivered
    warnings: list[str] = field(default_factory=list)  # e.g. no certificate: a break
    certificate: Any = None  # the certificate document issued with the event, if any
    signatures: tuple[dict[str, Any], ...] = ()  # the certificate's, made with it


def event_site(value: str) -> str:
    result = values.text(value, "--site", 100, required=True)
    assert result is not None
    return result


class Custody:
    """The custody records of one vault."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    @cached_property
    def settings(self) -> CustodySettings:
        return custody_settings(self.vault)

    # -- reading -------------------------------------------------------------------------

    def events(self, lot: str, as_of: str | None = None) -> list[dict[str, Any]]:
        """Every event of a lot, in the order logged."""
        found = self.vault.catalog.lot_records(lot, EVENT_KIND.name, as_of=as_of)
        return sorted((r.body for r in found), key=lambda b: int(b["seq"]))

    def breaks(self, lot: str) -> list[dict[str, Any]]:
        found = self.vault.catalog.lot_records(lot, BREAK_KIND.name)
        return sorted((r.body for r in found), key=lambda b: b["id"])

    def signatures(self, lot: str) -> list[dict[str, Any]]:
        """The signatures of the lot's custody records (its certificate's versions, and any
        event or break signed with `atmpvault sign`), oldest first."""
        from atmpvault.archive.core.signatures import SIGNATURE_KIND

        ours = {k.name for k in KINDS}
        found = self.vault.catalog.lot_records(lot, SIGNATURE_KIND.name)
        bodies = [r.body for r in found if r.body["target"]["kind"] in ours]
        return sorted(bodies, key=lambda b: (b["signed_at"], b["id"]))

    def open_breaks(self) -> list[dict[str, Any]]:
        from atmpvault.archive.core.record_tables import records

        found = self.vault.catalog.records(BREAK_KIND.name, where=[records.c.status == OPEN])
        return [r.body for r in found]

    # -- writing -------------------------------------------------------------------------

    def log(
        self,
        lot: str,
        step: str,
        by: str,
        site: str,
        at: datetime | None = None,
        coi: str | None = None,
        din: str | None = None,
        temps: tuple[float, ...] = (),
        logger: Path | None = None,
        shipper: str | None = None,
        seal: str | None = None,
        note: str | None = None,
        corrects: str | None = None,
        actor: str | None = None,
        key_file: Path | None = None,
    ) -> Logged:
        """Append one custody event (see the module's docstring); `key_file` signs the
        certificate a flagged step issues (else the key in ssh-agent)."""
        from atmpvault.archive.custody.din import din as checked_din
        from atmpvault.archive.lots.service import Lots
        from atmpvault.archive.lots.service import coi as checked_coi

        names = self.settings.names()
        if step == QA_RELEASE:
            raise InvalidInput(
                "qa-release is written by 'atmpvault lot release', not logged by hand"
            )
        if step not in names and step != RELABEL:
            raise InvalidInput(f"unknown step {step!r}; steps: {', '.join([*names, RELABEL])}")
        if step == RELABEL and din is None:
            raise InvalidInput("a relabel needs --din, the unit's new DIN")
        if seal is not None and seal not in ("intact", "broken"):
            raise InvalidInput("--seal must be intact or broken")
        if len(temps) > MAX_TEMPS:
            raise InvalidInput(f"at most {MAX_TEMPS} --temp values")
        who, where = access.registered(self.vault, values.user(by), "--by"), event_site(site)
        coi, din = checked_coi(coi), checked_din(din) if din is not None else None
        shipper = values.text(shipper, "--shipper", 64)
        text = values.text(note, "--note", 2000)
        data = None
        if logger is not None:
            from atmpvault.archive.documents.versions import max_bytes, read_file

            data = read_file(logger, max_bytes(self.vault))
        with self.vault.unit("custody-log", "", actor=actor) as unit:
            moment = at or unit.when
            if moment > unit.when + values.GRACE / 24:
                raise InvalidInput(f"--at {values.iso(moment)} is in the future")
            current = Lots(self.vault).get(lot)
            events = self.events(current.id)
            if corrects is not None and corrects not in {e["id"] for e in events}:
                raise NotFound(f"lot {current.id} has no custody event {corrects} to correct")
            summary = None
            if data is not None:
                summary = self._logger_summary(data, step, where)
            body: dict[str, Any] = {
                "lot": current.id, "program": current.program, "step": step, "by": who,
                "site": where, "at": values.iso(moment), "coi": coi or current.coi,
                "din": din, "temps": list(temps), "logger": None, "shipper": shipper,
                "seal": seal, "note": text, "corrects": corrects,
            }  # fmt: skip
            if step == RELABEL:
                from atmpvault.archive.custody.checks import current_din

                body["old_din"] = current_din(effective(events))
            if data is not None and logger is not None and summary is not None:
                from atmpvault.archive.documents.versions import Documents

                event_id = f"{current.id}/{len(events) + 1:04d}"
                doc = Documents(self.vault).stage_new(
                    unit, data, logger.name, current.program, "report",
                    title=f"Temperature log, {step}, lot {current.id}", lot=current.id,
                    meta={"custody_event": event_id, "role": "temperature-log"},
                )  # fmt: skip
                body["logger"] = {"doc": doc.id, "version": doc.version, "summary": summary}
            logged = self._append(unit, current, events, body, key_file)
            if body["logger"] is not None:
                unit.subject = f"{unit.subject}, with temperature log {body['logger']['doc']}"
        return logged

    def _logger_summary(self, data: bytes, step: str, site: str) -> dict[str, Any]:
        from atmpvault.archive.custody.logger import parse, summarise

        found = self.settings.sites.get(site)
        zone = values.zone(found.timezone) if found else self.vault.config.zone
        readings = parse(data, zone=zone, date_order=found.date_order if found else "DMY")
        limits = self.settings.step(step) if step in self.settings.names() else None
        low, high = (limits.low, limits.high) if limits else (None, None)
        return dict(summarise(readings, low, high).to_json())

    def _append(
        self, unit: UnitOfWork, lot: Lot, events: list[dict[str, Any]], body: dict[str, Any],
        key_file: Path | None = None,
    ) -> Logged:  # fmt: skip
        """Number, check and write one event, its breaks and escalations, the lot's move
        and the certificate of a flagged step.

        A lot that cannot be certified yet is a warning: the event is still logged. A
        certificate whose signature is refused refuses the event with it (nothing is
        written unsigned), so the user logs it again with a valid key.
        """
        seq = len(events) + 1
        corrected = body.get("corrects")
        chain = effective(events)
        before = chain[: [e["id"] for e in chain].index(corrected)] if corrected else chain
        checks = check(self.settings, lot.coi, before, body)
        event = {**body, "id": f"{lot.id}/{seq:04d}", "seq": seq,
                 "checks": [c.to_json() for c in checks], "breaks": []}  # fmt: skip
        logged = Logged(event)
        opened = len(self.breaks(lot.id))
        for failed in (c for c in checks if not c.ok):
            opened += 1
            logged.breaks.append(self._break(unit, lot, event, failed, opened, logged.problems))
        event["breaks"] = [b["id"] for b in logged.breaks]
        event.update(version=1, recorded_at=values.iso(unit.when), user=unit.actor)
        unit.put(EVENT_KIND, event["id"], event, f"{EVENT_KIND.root}/{event['id']}.json")
        step = self.settings.step(event["step"]) if event["step"] in self.settings.names() else None
        if step is not None and step.certificate and logged.breaks:
            logged.warnings.append(f"no certificate after {event['step']}: it broke the chain")
        elif step is not None and step.certificate:
            from atmpvault.archive.custody.certificates import NoCertificate, issue

            try:
                issued = issue(
                    self.vault, unit, lot, [*events, event], event["step"],
                    self.vault.store.head(), key_file,
                )  # fmt: skip
                logged.certificate, logged.signatures = issued.document, issued.signatures
            except NoCertificate as exc:
                logged.warnings.append(f"no certificate after {event['step']}: {exc}")
        move = MOVES.get(event["step"])
        if move is not None and lot.status in move[0]:
            from atmpvault.archive.lots.service import Lots

            Lots(self.vault).move(unit, lot, move[1], comment=f"custody {event['step']}")
        verb = "Correct" if corrected else "Log"
        flag = f" ({len(logged.breaks)} chain break(s))" if logged.breaks else ""
        unit.subject = f"{verb} custody {event['step']} of lot {lot.id} at {event['site']}{flag}"
        unit.trailers.update({"Lot": lot.id, "Custody-Event": event["id"], "Step": event["step"]})
        return logged

    def _break(
        self, unit: UnitOfWork, lot: Lot, event: dict[str, Any], failed: Check, number: int,
        problems: list[str],
    ) -> dict[str, Any]:  # fmt: skip
        """Record one chain break and escalate it at once to the break lists."""
        body: dict[str, Any] = {
            "id": f"{lot.id}/BRK-{number:03d}", "lot": lot.id, "program": lot.program,
            "event": event["id"], "step": event["step"], "check": failed.check,
            "detail": failed.detail, "status": OPEN, "resolution": None, "escalated": [],
            "version": 1, "recorded_at": values.iso(unit.when), "user": unit.actor,
        }  # fmt: skip
        body["escalated"] = self._escalate(unit, body, problems)
        unit.put(BREAK_KIND, body["id"], body, f"{BREAK_KIND.root}/{body['id']}.json")
        return body

    def _escalate(self, unit: UnitOfWork, brk: dict[str, Any], problems: list[str]) -> list[str]:
        """Send the break's escalation to every break list it has not reached; the lists it
        reached. A list that is missing or undeliverable is named in `problems`."""
        from atmpvault.archive.core.notices import DistributionLists, Notices

        notices = Notices(self.vault)
        key = f"custody/{brk['id']}/break"
        reached = dict(notices.reached(key))
        wanted = [n for n in self.settings.break_lists if n not in reached]
        reach = DistributionLists(self.vault).reach(wanted)
        for name, why in reach.problems:
            problems.append(f"chain break {brk['id']} not escalated to list {name!r}: {why}")
        if reach.lists:
            try:
                notices.send(
                    key, reach.lists, "custody/chain-break",
                    f"CHAIN BREAK lot {brk['lot']}: {brk['check']} at {brk['step']}",
                    {"brk": brk}, unit=unit,
                )  # fmt: skip
                reached.update(dict.fromkeys(reach.lists, ""))
            except DeliveryFailed as exc:
                problems.append(f"chain break {brk['id']} not escalated: {exc}")
        return sorted(n for n in reached if n in self.settings.break_lists)

    def escalate(self, actor: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """Send again, to the lists they did not reach, the escalations of open breaks."""
        sent: list[dict[str, Any]] = []
        problems: list[str] = []
        with self.vault.unit("custody-escalate", "Escalate chain breaks", actor=actor) as unit:
            for brk in self.open_breaks():
                missing = [n for n in self.settings.break_lists if n not in brk["escalated"]]
                if not missing:
                    continue
                reached = self._escalate(unit, brk, problems)
                if reached != brk["escalated"]:
                    brk = {**brk, "escalated": reached, "version": brk["version"] + 1,
                           "recorded_at": values.iso(unit.when), "user": unit.actor}  # fmt: skip
                    unit.put(BREAK_KIND, brk["id"], brk)
                    sent.append(brk)
        return sent, problems

    def resolve(
        self, lot: str, break_id: str, reason: str, by: str, actor: str | None = None
    ) -> dict[str, Any]:
        """QA's documented resolution of a chain break: it no longer holds the lot."""
        why, who = values.reason(reason), access.registered(self.vault, values.user(by), "--by")
        from atmpvault.archive.lots.service import Lots

        with self.vault.unit("custody-resolve", "", reason=why, actor=actor) as unit:
            found = Lots(self.vault).get(lot)
            record_id = f"{found.id}/{break_id}"
            record = self.vault.catalog.record(BREAK_KIND.name, record_id)
            if record is None:
                known = (
                    ", ".join(b["id"].rpartition("/")[2] for b in self.breaks(found.id)) or "none"
                )
                raise NotFound(f"lot {found.id} has no chain break {break_id}; it has: {known}")
            body = dict(record.body)
            if body["status"] == RESOLVED:
                r = body["resolution"]
                raise VaultError(
                    f"{break_id} of lot {found.id} was resolved at {r['at']} by {r['by']}"
                )
            body.update(
                status=RESOLVED, resolution={"reason": why, "by": who, "at": values.iso(unit.when)},
                version=body["version"] + 1, recorded_at=values.iso(unit.when), user=unit.actor,
            )  # fmt: skip
            unit.put(BREAK_KIND, record_id, body)
            unit.subject = f"Resolve chain break {break_id} of lot {found.id} ({body['check']})"
            unit.trailers.update({"Lot": found.id, "Chain-Break": record_id})
        return body

    def notify(self, lot: str, actor: str | None = None) -> Any:
        """A status update on the lot to the clinical team and patient scheduling lists."""
        from atmpvault.archive.core.notices import Notices
        from atmpvault.archive.lots.service import Lots

        with self.vault.unit("custody-notify", "", actor=actor) as unit:
            found = Lots(self.vault).get(lot)
            events = effective(self.events(found.id))
            open_breaks = [b for b in self.breaks(found.id) if b["status"] == OPEN]
            last = events[-1] if events else None
            stamp = values.iso(unit.when)
            subject = f"Lot {found.id} status: {found.status}" + (
                f", last step {last['step']} at {last['site']}" if last else ""
            )
            notice = Notices(self.vault).send(
                f"custody/{found.id}/status/{stamp}", self.settings.status_lists,
                "custody/status-update", subject,
                {"lot": found.to_json(), "events": events, "open_breaks": open_breaks},
                unit=unit,
            )  # fmt: skip
            unit.subject = f"Status update on lot {found.id} to {', '.join(notice.lists)}"
            unit.trailers["Lot"] = found.id
        return notice


def release_holds(vault: Vault, lot: str) -> list[str]:
    """One line per unresolved chain break of the lot."""
    found = vault.catalog.lot_records(lot, BREAK_KIND.name)
    return [
        f"chain break {r.body['id'].rpartition('/')[2]} ({r.body['check']} at "
        f"{r.body['step']}: {r.body['detail']})"
        for r in found
        if r.body["status"] == OPEN
    ]


def held_lots(vault: Vault) -> set[str]:
    """Every lot with an unresolved chain break."""
    return {b["lot"] for b in Custody(vault).open_breaks()}


def on_release(vault: Vault, unit: UnitOfWork, lot: Lot, disposition: dict[str, Any]) -> None:
    """`lot release` writes the qa-release step, in its commit, of a lot whose custody
    is tracked (it has events)."""
    custody = Custody(vault)
    events = custody.events(lot.id)
    if not events:
        return
    site = effective(events)[-1]["site"]
    body = {
        "lot": lot.id, "program": lot.program, "step": QA_RELEASE, "by": disposition["by"],
        "site": site, "at": values.iso(unit.when), "coi": lot.coi, "din": None, "temps": [],
        "logger": None, "shipper": None, "seal": None,
        "note": "QA disposition: released" + (" (exceptional)" if disposition.get("exceptional") else ""),
        "corrects": None,
    }  # fmt: skip
    subject, trailers = unit.subject, dict(unit.trailers)
    logged = custody._append(unit, lot, events, body)
    unit.subject = subject
    unit.trailers.update(trailers)
    if logged.problems:
        vault.say("; ".join(logged.problems))
