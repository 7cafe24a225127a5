"""Per-add cost as the vault grows: one `add` at a time through the library.

Three vaults are filled to 100, 1,000 and 10,000 documents (by bulk import, which
writes the same repository, catalog and index as single adds, only faster), then
documents are added one at a time to each in turn, round after round, in a shuffled
order. Every vault sees the same machine load, so the ratio of their costs is fair
on a shared machine where load drifts over minutes.

    python bench/bench_add.py            # vaults of 100, 1,000 and 10,000 documents
    python bench/bench_add.py --quick    # 100 and 1,000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from atmpvault.archive.core.pdf import make_pdf
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.importer import ImportReport, plan_folder, run_import
from atmpvault.archive.documents.versions import Documents
from atmpvault.archive.domains import domains
from atmpvault.config import Settings

PROGRAM, DOC_TYPE = "CART-19", "batch-record"


def batch_record(rng: random.Random, n: int) -> bytes:
    lot = f"C19-2026-{rng.randrange(1, 400):04d}"
    lines = [
        f"Executed batch record {lot}",
        f"Document {n}",
        f"Viability {rng.randrange(70, 99)}%, viable cell density {rng.uniform(0.5, 4):.2f} x10^6/mL",
        "Sterility, endotoxin and mycoplasma samples sent to QC.",
    ]
    return make_pdf([lines], title=f"Batch record {lot} ({n})")


def fill(vault: Vault, size: int, folder: Path, rng: random.Random) -> None:
    folder.mkdir()
    for n in range(size):
        (folder / f"br-{n:06d}.pdf").write_bytes(batch_record(rng, n))
    report = ImportReport()
    run_import(vault, plan_folder(vault, folder, PROGRAM, DOC_TYPE, report), report)
    if report.imported != size:
        raise SystemExit(f"filling the {size:,}-document vault imported {report.imported:,}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="vaults of 100 and 1,000 only")
    parser.add_argument("--rounds", type=int, default=60, help="adds measured per vault")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="atmpvault-bench-") as tmp:
        root = Path(tmp)
        vaults: dict[int, Vault] = {}
        for size in sizes:
            print(f"  filling a vault with {size:,} documents", file=sys.stderr, flush=True)
            vault = Vault.create(Settings(vault=root / f"vault-{size}", user="bench"), domains())
            fill(vault, size, root / f"corpus-{size}", rng)
            vaults[size] = vault
        costs: dict[int, list[float]] = {size: [] for size in sizes}
        source = root / "new.pdf"
        for round_number in range(args.rounds):
            order = list(sizes)
            rng.shuffle(order)
            for size in order:
                source.write_bytes(batch_record(rng, 1_000_000 + round_number))
                start = time.perf_counter()
                Documents(vaults[size]).add(source, PROGRAM, DOC_TYPE, f"Round {round_number}")
                costs[size].append(time.perf_counter() - start)
        for vault in vaults.values():
            vault.close()
    print(f"per-add cost through the library, {args.rounds} adds to each vault, interleaved")
    print(f"{'documents':>10}  {'median ms':>9}  {'mean ms':>8}  {'p90 ms':>7}")
    for size in sizes:
        ms = sorted(c * 1e3 for c in costs[size])
        p90 = ms[int(0.9 * (len(ms) - 1))]
        print(f"{size:>10,}  {statistics.median(ms):9.2f}  {statistics.fmean(ms):8.2f}  {p90:7.2f}")
    first, last = sizes[0], sizes[-1]
    ratio = statistics.median(costs[last]) / statistics.median(costs[first])
    print(f"ratio of medians, {last:,} / {first:,} documents: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
