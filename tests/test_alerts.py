"""Milestone alerts: thresholds, routing, a real SMTP server, no duplicates, failures."""

from __future__ import annotations

import json
from datetime import date
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.alerts import (
    DEFAULT_ROUTES,
    plan,
    routed_lists,
    threshold_for,
    thresholds,
)
from atmpvault.archive.regulatory.applications import Regulatory
from atmpvault.archive.regulatory.derivation import Milestone
from atmpvault.config import Settings
from tests.conftest import run
from tests.test_notices import SmtpServer, smtp_server, start_server  # noqa: F401  (fixture)

# -- the rules of alerting -----------------------------------------------------------------


@pytest.mark.parametrize(
    "days, expected", [(30, (7, 30)), (14, (7, 14)), (7, (7,)), (3, (3,)), (0, (0,))]
)
def test_thresholds(days: int, expected: tuple[int, ...]) -> None:
    assert thresholds(days) == expected


@pytest.mark.parametrize(
    "days_left, days, expected",
    [
        (-400, 30, "overdue"),
        (-1, 30, "overdue"),
        (0, 30, "due-7d"),
        (7, 30, "due-7d"),
        (8, 30, "due-30d"),
        (30, 30, "due-30d"),
        (31, 30, None),
        (5, 3, None),
        (3, 3, "due-3d"),
        (0, 0, "due-0d"),
        (-1, 0, "overdue"),
    ],
)
def test_threshold_for(days_left: int, days: int, expected: str | None) -> None:
    assert threshold_for(days_left, days) == expected


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("IND_EFFECTIVE", ("regulatory-leadership",)),
        ("SAFETY_7D", ("regulatory-leadership",)),
        ("PAS", ("manufacturing-leadership", "regulatory-leadership")),
        ("CBE30", ("manufacturing-leadership", "regulatory-leadership")),
        ("CBE0", ("manufacturing-leadership", "regulatory-leadership")),
        ("BPDR", ("manufacturing-leadership", "regulatory-leadership")),
    ],
)
def test_default_routes(rule: str, expected: tuple[str, ...]) -> None:
    assert routed_lists(rule, DEFAULT_ROUTES) == expected


def owed_milestone(rule: str, due: date, days_left: int, kind: str = "sponsor-due") -> Milestone:
    """A milestone as the calendar gives it, for an IND received 2026-01-05."""
    return Milestone(
        app="IND-012345", program="CART-19", rule=rule, kind=kind, due=due, days_left=days_left,
        source="21 CFR 312.33", trigger="ind-received", trigger_date=date(2026, 1, 5),
        event="EV-000001", produces="a report",
    )  # fmt: skip


def test_plan_marks_new_sent_and_unrouted() -> None:
    today = date(2026, 3, 1)
    # The plan needs no clock: days_left comes with each milestone, counted from today.
    owed = [
        owed_milestone(rule, due, (due - today).days)
        for rule, due in [
            ("SAFETY_15D", date(2026, 3, 4)),
            ("PAS", date(2026, 2, 20)),
            ("IND_ANNUAL", date(2026, 3, 25)),
            ("BLA_STANDARD", date(2026, 9, 1)),  # outside the window: no alert
        ]
    ]
    assert [m.days_left for m in owed] == [3, -9, 24, 184]
    both = {"manufacturing-leadership": "NTC-1", "regulatory-leadership": "NTC-1"}
    sent = {"milestone/IND-012345/EV-000001/PAS/2026-02-20/overdue": both}
    routes = {"regulatory-leadership": ("SAFETY_15D", "PAS"), "manufacturing-leadership": ("PAS",)}
    alerts = plan(owed, 30, routes, sent)
    assert [(a.milestone.rule, a.threshold, a.status, a.lists) for a in alerts] == [
        ("PAS", "overdue", "already-sent", ("manufacturing-leadership", "regulatory-leadership")),
        ("SAFETY_15D", "due-7d", "new", ("regulatory-leadership",)),
        ("IND_ANNUAL", "due-30d", "unrouted", ()),
    ]
    assert alerts[0].notice == "NTC-1"
    assert (
        alerts[1].subject == "[atmpvault] Due in 3 days: SAFETY_15D for IND-012345 (due 2026-03-04)"
    )
    assert alerts[0].subject.startswith("[atmpvault] OVERDUE 9 days ago: PAS")


# -- end to end through the CLI, with a real SMTP server --------------------------------------


def setup_vault(path: Path) -> None:
    """An investigator added to an IND on 2026-01-05 (NEW_INVESTIGATOR, an obligation, due
    2026-02-04) and a PAS (due 2026-05-05)."""
    with Vault.open(Settings(vault=path, user="ra.lead"), domains()) as vault:
        reg = Regulatory(vault)
        reg.new_app("ind", "012345", "CART-19")
        reg.add_event("IND-012345", "investigator-added", date(2026, 1, 5))
        reg.new_app("bla", "125000", "CART-19")
        reg.add_event("BLA-125000", "pas-received", date(2026, 1, 5))
    for name, addresses in {
        "regulatory-leadership": ["ra.head@example.org", "cmo@example.org"],
        "manufacturing-leadership": ["mfg.head@example.org"],
    }.items():
        result = run(path, "lists", "set", name, *addresses, "--reason", "alert recipients")
        assert result.exit_code == 0, result.stderr


def alerts(path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = run(path, "alerts", *args, "--json", env=env)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def envelope_for(server: SmtpServer, rule: str) -> Any:
    """The one envelope whose Subject names `rule`."""
    (found,) = [
        e
        for e, m in zip(server.collector.envelopes, server.collector.messages(), strict=True)
        if f": {rule} for " in str(m["Subject"])
    ]
    return found


def notices(path: Path) -> list[dict[str, Any]]:
    result = run(path, "notices", "ls", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_dry_run_sends_nothing(vault_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    setup_vault(vault_path)
    found = alerts(vault_path, "--today", "2026-01-20", env=smtp_server.env())
    assert [(a["rule"], a["threshold"], a["status"], a["days_left"]) for a in found] == [
        ("NEW_INVESTIGATOR", "due-30d", "new", 15)
    ]
    assert set(found[0]) >= {"app", "rule", "kind", "due", "days_left", "lists", "key", "status"}
    table = run(vault_path, "alerts", "--today", "2026-01-20")
    assert "would send" in table.stdout and "dry run: 1 alert(s) would be sent" in table.stdout
    assert smtp_server.collector.envelopes == []
    assert notices(vault_path) == []
    assert not (vault_path / "outbox").exists()


def test_alerts_sent_once_per_threshold(vault_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    setup_vault(vault_path)
    env = smtp_server.env()
    received = smtp_server.collector

    first = alerts(vault_path, "--today", "2026-01-20", "--send", env=env)
    assert [(a["rule"], a["status"]) for a in first] == [("NEW_INVESTIGATOR", "sent")]
    (envelope,) = received.envelopes
    assert sorted(envelope.rcpt_tos) == ["cmo@example.org", "ra.head@example.org"]
    (message,) = received.messages()
    assert message["Subject"] == (
        "[atmpvault] Due in 15 days: NEW_INVESTIGATOR for IND-012345 (due 2026-02-04)"
    )
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",))
    assert html is not None and "NEW_INVESTIGATOR" in html.get_content()  # type: ignore[attr-defined]

    # Run again the same day (cron twice, or a retry): nothing new.
    again = run(vault_path, "alerts", "--today", "2026-01-20", "--send", env=env)
    assert again.exit_code == 0
    assert "0 alert(s) sent, 1 already sent" in again.stdout
    assert len(received.envelopes) == 1
    # And the next day, still inside the same threshold: nothing new either.
    assert [
        a["status"] for a in alerts(vault_path, "--today", "2026-01-21", "--send", env=env)
    ] == ["already-sent"]
    assert len(received.envelopes) == 1

    # Inside 7 days: a new threshold, one new alert.
    week = alerts(vault_path, "--today", "2026-01-30", "--send", env=env)
    assert [(a["threshold"], a["status"]) for a in week] == [("due-7d", "sent")]
    assert len(received.envelopes) == 2

    # Later: the IND milestone is overdue, the PAS is due within 30 days and goes to
    # manufacturing leadership as well.
    later = alerts(vault_path, "--today", "2026-04-20", "--send", env=env)
    assert sorted((a["rule"], a["threshold"], a["status"]) for a in later) == [
        ("NEW_INVESTIGATOR", "overdue", "sent"),
        ("PAS", "due-30d", "sent"),
    ]
    pas = envelope_for(smtp_server, "PAS")
    assert sorted(pas.rcpt_tos) == [
        "cmo@example.org",
        "mfg.head@example.org",
        "ra.head@example.org",
    ]
    assert len(received.envelopes) == 4
    assert alerts(vault_path, "--today", "2026-04-20", "--send", env=env) == [
        {**a, "status": "already-sent"} for a in later
    ]
    assert len(received.envelopes) == 4

    recorded = notices(vault_path)
    assert len(recorded) == 4
    assert {n["delivery"] for n in recorded} == {"smtp"}
    assert len({n["key"] for n in recorded}) == 4
    assert all(n["message_id"] for n in recorded)


def test_outbox_without_smtp(vault_path: Path) -> None:
    setup_vault(vault_path)
    result = run(vault_path, "alerts", "--today", "2026-04-20", "--days", "15", "--send")
    assert result.exit_code == 0, result.stderr
    assert "2 alert(s) sent" in result.stdout
    files = sorted((vault_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    subjects = set()
    for eml in files:
        message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
        assert message.get_content_type() == "multipart/alternative"
        assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None
        subjects.add(str(message["Subject"]))
    assert subjects == {
        "[atmpvault] OVERDUE 75 days ago: NEW_INVESTIGATOR for IND-012345 (due 2026-02-04)",
        "[atmpvault] Due in 15 days: PAS for BLA-125000 (due 2026-05-05)",
    }
    assert {n["delivery"] for n in notices(vault_path)} == {"outbox"}
    # The outbox counts as sent: no duplicates there either.
    again = run(vault_path, "alerts", "--today", "2026-04-20", "--days", "15", "--send")
    assert again.exit_code == 0, again.stderr
    assert "0 alert(s) sent, 2 already sent" in again.stdout
    assert len(list((vault_path / "outbox").glob("*.eml"))) == 2


def test_smtp_failure_exits_1_and_records_no_notice(vault_path: Path) -> None:
    setup_vault(vault_path)
    server = start_server()
    server.controller.stop()
    result = run(vault_path, "alerts", "--today", "2026-01-20", "--send", env=server.env())
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("atmpvault: 1 alert(s) not delivered in full")
    assert "could not send notice by SMTP via 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.output
    assert notices(vault_path) == []  # nothing is recorded as sent
    # The next run, with the server back, sends what failed.
    back = start_server()
    try:
        sent = alerts(vault_path, "--today", "2026-01-20", "--send", env=back.env())
    finally:
        back.controller.stop()
    assert [a["status"] for a in sent] == ["sent"] and len(back.collector.envelopes) == 1


def test_routed_list_cannot_be_removed(vault_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    setup_vault(vault_path)
    refused = run(vault_path, "lists", "rm", "manufacturing-leadership", "--reason", "x")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "list 'manufacturing-leadership' is still needed" in refused.stderr
    result = run(vault_path, "alerts", "--today", "2026-04-20", "--send", env=smtp_server.env())
    assert result.exit_code == 0, result.stderr
    assert sorted(envelope_for(smtp_server, "PAS").rcpt_tos) == [
        "cmo@example.org",
        "mfg.head@example.org",
        "ra.head@example.org",
    ]


def test_routes_in_configuration(vault_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    setup_vault(vault_path)
    shown = run(vault_path, "alerts", "routes", "--json")
    assert json.loads(shown.stdout) == [
        {"list": "manufacturing-leadership", "rules": ["PAS", "CBE30", "CBE0", "BPDR"]},
        {"list": "regulatory-leadership", "rules": ["*"]},
    ]
    # Regulatory leadership now hears only of IND rules; manufacturing keeps PAS.
    changed = run(
        vault_path, "alerts", "route", "regulatory-leadership", "NEW_INVESTIGATOR", "IND_ANNUAL",
        "--reason", "BLA supplements go to manufacturing only",
    )  # fmt: skip
    assert changed.exit_code == 0, changed.stderr
    log = json.loads(run(vault_path, "log", "--json").stdout)
    assert log[-1]["action"] == "route-alerts"
    assert log[-1]["reason"] == "BLA supplements go to manufacturing only"
    found = alerts(vault_path, "--today", "2026-04-20", "--send", env=smtp_server.env())
    by_rule = {a["rule"]: a["lists"] for a in found}
    assert by_rule == {
        "NEW_INVESTIGATOR": ["regulatory-leadership"],
        "PAS": ["manufacturing-leadership"],
    }
    pas = envelope_for(smtp_server, "PAS")
    assert pas.rcpt_tos == ["mfg.head@example.org"]

    # No rules: the list gets no alerts; a milestone no list hears of is shown, not sent.
    assert (
        run(vault_path, "alerts", "route", "manufacturing-leadership", "--reason", "r").exit_code
        == 0
    )
    found = alerts(vault_path, "--today", "2026-05-06")
    pas_alert = next(a for a in found if a["rule"] == "PAS")
    assert (pas_alert["status"], pas_alert["lists"]) == ("unrouted", [])
    table = run(vault_path, "alerts", "--today", "2026-05-06")
    assert "no list routed" in table.stdout

    bad = run(vault_path, "alerts", "route", "qa", "not a rule", "--reason", "r")
    assert bad.exit_code == 2 and "invalid rule id" in bad.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--today", "2026-02-30"], "--today"),
        (["--today", "tomorrow"], "--today"),
        (["--days", "-1"], "--days"),
        (["--days", "1000"], "--days"),
    ],
)
def test_bad_options(vault_path: Path, args: list[str], message: str) -> None:
    result = run(vault_path, "alerts", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_no_vault_is_a_clear_error(tmp_path: Path) -> None:
    result = run(tmp_path / "missing", "alerts")
    assert result.exit_code == 1 and "is not an atmpvault vault" in result.stderr


@pytest.mark.parametrize(
    "kind, days_left, subject",
    [
        ("sponsor-due", -1, "[atmpvault] OVERDUE 1 day ago: R for IND-012345 (due 2026-03-01)"),
        ("fda-goal", -2, "[atmpvault] OVERDUE 2 days ago: R for IND-012345 (due 2026-03-01)"),
        ("status", -2, "[atmpvault] PASSED 2 days ago: R for IND-012345 (due 2026-03-01)"),
        ("gate", -30, "[atmpvault] PASSED 30 days ago: R for IND-012345 (due 2026-03-01)"),
        ("gate", 0, "[atmpvault] Due today: R for IND-012345 (due 2026-03-01)"),
        ("sponsor-due", 1, "[atmpvault] Due in 1 day: R for IND-012345 (due 2026-03-01)"),
    ],
)
def test_subjects(kind: str, days_left: int, subject: str) -> None:
    from atmpvault.archive.regulatory.alerts import subject_for, threshold_for

    milestone = owed_milestone("R", date(2026, 3, 1), days_left, kind=kind)
    threshold = threshold_for(days_left, 30)
    assert threshold is not None
    assert subject_for(milestone, threshold) == subject
