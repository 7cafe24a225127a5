"""The cost of scale for custody: `custody log` and `custody status --open-breaks` cold on a
vault of 200 lots with 12 custody events each, against a vault of one such lot; and the
time to render a CoC certificate (PDF/A-3b).

Both vaults are seeded through the library (lots with `Lots.new`; events through units
of work written in batches by `Vault.commit_units`, one commit each; not timed), every
lot with the default chain from collection to the bedside identity check (twelve steps,
the qa-release among them), all checks passing; a tenth of the large vault's lots also
has an open chain break. Certificates are not issued while seeding (the configuration
drops the certificate steps); they are timed on their own. Round after round, in a
shuffled order, each vault runs the same cold commands as separate processes; medians
and their ratio are printed.

    python bench/bench_custody.py               # 200 lots, 7 rounds
    python bench/bench_custody.py --lots 50     # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import cold, print_ratios

from atmpvault.archive.core.changes import UnitOfWork
from atmpvault.archive.core.configuration import Configuration
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.custody.din import check_character
from atmpvault.archive.custody.service import Custody
from atmpvault.archive.custody.settings import DEFAULTS
from atmpvault.archive.domains import domains
from atmpvault.archive.lots.service import Lots
from atmpvault.config import Settings

BATCH = 2_000
STEPS = [s["step"] for s in DEFAULTS["steps"]][:12]  # collection .. bedside-identity-check
TEMPS = {"collection": 4.0, "labeling": 4.2, "shipment-to-manufacturing": -185.0,
         "receipt-at-manufacturing": -183.0, "shipment-to-site": -186.0,
         "receipt-at-site": -184.0}  # fmt: skip


def din(n: int) -> str:
    body = f"G1234{26:02d}{n:06d}"
    return body + check_character(body)


def seed(vault: Vault, lots: int, broken: int) -> list[str]:
    """`lots` lots with the twelve-step chain; the first `broken` with an open break."""
    steps = [{k: v for k, v in s.items() if k != "certificate"} for s in DEFAULTS["steps"]]
    Configuration(vault).set("custody.steps", json.dumps(steps), "bench: no certificates")
    registry, custody = Lots(vault), Custody(vault)
    ids = [f"C19-{n // 100 + 2020}-{n % 100 + 1:03d}" for n in range(lots)]
    for n, lot in enumerate(ids):
        registry.new(lot, "CART-19", f"COI-{n:06d}")
    units: list[UnitOfWork] = []
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    for n, lot in enumerate(ids):
        found, events = registry.get(lot), []
        at = start + timedelta(days=n % 300)
        for k, step in enumerate(STEPS):
            unit = UnitOfWork(vault, "custody-log", vault.actor, None)
            body = {
                "lot": lot, "program": "CART-19", "step": step, "by": "R. Coordinator",
                "site": "APH-01" if k < 4 else "MFG-01", "at": (at + timedelta(hours=6 * k)).isoformat(),
                "coi": found.coi, "din": din(n), "temps": [TEMPS[step]] if step in TEMPS else [],
                "logger": None, "shipper": "CRYO-22" if step.startswith("shipment") else None,
                "seal": "intact" if step.startswith(("shipment", "receipt")) else None,
                "note": None, "corrects": None,
            }  # fmt: skip
            if n < broken and step == "labeling":
                body["temps"] = [12.0]  # too warm: a chain break, left open
            logged = custody._append(unit, found, events, body)
            events.append(logged.event)
            units.append(unit)
        if len(units) >= BATCH:
            with vault.writing():
                vault.commit_units(units)
            units.clear()
    if units:
        with vault.writing():
            vault.commit_units(units)
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lots", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shapes = {"one": (1, 0), "large": (args.lots, args.lots // 10)}
    with tempfile.TemporaryDirectory(prefix="atmpvault-custody-") as tmp:
        root = Path(tmp)
        lots: dict[str, list[str]] = {}
        for name, (count, broken) in shapes.items():
            print(f"  seeding {count} lots x 12 events", file=sys.stderr, flush=True)
            start = time.perf_counter()
            with Vault.create(Settings(vault=root / name, user="bench"), domains()) as vault:
                lots[name] = seed(vault, count, broken)
                vault.projections()
            print(f"    {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        relabels = iter(range(900_000, 999_999))
        commands = {
            "custody log (relabel)": lambda n: (
                "custody", "log", lots[n][-1], "--step", "relabel", "--by", "R. Coordinator",
                "--site", "MFG-01", "--din", din(next(relabels))),
            "custody status --open-breaks": lambda n: ("custody", "status", "--open-breaks", "--json"),
            "custody status": lambda n: ("custody", "status", "--json"),
            "custody certificate": lambda n: ("custody", "certificate", lots[n][-1]),
        }  # fmt: skip
        times: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            print(f"  round {round_number + 1} of {args.rounds}", file=sys.stderr, flush=True)
            jobs = [(c, n) for c in commands for n in shapes]
            rng.shuffle(jobs)
            for command, name in jobs:
                times.setdefault((command, name), []).append(
                    cold(root / name, *commands[command](name))
                )
    print_ratios(commands, times, ("one", "1 lot"), ("large", f"{args.lots} lots"), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
