"""Bulk import and full-text search against what a user would do without them.

Generates a seeded corpus of realistic ATMP manufacturing PDFs (80% one page, 20% ten
pages), then for each index engine: `atmpvault init --index-engine E`, `atmpvault import`
of the corpus (docs/s, pages/s, peak memory), a second import of a one-page-only corpus
of the same size (the "one-page PDFs/s" figure), 63 varied queries run warm in-process
through `Vault.search` (p50/p95), the pdfgrep phrases as cold `atmpvault search --json`
processes, `rebuild` and `verify`. Against them, in the same run: the naive loop
(copy, `git add`, `git commit` per file) on min(N, 500) files, and `pdfgrep -r -i -c`
over the corpus for the same phrases. Corpus generation is never timed.

Figures go to stdout (one table per engine, a summary side by side, then per-query
detail); progress goes to stderr. Nothing is asserted on time.

Memory: every process of a measured command's tree is read from /proc (bench/memory.py)
ten times a second; each step reports its largest process's anonymous and total peak,
the whole tree's (PSS), and each role's (the command, its workers, each git command).
The import's rate is reported over each tenth of the corpus (documents done are read
from the catalog as it runs); `--plot` draws rate and memory against documents
imported; `--baseline DIR` imports the one-page corpus with another atmpvault source
too, in the same run (`git archive REF atmpvault | tar -x -C DIR`).

    python bench/bench_search.py                      # 10,000 documents, both engines
    python bench/bench_search.py --quick              # 500 documents
    python bench/bench_search.py --docs 100000 --engines tantivy --keep --workdir /tmp/b

Run it with the interpreter of the environment atmpvault is installed in; the CLI used
is the `atmpvault` next to that interpreter. ATMPVAULT_* variables are not passed on
(the catalog is the vault's own SQLite file). `pdfgrep` and `hyperfine` are optional:
without pdfgrep that comparison is skipped, without hyperfine the cold runs are timed
here. The header names the atmpvault source measured and warns if it changed during the
run; to measure one fixed version of a tree that is being edited, put a copy first on
the path (the CLI subprocesses inherit it):

    git archive HEAD atmpvault | tar -x -C /tmp/snap
    PYTHONPATH=/tmp/snap python bench/bench_search.py
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import random
import resource
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from atmpvault.archive.core.pdf import make_pdf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import TreeMemory, TreeMonitor, describe, tenths  # noqa: E402  (bench/ is not a package)

ENGINES = ("tantivy", "whoosh")
PROGRAM = "CART-19"  # every file is imported under this program and type
DOC_TYPE = "batch-record"
TEN_PAGE_SHARE = 0.20
NAIVE_MAX = 500
FILES_PER_DIR = 1000
GEN_CHUNK = 250


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# Corpus: word lists and document templates
# ---------------------------------------------------------------------------------------

# (program as written in the records, lot prefix, weight)
PROGRAMS = (
    ("CART-19", "C19", 60),
    ("CART-BCMA", "CBM", 15),
    ("TIL-07", "T07", 10),
    ("AAV-F9", "AF9", 10),
    ("LVV-SCD", "LSD", 5),
)
SITES = (
    ("PHL", "Philadelphia"),
    ("LDN", "Leiden"),
    ("OXF", "Oxford"),
    ("RKV", "Rockville"),
    ("OSK", "Osaka"),
)
FACILITIES = ("W0420", "W1213", "A9987", "G1122", "W3306", "A4410", "B7001", "W0057")
PEOPLE = (
    "J. Rivera",
    "A. Okafor",
    "M. Lindqvist",
    "S. Tanaka",
    "R. Patel",
    "L. Moreau",
    "K. Novak",
    "D. Mensah",
    "E. Rossi",
    "H. Schmidt",
    "P. Kowalski",
    "T. Nguyen",
    "C. Oliveira",
    "F. Haddad",
    "G. O'Brien",
    "N. Ivanova",
    "B. Achebe",
    "Y. Sato",
    "I. Fernandez",
    "V. Horvat",
    "O. Adeyemi",
    "Q. Zhang",
    "U. Nakamura",
    "W. Jensen",
)
ORGANISMS = (
    "Staphylococcus epidermidis",
    "Cutibacterium acnes",
    "Bacillus subtilis",
    "Micrococcus luteus",
    "Candida albicans",
)
SHIPPERS = ("Cryoport Express HV3", "CryoPDP LN2 dry shipper", "Credo Cube 2-8 C", "BioLife evo")
COURIERS = ("World Courier", "Marken", "Cryoport", "QuickSTAT", "BioCair")
EQUIPMENT = (
    "Prodigy CliniMACS",
    "Sepax C-Pro",
    "G-Rex 100M",
    "Xuri W25 bioreactor",
    "Kryo 750 controlled rate freezer",
    "Lovo cell processor",
    "isolator ISO-3",
    "biosafety cabinet BSC-12",
    "NucleoCounter NC-200",
    "BacT/ALERT 3D",
)
ROOT_CAUSES = (
    "operator error during line clearance",
    "shipper data logger battery depleted",
    "courier delay at customs",
    "incorrect label template revision",
    "freezer profile not selected",
    "late sample transfer to QC",
    "transcription error in the batch record",
    "supplier reagent lot change",
    "HVAC pressure cascade alarm",
    "incomplete training record",
)
FILLER = (
    "Step {step} performed by {op} and verified by {ver} at {time}.",
    "Line clearance completed and documented before start of step {step}.",
    "Room {room} cleaned and released by QA prior to processing.",
    "Materials checked against the bill of materials; all within expiry.",
    "Equipment {equip} within calibration; logbook entry {n}.",
    "Gowning qualification of all operators confirmed on the training matrix.",
    "Environmental monitoring plates placed in Grade A at {time}.",
    "Reagent lot {reagent} recorded; certificate of analysis on file.",
    "Aseptic manipulations performed in the {equip}.",
    "Second person verification of calculations completed.",
    "Label reconciliation: {n} issued, {n} used, 0 destroyed.",
    "Comments: none. Entries made in accordance with good documentation practice.",
    "Time out of refrigeration recorded as {minutes} minutes.",
    "Sample ID {sample} transferred to QC at {time}.",
    "Pressure differential {pa} Pa recorded, within limits.",
)


@dataclass
class Doc:
    """One generated document: what the query builder needs to know about it."""

    index: int
    pages: int
    kind: str
    lot: str
    din: str
    path: str
    size: int


class Writer:
    """Draws one document's fields and lines from its own seeded random source."""

    def __init__(self, rng: random.Random, n_docs: int, number: int) -> None:
        self.rng = rng
        self.number = number
        program, prefix, _ = rng.choices(PROGRAMS, weights=[p[2] for p in PROGRAMS])[0]
        self.program, self.prefix = program, prefix
        self.year = rng.choice((2024, 2025, 2026))
        pool = max(10, n_docs // 40)
        self.lot = f"{prefix}-{self.year}-{rng.randrange(1, pool + 1):04d}"
        self.site_code, self.site = rng.choice(SITES)
        self.din = (
            f"{rng.choice(FACILITIES)} {self.year % 100:02d} {rng.randrange(1, 1_000_000):06d}"
        )
        self.din_check = rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
        self.coi = f"{prefix}-{self.site_code}-{rng.randrange(1, 100_000):05d}"
        self.day = date(self.year, 1, 1) + timedelta(days=rng.randrange(0, 330))
        self.op, self.ver, self.qa = rng.sample(PEOPLE, 3)
        self.ref = f"{number:06d}"

    # small helpers -----------------------------------------------------------------

    def pct(self, lo: float, hi: float) -> str:
        return f"{self.rng.uniform(lo, hi):.1f}%"

    def time(self) -> str:
        return f"{self.rng.randrange(6, 20):02d}:{self.rng.randrange(0, 60):02d}"

    def when(self, offset: int = 0) -> str:
        return (self.day + timedelta(days=offset)).isoformat()

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def filler(self, count: int) -> list[str]:
        r = self.rng
        out = []
        for _ in range(count):
            op, ver = r.sample(PEOPLE, 2)
            out.append(
                r.choice(FILLER).format(
                    step=f"{r.randrange(1, 15)}.{r.randrange(1, 20)}",
                    op=op,
                    ver=ver,
                    time=self.time(),
                    room=f"{self.site_code}-{r.randrange(100, 140)}",
                    equip=r.choice(EQUIPMENT),
                    n=r.randrange(2, 40),
                    reagent=f"RG-{r.randrange(10000, 99999)}",
                    minutes=r.randrange(1, 25),
                    sample=f"QC-{self.lot}-{r.randrange(1, 60):02d}",
                    pa=r.randrange(12, 40),
                )
            )
        return out

    def header(self, title: str) -> list[str]:
        return [
            f"{self.site} Cell Therapy Manufacturing Facility ({self.site_code})",
            f"{title}   Ref {self.ref}",
            f"Product {self.program}   Lot {self.lot}   Date {self.when()}",
            f"ISBT 128 DIN {self.din} {self.din_check}   Chain of identity COI {self.coi}",
            "",
        ]

    def footer(self, page: int, pages: int) -> list[str]:
        return [
            "",
            f"Page {page} of {pages}   Document ref {self.ref}   CONFIDENTIAL GMP RECORD",
        ]

    def page(self, title: str, body: list[str], page: int, pages: int, fill: int) -> list[str]:
        lines = self.header(title) + body
        extra = self.filler(max(0, min(fill, 45 - len(lines))))
        # interleave filler among the body lines so pages do not all read alike
        for line in extra:
            lines.insert(self.rng.randrange(5, len(lines) + 1), line)
        return lines[:45] + self.footer(page, pages)

    # one-page kinds --------------------------------------------------------------------

    def coc(self) -> list[str]:
        r = self.rng
        body = [
            "CHAIN OF CUSTODY CERTIFICATE",
            f"Chain of custody maintained from collection to receipt for DIN {self.din}.",
            f"Leukapheresis collection at apheresis centre {r.randrange(100, 999)} on {self.when()}.",
            f"Handover to courier {r.choice(COURIERS)} at {self.time()}; seal number S{r.randrange(10**6, 10**7)}.",
            f"Shipper {r.choice(SHIPPERS)} serial {r.randrange(1000, 9999)} data logger attached.",
            f"Receipt at {self.site} on {self.when(1)} at {self.time()}; seal intact.",
            "Chain of identity verified: patient identifiers match the ISBT 128 label.",
        ]
        if self.chance(0.06):
            body.append("Shipper log shows a temperature excursion; see deviation record.")
        body += [f"Custodian signature {p}" for p in r.sample(PEOPLE, 3)]
        return self.page("Chain of Custody Certificate", body, 1, 1, r.randrange(6, 14))

    def release(self) -> list[str]:
        r = self.rng
        status = r.choices(("RELEASED", "QUARANTINE", "REJECTED"), weights=(90, 7, 3))[0]
        body = [
            "CERTIFICATE OF RELEASE",
            f"Batch disposition: {status}.",
            f"Viability at release {self.pct(78, 97)} (specification >= 70%).",
            f"Vector copy number {r.uniform(0.4, 4.8):.2f} copies per transduced cell.",
            "Sterility: no growth after 14 days. Endotoxin below 0.5 EU/mL.",
            "Mycoplasma by qPCR: not detected.",
        ]
        if self.chance(0.5):
            body.append(f"Certified by the Qualified Person {self.qa} for the EU market.")
        else:
            body.append(f"Released by QA {self.qa} under the BLA batch release procedure.")
        if status != "RELEASED":
            body.append("Batch held pending investigation of an out of specification result.")
        return self.page("Certificate of Release", body, 1, 1, r.randrange(8, 16))

    def coa(self) -> list[str]:
        r = self.rng
        vcn = r.uniform(0.4, 5.6)
        body = [
            "CERTIFICATE OF ANALYSIS",
            "Test   Method   Specification   Result",
            f"Viability   AO/PI NC-200   >= 70%   {self.pct(72, 98)}",
            f"CD3+ T cells   flow cytometry   >= 80%   {self.pct(82, 99)}",
            f"CAR expression CD19 binder   flow cytometry   >= 15%   {self.pct(15, 60)}",
            f"Vector copy number   ddPCR   <= 5 copies/cell   {vcn:.2f}",
            f"Endotoxin   LAL kinetic   < 5 EU/mL   {r.uniform(0.05, 0.9):.2f} EU/mL",
            "Mycoplasma   qPCR   not detected   not detected",
            "Replication competent lentivirus RCL   qPCR VSV-G   not detected   not detected",
            "Sterility   BacT/ALERT   no growth   no growth",
        ]
        if vcn > 5.0 or self.chance(0.03):
            body.append("Result out of specification; OOS investigation opened by QC.")
        return self.page("Certificate of Analysis", body, 1, 1, r.randrange(6, 14))

    def excursion(self) -> list[str]:
        r = self.rng
        peak = r.uniform(-120, -60) if self.chance(0.5) else r.uniform(8.5, 14)
        body = [
            "TEMPERATURE EXCURSION REPORT",
            f"A temperature excursion was recorded by the data logger of shipper {r.choice(SHIPPERS)}.",
            f"Peak temperature {peak:.1f} C for {r.randrange(3, 95)} minutes during transit.",
            f"Courier {r.choice(COURIERS)}; route {r.choice(SITES)[1]} to {self.site}.",
            "Product impact assessment performed with stability data.",
            f"Conclusion: {r.choice(('no impact on product quality', 'impact cannot be excluded', 'product rejected'))}.",
            f"Deviation DEV-{self.year}-{r.randrange(1, 900):04d} raised; CAPA evaluated.",
        ]
        return self.page("Temperature Excursion Report", body, 1, 1, r.randrange(6, 14))

    def deviation_notice(self) -> list[str]:
        r = self.rng
        cls = r.choices(("minor", "major", "critical"), weights=(70, 25, 5))[0]
        body = [
            "DEVIATION NOTIFICATION",
            f"Deviation DEV-{self.year}-{r.randrange(1, 900):04d} classified {cls}.",
            f"Description: {r.choice(ROOT_CAUSES)} during processing of lot {self.lot}.",
        ]
        if self.chance(0.25):
            body.append("Event: temperature excursion of the incubator outside 37 +/- 1 C.")
        if self.chance(0.3):
            body.append("An out of specification result was reported by QC.")
        body += [
            f"Immediate action: batch placed in quarantine by {self.qa}.",
            "Root cause investigation to be completed within 30 days.",
        ]
        return self.page("Deviation Notification", body, 1, 1, r.randrange(8, 14))

    def capa(self) -> list[str]:
        r = self.rng
        body = [
            "CORRECTIVE AND PREVENTIVE ACTION (CAPA)",
            f"CAPA-{self.year}-{r.randrange(1, 500):04d} linked to DEV-{self.year}-{r.randrange(1, 900):04d}.",
            f"Root cause: {r.choice(ROOT_CAUSES)}.",
            "Corrective action: retraining of operators and revision of the SOP.",
            "Preventive action: second person verification added to the batch record.",
            f"Effectiveness check due {self.when(90)}; owner {self.qa}.",
        ]
        return self.page("CAPA Record", body, 1, 1, r.randrange(8, 14))

    def shipper(self) -> list[str]:
        r = self.rng
        body = [
            "SHIPPER LOG AND CHAIN OF CUSTODY",
            f"LN2 dry shipper {r.choice(SHIPPERS)} serial {r.randrange(1000, 9999)} charged {self.when(-2)}.",
            f"Static hold time verified {r.randrange(8, 12)} days; weight {r.uniform(11, 14):.1f} kg.",
            f"Courier {r.choice(COURIERS)} airway bill {r.randrange(10**9, 10**10)}.",
        ]
        for hour in range(r.randrange(6, 14)):
            body.append(f"Logger reading +{hour * 6:03d} h: {r.uniform(-196, -170):.0f} C")
        if self.chance(0.10):
            body.append("Alarm: temperature excursion above -150 C; investigation requested.")
        return self.page("Shipper Log", body, 1, 1, r.randrange(2, 6))

    def sterility(self) -> list[str]:
        r = self.rng
        body = [
            "STERILITY TEST REPORT",
            f"Method BacT/ALERT aerobic and anaerobic bottles, sample QC-{self.lot}-{r.randrange(1, 60):02d}.",
            f"Inoculated {self.when()}; incubation 14 days at 32.5 C and 22.5 C.",
        ]
        if self.chance(0.03):
            body.append(f"Growth detected on day {r.randrange(2, 10)}: sterility failure.")
            body.append(f"Organism identified as {r.choice(ORGANISMS)}; OOS investigation opened.")
        else:
            body.append("Result: no growth after 14 days. Sterility test passed.")
        body.append(f"Bioburden of the starting material {r.randrange(0, 5)} CFU.")
        return self.page("Sterility Test Report", body, 1, 1, r.randrange(8, 14))

    def em(self) -> list[str]:
        r = self.rng
        body = [
            "ENVIRONMENTAL MONITORING REPORT",
            f"Session {self.when()} in room {self.site_code}-{r.randrange(100, 140)}.",
        ]
        for grade in ("Grade A", "Grade B", "Grade C"):
            body.append(
                f"{grade}: settle plates {r.randrange(0, 3)} CFU, contact plates {r.randrange(0, 4)} CFU, "
                f"particles 0.5 um {r.randrange(0, 3500)} per m3"
            )
        if self.chance(0.08):
            body.append("Action limit exceeded in the isolator; deviation raised.")
        return self.page("Environmental Monitoring Report", body, 1, 1, r.randrange(8, 14))

    def br_summary(self) -> list[str]:
        r = self.rng
        body = [
            "BATCH RECORD REVIEW SUMMARY",
            f"Executed batch record for lot {self.lot} reviewed by {self.qa}.",
            f"Leukapheresis starting material DIN {self.din}; transduction day 1; harvest day {r.randrange(7, 12)}.",
            f"Final viability {self.pct(75, 97)}; vector copy number {r.uniform(0.4, 4.8):.2f}.",
            f"Deviations: {r.choice(('none', 'one minor', 'two minor', 'one major'))}.",
        ]
        return self.page("Batch Record Review", body, 1, 1, r.randrange(10, 16))

    # ten-page kinds ------------------------------------------------------------------

    def batch_record(self) -> list[list[str]]:
        r = self.rng
        sections = [
            [
                "EXECUTED BATCH RECORD",
                f"Master batch record MBR-{self.prefix}-{r.randrange(1, 9):02d} revision {r.randrange(1, 12)}.",
                f"Manufacturing start {self.when()}; site {self.site}.",
                f"Prepared by {self.op}; reviewed by {self.ver}; approved by QA {self.qa}.",
            ],
            [
                "Section 1  Leukapheresis receipt and chain of custody",
                f"Leukapheresis material received in shipper {r.choice(SHIPPERS)} at {self.time()}.",
                f"Chain of custody verified against ISBT 128 DIN {self.din}.",
                "Shipper temperature log reviewed: "
                + (
                    "temperature excursion recorded, see deviation."
                    if self.chance(0.05)
                    else "within range."
                ),
                f"Total nucleated cells {r.uniform(4, 18):.1f} x10^9; viability {self.pct(85, 99)}.",
            ],
            [
                "Section 2  T cell selection",
                f"CD4/CD8 selection on {r.choice(EQUIPMENT[:2])}; recovery {self.pct(40, 80)}.",
                f"Viability after selection {self.pct(85, 99)}.",
            ],
            [
                "Section 3  Activation",
                f"Activation with CD3/CD28 reagent lot RG-{r.randrange(10000, 99999)} on {self.when(1)}.",
                f"Seeding density {r.uniform(0.5, 1.5):.2f} x10^6 cells/mL.",
            ],
            [
                "Section 4  Transduction",
                f"Lentiviral vector lot LV-{r.randrange(100, 999)} thawed at {self.time()}.",
                f"Transduction at MOI {r.choice((2, 3, 5, 10))} in {r.choice(EQUIPMENT[2:4])}.",
                "Transduction enhancer added per MBR step 4.6.",
            ],
            [
                "Section 5  Expansion",
                *[
                    f"Day {d}: viable cell density {r.uniform(0.3, 4):.2f} x10^6/mL, viability {self.pct(80, 98)}"
                    for d in range(2, r.randrange(8, 12))
                ],
            ],
            [
                "Section 6  Harvest and formulation",
                f"Harvest on {self.when(r.randrange(7, 12))} with the Lovo cell processor.",
                f"Formulated dose {r.uniform(0.5, 6):.1f} x10^8 CAR+ T cells in {r.choice((2, 3, 4))} bags.",
            ],
            [
                "Section 7  Cryopreservation",
                "Controlled rate freezer profile CRF-T01 selected and verified.",
                "Bags transferred to vapour phase LN2 storage; location recorded.",
            ],
            [
                "Section 8  QC sampling",
                f"Vector copy number {r.uniform(0.4, 4.8):.2f} copies per cell (specification <= 5).",
                "Sterility, endotoxin and mycoplasma samples sent to QC.",
                "Replication competent lentivirus samples retained.",
            ],
            [
                "Section 9  Review and batch disposition",
                f"Deviations: {'none' if self.chance(0.7) else f'DEV-{self.year}-{r.randrange(1, 900):04d}'}.",
                f"Batch record reviewed by QA {self.qa} on {self.when(20)}.",
                f"Batch disposition: {r.choices(('released', 'quarantined', 'rejected'), weights=(90, 8, 2))[0]}.",
            ],
        ]
        return [
            self.page("Executed Batch Record", body, n, 10, r.randrange(18, 32))
            for n, body in enumerate(sections, start=1)
        ]

    def deviation_package(self) -> list[list[str]]:
        r = self.rng
        dev = f"DEV-{self.year}-{r.randrange(1, 900):04d}"
        cause = r.choice(ROOT_CAUSES)
        excursion = self.chance(0.35)
        pages = [
            [
                "DEVIATION INVESTIGATION PACKAGE",
                f"Deviation {dev} for lot {self.lot}, opened {self.when()}.",
                "Event: "
                + ("temperature excursion during shipment." if excursion else f"{cause}."),
            ],
            ["Timeline of events", *[f"{self.time()}  {line}" for line in self.filler(6)]],
            [
                "Impact assessment",
                f"Viability at time of event {self.pct(70, 95)}.",
                "An out of specification result was confirmed."
                if self.chance(0.3)
                else "All results within specification.",
            ],
            ["Root cause analysis (5 whys, fishbone)", f"Root cause: {cause}."],
            ["Product quality assessment", "Vector copy number and sterility reviewed."],
            [
                "Corrective and preventive action",
                f"CAPA-{self.year}-{r.randrange(1, 500):04d} opened; effectiveness check in 90 days.",
            ],
            [
                "Attachment A  data logger export",
                *[f"{self.time()}  {r.uniform(-190, 12):.1f} C" for _ in range(10)],
            ],
            [
                "Attachment B  chain of custody records",
                f"DIN {self.din} verified at every handover.",
            ],
            ["Attachment C  training records", f"Operators {self.op} and {self.ver} retrained."],
            [
                "Closure",
                f"Deviation {dev} closed by QA {self.qa} on {self.when(28)}.",
                f"Batch disposition after investigation: {r.choice(('released', 'rejected'))}.",
            ],
        ]
        return [
            self.page("Deviation Package", body, n, 10, r.randrange(18, 32))
            for n, body in enumerate(pages, start=1)
        ]


ONE_PAGE_KINDS: tuple[tuple[str, str, str, int], ...] = (
    # (code, title, method, weight)
    ("COC", "Chain of custody certificate", "coc", 16),
    ("REL", "Certificate of release", "release", 12),
    ("COA", "Certificate of analysis", "coa", 12),
    ("TEX", "Temperature excursion report", "excursion", 8),
    ("DEV", "Deviation notification", "deviation_notice", 10),
    ("CAPA", "CAPA record", "capa", 8),
    ("SHP", "Shipper log", "shipper", 12),
    ("STER", "Sterility test report", "sterility", 8),
    ("EM", "Environmental monitoring report", "em", 7),
    ("BRS", "Batch record review summary", "br_summary", 7),
)
TEN_PAGE_KINDS: tuple[tuple[str, str, str, int], ...] = (
    ("BR", "Executed batch record", "batch_record", 75),
    ("DVP", "Deviation investigation package", "deviation_package", 25),
)


def _generate_chunk(
    root: str, seed: int, corpus: str, n_docs: int, indices: list[int], one_page_only: bool
) -> list[Doc]:
    """Write the PDFs for `indices` (runs in a worker; each document has its own seed)."""
    out = []
    for i in indices:
        rng = random.Random(f"{seed}/{corpus}/{i}")
        ten = not one_page_only and rng.random() < TEN_PAGE_SHARE
        kinds = TEN_PAGE_KINDS if ten else ONE_PAGE_KINDS
        code, title, method, _ = rng.choices(kinds, weights=[k[3] for k in kinds])[0]
        writer = Writer(rng, n_docs, i + 1)
        made = getattr(writer, method)()
        pages = made if ten else [made]
        data = make_pdf(pages, title=f"{title} {writer.lot}")
        folder = Path(root) / f"{i // FILES_PER_DIR:03d}"
        folder.mkdir(exist_ok=True)
        path = folder / f"{code}-{writer.lot}-{i + 1:06d}.pdf"
        path.write_bytes(data)
        out.append(Doc(i, len(pages), code, writer.lot, writer.din, str(path), len(data)))
    return out


@dataclass
class Corpus:
    root: Path
    docs: list[Doc]

    @property
    def pages(self) -> int:
        return sum(d.pages for d in self.docs)

    @property
    def size(self) -> int:
        return sum(d.size for d in self.docs)


def generate(root: Path, n_docs: int, seed: int, corpus: str, one_page_only: bool) -> Corpus:
    root.mkdir(parents=True)
    chunks = [list(range(s, min(n_docs, s + GEN_CHUNK))) for s in range(0, n_docs, GEN_CHUNK)]
    docs: list[Doc] = []
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [
            pool.submit(_generate_chunk, str(root), seed, corpus, n_docs, c, one_page_only)
            for c in chunks
        ]
        for done, future in enumerate(futures, start=1):
            docs.extend(future.result())
            if done % 40 == 0 or done == len(futures):
                log(f"  generated {len(docs):,}/{n_docs:,} ({corpus})")
    result = Corpus(root, docs)
    log(
        f"corpus {corpus}: {len(docs):,} PDFs, {result.pages:,} pages, "
        f"{result.size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s (not part of any figure)"
    )
    return result


# ---------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuerySet:
    queries: list[str]
    phrases: list[str]  # plain phrases: pdfgrep patterns and the cold CLI set
    notes: list[str]


def build_queries(corpus: Corpus) -> QuerySet:
    """63 queries of every kind the query language has, from very common to absent."""
    lots = Counter(d.lot for d in corpus.docs if d.lot.startswith("C19-")) or Counter(
        d.lot for d in corpus.docs
    )
    ranked = sorted(lots.items(), key=lambda kv: (-kv[1], kv[0]))
    lot = ranked[len(ranked) // 2][0]  # a lot of median frequency
    lot2 = ranked[0][0]  # the most referenced one
    din = corpus.docs[len(corpus.docs) // 3].din
    doc_id = f"DOC-{min(42, len(corpus.docs)):06d}"
    since = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    phrases = [
        "temperature excursion",
        "vector copy number",
        "chain of custody",
        "out of specification",
        "sterility failure",
        lot,
    ]
    queries = [
        # single terms, common to rare
        "viability",
        "leukapheresis",
        "transduction",
        "sterility",
        "endotoxin",
        "mycoplasma",
        "cryopreservation",
        "deviation",
        "CAPA",
        "shipper",
        "bioburden",
        "isolator",
        # phrases
        *[f'"{p}"' for p in phrases],
        '"root cause"',
        '"dry shipper"',
        '"Qualified Person"',
        '"batch disposition"',
        '"replication competent lentivirus"',
        f'"{din}"',
        '"viability at release"~2',
        # a lot number as a bare word, and the fields
        lot2,
        f"lot:{lot}",
        f"program:{PROGRAM}",
        "program:CART-22",
        f"type:{DOC_TYPE}",
        f"id:{doc_id}",
        "title:deviation",
        "filename:tex",
        # boolean
        'deviation AND "temperature excursion"',
        "viability AND transduction AND NOT deviation",
        "sterility OR endotoxin OR mycoplasma",
        '"chain of custody" AND shipper',
        'CAPA AND "root cause" AND "effectiveness check"',
        "deviation NOT excursion",
        '(leukapheresis OR apheresis) AND "chain of custody"',
        "NOT viability",
        'release AND ("Qualified Person" OR BLA)',
        'ISBT AND DIN AND "temperature excursion"',
        'CD19 AND "CD3+"',
        '"Grade A" AND isolator AND deviation',
        'bioburden OR "environmental monitoring"',
        f'"{lot}" OR "{lot2}"',
        # prefix and fuzzy
        "transduc*",
        "cryo*",
        "steril*",
        "excurs*",
        "lenti*",
        "lot:c19*",
        "id:DOC-0000*",
        "viabilty~",
        "leukaferesis~2",
        "sterilty~",
        "transducton~",
        "mycoplasm~",
        # dates (every document was recorded during this run)
        f"recorded_at:[{since} TO *]",
        "recorded_at:[2020-01-01 TO 2020-12-31]",
        f"recorded_at:[{since} TO *] AND deviation",
        # combined with fields
        f"viability AND program:{PROGRAM} AND type:{DOC_TYPE}",
    ]
    notes = [
        (
            f"lot of median frequency {lot} ({lots[lot]} documents), most frequent {lot2} "
            f"({lots[lot2]}); DIN {din}; id {doc_id}"
        ),
        (
            "lot: and lot:c19* match nothing: a folder import sets no lot field (lot numbers "
            "are found in the text); program:CART-19 and type:batch-record match everything."
        ),
    ]
    return QuerySet(queries, phrases, notes)


# ---------------------------------------------------------------------------------------
# Running and measuring subprocesses
# ---------------------------------------------------------------------------------------


@dataclass
class Run:
    argv: list[str]
    seconds: float
    returncode: int
    stdout: str
    stderr: str
    maxrss_mb: float  # the largest single process of the tree (wait4: child and its reaped)
    tree_mb: float  # sampled peak of the whole tree (PSS)
    processes: int
    cpu_s: float  # user + system CPU of the process and every descendant it waited for
    memory: TreeMemory  # anonymous and file-backed, per process and role, over time

    def check(self, what: str) -> Run:
        if self.returncode != 0:
            raise BenchError(
                f"{what} exited {self.returncode}: {shlex.join(self.argv)}\n"
                f"{self.stderr.strip()[-2000:]}"
            )
        return self


class BenchError(Exception):
    pass


def run_measured(
    argv: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    done: Callable[[], int] | None = None,
) -> Run:
    """Run `argv` (no shell), timing it wall-clock and measuring the memory of its tree.

    `done`, if given, is sampled with the memory: how many documents are done so far.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
        monitor = TreeMonitor(proc.pid, done=done)
        monitor.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            monitor.stop()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            argv,
            seconds,
            proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            max(usage.ru_maxrss / 1024, monitor.found.largest_rss),  # ru_maxrss is in KiB
            monitor.found.tree_pss,
            monitor.found.max_processes,
            usage.ru_utime + usage.ru_stime,
            monitor.found,
        )


def children_cpu() -> float:
    """CPU seconds of this process's reaped children so far (for loops of short commands)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def code_version() -> str:
    """Which atmpvault is measured: its source folder, git commit and uncommitted changes."""
    import atmpvault

    source = Path(atmpvault.__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        head, dirty = "(not in a git work tree)", []
    digest = hashlib.sha256()
    for path in sorted(source.rglob("*.py")):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    changes = f" + {len(dirty)} uncommitted path(s)" if dirty else ""
    return f"{source} at {head}{changes}; sources sha256 {digest.hexdigest()[:12]}"


def load() -> float:
    """The 1-minute load average: how busy the (shared) machine was."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# ---------------------------------------------------------------------------------------
# The measurements
# ---------------------------------------------------------------------------------------


@dataclass
class EngineResult:
    engine: str
    figures: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)  # query -> total hits
    query_ms: dict[str, float] = field(default_factory=dict)  # query -> median warm ms
    cold_ms: dict[str, float] = field(default_factory=dict)  # phrase query -> median cold ms
    loads: dict[str, tuple[float, float]] = field(default_factory=dict)  # step -> 1-min load
    memory: dict[str, TreeMemory] = field(default_factory=dict)  # step -> its process tree
    tenths: list[tuple[int, float]] = field(default_factory=list)  # (docs at end, docs/s)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.cli = self._find_cli()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ATMPVAULT_")}
        self.env["ATMPVAULT_USER"] = "bench"
        self.env["ATMPVAULT_NO_ACCESS_NOTE"] = "1"  # a bench vault has no users, on purpose
        self.hyperfine = shutil.which("hyperfine")
        self.pdfgrep = shutil.which("pdfgrep")
        self.code_at_start = code_version()

    @staticmethod
    def _find_cli() -> list[str]:
        sibling = Path(sys.executable).parent / "atmpvault"
        if sibling.is_file() and os.access(sibling, os.X_OK):
            return [str(sibling)]
        found = shutil.which("atmpvault")
        return [found] if found else [sys.executable, "-m", "atmpvault"]

    def atmpvault(self, vault: Path, *args: str) -> list[str]:
        return [*self.cli, "--vault", str(vault), *args]

    # -- import -------------------------------------------------------------------

    def import_corpus(
        self, vault: Path, corpus: Corpus, engine: str, env: dict[str, str] | None = None
    ) -> Run:
        """`init` then `import` of the corpus; the documents done are read from the catalog
        while it runs (the commits of its audit trail, less the vault's first)."""
        env = env or self.env
        run_measured(self.atmpvault(vault, "init", "--index-engine", engine), env).check("init")
        catalog = f"file:{vault / 'catalog.sqlite'}?mode=ro"

        def done() -> int:
            try:
                with contextlib.closing(sqlite3.connect(catalog, uri=True, timeout=0.05)) as db:
                    return max(0, int(db.execute("SELECT max(seq) FROM audit").fetchone()[0]) - 1)
            except (sqlite3.Error, TypeError):
                return 0

        run = run_measured(
            self.atmpvault(
                vault,
                "import",
                str(corpus.root),
                "--program",
                PROGRAM,
                "--type",
                DOC_TYPE,
                "--json",
            ),
            env,
            done=done,
        ).check("import")
        report = json.loads(run.stdout)
        if report["imported"] != len(corpus.docs) or report["refused"] or report["unsearchable"]:
            raise BenchError(
                f"import of {corpus.root} archived {report['imported']} of {len(corpus.docs)}; "
                f"refused {len(report['refused'])}, unsearchable {len(report['unsearchable'])}"
            )
        return run

    # -- the naive loop ---------------------------------------------------------------

    def naive_git(self, corpus: Corpus) -> dict[str, Any]:
        """Copy each file into a plain work tree, then `git add` and `git commit` it."""
        files = [Path(d.path) for d in corpus.docs[:NAIVE_MAX]]
        tree = self.workdir / "naive-git"
        subprocess.run(["git", "init", "-q", str(tree)], check=True, env=self.env)
        for key, value in (("user.name", "bench"), ("user.email", "bench@example.invalid")):
            subprocess.run(["git", "-C", str(tree), "config", key, value], check=True)
        start, cpu, load_start = time.perf_counter(), children_cpu(), load()
        for n, source in enumerate(files, start=1):
            shutil.copyfile(source, tree / source.name)
            subprocess.run(["git", "add", "--", source.name], cwd=tree, check=True, env=self.env)
            subprocess.run(
                ["git", "commit", "-q", "-m", f"Add {source.name}"],
                cwd=tree,
                check=True,
                env=self.env,
                stdout=subprocess.DEVNULL,
            )
            if n % 100 == 0:
                log(f"  naive git: {n}/{len(files)}")
        seconds = time.perf_counter() - start
        if not self.args.keep:
            shutil.rmtree(tree)
        return {
            "files": len(files),
            "seconds": seconds,
            "docs_s": len(files) / seconds,
            "cpu_s": children_cpu() - cpu,
            "load": (load_start, load()),
        }

    # -- search -------------------------------------------------------------------------

    def warm_search(self, vault_path: Path, queries: list[str], result: EngineResult) -> None:
        from atmpvault.archive.core.vault import Vault
        from atmpvault.archive.domains import domains
        from atmpvault.config import Settings
        from atmpvault.indexer.index import SearchFilters

        samples: dict[str, list[float]] = {q: [] for q in queries}
        with Vault.open(Settings(vault=vault_path, user="bench"), domains()) as vault:
            start = time.perf_counter()
            vault.search(queries[0], SearchFilters(), limit=20)
            result.figures["first_search_ms"] = (time.perf_counter() - start) * 1e3
            for query in queries:  # warm-up pass; also the hit counts
                result.totals[query] = vault.search(query, SearchFilters(), limit=20).total
            for rep in range(self.args.reps):
                for query in queries:
                    start = time.perf_counter()
                    vault.search(query, SearchFilters(), limit=20)
                    samples[query].append((time.perf_counter() - start) * 1e3)
                log(f"  warm search: repetition {rep + 1}/{self.args.reps}")
        flat = [s for values in samples.values() for s in values]
        result.query_ms = {q: statistics.median(v) for q, v in samples.items()}
        result.figures.update(
            warm_p50=percentile(flat, 50),
            warm_p95=percentile(flat, 95),
            warm_max=max(flat),
            warm_samples=len(flat),
        )

    def cold_search(self, vault: Path, phrases: list[str], result: EngineResult) -> None:
        """One new `atmpvault search` process per run (the OS file cache stays warm)."""
        queries = [f'"{p}"' for p in phrases]
        commands = [self.atmpvault(vault, "search", q, "--json") for q in queries]
        for query, argv in zip(queries, commands, strict=True):  # check the CLI agrees
            out = subprocess.run(argv, capture_output=True, env=self.env, check=True).stdout
            total = json.loads(out)["total"]
            if total != result.totals.get(query):
                result.errors.append(
                    f"CLI search {query} found {total}, the library {result.totals.get(query)}"
                )
        runs = self.args.cold_runs
        times: dict[str, list[float]] = {}
        if self.hyperfine:
            export = self.workdir / "hyperfine.json"
            subprocess.run(
                [
                    self.hyperfine,
                    "-N",
                    "--warmup",
                    "1",
                    "--runs",
                    str(runs),
                    "--style",
                    "none",
                    "--export-json",
                    str(export),
                    *[shlex.join(c) for c in commands],
                ],
                check=True,
                env=self.env,
                stdout=subprocess.DEVNULL,
            )
            data = json.loads(export.read_text())
            for query, entry in zip(queries, data["results"], strict=True):
                times[query] = [t * 1e3 for t in entry["times"]]
            export.unlink()
            result.figures["cold_tool"] = "hyperfine -N"
        else:
            for query, argv in zip(queries, commands, strict=True):
                subprocess.run(argv, stdout=subprocess.DEVNULL, env=self.env, check=True)
                times[query] = []
                for _ in range(runs):
                    start = time.perf_counter()
                    subprocess.run(argv, stdout=subprocess.DEVNULL, env=self.env, check=True)
                    times[query].append((time.perf_counter() - start) * 1e3)
            result.figures["cold_tool"] = "timed here (hyperfine not installed)"
        result.cold_ms = {q: statistics.median(v) for q, v in times.items()}
        result.figures["cold_ms"] = statistics.median([t for v in times.values() for t in v])
        result.figures["cold_runs"] = runs

    # -- pdfgrep ------------------------------------------------------------------------

    def run_pdfgrep(self, corpus: Corpus, phrases: list[str]) -> dict[str, Any] | None:
        if not self.pdfgrep:
            return None
        per_phrase: dict[str, float] = {}
        matched: dict[str, int] = {}
        cpu, load_start = children_cpu(), load()
        for phrase in phrases:
            times = []
            for _ in range(self.args.pdfgrep_runs):
                start = time.perf_counter()
                proc = subprocess.run(
                    [self.pdfgrep, "-r", "-i", "-c", phrase, str(corpus.root)],
                    capture_output=True,
                    env=self.env,
                    check=False,
                )
                times.append(time.perf_counter() - start)
                if proc.returncode not in (0, 1):
                    raise BenchError(f"pdfgrep exited {proc.returncode}: {proc.stderr[-500:]!r}")
            counts = [line.rpartition(b":")[2] for line in proc.stdout.splitlines() if b":" in line]
            matched[phrase] = sum(1 for c in counts if c.strip().isdigit() and int(c) > 0)
            per_phrase[phrase] = statistics.median(times)
            log(f"  pdfgrep {phrase!r}: {per_phrase[phrase]:.1f} s, {matched[phrase]} files")
        return {
            "median_s": statistics.median(per_phrase.values()),
            "per_phrase": per_phrase,
            "matched": matched,
            "runs": self.args.pdfgrep_runs,
            "cpu_s": (children_cpu() - cpu) / (len(phrases) * self.args.pdfgrep_runs),
            "load": (load_start, load()),
        }

    # -- one engine ---------------------------------------------------------------------

    def engine(
        self, engine: str, mixed: Corpus, onepage: Corpus | None, queries: QuerySet
    ) -> EngineResult:
        result = EngineResult(engine)
        fig = result.figures
        vault = self.workdir / f"vault-{engine}"

        def step(name: str, action: Callable[[], None]) -> None:
            before = load()
            try:
                action()
            except (BenchError, subprocess.CalledProcessError, OSError, ValueError) as exc:
                detail = getattr(exc, "stderr", None) or ""
                if isinstance(detail, bytes):
                    detail = detail.decode("utf-8", "replace")
                result.errors.append(f"{name}: {exc} {detail}".strip())
                log(f"  {engine}: {name} FAILED: {exc}")
            result.loads[name] = (before, load())

        def do_import() -> None:
            log(f"{engine}: importing {len(mixed.docs):,} documents ({mixed.pages:,} pages)")
            run = self.import_corpus(vault, mixed, engine)
            fig.update(
                import_s=run.seconds,
                import_docs_s=len(mixed.docs) / run.seconds,
                import_pages_s=mixed.pages / run.seconds,
                import_rss=run.maxrss_mb,
                import_anon=run.memory.largest_anon,
                import_tree=run.tree_mb,
                import_tree_anon=run.memory.tree_anon,
                import_procs=run.processes,
                import_cpu=run.cpu_s,
            )
            result.memory["import"] = run.memory
            result.tenths = tenths(run.memory.samples, len(mixed.docs), run.seconds)
            log(f"  {engine}: {run.seconds:.1f} s, {fig['import_docs_s']:.1f} docs/s")

        def do_onepage() -> None:
            assert onepage is not None
            other = self.workdir / f"vault-{engine}-onepage"
            log(f"{engine}: importing the one-page corpus ({len(onepage.docs):,} documents)")
            run = self.import_corpus(other, onepage, engine)
            fig.update(
                onepage_s=run.seconds,
                onepage_docs_s=len(onepage.docs) / run.seconds,
                onepage_rss=run.maxrss_mb,
                onepage_tree=run.tree_mb,
                onepage_cpu=run.cpu_s,
            )
            result.memory["one-page import"] = run.memory
            log(f"  {engine}: {run.seconds:.1f} s, {fig['onepage_docs_s']:.1f} one-page PDFs/s")
            if not self.args.keep:
                shutil.rmtree(other)
            if self.args.baseline is None:
                return
            other = self.workdir / f"vault-{engine}-onepage-baseline"
            log(f"{engine}: the one-page corpus again, with the baseline {self.args.baseline}")
            env = {**self.env, "PYTHONPATH": str(self.args.baseline)}
            run = self.import_corpus(other, onepage, engine, env)
            fig.update(
                baseline_onepage_docs_s=len(onepage.docs) / run.seconds,
                baseline_onepage_rss=run.maxrss_mb,
            )
            result.memory["one-page import, baseline"] = run.memory
            log(f"  baseline: {run.seconds:.1f} s, {fig['baseline_onepage_docs_s']:.1f} PDFs/s")
            if not self.args.keep:
                shutil.rmtree(other)

        def do_warm() -> None:
            log(f"{engine}: {len(queries.queries)} queries x {self.args.reps} in-process")
            self.warm_search(vault, queries.queries, result)

        def do_cold() -> None:
            log(
                f"{engine}: cold CLI searches, {len(queries.phrases)} phrases x {self.args.cold_runs}"
            )
            self.cold_search(vault, queries.phrases, result)

        def do_rebuild() -> None:
            log(f"{engine}: rebuild")
            run = run_measured(self.atmpvault(vault, "rebuild"), self.env).check("rebuild")
            fig.update(
                rebuild_s=run.seconds,
                rebuild_rss=run.maxrss_mb,
                rebuild_anon=run.memory.largest_anon,
                rebuild_tree=run.tree_mb,
                rebuild_cpu=run.cpu_s,
            )
            result.memory["rebuild"] = run.memory

        def do_verify() -> None:
            log(f"{engine}: verify")
            run = run_measured(self.atmpvault(vault, "verify", "--json"), self.env)
            report = json.loads(run.stdout) if run.stdout.strip() else {}
            if run.returncode != 0:
                problems = report.get("problems") or [run.stderr.strip()]
                result.errors.append(
                    f"verify exited {run.returncode}: {len(problems)} problem(s), first: {problems[:3]}"
                )
            fig.update(
                verify_s=run.seconds,
                verify_rss=run.maxrss_mb,
                verify_anon=run.memory.largest_anon,
                verify_tree=run.tree_mb,
                verify_ok=run.returncode == 0,
                verify_cpu=run.cpu_s,
            )
            result.memory["verify"] = run.memory

        step("import", do_import)
        if "import_s" not in fig:
            return result  # nothing to search
        if onepage is not None:
            step("one-page import", do_onepage)
        step("warm search", do_warm)
        step("cold search", do_cold)
        step("rebuild", do_rebuild)
        step("verify", do_verify)
        return result


# ---------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------


def fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return format(value, spec)


def rows_for(
    r: EngineResult, naive: dict[str, Any] | None, grep: dict[str, Any] | None
) -> list[tuple[str, str]]:
    f = r.figures
    naive_rate = naive["docs_s"] if naive else None
    ratio = f["import_docs_s"] / naive_rate if naive_rate and "import_docs_s" in f else None
    grep_s = grep["median_s"] if grep else None
    vs_cold = grep_s / (f["cold_ms"] / 1e3) if grep_s and "cold_ms" in f else None
    vs_warm = grep_s / (f["warm_p50"] / 1e3) if grep_s and "warm_p50" in f else None
    return [
        ("import docs/s (mixed corpus)", fmt(f.get("import_docs_s"), ",.1f")),
        ("import pages/s (mixed corpus)", fmt(f.get("import_pages_s"), ",.1f")),
        ("import one-page PDFs/s", fmt(f.get("onepage_docs_s"), ",.1f")),
        ("  the same, baseline (--baseline)", fmt(f.get("baseline_onepage_docs_s"), ",.1f")),
        ("peak RSS MB (largest process)", fmt(f.get("import_rss"), ",.0f")),
        ("  of it anonymous, MB", fmt(f.get("import_anon"), ",.0f")),
        ("peak MB, whole tree (PSS)", fmt(f.get("import_tree"), ",.0f")),
        ("  of it anonymous, MB", fmt(f.get("import_tree_anon"), ",.0f")),
        ("naive git docs/s", fmt(naive_rate, ",.1f")),
        ("import/naive ratio", fmt(ratio, ",.1f") + ("x" if ratio else "")),
        ("warm p50 ms", fmt(f.get("warm_p50"), ",.2f")),
        ("warm p95 ms", fmt(f.get("warm_p95"), ",.2f")),
        ("cold CLI ms (median)", fmt(f.get("cold_ms"), ",.0f")),
        ("pdfgrep s/query (median)", fmt(grep_s, ",.2f")),
        ("speed-up vs pdfgrep (cold CLI)", fmt(vs_cold, ",.0f") + ("x" if vs_cold else "")),
        ("speed-up vs pdfgrep (warm p50)", fmt(vs_warm, ",.0f") + ("x" if vs_warm else "")),
        ("rebuild s", fmt(f.get("rebuild_s"), ",.1f")),
        ("verify s", fmt(f.get("verify_s"), ",.1f")),
    ]


def _pair(f: dict[str, Any], a: str, b: str) -> str:
    return f"{fmt(f.get(a), ',.0f')} / {fmt(f.get(b), ',.0f')}"


def plot(where: Path, r: EngineResult, n_docs: int) -> Path:
    """A PNG of the import's rate (per tenth) and memory against documents imported."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    path = where / f"import-{n_docs}-{r.engine}.png" if where.is_dir() else where
    samples = r.memory["import"].samples
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    xs = [0] + [n for n, _ in r.tenths]
    rates = [r.tenths[0][1]] + [rate for _, rate in r.tenths]
    top.step(xs, rates, where="pre", color="tab:blue")
    top.set_ylabel("docs/s (each tenth)")
    top.set_ylim(bottom=0)
    top.set_title(f"atmpvault import, {n_docs:,} documents ({r.engine})")
    top.grid(alpha=0.3)
    done = [s.done for s in samples]
    for label, values, style in (
        ("largest process, total", [s.largest_rss for s in samples], "-"),
        ("largest process, anonymous", [s.largest_anon for s in samples], "--"),
        ("whole tree (PSS)", [s.tree_pss for s in samples], ":"),
    ):
        bottom.plot(done, values, style, label=label)
    bottom.set_xlabel("documents imported")
    bottom.set_ylabel("MB")
    bottom.set_ylim(bottom=0)
    bottom.legend(loc="lower right", fontsize="small")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def per(count: float, seconds: float | None) -> float | None:
    return count / seconds if seconds else None


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = "  ".join(
        f"{h:<{w}}" if i == 0 else f"{h:>{w}}"
        for i, (h, w) in enumerate(zip(headers, widths, strict=False))
    )
    print(line)
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(
            "  ".join(
                f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
                for i, (c, w) in enumerate(zip(row, widths, strict=False))
            )
        )


def report(
    args: argparse.Namespace,
    bench: Bench,
    mixed: Corpus,
    onepage: Corpus | None,
    queries: QuerySet,
    results: list[EngineResult],
    naive: dict[str, Any] | None,
    grep: dict[str, Any] | None,
) -> None:
    n = len(mixed.docs)
    ten = sum(1 for d in mixed.docs if d.pages > 1)
    git_version = subprocess.run(
        ["git", "--version"], capture_output=True, text=True, check=False
    ).stdout
    print(f"# atmpvault search benchmark ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{git_version.strip()}, {platform.system()} {platform.release()}; shared, 1-min load "
        f"average {load():.1f} at the end (figures are indicative; CPU seconds vary less than wall)"
    )
    print(
        f"mixed corpus: {n:,} PDFs (seed {args.seed}): {n - ten:,} one-page + {ten:,} ten-page "
        f"= {mixed.pages:,} pages, {mixed.size / 1e6:.1f} MB"
    )
    if onepage is not None:
        print(
            f"one-page corpus: {len(onepage.docs):,} one-page PDFs, {onepage.size / 1e6:.1f} MB "
            "(imported into a second vault per engine for the one-page PDFs/s figure)"
        )
    print(
        f"import: `atmpvault --vault V import CORPUS --program {PROGRAM} --type {DOC_TYPE} --json` "
        "as a subprocess, wall clock from start to exit"
    )
    code_now = code_version()
    print(f"atmpvault measured: {bench.code_at_start}")
    if code_now != bench.code_at_start:
        print(f"  WARNING: the source changed during the run; at the end: {code_now}")
    if args.baseline is not None:
        print(f"baseline (one-page import only): PYTHONPATH={args.baseline}")
    if naive:
        print(
            f"naive: copy + `git add` + `git commit` per file, {naive['files']} files of the mixed "
            f"corpus, {naive['seconds']:.1f} s wall, {naive['cpu_s']:.1f} s CPU "
            f"({naive['files'] / naive['cpu_s']:.1f} docs per CPU s); load "
            f"{naive['load'][0]:.1f} -> {naive['load'][1]:.1f}"
        )
    else:
        print("naive: skipped")
    print(
        f"warm: {len(queries.queries)} queries x {args.reps} repetitions in one process "
        "(Vault.open, vault.search(q, SearchFilters(), limit=20)), after one warm-up pass"
    )
    print(
        f"cold: new `atmpvault --vault V search '\"PHRASE\"' --json` process per run for the "
        f"{len(queries.phrases)} pdfgrep phrases, {args.cold_runs} runs each (+1 warm-up); "
        "OS file cache warm"
    )
    if grep:
        print(
            f"pdfgrep: `pdfgrep -r -i -c PHRASE CORPUS` over the mixed corpus, {len(grep['per_phrase'])} "
            f"phrases x {grep['runs']} run(s), {grep['cpu_s']:.1f} s CPU per query, load "
            f"{grep['load'][0]:.1f} -> {grep['load'][1]:.1f}; speed-up = pdfgrep median s / "
            "cold CLI median (and / warm p50)"
        )
    elif not args.no_pdfgrep:
        print("pdfgrep: NOT INSTALLED - comparison skipped (apt-get install pdfgrep)")
    else:
        print("pdfgrep: skipped (--no-pdfgrep)")
    if bench.hyperfine is None:
        print("hyperfine: not installed - cold runs timed by this script")
    for note in queries.notes:
        print(f"queries: {note}")

    for r in results:
        print()
        print(f"## {r.engine}")
        f = r.figures
        figures = rows_for(r, naive, grep)
        extra = [
            ("import wall s (mixed)", fmt(f.get("import_s"), ",.1f")),
            ("import CPU s, user+sys (mixed)", fmt(f.get("import_cpu"), ",.1f")),
            ("import docs per CPU s (mixed)", fmt(per(n, f.get("import_cpu")), ",.1f")),
            ("import wall s (one-page)", fmt(f.get("onepage_s"), ",.1f")),
            ("import CPU s, user+sys (one-page)", fmt(f.get("onepage_cpu"), ",.1f")),
            ("processes in tree (max)", fmt(f.get("import_procs"), "d")),
            ("first search in process ms", fmt(f.get("first_search_ms"), ",.1f")),
            ("warm max ms", fmt(f.get("warm_max"), ",.1f")),
            ("warm samples", fmt(f.get("warm_samples"), ",d")),
            ("cold CLI timed by", fmt(f.get("cold_tool"), "")),
            ("rebuild CPU s", fmt(f.get("rebuild_cpu"), ",.1f")),
            ("rebuild peak RSS MB", fmt(f.get("rebuild_rss"), ",.0f")),
            ("  anonymous / whole tree MB", _pair(f, "rebuild_anon", "rebuild_tree")),
            ("verify CPU s", fmt(f.get("verify_cpu"), ",.1f")),
            ("verify peak RSS MB", fmt(f.get("verify_rss"), ",.0f")),
            ("  anonymous / whole tree MB", _pair(f, "verify_anon", "verify_tree")),
            ("verify clean", {True: "yes", False: "NO"}.get(f.get("verify_ok", "-"), "-")),
        ]
        print_table(["figure", r.engine], figures + extra)
        print(
            "1-min load average, start -> end of each step: "
            + ", ".join(f"{k} {a:.1f} -> {b:.1f}" for k, (a, b) in r.loads.items())
        )
        for error in r.errors:
            print(f"  ERROR: {error}")
        if r.tenths:
            print()
            print("import docs/s over each tenth of the mixed corpus (documents at its end: rate):")
            print("  " + ", ".join(f"{n:,}: {rate:,.0f}" for n, rate in r.tenths))
        for step, memory in r.memory.items():
            print()
            print(
                f"{step}: peak MB per role (anonymous / file-backed / total resident, "
                f"each at its own moment); largest process anon {memory.largest_anon:,.0f}, "
                f"total {memory.largest_rss:,.0f}; whole tree PSS {memory.tree_pss:,.0f} "
                f"(anon {memory.tree_anon:,.0f})"
            )
            for label, value in describe(memory):
                print(f"{label:<28} {value}")
        if args.plot is not None and "import" in r.memory:
            path = plot(args.plot, r, len(mixed.docs))
            print()
            print(f"plot of rate and memory against documents imported: {path}")

    print()
    print("## summary")
    columns = [rows_for(r, naive, grep) for r in results]
    print_table(
        ["figure", *[r.engine for r in results]],
        [[label, *[col[i][1] for col in columns]] for i, (label, _) in enumerate(columns[0])],
    )

    print()
    print("## per-query detail (total hits; warm median ms)")
    headers = ["query"]
    for r in results:
        headers += [f"{r.engine} hits", f"{r.engine} ms"]
    if grep:
        headers.append("pdfgrep files")
    detail: list[list[str]] = []
    mismatches = 0
    for query in queries.queries:
        row = [query]
        totals = {r.totals.get(query) for r in results}
        for r in results:
            row += [fmt(r.totals.get(query), ",d"), fmt(r.query_ms.get(query), ",.2f")]
        if grep:
            phrase = query[1:-1] if query.startswith('"') and query.endswith('"') else None
            row.append(fmt(grep["matched"].get(phrase) if phrase else None, ",d"))
        if len(totals) > 1:
            row[0] += "  (engines disagree)"
            mismatches += 1
        detail.append(row)
    print_table(headers, detail)
    if len(results) > 1:
        print(f"queries where the engines' hit counts differ: {mismatches}")
    if any(r.cold_ms for r in results):
        print()
        print(
            "cold CLI median ms per phrase: "
            + "; ".join(
                f"{r.engine}: " + ", ".join(f"{q} {v:.0f}" for q, v in r.cold_ms.items())
                for r in results
                if r.cold_ms
            )
        )
    if grep:
        print(
            "pdfgrep s per phrase: "
            + ", ".join(f'"{p}" {s:.2f}' for p, s in grep["per_phrase"].items())
        )


# ---------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000, help="documents (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="500 documents")
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated: tantivy,whoosh"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and vaults")
    parser.add_argument("--reps", type=int, default=5, help="warm repetitions of the query set")
    parser.add_argument("--cold-runs", type=int, default=10, help="cold CLI runs per phrase")
    parser.add_argument("--pdfgrep-runs", type=int, default=1, help="pdfgrep runs per phrase")
    parser.add_argument("--no-onepage", action="store_true", help="skip the one-page corpus")
    parser.add_argument("--no-pdfgrep", action="store_true", help="skip the pdfgrep comparison")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive git loop")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a folder holding another atmpvault source (git archive REF atmpvault | tar -x "
        "-C DIR): its one-page import is measured too, in the same run, with PYTHONPATH=DIR",
    )
    parser.add_argument(
        "--plot",
        type=Path,
        help="write a PNG of rate and memory against documents imported (a file, or a folder "
        "for import-N-ENGINE.png); needs matplotlib",
    )
    args = parser.parse_args()
    n_docs = 500 if args.quick else args.docs
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        parser.error(f"--engines takes a comma-separated subset of {','.join(ENGINES)}")
    if n_docs < 1 or args.reps < 5 or args.cold_runs < 1 or args.pdfgrep_runs < 1:
        parser.error("--docs and the run counts must be positive; --reps at least 5")

    if args.workdir is not None:
        workdir = args.workdir.resolve()
        if workdir.exists() and any(workdir.iterdir()):
            parser.error(f"--workdir {workdir} is not empty")
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="atmpvault-bench-search-"))
    log(f"working in {workdir}")

    try:
        bench = Bench(args, workdir)
        if bench.pdfgrep is None and not args.no_pdfgrep:
            log("pdfgrep is not installed: the pdfgrep comparison will be skipped")
        if bench.hyperfine is None:
            log("hyperfine is not installed: cold CLI runs are timed by this script")
        mixed = generate(workdir / "corpus", n_docs, args.seed, "mixed", one_page_only=False)
        onepage = (
            None
            if args.no_onepage
            else generate(workdir / "corpus-onepage", n_docs, args.seed, "onepage", True)
        )
        queries = build_queries(mixed)

        naive = None
        if not args.no_naive:
            log(f"naive loop: git add + commit for {min(n_docs, NAIVE_MAX)} files")
            naive = bench.naive_git(mixed)
            log(f"  naive: {naive['docs_s']:.1f} docs/s")

        results = [bench.engine(e, mixed, onepage, queries) for e in engines]

        grep = None
        if not args.no_pdfgrep and bench.pdfgrep:
            log(f"pdfgrep: {len(queries.phrases)} phrases over {n_docs:,} files")
            grep = bench.run_pdfgrep(mixed, queries.phrases)

        report(args, bench, mixed, onepage, queries, results, naive, grep)
        return 1 if any(r.errors for r in results) else 0
    finally:
        if args.keep:
            log(f"kept {workdir}")
        elif args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            for name in os.listdir(workdir):
                path = workdir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            log(f"emptied {workdir} (--keep keeps it)")


if __name__ == "__main__":
    sys.exit(main())
