"""Chain-of-custody certificates: PDF/A-3b documents of a lot, with the custody log they
certify embedded, and its SHA-256 printed.

The custody log of a certificate is the lot's event records through the step it
certifies, in sequence order, as canonical JSON Lines: each record's fields as stored
(without the file's `format` number) as UTF-8 JSON with sorted keys and no insignificant
whitespace (separators "," and ":"), one per line, each line ending in a newline. Anyone can recompute its SHA-256 from the embedded file or from the
archive. `commit` is the repository tip the certificate was computed from (a certificate
issued automatically with an event includes that event, written in the same commit).

What a certificate renders is the lot's certificate record (records.py), whose next
version each issue writes. In a vault with users the custody coordinator signs that
version (responsibility) before the PDF is rendered, so the PDF shows the signature's
manifestation; the PDF itself is not what is signed: it embeds the signed record's
bytes (certificate.json), whose SHA-256 the signature names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.custody.checks import current_din, effective
from atmpvault.archive.custody.records import CERTIFICATE_KIND, OPEN
from atmpvault.errors import IntegrityError, InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.records import DocumentVersion
    from atmpvault.archive.lots.service import Lot

DOC_TYPE = "coc-certificate"
ROLE = "coc-certificate"
LOG_NAME = "custody-log.jsonl"
RECORD_NAME = "certificate.json"
GATE = "custody certificate"


class NoCertificate(VaultError):
    """The lot cannot be certified as it stands (an open chain break, no events)."""


def log_lines(events: list[dict[str, Any]]) -> bytes:
    """The custody log as canonical JSON Lines (see the module's docstring)."""
    return b"".join(
        json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        for e in events
    )


def through_events(events: list[dict[str, Any]], through: str | None) -> list[dict[str, Any]]:
    """The lot's events up to and including the last one of step `through` (all: None)."""
    if through is None:
        return events
    last = max((i for i, e in enumerate(events) if e["step"] == through), default=None)
    if last is None:
        raise NoCertificate(f"the lot has no {through} event to certify through")
    return events[: last + 1]


@dataclass(frozen=True)
class Issued:
    document: DocumentVersion
    record: dict[str, Any]
    version: int = 1  # of the lot's certificate record
    signatures: tuple[dict[str, Any], ...] = ()


def issue(
    vault: Vault, unit: UnitOfWork, lot: Lot, events: list[dict[str, Any]],
    through: str | None, commit: str | None, key_file: Path | None = None,
) -> Issued:  # fmt: skip
    """Put into `unit` the lot's certificate record through a step, its signature (a vault
    with users) and the certificate rendered from both: a new coc-certificate document of
    the lot, or its next version. NoCertificate: the lot cannot be certified now."""
    from atmpvault.archive.core.pdf import Attachment, html_pdf
    from atmpvault.archive.core.render import render
    from atmpvault.archive.core.signatures import Signatures, manifestation
    from atmpvault.archive.custody.service import Custody
    from atmpvault.archive.documents.tables import Filters
    from atmpvault.archive.documents.versions import Documents

    open_breaks = [b for b in Custody(vault).breaks(lot.id) if b["status"] == OPEN]
    if open_breaks:
        named = ", ".join(
            f"{b['id'].rpartition('/')[2]} ({b['check']} at {b['step']})" for b in open_breaks
        )
        raise NoCertificate(f"lot {lot.id} has an unresolved chain break: {named}; no certificate")
    included = through_events(events, through)
    if not included:
        raise NoCertificate(f"lot {lot.id} has no custody events to certify")
    lines = log_lines(included)
    digest = hashlib.sha256(lines).hexdigest()
    chain = effective(included)
    step = chain[-1]["step"]
    dins = list(dict.fromkeys(d for e in included for d in (e.get("old_din"), e.get("din")) if d))
    record = {
        "lot": lot.id, "program": lot.program, "coi": lot.coi, "dins": dins,
        "din": current_din(chain), "through": step, "events": len(included),
        "custody_log_sha256": digest, "commit": commit, "issued_at": values.iso(unit.when),
        "issued_by": unit.actor,
    }  # fmt: skip
    version = unit.put(CERTIFICATE_KIND, lot.id, record, f"{CERTIFICATE_KIND.root}/{lot.id}.json")
    signed = Signatures(vault).gate(unit, GATE, CERTIFICATE_KIND.name, lot.id, key_file)
    signatures = (signed,) if signed else ()
    html = render(
        "custody/coc-certificate.html.j2",
        {"r": record, "lot": lot, "events": included, "chain": chain, "version": version,
         "signed": [{**b, "manifestation": manifestation(b)} for b in signatures]},
    )  # fmt: skip
    pdf = html_pdf(
        html,
        title=f"Chain-of-custody certificate, lot {lot.id}",
        created=unit.when,
        pdfa=True,
        landscape=True,
        author=unit.actor,
        subject=f"Custody of lot {lot.id} through {step}",
        attachments=[
            Attachment(
                LOG_NAME,
                lines,
                "application/x-ndjson",
                "The custody log certified: the lot's event records, canonical JSON Lines",
            ),
            Attachment(
                RECORD_NAME,
                unit.records[(CERTIFICATE_KIND.name, lot.id)].raw,
                "application/json",
                f"This certificate's record, version {version} as archived (what is signed)",
            ),
        ],  # fmt: skip
    )
    documents = Documents(vault)
    earlier = [
        d for d in documents.catalog.latest(Filters(type=DOC_TYPE, lot=lot.id))
        if d.meta.get("role") == ROLE
    ]  # fmt: skip
    name = f"coc-certificate-{lot.id}.pdf"
    if earlier:
        document = documents.stage_revision(
            unit, earlier[0].id, pdf, name, f"re-issued through {step}"
        )
    else:
        document = documents.stage_new(
            unit, pdf, name, lot.program, DOC_TYPE,
            title=f"Chain-of-custody certificate, lot {lot.id}", lot=lot.id,
            meta={"role": ROLE},
        )  # fmt: skip
    unit.trailers["Certificate"] = f"{document.id} v{document.version}"
    return Issued(document, record, version, signatures)


def certify(
    vault: Vault,
    lot: str,
    through: str | None = None,
    actor: str | None = None,
    key_file: Path | None = None,
) -> Issued:
    """Issue (or re-issue) a lot's certificate on demand: one commit."""
    from atmpvault.archive.custody.service import Custody
    from atmpvault.archive.lots.service import Lots

    custody = Custody(vault)
    if through is not None and through not in custody.settings.names():
        raise InvalidInput(
            f"unknown step {through!r}; steps: {', '.join(custody.settings.names())}"
        )
    with vault.unit("custody-certificate", "", actor=actor) as unit:
        found = Lots(vault).get(lot)
        issued = issue(
            vault, unit, found, custody.events(found.id), through, vault.store.head(), key_file
        )
        unit.subject = (
            f"CoC certificate {issued.document.id} v{issued.document.version} for lot "
            f"{found.id} through {issued.record['through']}"
        )
        unit.trailers["Lot"] = found.id
    assert unit.commit is not None
    return replace(issued, document=replace(issued.document, commit=unit.commit))


def verify_certificate(vault: Vault, path: Path) -> list[str]:
    """What no longer matches between a certificate file and the archive; [] if it does."""
    from atmpvault.archive.core.pdf import embedded_files
    from atmpvault.archive.custody.service import Custody
    from atmpvault.archive.documents.versions import Documents, max_bytes, read_file

    data = read_file(path, max_bytes(vault))
    problems = []
    held = Documents(vault).catalog.holders([hashlib.sha256(data).hexdigest()])
    if not held:
        problems.append(
            f"{path.name}: its bytes are not an archived certificate version (altered?)"
        )
    try:
        files = embedded_files(data)
    except IntegrityError as exc:
        return [*problems, f"{path.name}: {exc}"]
    if LOG_NAME not in files or RECORD_NAME not in files:
        return [
            *problems,
            f"{path.name}: no embedded {LOG_NAME} and {RECORD_NAME}: not a certificate",
        ]
    try:
        record = json.loads(files[RECORD_NAME])
        lot = str(record["lot"])
        printed = str(record["custody_log_sha256"])
        count = int(record["events"])
    except (ValueError, KeyError, TypeError):
        return [*problems, f"{path.name}: its embedded {RECORD_NAME} is unreadable"]
    lines = files[LOG_NAME]
    if hashlib.sha256(lines).hexdigest() != printed:
        problems.append(
            f"{path.name}: the embedded custody log does not hash to the certified {printed}"
        )
    try:
        events = Custody(vault).events(lot)
    except NotFound:
        return [*problems, f"{path.name}: lot {lot} is not in this archive"]
    archived = log_lines(events[:count])
    if len(events) < count or hashlib.sha256(archived).hexdigest() != printed:
        problems.append(
            f"lot {lot}'s custody log as archived no longer matches the certificate "
            f"(SHA-256 {hashlib.sha256(archived).hexdigest()[:16]}…, certified {printed[:16]}…)"
        )
    return problems
