"""The cost of scale for records: commands on a vault of 20,000 events against one of ten.

Three vaults are seeded through the library's batch path (units of work written by
`Vault.commit_units`, one commit each, many in one git fast-import stream; seeding is
not timed): ten events on one application, 100 events on ten applications, and 20,000
events on 2,000 applications, each application with an IND received date spread over
the last years and nine more events after it. Then, round after round in a shuffled
order, each vault runs the same cold commands as separate processes:

    calendar --json --days 30     overdue plus the next 30 days, every application
    calendar --from T --to T+30   the next 30 days alone (no backlog of overdue ones)
    log --kind event --since T    the events written since the seeding ended
    app show APP --json           one application, its events and open milestones
    event add APP ...             one more event (a write: lock, commit, catalog)

and the 100-event vault takes one more `event add` each round, for the 20,000th add
against the 100th. Medians and ratios are printed; the machine is shared, so only the
ratios of one run mean much.

    python bench/bench_records.py                 # 20,000 events, 7 rounds
    python bench/bench_records.py --events 2000   # quicker
    python bench/bench_records.py --met           # everything met recorded as done
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from atmpvault.archive.core import values
from atmpvault.archive.core.changes import UnitOfWork
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.applications import (
    ACTIVE,
    Application,
    Event,
    Regulatory,
    app_path,
    event_path,
)
from atmpvault.archive.regulatory.kinds import APP_KIND, EVENT_KIND
from atmpvault.config import Settings

TODAY = date(2026, 11, 30)
LATER = ("safety-case", "investigator-added", "protocol-change-planned", "safety-followup-info")
BATCH = 2_000  # units of work per fast-import stream
CLI = [str(Path(sys.executable).with_name("atmpvault"))]


def seed(vault: Vault, apps: int, per_app: int, rng: random.Random) -> list[str]:
    """`apps` INDs with `per_app` events each, through units of work in batches."""
    actor = vault.actor
    units: list[UnitOfWork] = []
    ids: list[str] = []
    event_no = 0

    def flush() -> None:
        if units:
            with vault.writing():
                vault.commit_units(units)
            units.clear()

    for n in range(apps):
        app = Application(
            id=f"IND-{100000 + n:06d}", kind="ind", number=f"{100000 + n:06d}",
            program=f"PRG-{n % 40:02d}", status=ACTIVE,
            recorded_at=values.iso(values.now()), user=actor,
        )  # fmt: skip
        ids.append(app.id)
        unit = UnitOfWork(vault, "app-new", actor, None)
        unit.subject = f"Register {app.label} for {app.program}"
        unit.put(APP_KIND, app.id, app.to_json(), app_path(app.id))
        units.append(unit)
        received = TODAY - timedelta(days=rng.randrange(30, 5 * 365))
        for k in range(per_app):
            event_no += 1
            trigger = "ind-received" if k == 0 else rng.choice(LATER)
            on = received if k == 0 else received + timedelta(days=rng.randrange(1, 700))
            event = Event(
                id=f"EV-{event_no:06d}", app=app.id, program=app.program, trigger=trigger,
                on=on, version=1, recorded_at=values.iso(values.now()), user=actor,
            )  # fmt: skip
            unit = UnitOfWork(vault, "event-add", actor, None)
            unit.subject = f"Record {event.id} {trigger} on {on.isoformat()} for {app.id}"
            unit.trailers.update({"Application": app.id, "Event": event.id, "Version": "1"})
            unit.put(EVENT_KIND, event.id, event.to_json(), event_path(app.id, event.id))
            units.append(unit)
            if len(units) >= BATCH:
                flush()
    flush()
    return ids


def record_met(vault: Vault) -> int:
    """Record every obligation due before TODAY as done on its due date (what a vault
    whose team closes what it meets looks like); returns how many."""
    from atmpvault.archive.regulatory.calendar import milestone_calendar
    from atmpvault.archive.regulatory.kinds import OBLIGATION_KIND, OBLIGATIONS_ROOT

    actor = vault.actor
    owed = milestone_calendar(vault, TODAY, overdue_only=True).milestones
    units: list[UnitOfWork] = []
    for m in owed:
        unit = UnitOfWork(vault, "milestone-done", actor, "met on time")
        unit.subject = f"Done {m.key}"
        body = {
            "id": m.key, "app": m.app, "program": m.program, "rule": m.rule, "cycle": m.cycle,
            "event": m.event, "state": "done", "on": m.due.isoformat(), "evidence": None,
            "reason": "met on time", "version": 1, "recorded_at": values.iso(values.now()),
            "user": actor,
        }  # fmt: skip
        unit.put(OBLIGATION_KIND, m.key, body, f"{OBLIGATIONS_ROOT}/{m.key}.json")
        units.append(unit)
        if len(units) >= BATCH:
            with vault.writing():
                vault.commit_units(units)
            units.clear()
    if units:
        with vault.writing():
            vault.commit_units(units)
    return len(owed)


def cold(vault: Path, *args: str) -> float:
    """Seconds for one `atmpvault` process to answer."""
    env = {**os.environ, "ATMPVAULT_USER": "bench"}
    start = time.perf_counter()
    result = subprocess.run([*CLI, "--vault", str(vault), *args], capture_output=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {result.stderr.decode()[:300]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events in the large vault")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--met",
        action="store_true",
        help="record every obligation due before today as done (a vault kept up to date)",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sizes = {"10": (1, 10), "100": (10, 10), "large": (args.events // 10, 10)}
    with tempfile.TemporaryDirectory(prefix="atmpvault-records-") as tmp:
        root = Path(tmp)
        apps: dict[str, list[str]] = {}
        for name, (count, per_app) in sizes.items():
            print(f"  seeding {count * per_app:,} events on {count:,} applications",
                  file=sys.stderr, flush=True)  # fmt: skip
            start = time.perf_counter()
            with Vault.create(Settings(vault=root / name, user="bench"), domains()) as vault:
                apps[name] = seed(vault, count, per_app, rng)
                vault.projections()
                if args.met:
                    closed = record_met(vault)
                    print(f"    {closed:,} obligations recorded done", file=sys.stderr)
                assert len(Regulatory(vault).events(apps[name][0])) == per_app
            print(f"    {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        since = values.iso(values.now())
        window = (TODAY.isoformat(), (TODAY + timedelta(days=30)).isoformat())
        commands = {
            "calendar --json --days 30": lambda n: (
                "calendar", "--json", "--days", "30", "--today", TODAY.isoformat()),
            "calendar --from T --to T+30": lambda n: (
                "calendar", "--json", "--from", window[0], "--to", window[1],
                "--today", TODAY.isoformat()),
            "log --kind event --since T": lambda n: (
                "log", "--kind", "event", "--since", since, "--json"),
            "app show APP": lambda n: (
                "app", "show", rng.choice(apps[n]), "--json", "--today", TODAY.isoformat()),
            "event add": lambda n: (
                "event", "add", rng.choice(apps[n]), "investigator-added",
                "--on", TODAY.isoformat(), "--json"),
        }  # fmt: skip
        times: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            print(f"  round {round_number + 1} of {args.rounds}", file=sys.stderr, flush=True)
            jobs = [(c, n) for c in commands for n in ("10", "large")] + [("event add", "100")]
            rng.shuffle(jobs)
            for command, name in jobs:
                elapsed = cold(root / name, *commands[command](name))
                times.setdefault((command, name), []).append(elapsed)
        sizes_shown = {"10": 10, "100": 100, "large": args.events}
        listed = {
            (command, name): len(json.loads(subprocess.run(
                [*CLI, "--vault", str(root / name), *commands[command](name)],
                capture_output=True, check=True,
            ).stdout))
            for command in commands if command.startswith("calendar")
            for name in ("10", "large")
        }  # fmt: skip
    print(f"cold commands, {args.rounds} rounds interleaved; medians in ms")
    for (command, name), count in sorted(listed.items()):
        print(f"({command} lists {count:,} milestones in the {name}-event vault)")
    print(f"{'command':28} {'10 events':>10} {f'{args.events:,} events':>14} {'ratio':>7}")
    for command in commands:
        small = statistics.median(times[(command, "10")]) * 1e3
        large = statistics.median(times[(command, "large")]) * 1e3
        print(f"{command:28} {small:10.1f} {large:14.1f} {large / small:6.2f}x")
    hundred = statistics.median(times[("event add", "100")]) * 1e3
    large = statistics.median(times[("event add", "large")]) * 1e3
    print(
        f"event add at {sizes_shown['large']:,} events against at 100: "
        f"{large:.1f} / {hundred:.1f} ms = {large / hundred:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
