"""Memory of a process tree, read from /proc: anonymous and file-backed, per process.

RSS counts every resident page a process maps, whether it is its own heap (anonymous:
what it allocated, what would go to swap) or a file's pages (a memory-mapped index
segment, a git pack, the interpreter's shared libraries), which the kernel can drop
and read again at will. The two are told apart from /proc/PID/smaps_rollup
(`Anonymous`, `Rss`, `Pss_Anon`, `Pss_File`); VmHWM in /proc/PID/status is the true
peak RSS between two samples. Processes are grouped by role (the importer, its
extraction workers, git fast-import, git pack-objects ...) so a peak can be put down to
the component that made it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

ROLLUP_KEYS = ("Rss", "Pss", "Anonymous", "Pss_Anon", "Pss_File")
STATUS_KEYS = ("VmHWM", "RssAnon", "RssFile")


def children_map() -> dict[int, list[int]]:
    """Parent pid -> its children's pids, for every process on the machine."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        if len(rest) > 1:
            children.setdefault(int(rest[1]), []).append(int(name))
    return children


def read_kb(pid: int, fname: str, keys: Sequence[str]) -> dict[str, int]:
    """Fields `keys` (in kB) of /proc/PID/`fname`; empty when the process is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/{fname}", encoding="ascii", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in keys and key not in out:
                    out[key] = int(value.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (as sampled: a short-lived
    process may end between two samples and be missed)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def role(pid: int, root: int) -> str:
    """What a process is: the command itself, a worker it forked, or a git command."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        argv = []
    if not argv:  # between fork and exec, or gone: what the kernel calls it
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
                return f"{fh.read().strip() or '?'} (starting)"
        except OSError:
            return "?"
    if pid == root:
        return "command"
    if argv and os.path.basename(argv[0]) == "git":
        words = [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
        return f"git {words[0]}" if words else "git"
    if argv and ("python" in os.path.basename(argv[0]) or "atmpvault" in " ".join(argv[:2])):
        return "worker"
    return os.path.basename(argv[0]) if argv else "?"


@dataclass
class Peak:
    """The highest figures one role reached (MB), each at its own moment."""

    rss: float = 0.0  # resident, anonymous + file-backed (VmHWM where larger)
    anon: float = 0.0
    file: float = 0.0
    processes: int = 0  # how many processes of this role ran at once, at most
    cpu: float = 0.0  # CPU seconds, user + system, of every process of this role

    def update(self, rss: float, anon: float, file: float) -> None:
        self.rss, self.anon, self.file = (
            max(self.rss, rss),
            max(self.anon, anon),
            max(self.file, file),
        )


@dataclass
class Sample:
    seconds: float
    done: int  # documents done so far (as the caller counts them)
    largest_rss: float
    largest_anon: float
    tree_pss: float
    tree_anon: float


@dataclass
class TreeMemory:
    """What a `TreeMonitor` found over one run."""

    largest_rss: float = 0.0  # MB: the largest single process, anonymous + file-backed
    largest_anon: float = 0.0  # MB: the largest single process's anonymous memory
    tree_pss: float = 0.0  # MB: the whole tree at once (PSS: shared pages split)
    tree_anon: float = 0.0  # MB: the whole tree's anonymous memory at once (Pss_Anon)
    max_processes: int = 0
    roles: dict[str, Peak] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> role, CPU s seen


class TreeMonitor(threading.Thread):
    """Samples the memory of a process and all its descendants every `interval` s.

    `done` (optional) is asked at every sample how many documents are done, so memory
    and rate can be drawn against the documents imported.
    """

    def __init__(
        self, root: int, interval: float = 0.1, done: Callable[[], int] | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.done = done
        self.found = TreeMemory()
        self.start_time = time.perf_counter()
        self._halt = threading.Event()
        self.available = os.path.isdir("/proc/self")

    def run(self) -> None:
        while self.available and not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def sample(self) -> None:
        children = children_map()
        pids, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo.extend(children.get(pid, ()))
        found = self.found
        tree_pss = tree_anon = largest_rss = largest_anon = 0.0
        counts: dict[str, int] = {}
        root_rollup: dict[str, int] = {}
        for pid in pids:
            rollup = read_kb(pid, "smaps_rollup", ROLLUP_KEYS)
            status = read_kb(pid, "status", STATUS_KEYS)
            if not rollup and not status:
                continue
            if pid == self.root:
                root_rollup = rollup
            name = role(pid, self.root)
            if pid != self.root and rollup and rollup == root_rollup:
                continue  # the command's own vfork child, before it execs git: its memory
            counts[name] = counts.get(name, 0) + 1
            anon = rollup.get("Anonymous", status.get("RssAnon", 0)) / 1024
            rss = max(rollup.get("Rss", 0), status.get("VmHWM", 0)) / 1024
            file = status.get("RssFile", rollup.get("Rss", 0) - rollup.get("Anonymous", 0)) / 1024
            found.roles.setdefault(name, Peak()).update(rss, anon, file)
            found.cpu[pid] = (name, max(cpu_seconds(pid), found.cpu.get(pid, ("", 0.0))[1]))
            tree_pss += rollup.get("Pss", status.get("RssAnon", 0)) / 1024
            tree_anon += rollup.get("Pss_Anon", rollup.get("Anonymous", 0)) / 1024
            largest_rss, largest_anon = max(largest_rss, rss), max(largest_anon, anon)
        for name, count in counts.items():
            found.roles[name].processes = max(found.roles[name].processes, count)
        for peak in found.roles.values():
            peak.cpu = 0.0
        for name, seconds in found.cpu.values():
            found.roles[name].cpu += seconds
        found.largest_rss = max(found.largest_rss, largest_rss)
        found.largest_anon = max(found.largest_anon, largest_anon)
        found.tree_pss = max(found.tree_pss, tree_pss)
        found.tree_anon = max(found.tree_anon, tree_anon)
        found.max_processes = max(found.max_processes, sum(counts.values()))
        if self.done is not None and counts:
            found.samples.append(
                Sample(
                    time.perf_counter() - self.start_time,
                    self.done(),
                    largest_rss,
                    largest_anon,
                    tree_pss,
                    tree_anon,
                )
            )

    def stop(self) -> None:
        self._halt.set()
        self.join()


def tenths(samples: Sequence[Sample], total: int, seconds: float) -> list[tuple[int, float]]:
    """Docs/s over each tenth of an import: (documents at its end, rate), from the samples.

    A tenth is timed from the first sample that reached its start to the first that
    reached its end (the last ends when the process exits), so the slope of the rate
    against the documents imported is visible.
    """
    marks = [0.0]
    for k in range(1, 10):
        goal = total * k / 10
        hit = next((s.seconds for s in samples if s.done >= goal), None)
        marks.append(hit if hit is not None else seconds)
    marks.append(seconds)
    out = []
    for k in range(10):
        span = marks[k + 1] - marks[k]
        out.append((round(total * (k + 1) / 10), (total / 10) / span if span > 0 else 0.0))
    return out


def describe(memory: TreeMemory) -> list[tuple[str, str]]:
    """Rows for a table: each role's anonymous, file-backed and total peak (MB)."""
    rows = []
    for name, peak in sorted(memory.roles.items(), key=lambda kv: -kv[1].rss):
        rows.append(
            (
                f"  {name} (x{peak.processes})",
                f"anon {peak.anon:,.0f} / file {peak.file:,.0f} / total {peak.rss:,.0f}; "
                f"CPU {peak.cpu:,.1f} s",
            )
        )
    return rows
