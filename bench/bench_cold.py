"""Cold start of the CLI, and import: this checkout against an earlier release, side by side.

Both releases are byte-compiled first, as an installed package is (this machine sets
PYTHONDONTWRITEBYTECODE, which would otherwise make every run compile every module it
imports). Each release imports the same one-page PDFs (200 by default) into fresh vaults,
alternating, --import-rounds times; then `--help`, `ls` and `search` run as fresh
processes, alternating between the two releases round by round, so load on a shared
machine falls on both alike. Medians of wall time and of CPU time (the process and its
children, which moves less with the load), in ms.

With --instructions (needs valgrind), each command also runs once per release under
callgrind, children included, and the instructions executed are counted: a figure that
does not move with the load (the same to the instruction run after run), to set beside
the timings on a shared machine. It counts no time spent starting a process or in the
kernel.

    git worktree add /tmp/before 0a06b99
    python bench/bench_cold.py --before /tmp/before [--docs 2000] [--instructions]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def run(code: Path, vault: Path, *args: str) -> tuple[float, float]:
    """Wall and CPU seconds of one command run as a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(code), "ATMPVAULT_USER": "bench",
           "ATMPVAULT_NO_ACCESS_NOTE": "1"}  # fmt: skip
    used = cpu_of_children()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "atmpvault", "--vault", str(vault), *args],
        capture_output=True, env=env, cwd=code,  # `-m` puts the working folder first
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{code}: {' '.join(args)} failed: {done.stderr.decode()[:300]}")
    return elapsed, cpu_of_children() - used


def instructions(code: Path, vault: Path, *args: str) -> int:
    """Instructions one command executes, its child processes' included (callgrind); with
    a fixed hash seed, as dictionaries laid out afresh each run move the count by 0.5%."""
    env = {**os.environ, "PYTHONPATH": str(code), "ATMPVAULT_USER": "bench",
           "ATMPVAULT_NO_ACCESS_NOTE": "1", "PYTHONHASHSEED": "0"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="atmpvault-callgrind-") as out:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--trace-children=yes",
             f"--callgrind-out-file={out}/%p.out", f"--log-file={out}/%p.log",
             sys.executable, "-m", "atmpvault", "--vault", str(vault), *args],
            capture_output=True, env=env, cwd=code,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"{code}: {' '.join(args)} failed under valgrind")
        logs = "".join(log.read_text() for log in Path(out).glob("*.log"))
    return sum(int(n) for n in re.findall(r"Collected : (\d+)", logs))


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
    parser.add_argument("--import-rounds", type=int, default=3, help="imports per release")
    parser.add_argument("--instructions", action="store_true", help="count them (valgrind)")
    args = parser.parse_args()
    releases = {"before": args.before.resolve(), "after": HERE}
    for code in releases.values():
        compileall.compile_dir(code / "atmpvault", quiet=1)
    commands = {"--help": ("--help",), "ls": ("ls",), "search": ("search", "viability")}
    with tempfile.TemporaryDirectory(prefix="atmpvault-cold-") as tmp:
        root = Path(tmp)
        make_corpus(root / "corpus", args.docs)
        vaults: dict[str, Path] = {}
        imported: dict[str, list[tuple[float, float]]] = {name: [] for name in releases}
        for round_ in range(args.import_rounds):
            for name, code in releases.items():
                vaults[name] = root / f"{name}-{round_}"
                run(code, vaults[name], "init")
                imported[name].append(run(code, vaults[name], "import", str(root / "corpus"),
                                          "--program", "CART-19", "--type", "batch-record"))  # fmt: skip
                run(code, vaults[name], "search", "viability")  # the index is current
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for command, argv in commands.items():
                for name in ("before", "after"):
                    measured = run(releases[name], vaults[name], *argv)
                    times.setdefault((command, name), []).append(measured)
        counted = {
            (command, name): instructions(releases[name], vaults[name], *argv)
            for command, argv in commands.items()
            for name in releases
            if args.instructions
        }
    rates = {name: args.docs / statistics.median(w for w, _ in runs)
             for name, runs in imported.items()}  # fmt: skip
    cpu = {name: statistics.median(c for _, c in runs) for name, runs in imported.items()}
    print(f"import of {args.docs:,} one-page PDFs, median of {args.import_rounds}, docs/s: "
          f"before {rates['before']:.1f}, after {rates['after']:.1f} "
          f"({rates['after'] / rates['before']:.2f}x); CPU s: before {cpu['before']:.2f}, "
          f"after {cpu['after']:.2f} ({cpu['after'] / cpu['before']:.2f}x)")  # fmt: skip
    print(f"cold CLI, {args.rounds} rounds alternating; medians in ms")
    print(f"{'command':10} {'before':>8} {'after':>8} {'after/before':>13}"
          f" {'CPU before':>11} {'CPU after':>10} {'after/before':>13}")  # fmt: skip
    for command in commands:
        wall = [statistics.median(times[(command, n)][i][0] for i in range(args.rounds)) * 1e3
                for n in ("before", "after")]  # fmt: skip
        used = [statistics.median(times[(command, n)][i][1] for i in range(args.rounds)) * 1e3
                for n in ("before", "after")]  # fmt: skip
        print(f"{command:10} {wall[0]:8.1f} {wall[1]:8.1f} {wall[1] / wall[0]:12.2f}x"
              f" {used[0]:11.1f} {used[1]:10.1f} {used[1] / used[0]:12.2f}x")  # fmt: skip
    if counted:
        print("instructions executed (callgrind, children included), millions")
        print(f"{'command':10} {'before':>8} {'after':>8} {'after/before':>13}")
        for command in commands:
            ran = [counted[(command, n)] / 1e6 for n in ("before", "after")]
            print(f"{command:10} {ran[0]:8.1f} {ran[1]:8.1f} {ran[1] / ran[0]:12.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
