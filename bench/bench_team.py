"""A team's writes: latency with and without a shared upstream, and concurrent throughput.

Each write is one cold `atmpvault add` process, as a person at a workstation runs it.
Latency: N adds one after another into a vault on its own, then into a workstation vault
whose upstream is a bare repository by path, then one served by `git daemon` on
loopback (every write fetches, validates, pushes with a compare-and-swap, then moves
the local branch). Throughput: two and four workstation vaults cloned from one upstream
(served by `git daemon`) each add M documents at the same time; writes per second of
wall time, lost races retried by the command itself (an add whose every retry lost
its race is refused, "another workstation wrote first", and counted).

    python bench/bench_team.py            # 30 adds per latency case, 20 per writer
    python bench/bench_team.py --quick    # 8 and 5
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import CLI

NEW = ("--program", "CART-19", "--type", "batch-record")


def atmpvault(*args: str) -> None:
    env = {**os.environ, "ATMPVAULT_USER": "bench", "ATMPVAULT_NO_ACCESS_NOTE": "1"}
    result = subprocess.run([*CLI, *args], capture_output=True, env=env)
    if result.returncode != 0:
        said = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SystemExit(f"atmpvault {' '.join(args)} failed: {' '.join(said[-3:])}")


def add(vault: Path, folder: Path, name: str) -> float:
    """Seconds for one cold `atmpvault add` of a new document."""
    source = folder / f"{name}.txt"
    source.write_text(f"executed batch record {name}\nviability 93%\n")
    start = time.perf_counter()
    atmpvault("--vault", str(vault), "add", str(source), *NEW)
    return time.perf_counter() - start


class Daemon:
    """`git daemon` on a free loopback port, receive-pack enabled, serving `base`."""

    def __init__(self, base: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"git://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", f"--base-path={base}", "--export-all",
             "--enable=receive-pack", "--listen=127.0.0.1", f"--port={self.port}", str(base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("git daemon never answered")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def upstream(root: Path, daemon: Daemon | None, name: str) -> str:
    """A new shared upstream under root/srv; the URL workstations use."""
    atmpvault("init-shared", str(root / "srv" / f"{name}.git"))
    return f"{daemon.url}/{name}.git" if daemon else str(root / "srv" / f"{name}.git")


def latency(root: Path, daemon: Daemon, n: int) -> dict[str, list[float]]:
    """N adds, one after another, in each set-up."""
    alone = root / "alone"
    atmpvault("--vault", str(alone), "init")
    vaults = {"no upstream": alone}
    for label, served in (("upstream by path", None), ("upstream by git daemon", daemon)):
        url = upstream(root, served, label.split()[-1])
        vaults[label] = root / f"ws-{label.split()[-1]}"
        atmpvault("clone", url, str(vaults[label]))
    folder = root / "latency-files"
    folder.mkdir()
    times: dict[str, list[float]] = {label: [] for label in vaults}
    for i in range(n):  # interleaved, so every set-up sees the same machine load
        for label, vault in vaults.items():
            times[label].append(add(vault, folder, f"{label.split()[-1]}-{i}"))
    return times


def throughput(root: Path, daemon: Daemon, writers: int, m: int) -> tuple[float, int, int]:
    """Writes per second of `writers` workstations adding M documents each at once, the
    writes the upstream then holds, and the adds refused after every retry lost a race."""
    name = f"team-{writers}"
    url = upstream(root, daemon, name)
    vaults = [root / f"{name}-ws{w}" for w in range(writers)]
    for vault in vaults:
        atmpvault("clone", url, str(vault))
    folder = root / f"{name}-files"
    folder.mkdir()

    def write(w: int) -> int:
        """How many of this writer's adds were refused (every retry lost its race)."""
        refused = 0
        for i in range(m):
            try:
                add(vaults[w], folder, f"w{w}-{i}")
            except SystemExit as exc:
                if "another workstation wrote first" not in str(exc):
                    raise
                refused += 1
        return refused

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        refused = sum(pool.map(write, range(writers)))
    elapsed = time.perf_counter() - start
    bare = root / "srv" / f"{name}.git"
    count = int(subprocess.run(
        ["git", f"--git-dir={bare}", "rev-list", "--count", "main"],
        capture_output=True, text=True, check=True,
    ).stdout) - 1  # fmt: skip
    if count != writers * m - refused:
        raise SystemExit(f"the upstream holds {count} writes, not {writers * m - refused}")
    return count / elapsed, count, refused


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 adds per case, 5 per writer")
    parser.add_argument("-n", type=int, help="adds per latency case (default 30)")
    parser.add_argument("-m", type=int, help="adds per concurrent writer (default 20)")
    args = parser.parse_args()
    n = args.n or (8 if args.quick else 30)
    m = args.m or (5 if args.quick else 20)
    with tempfile.TemporaryDirectory(prefix="atmpvault-bench-team-") as tmp:
        root = Path(tmp)
        (root / "srv").mkdir()
        daemon = Daemon(root / "srv")
        try:
            print(f"  {n} adds per set-up, interleaved", file=sys.stderr, flush=True)
            times = latency(root, daemon, n)
            print(f"write latency: cold `atmpvault add`, {n} each; ms")
            print(f"{'set-up':28} {'median':>8} {'p90':>8}")
            for label, spent in times.items():
                p90 = statistics.quantiles(spent, n=10)[-1] if len(spent) > 1 else spent[0]
                print(f"{label:28} {statistics.median(spent) * 1e3:8.0f} {p90 * 1e3:8.0f}")
            print(f"\nthroughput: workstations adding {m} documents each at once, one upstream")
            print("(git daemon on loopback)")
            print(f"{'writers':>8} {'writes/s':>9} {'written':>8} {'refused':>8}")
            for writers in (1, 2, 4):
                print(f"  {writers} writer(s), {m} adds each", file=sys.stderr, flush=True)
                rate, count, refused = throughput(root, daemon, writers, m)
                print(f"{writers:8d} {rate:9.2f} {count:8d} {refused:8d}")
        finally:
            daemon.stop()
    print(f"\n{os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
