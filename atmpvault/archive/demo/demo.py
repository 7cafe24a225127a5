"""`atmpvault demo`: a realistic sample vault for two programs, built through the real API."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from atmpvault.archive.core.pdf import make_pdf
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.records import DocumentVersion
from atmpvault.archive.documents.tables import Filters
from atmpvault.archive.documents.versions import Documents
from atmpvault.archive.domains import domains
from atmpvault.config import Settings


@dataclass(frozen=True)
class DemoStory:
    documents: list[DocumentVersion]
    revised: str
    history: list[DocumentVersion]
    as_of: str
    as_of_version: DocumentVersion
    application: str  # an IND with events and a finalised sequence
    lot: str  # a lot whose deviation was investigated, closed and which was released
    deviation: str  # that deviation
    held: str  # a lot held by an open deviation
    signatures: list[dict[str, Any]]  # made once the vault became access-controlled


def _pdf(title: str, *paragraphs: str, pages: int = 1) -> bytes:
    body = [title, "=" * len(title), ""]
    for paragraph in paragraphs:
        body.extend([paragraph, ""])
    sheets = [body] + [
        [f"{title} - page {n}", "", f"Continuation record, page {n} of {pages}."]
        for n in range(2, pages + 1)
    ]
    return make_pdf(sheets, title=title)


SEED: list[tuple[str, str, str, str | None, str, bytes]] = [
    (
        "CART-19",
        "ind",
        "IND 012345 original submission, cover letter and Form FDA 1571",
        None,
        "ind-012345-0000-cover.pdf",
        _pdf(
            "IND 012345 - Sequence 0000",
            "Original IND for autologous anti-CD19 CAR-T cells.",
            "Form FDA 1571 and Form FDA 1572 enclosed.",
            pages=3,
        ),
    ),
    (
        "CART-19",
        "protocol",
        "Phase 1 protocol CART19-101",
        None,
        "cart19-101-protocol.pdf",
        _pdf(
            "Protocol CART19-101",
            "A phase 1 dose-escalation study in relapsed B-ALL.",
            "Lymphodepletion: fludarabine 30 mg/m2 and cyclophosphamide 500 mg/m2, days -5 to -3.",
            pages=4,
        ),
    ),
    (
        "CART-19",
        "sop",
        "SOP-014 Leukapheresis receipt and chain of identity",
        None,
        "sop-014.md",
        b"# SOP-014 Leukapheresis receipt\n\n1. Verify the ISBT 128 DIN against the shipping manifest.\n"
        b"2. Record the dry-shipper temperature log.\n3. Quarantine until QA review.\n",
    ),
    (
        "CART-19",
        "batch-record",
        "Executed batch record, lot C19-2026-001",
        "C19-2026-001",
        "br-c19-2026-001.pdf",
        _pdf(
            "Batch record C19-2026-001",
            "Patient DIN W1234 26 000001. Transduction day 2.",
            "Expansion day 9: 2.1e9 viable cells, viability 93%.",
            "Sterility, endotoxin and mycoplasma samples sent to QC.",
            pages=6,
        ),
    ),
    (
        "CART-19",
        "deviation-package",
        "DEV-2026-0007 shipper temperature excursion",
        "C19-2026-001",
        "dev-2026-0007.pdf",
        _pdf(
            "Deviation DEV-2026-0007",
            "Dry shipper read -148 C for 12 minutes on arrival.",
            "Impact assessment: no impact; product remained below -150 C per data logger.",
        ),
    ),
    (
        "CART-19",
        "coc-certificate",
        "Chain-of-custody certificate, lot C19-2026-001",
        "C19-2026-001",
        "coc-c19-2026-001.pdf",
        _pdf("Chain of custody C19-2026-001", "Apheresis collected, shipped, received, infused."),
    ),
    (
        "CART-19",
        "release-certificate",
        "Certificate of release, lot C19-2026-001",
        "C19-2026-001",
        "release-c19-2026-001.pdf",
        _pdf("Certificate of release C19-2026-001", "Released by QA. Sterility: no growth."),
    ),
    (
        "CART-19",
        "correspondence",
        "FDA information request, CMC section",
        None,
        "fda-ir-2026-02.pdf",
        _pdf("FDA information request", "Please provide vector copy number release criteria."),
    ),
    (
        "AAV9-SMA",
        "ind",
        "IND 023456 original submission",
        None,
        "ind-023456-0000.pdf",
        _pdf(
            "IND 023456 - Sequence 0000", "Original IND for AAV9 gene replacement therapy.", pages=2
        ),
    ),
    (
        "AAV9-SMA",
        "meeting",
        "Type B pre-IND meeting minutes",
        None,
        "pre-ind-minutes.pdf",
        _pdf("Pre-IND meeting minutes", "FDA agreed with the proposed potency assay strategy."),
    ),
    (
        "AAV9-SMA",
        "batch-record",
        "Drug substance batch record, lot A9-2026-003",
        "A9-2026-003",
        "br-a9-2026-003.pdf",
        _pdf(
            "Batch record A9-2026-003", "Harvest titer 1.2e14 vg/L. Full/empty ratio 78%.", pages=5
        ),
    ),
    (
        "AAV9-SMA",
        "report",
        "Stability report, 6 months, lot A9-2026-003",
        "A9-2026-003",
        "stability-a9-6m.csv",
        b"timepoint_months,titer_vg_per_ml,potency_pct\n0,1.21e13,100\n3,1.19e13,98\n6,1.18e13,97\n",
    ),
]


DEMO_IND = "IND-012345"


def _regulatory(vault: Vault, ids: dict[str, str]) -> None:
    """The CART-19 IND: received, an FDA information request, its original sequence, the
    response that closes the request, and a new investigator's amendment marked done."""
    from datetime import date

    from atmpvault.archive.regulatory.applications import Regulatory
    from atmpvault.archive.regulatory.completion import Which, record_state
    from atmpvault.archive.regulatory.obligations import DONE
    from atmpvault.archive.regulatory.submissions.service import Packages

    registry = Regulatory(vault)
    registry.new_app("ind", "012345", "CART-19")
    registry.add_event(DEMO_IND, "ind-received", date(2026, 1, 5))
    registry.add_event(
        DEMO_IND, "fda-letter-received", date(2026, 2, 10),
        letter_kind="information-request", response_days=30,
        doc=ids["fda-ir-2026-02.pdf"], note="CMC information request: vector copy number",
    )  # fmt: skip
    packages = Packages(vault)
    packages.new(DEMO_IND, "0000", "original")
    packages.add(DEMO_IND, "0000", ids["ind-012345-0000-cover.pdf"], "m1/us")
    packages.add(DEMO_IND, "0000", ids["cart19-101-protocol.pdf"] + "@1", "m5/53")
    packages.finalise(DEMO_IND, "0000", "2026-01-05")
    # The response to the information request closes its milestone by itself; a new
    # investigator's protocol amendment is marked done by hand, with its evidence.
    packages.new(DEMO_IND, "0001", "response-to-fda")
    packages.add(DEMO_IND, "0001", ids["cart19-101-protocol.pdf"] + "@2", "m5/53")
    packages.finalise(DEMO_IND, "0001", "2026-03-06")
    registry.add_event(DEMO_IND, "investigator-added", date(2026, 3, 2))
    record_state(
        vault, Which(DEMO_IND, "NEW_INVESTIGATOR"), DONE, date(2026, 3, 20),
        "amendment sent with the site's 1572", on=date(2026, 3, 20),
        evidence=ids["cart19-101-protocol.pdf"] + "@3",
    )  # fmt: skip


DEMO_LOT, DEMO_HELD = "C19-2026-001", "C19-2026-002"
INVESTIGATOR = "Dana Whitfield"


def _quality(vault: Vault, ids: dict[str, str]) -> str:
    """Two CART-19 lots: one with a major deviation run to closure (investigation, CAPA,
    closure package) and released; one held by an open minor deviation."""
    from datetime import date

    from atmpvault.archive.core.people import People
    from atmpvault.archive.lots.service import Lots
    from atmpvault.archive.quality.capas import Capas
    from atmpvault.archive.quality.service import Deviations

    lots = Lots(vault)
    lots.new(DEMO_LOT, "CART-19", "COI-C19-0001")
    lots.new(DEMO_HELD, "CART-19", "COI-C19-0002")
    _custody_to_release(vault)  # the collection-to-testing chain; starts DEMO_LOT
    lots.step(DEMO_HELD, "start")
    People(vault).set(INVESTIGATOR, "dana.whitfield@example.com", "QA investigator")
    deviations = Deviations(vault)
    dev = deviations.open(
        [DEMO_LOT], "major", "Cryobag port weld leak at thaw-in check",
        "Bag 2 of 3 showed a pin-hole leak at the port weld during the thaw-in inspection.",
        "2026-03-10T09:40",
    )["id"]  # fmt: skip
    deviations.assign(dev, INVESTIGATOR)
    deviations.investigate(
        dev, "Heat sealer SN-114 ran 6 °C below its validated range after a fuse change",
        "One bag affected and discarded; the two sealed before the fuse change passed "
        "integrity testing", product_impact="no", patient_impact="no",
    )  # fmt: skip
    capa = Capas(vault).add(
        dev, "Recalibrate sealer SN-114 and add a post-maintenance seal-strength check to SOP-014",
        INVESTIGATOR, date(2026, 4, 30), date(2026, 7, 31),
    )["id"]  # fmt: skip
    Capas(vault).done(capa, ids["sop-014.md"])
    deviations.close(dev, "Root cause corrected; CAPA implemented, effectiveness check in July")
    lots.step(DEMO_LOT, "complete")
    lots.release(DEMO_LOT, "Q. Approver")  # writes the qa-release custody step too
    _custody_to_patient(vault)
    deviations.open(
        [DEMO_HELD], "minor", "Label smudged on the infusion bag",
        "Print smudge on the DIN barcode; identity re-verified by a second person.",
        "2026-03-12T14:05",
    )  # fmt: skip
    return str(dev)


DEMO_DIN = "G123498654321H"
DEMO_SITE, DEMO_MFG, DEMO_CLINIC = "APH-BOS-01", "MFG-01", "ONC-BOS-04"


def _custody_to_release(vault: Vault) -> None:
    """C19-2026-001's material from apheresis to release testing, every check passing (a
    certificate issued at receipt); C19-2026-002's collection, logged too warm: a break."""
    from datetime import UTC, datetime

    from atmpvault.archive.core.notices import DistributionLists
    from atmpvault.archive.custody.service import Custody

    lists = DistributionLists(vault)
    for name in ("manufacturing-leadership", "qa-management", "clinical-team",
                 "patient-scheduling"):  # fmt: skip
        lists.set(name, [f"{name}@example.com"], "demo distribution lists")
    custody = Custody(vault)
    chain: list[tuple[str, str, str, dict[str, Any]]] = [
        ("collection", DEMO_SITE, "2026-03-02T08:15", {"temps": (4.2,), "din": DEMO_DIN}),
        ("labeling", DEMO_SITE, "2026-03-02T08:40", {"temps": (4.4,), "din": DEMO_DIN}),
        ("cryopreservation", DEMO_SITE, "2026-03-02T13:00", {}),
        ("shipment-to-manufacturing", DEMO_SITE, "2026-03-03T09:00",
         {"temps": (-186.0,), "shipper": "CRYO-22", "seal": "intact"}),
        ("receipt-at-manufacturing", DEMO_MFG, "2026-03-04T11:30",
         {"temps": (-183.0,), "seal": "intact"}),
        ("manufacturing-start", DEMO_MFG, "2026-03-05T07:00", {}),
        ("release-testing", DEMO_MFG, "2026-03-20T07:00", {}),
    ]  # fmt: skip
    for step, site, at, extra in chain:
        moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
        custody.log(DEMO_LOT, step, "M. Ortega", site, moment, coi="COI-C19-0001", **extra)
    moment = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    custody.log(DEMO_HELD, "collection", "M. Ortega", DEMO_SITE, moment, temps=(11.5,))


def _custody_to_patient(vault: Vault) -> None:
    """C19-2026-001 shipped, received, thawed, checked at the bedside and infused (now)."""
    from atmpvault.archive.custody.service import Custody

    custody = Custody(vault)
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("shipment-to-site", DEMO_MFG, {"temps": (-188.0,), "shipper": "CRYO-31", "seal": "intact"}),
        ("receipt-at-site", DEMO_CLINIC, {"temps": (-185.0,), "seal": "intact"}),
        ("thaw", DEMO_CLINIC, {}),
        ("bedside-identity-check", DEMO_CLINIC, {"coi": "COI-C19-0001", "din": DEMO_DIN}),
        ("administration", DEMO_CLINIC, {}),
    ]  # fmt: skip
    for step, site, extra in steps:
        custody.log(DEMO_LOT, step, "K. Lindqvist", site, **extra)


def _dosing(vault: Vault) -> None:
    """Two CART-19 patients scheduled around today: one in manufacturing, one whose LD was
    brought forward before its product's release (a conflict on the board)."""
    from datetime import timedelta

    from atmpvault.archive.core.workdays import non_working
    from atmpvault.archive.dosing.service import Dosing
    from atmpvault.archive.lots.service import Lots

    today = vault.config.dates.today()
    dosing, lots = Dosing(vault), Lots(vault)

    def workday(day: date) -> date:
        while non_working(day, "US"):
            day += timedelta(days=1)
        return day

    for lot, coi, offset in (
        ("C19-2026-003", "COI-C19-0003", -9),
        ("C19-2026-004", "COI-C19-0004", 4),
    ):
        lots.new(lot, "CART-19", coi)
        apheresis = workday(today + timedelta(days=offset))
        dosing.reserve("MFG-01", workday(apheresis + timedelta(days=1)), lot)
        dosing.plan(lot, "autologous-cart", apheresis, site="ONC-BOS-04")
    lots.step("C19-2026-003", "start")
    planned = dosing.schedule("C19-2026-004").dates
    ld_start = planned["expected_release"] - timedelta(days=2)
    dosing.update(
        "C19-2026-004",
        {"ld_start": ld_start, "ld_end": ld_start + timedelta(days=2),
         "infusion": ld_start + timedelta(days=4)},
        "site asked to start conditioning earlier: patient's disease progressing",
    )  # fmt: skip


def _access(vault: Vault, protocol: str) -> list[dict[str, Any]]:
    """The vault becomes access-controlled: you (your OS login) as its admin with every
    role, with a demo key made beside the vault (demo-key, no passphrase: a real key has
    one), signing the protocol's current version and the released lot's."""
    from atmpvault.archive.core import access
    from atmpvault.archive.core.signatures import Signatures
    from atmpvault.archive.core.sshsig import generate
    from atmpvault.archive.core.users import LOGIN_RE, Users

    login = access.os_login()
    if not LOGIN_RE.fullmatch(login):
        return []  # a login the vault cannot take: the demo stays without users
    key = vault.path / "demo-key"
    public = generate(key, f"{login} (atmpvault demo)")
    roles = [r for r in access.ROLES if r != "auditor"]  # auditors only read
    Users(vault).add(login, "Demo Administrator", f"{login}@example.com", roles,
                     public.line, "the demo's administrator: you, with every role")  # fmt: skip
    signing = Signatures(vault)
    latest = Documents(vault).show(protocol).version
    lot_version = vault.catalog.record_head("lot", DEMO_LOT)
    assert lot_version is not None
    return [
        signing.sign(f"{protocol}@{latest}", "approval", key, "approved for the IND"),
        signing.sign(f"lot:{DEMO_LOT}@{lot_version[0]}", "review", key, "batch record reviewed"),
    ]


@contextmanager
def build_demo(settings: Settings) -> Iterator[tuple[Vault, DemoStory]]:
    """Create the demo vault at settings.vault and tell its story."""
    vault = Vault.create(settings, domains())
    documents = Documents(vault)
    try:
        with tempfile.TemporaryDirectory(prefix="atmpvault-demo-") as tmp:
            work = Path(tmp)
            ids: dict[str, str] = {}
            for program, doc_type, title, lot, filename, data in SEED:
                path = work / filename
                path.write_bytes(data)
                added = documents.add(path, program, doc_type, title, lot, {"source": "demo"})
                ids[filename] = added.id
            protocol = ids["cart19-101-protocol.pdf"]
            revisions = [
                (
                    "Amendment 1: add a 14-day cytokine release syndrome observation window",
                    "Protocol amendment 1 per FDA advice",
                ),
                (
                    "Amendment 2: lower dose level -1 to 5e5 CAR+ cells/kg",
                    "Protocol amendment 2 after DSMB review",
                ),
            ]
            for n, (change, why) in enumerate(revisions, start=2):
                path = work / f"cart19-101-protocol-v{n}.pdf"
                path.write_bytes(_pdf(f"Protocol CART19-101 v{n}", change, pages=4))
                documents.revise(protocol, path, why)
            sop = work / "sop-014.md"
            sop.write_bytes(sop.read_bytes() + b"4. Label verification by a second person.\n")
            documents.revise(ids["sop-014.md"], sop, "Periodic review: add second-person check")
            _regulatory(vault, ids)
            deviation = _quality(vault, ids)
            _dosing(vault)
            documents.withdraw(ids["fda-ir-2026-02.pdf"], "Filed in error under CART-19; refiled")
        signatures = _access(vault, protocol)
        history = documents.history(protocol)
        as_of = history[0].recorded_at
        story = DemoStory(
            documents=documents.ls(Filters()),
            revised=protocol,
            history=history,
            as_of=as_of,
            as_of_version=documents.show(protocol, as_of=as_of),
            application=DEMO_IND,
            lot=DEMO_LOT,
            deviation=deviation,
            held=DEMO_HELD,
            signatures=signatures,
        )
        yield vault, story
    finally:
        vault.close()
