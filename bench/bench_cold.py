"""Cold start of the CLI, and import: this checkout against an earlier release, side by side.

Each release imports the same one-page PDFs (200 by default) into a vault of its own,
both imports timed, then `--help`, `ls` and `search` run as fresh processes, alternating
between the two releases round by round, so load on a shared machine falls on both
alike. Medians in ms.

    git worktree add /tmp/before 0a06b99
    python bench/bench_cold.py --before /tmp/before [--docs 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def run(code: Path, vault: Path, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(code), "ATMPVAULT_USER": "bench"}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "atmpvault", "--vault", str(vault), *args],
        capture_output=True, env=env, cwd=code,  # `-m` puts the working folder first
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{code}: {' '.join(args)} failed: {done.stderr.decode()[:300]}")
    return elapsed


def make_corpus(folder: Path, docs: int) -> None:
    sys.path.insert(0, str(HERE))
    from atmpvault.archive.core.pdf import make_pdf

    folder.mkdir()
    for n in range(docs):
        lines = [f"Executed batch record C19-2026-{n:04d}", f"Viability {70 + n % 29}%"]
        (folder / f"br-{n:04d}.pdf").write_bytes(make_pdf([lines], title=f"BR {n}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the release")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--docs", type=int, default=200, help="documents each release imports")
    args = parser.parse_args()
    releases = {"before": args.before.resolve(), "after": HERE}
    commands = {"--help": ("--help",), "ls": ("ls",), "search": ("search", "viability")}
    with tempfile.TemporaryDirectory(prefix="atmpvault-cold-") as tmp:
        root = Path(tmp)
        make_corpus(root / "corpus", args.docs)
        vaults = {}
        imported: dict[str, float] = {}
        for name, code in releases.items():
            vaults[name] = root / name
            run(code, vaults[name], "init")
            imported[name] = run(code, vaults[name], "import", str(root / "corpus"),
                                 "--program", "CART-19", "--type", "batch-record")  # fmt: skip
            run(code, vaults[name], "search", "viability")  # the index is current
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.rounds):
            for command, argv in commands.items():
                for name in ("before", "after"):
                    elapsed = run(releases[name], vaults[name], *argv)
                    times.setdefault((command, name), []).append(elapsed)
    rates = {name: args.docs / seconds for name, seconds in imported.items()}
    print(f"import of {args.docs:,} one-page PDFs, docs/s: before {rates['before']:.1f}, "
          f"after {rates['after']:.1f} ({rates['after'] / rates['before']:.2f}x)")  # fmt: skip
    print(f"cold CLI, {args.rounds} rounds alternating; medians in ms")
    print(f"{'command':10} {'before':>8} {'after':>8} {'after/before':>13}")
    for command in commands:
        before = statistics.median(times[(command, "before")]) * 1e3
        after = statistics.median(times[(command, "after")]) * 1e3
        print(f"{command:10} {before:8.1f} {after:8.1f} {after / before:12.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
