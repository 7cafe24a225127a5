"""The cost of scale for dosing: `dosing conflicts` and `dosing board` cold on a vault with
200 active lots against one with 5.

Each vault gets lots in manufacturing, each with a reserved slot and a schedule planned
from the default profile (apheresis dates spread over the weeks around today), through
the library's own operations (not timed); one lot in ten has its LD moved before its
release (a conflict). Round after round, in a shuffled order, each vault runs the same
cold commands as separate processes; medians and their ratio are printed.

    python bench/bench_dosing.py               # 200 lots, 7 rounds
    python bench/bench_dosing.py --lots 50     # quicker
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from common import cold, print_ratios

from atmpvault.archive.core.configuration import Configuration
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.core.workdays import non_working
from atmpvault.archive.domains import domains
from atmpvault.archive.dosing.service import Dosing
from atmpvault.archive.lots.service import Lots
from atmpvault.config import Settings

TODAY = date(2026, 11, 30)


def seed(vault: Vault, count: int, rng: random.Random) -> None:
    facilities = {
        "MFG-01": {"slots": 8, "working_days_only": True, "closures": [], "holidays": "US"}
    }
    Configuration(vault).set("dosing.facilities", json.dumps(facilities), "bench: 8 suites")
    lots, dosing = Lots(vault), Dosing(vault)
    for n in range(count):
        lot = f"C19-2026-{n + 1:03d}"
        lots.new(lot, "CART-19", f"COI-{n:06d}")
        apheresis = TODAY + timedelta(days=rng.randrange(-35, 20))
        while non_working(apheresis, "US"):
            apheresis += timedelta(days=1)
        slot = apheresis + timedelta(days=1)
        while non_working(slot, "US") or len(dosing.reservations("MFG-01", slot, slot)) >= 8:
            slot += timedelta(days=1)
        dosing.reserve("MFG-01", slot, lot)
        planned = dosing.plan(lot, "autologous-cart", apheresis).dates
        lots.step(lot, "start")
        if n % 10 == 0:
            start = planned["expected_release"] - timedelta(days=2)
            dosing.update(lot, {"ld_start": start, "ld_end": start + timedelta(days=2),
                                "infusion": planned["infusion"]}, "bench: LD brought forward")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lots", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shapes = {"small": 5, "large": args.lots}
    today = TODAY.isoformat()
    commands = {
        "dosing conflicts --json": ("dosing", "conflicts", "--today", today, "--json"),
        "dosing board": ("dosing", "board", "--today", today, "--days", "28"),
        "dosing board --format html": ("dosing", "board", "--today", today, "--format", "html"),
    }
    with tempfile.TemporaryDirectory(prefix="atmpvault-dosing-") as tmp:
        root = Path(tmp)
        for name, count in shapes.items():
            print(f"  seeding {count} lots", file=sys.stderr, flush=True)
            start = time.perf_counter()
            with Vault.create(Settings(vault=root / name, user="bench"), domains()) as vault:
                seed(vault, count, rng)
            print(f"    {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        times: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            print(f"  round {round_number + 1} of {args.rounds}", file=sys.stderr, flush=True)
            jobs = [(c, n) for c in commands for n in shapes]
            rng.shuffle(jobs)
            for command, name in jobs:
                times.setdefault((command, name), []).append(cold(root / name, *commands[command]))
    print_ratios(commands, times, ("small", "5 lots"), ("large", f"{args.lots} lots"), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
