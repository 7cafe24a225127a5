"""A vault with a year of history, everything met recorded as done (by sequences, by
FDA's events, by hand): the calendar and the alerts propose only what is truly open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import run
from tests.test_packages import archive, ok, ok_json, pdf

IND = "IND-012345"
BLA = "BLA-125123"
TODAY = "2026-11-30"


def add(vault: Path, app: str, trigger: str, on: str, *extra: str) -> str:
    made = ok_json(run(vault, "event", "add", app, trigger, "--on", on, *extra, "--json"))
    return str(made["event"]["id"])


def submit(vault: Path, tmp: Path, app: str, seq: str, kind: str, on: str) -> None:
    doc = archive(vault, tmp, f"{app}-{seq}.pdf", pdf(f"{kind} {seq}"))
    ok(run(vault, "package", "new", app, "--sequence", seq, "--type", kind))
    ok(run(vault, "package", "add", app, seq, doc, "--section", "m1/us"))
    ok(run(vault, "package", "finalise", app, seq, "--submitted", on))


def done(vault: Path, app: str, rule: str, selector: str, value: str, on: str) -> None:
    ok(run(vault, "milestone", "done", app, rule, selector, value, "--on", on,
           "--reason", "met", "--today", TODAY))  # fmt: skip


def test_a_year_kept_up_to_date_leaves_only_what_is_open(vault_path: Path, tmp_path: Path) -> None:
    v = vault_path
    ok(run(v, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(v, "app", "new", "bla", "125123", "--program", "CART-19"))
    add(v, IND, "ind-received", "2025-11-03")  # in effect 2025-12-03
    submit(v, tmp_path, IND, "0000", "original", "2025-11-01")
    # Safety: two reports submitted as sequences, one marked done by hand, one still open.
    add(v, IND, "safety-case", "2026-02-02")
    submit(v, tmp_path, IND, "0001", "safety-report-15-day", "2026-02-12")
    add(v, IND, "fatal-safety-case", "2026-04-06")
    submit(v, tmp_path, IND, "0002", "safety-report-7-day", "2026-04-10")
    submit(v, tmp_path, IND, "0003", "safety-report-15-day", "2026-04-17")
    hand = add(v, IND, "safety-case", "2026-06-01")
    done(v, IND, "SAFETY_15D", "--event", hand, "2026-06-12")
    still_open = add(v, IND, "safety-case", "2026-11-10")  # due 2026-11-25: overdue
    # A new investigator, and the amendment that added them.
    add(v, IND, "investigator-added", "2026-03-02")
    submit(v, tmp_path, IND, "0004", "protocol-amendment", "2026-03-20")
    # FDA asked for information; the response went in as a sequence.
    add(v, IND, "fda-letter-received", "2026-05-04", "--letter-kind", "information-request")
    submit(v, tmp_path, IND, "0005", "response-to-fda", "2026-05-28")
    # A Type C meeting: granted, held, minutes received.
    request = add(v, IND, "meeting-request-received", "2026-07-01", "--meeting-type", "C")
    add(v, IND, "meeting-granted", "2026-07-15", "--meeting-date", "2026-09-02")
    done(v, IND, "MEETING_C_PACKAGE", "--event", request, "2026-07-17")
    done(v, IND, "MEETING_C_HELD", "--event", request, "2026-09-02")
    add(v, IND, "fda-letter-received", "2026-09-25", "--letter-kind", "meeting-minutes")
    ok(run(v, "milestone", "done", IND, "MEETING_C_PRELIMINARY", "--event", request,
           "--on", "2026-08-28", "--reason", "received", "--today", TODAY))  # fmt: skip
    # The BLA: filed, the day-74 letter, approved before its goal; a CBE-30 that passed.
    add(v, BLA, "bla-received", "2025-12-15", "--review", "priority")
    add(v, BLA, "fda-letter-received", "2026-02-13", "--letter-kind", "filing-letter")
    add(v, BLA, "fda-letter-received", "2026-02-27", "--letter-kind", "day-74-letter")
    add(v, BLA, "bla-approved", "2026-08-10")
    add(v, BLA, "cbe30-submitted", "2026-10-01")

    owed = ok_json(run(v, "calendar", "--today", TODAY, "--json"))
    assert [(m["key"], m["due"], m["overdue"]) for m in owed] == [
        (f"{IND}/SAFETY_15D/{still_open}", "2026-11-25", True),
        (f"{BLA}/PADER_QUARTERLY/1", "2026-12-09", False),
    ]
    alerts: list[dict[str, Any]] = ok_json(run(v, "alerts", "--today", TODAY, "--json"))
    assert [(a["rule"], a["threshold"]) for a in alerts] == [
        ("SAFETY_15D", "overdue"),
        ("PADER_QUARTERLY", "due-30d"),
    ]
    # Everything else is closed, each with how:
    closed = [m for m in ok_json(run(v, "calendar", "--today", TODAY, "--all", "--from",
                                     "2025-01-01", "--to", TODAY, "--json")) if m["closed"]]  # fmt: skip
    assert {m["closed"]["how"] for m in closed} == {"sequence", "event", "recorded"}
    assert ok_json(run(v, "verify", "--json"))["ok"] is True
