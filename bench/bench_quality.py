"""The cost of scale for deviations: `deviation aging` and `deviation ls --open`, cold, on a
vault with 200 lots and 5,000 deviations against one with 10 deviations.

Both vaults are seeded through the library's batch path (units of work written by
`Vault.commit_units`, one commit each; seeding is not timed). The large vault is a
facility after years of work: 5,000 deviations over 200 lots, each with one CAPA, all
closed (their CAPAs verified) but the last `--open` ones; the small vault has 10
deviations on 2 lots, half of them open. Open deviations and their CAPAs are spread over
the last 60 days, so every aging bucket has some. Round after round, in a shuffled order,
each vault runs the same cold commands as separate processes; medians and their ratio
are printed (the machine is shared: only ratios of one run mean much).

    python bench/bench_quality.py                       # 5,000 deviations, 7 rounds
    python bench/bench_quality.py --deviations 1000     # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from common import cold, cold_run, print_ratios

from atmpvault.archive.core import values
from atmpvault.archive.core.changes import UnitOfWork
from atmpvault.archive.core.people import People
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.lots.records import IN_MANUFACTURING, LOT_KIND
from atmpvault.archive.quality.records import CAPA_KIND, DEVIATION_KIND
from atmpvault.config import Settings

TODAY = date(2026, 11, 30)
BATCH = 2_000  # units of work per fast-import stream
OWNERS = ("Dana Whitfield", "Ravi Menon", "Ines Duarte", "Tom Okafor")
CLASSES = ("minor", "major", "critical")


def seed(vault: Vault, lots: int, deviations: int, open_count: int, rng: random.Random) -> int:
    """Lots in manufacturing, deviations on them (each with one CAPA); returns the number
    of open deviations."""
    actor = vault.actor
    for owner in OWNERS:
        People(vault).set(owner, f"{owner.split()[0].lower()}@example.com", "bench")
    units: list[UnitOfWork] = []

    def flush() -> None:
        if units:
            with vault.writing():
                vault.commit_units(units)
            units.clear()

    def stamp() -> str:
        return values.iso(values.now())

    lot_ids = [f"C19-{2020 + n // 40}-{n % 40 + 1:03d}" for n in range(lots)]
    for n, lot in enumerate(lot_ids):
        unit = UnitOfWork(vault, "lot-new", actor, None)
        unit.subject = f"New lot {lot}"
        unit.put(LOT_KIND, lot, {
            "id": lot, "program": "CART-19", "coi": f"COI-{n:06d}", "kind": "autologous",
            "replaces": None, "status": IN_MANUFACTURING, "statuses": [], "disposition": None,
            "version": 1, "recorded_at": stamp(), "user": actor,
        })  # fmt: skip
        units.append(unit)
    flush()
    first_open = deviations - open_count
    for n in range(deviations):
        is_open = n >= first_open
        year = 2020 + n * 7 // max(deviations, 1) if not is_open else TODAY.year
        discovered = (
            TODAY - timedelta(days=rng.randrange(0, 60))
            if is_open else date(year, 1, 1) + timedelta(days=rng.randrange(0, 360))
        )  # fmt: skip
        cls = rng.choice(CLASSES)
        due = discovered + timedelta(days={"minor": 30, "major": 30, "critical": 15}[cls])
        lot = rng.choice(lot_ids)
        dev, capa = f"DEV-{year}-{n + 1:04d}", f"CAPA-{year}-{n + 1:04d}"
        owner = rng.choice(OWNERS)
        moment = datetime(discovered.year, discovered.month, discovered.day, 9, tzinfo=UTC)
        body: dict[str, Any] = {
            "id": dev, "program": "CART-19", "lots": [lot], "class": cls,
            "title": f"Deviation {n + 1} on {lot}", "description": "seeded for the benchmark",
            "discovered": values.iso(moment), "status": "open" if is_open else "closed",
            "owner": owner, "due": due.isoformat(), "extensions": [],
            "investigation": None if is_open else {"root_cause": "r", "impact": "i"},
            "capas": [capa], "attachments": [],
            "closure": None if is_open else {"summary": "s", "at": stamp(), "by": actor},
            "action": "open" if is_open else "close", "comment": None, "version": 1,
            "recorded_at": stamp(), "user": actor,
        }  # fmt: skip
        capa_due = discovered + timedelta(days=45)
        capa_body = {
            "id": capa, "deviation": dev, "program": "CART-19", "lots": [lot],
            "action_text": "corrective action", "owner": owner, "due": capa_due.isoformat(),
            "effectiveness_check": None, "opened": values.iso(moment),
            "status": "open" if is_open else "verified", "done": None, "checks": [],
            "action": "add", "comment": None, "version": 1, "recorded_at": stamp(),
            "user": actor,
        }  # fmt: skip
        unit = UnitOfWork(vault, "deviation-open", actor, None)
        unit.subject = f"Deviation {dev} with {capa}"
        unit.put(DEVIATION_KIND, dev, body)
        unit.put(CAPA_KIND, capa, capa_body)
        units.append(unit)
        if len(units) >= BATCH:
            flush()
    flush()
    return open_count


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deviations", type=int, default=5_000)
    parser.add_argument("--lots", type=int, default=200)
    parser.add_argument("--open", type=int, default=40, help="open ones in the large vault")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shapes = {"small": (2, 10, 5), "large": (args.lots, args.deviations, args.open)}
    today = TODAY.isoformat()
    commands = {
        "deviation aging": ("deviation", "aging", "--today", today),
        "deviation aging --json": ("deviation", "aging", "--today", today, "--json"),
        "deviation ls --open": ("deviation", "ls", "--open"),
        "deviation ls --open --json": ("deviation", "ls", "--open", "--json"),
    }
    with tempfile.TemporaryDirectory(prefix="atmpvault-quality-") as tmp:
        root = Path(tmp)
        for name, (lots, count, open_count) in shapes.items():
            print(f"  seeding {count:,} deviations on {lots} lots ({open_count} open)",
                  file=sys.stderr, flush=True)  # fmt: skip
            start = time.perf_counter()
            with Vault.create(Settings(vault=root / name, user="bench"), domains()) as vault:
                seed(vault, lots, count, open_count, rng)
                vault.projections()
            print(f"    {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        times: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            print(f"  round {round_number + 1} of {args.rounds}", file=sys.stderr, flush=True)
            jobs = [(c, n) for c in commands for n in shapes]
            rng.shuffle(jobs)
            for command, name in jobs:
                elapsed = cold(root / name, *commands[command])
                times.setdefault((command, name), []).append(elapsed)
        listed = {
            name: len(json.loads(cold_run(root / name, *commands["deviation ls --open --json"])[1]))
            for name in shapes
        }
    print(
        f"(the small vault: 10 deviations, {listed['small']} open; the large: "
        f"{args.deviations:,} on {args.lots} lots, {listed['large']} open)"
    )
    print_ratios(
        commands,
        times,
        ("small", "10 deviations"),
        ("large", f"{args.deviations:,} deviations"),
        args.rounds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
