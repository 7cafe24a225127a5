"""Per-add cost as the vault grows: documents added one at a time through the library.

Prints the median and mean cost of an add around the 100th, 1,000th and 10,000th
document, and the ratio of the last to the first. The cost must stay flat.

    python bench/bench_add.py            # up to 10,000 documents
    python bench/bench_add.py --quick    # up to 1,000
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from atmpvault.archive.pdfgen import make_pdf
from atmpvault.archive.vault import Vault
from atmpvault.config import Settings

WINDOW = 50  # adds measured just before each checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="stop at 1,000 documents")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    checkpoints = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="atmpvault-bench-") as tmp:
        root = Path(tmp)
        settings = Settings(vault=root / "vault", user="bench")
        source = root / "doc.pdf"
        costs: list[float] = []
        rows = []
        with Vault.create(settings) as vault:
            for n in range(1, checkpoints[-1] + 1):
                lot = f"L-{rng.randrange(1, 400):04d}"
                lines = [
                    f"Batch record {lot}",
                    f"Document {n}",
                    f"Viability {rng.randrange(70, 99)}%",
                ]
                source.write_bytes(make_pdf([lines], title=f"Batch record {n}"))
                start = time.perf_counter()
                vault.documents.add(source, "CART-19", "batch-record", f"Batch record {n}", lot)
                costs.append(time.perf_counter() - start)
                if n in checkpoints:
                    window = costs[-WINDOW:]
                    rows.append(
                        (n, statistics.median(window) * 1e3, statistics.fmean(window) * 1e3)
                    )
                    print(f"  ... {n:,} documents", file=sys.stderr, flush=True)
            size = sum(
                f.stat().st_size for f in (settings.vault / "repo.git").rglob("*") if f.is_file()
            )
    print(
        f"per-add cost through the library (median and mean of the {WINDOW} adds before each mark)"
    )
    print(f"{'documents':>10}  {'median ms':>9}  {'mean ms':>8}")
    for n, median, mean in rows:
        print(f"{n:>10,}  {median:9.2f}  {mean:8.2f}")
    first, last = rows[0], rows[-1]
    print(
        f"ratio {last[0]:,}th / {first[0]:,}th: median {last[1] / first[1]:.2f}x, mean {last[2] / first[2]:.2f}x"
    )
    print(
        f"mean over all {len(costs):,} adds: {statistics.fmean(costs) * 1e3:.2f} ms; repository {size / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
