"""What the scale benchmarks share: a cold `atmpvault` process timed, and the table of
medians and their ratio for two vaults."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

CLI = [str(Path(sys.executable).with_name("atmpvault"))]


def cold_run(vault: Path, *args: str) -> tuple[float, bytes]:
    """Seconds for one `atmpvault` process to answer, and what it printed."""
    env = {**os.environ, "ATMPVAULT_USER": "bench", "ATMPVAULT_NO_ACCESS_NOTE": "1"}
    start = time.perf_counter()
    result = subprocess.run([*CLI, "--vault", str(vault), *args], capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr.decode()[:300]}")
    return elapsed, result.stdout


def cold(vault: Path, *args: str) -> float:
    """Seconds for one `atmpvault` process to answer."""
    return cold_run(vault, *args)[0]


def print_ratios(
    commands: Iterable[str],
    times: dict[tuple[str, str], list[float]],
    small: tuple[str, str],
    large: tuple[str, str],
    rounds: int,
) -> None:
    """Each command's median in the small and the large vault (ms) and their ratio;
    `small` and `large` are (key in `times`, column heading)."""
    print(f"cold commands, {rounds} rounds interleaved; medians in ms")
    print(f"{'command':30} {small[1]:>14} {large[1]:>17} {'ratio':>7}")
    for command in commands:
        a = statistics.median(times[(command, small[0])]) * 1e3
        b = statistics.median(times[(command, large[0])]) * 1e3
        print(f"{command:30} {a:14.1f} {b:17.1f} {b / a:6.2f}x")
