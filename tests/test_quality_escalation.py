"""Escalation (`deviation escalate`): overdue investigations and CAPAs told to their owners
and the lists of each level, once per level per day, through a real SMTP server."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from atmpvault.archive.core.records import NOTICE_KIND
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.quality.aging import OpenItem
from atmpvault.archive.quality.escalation import level_for, subject_for
from atmpvault.archive.quality.records import ESCALATION_KIND
from atmpvault.archive.quality.settings import DEFAULTS, parse
from atmpvault.config import Settings
from tests.conftest import Clock, run
from tests.test_notices import SmtpServer, smtp_server, start_server  # noqa: F401  (fixture)

OWNER = "Dana Whitfield"
OWNER_AT = "dana@example.org"
QAM = "qa.manager@example.org"
HOQ = "head.quality@example.org"

# -- the rules, pure ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days_to_due, expected",
    [
        (6, None),
        (5, ("warning", ("qa-management",))),
        (0, ("warning", ("qa-management",))),
        (-1, ("qa-management", ("qa-management",))),
        (-13, ("qa-management", ("qa-management",))),
        (-14, ("head-of-quality", ("head-of-quality",))),
        (-400, ("head-of-quality", ("head-of-quality",))),
    ],
)
def test_level_for(days_to_due: int, expected: tuple[str, tuple[str, ...]] | None) -> None:
    assert level_for(days_to_due, parse(DEFAULTS)) == expected


def test_level_for_a_first_level_after_some_days() -> None:
    settings = parse({**DEFAULTS, "warning_days": 0, "escalation": [
        {"level": "qa-lead", "after_days": 3, "lists": ["qa-lead"]},
        {"level": "site-head", "after_days": 10, "lists": ["site-head", "qa-lead"]},
    ]})  # fmt: skip
    assert [level_for(d, settings) for d in (1, 0, -2, -3, -10)] == [
        None, ("warning", ("qa-lead",)), None, ("qa-lead", ("qa-lead",)),
        ("site-head", ("site-head", "qa-lead")),
    ]  # fmt: skip


def item(kind: str, days_to_due: int) -> OpenItem:
    return OpenItem(
        id="DEV-2026-0001" if kind == "deviation" else "CAPA-2026-0002", kind=kind,
        deviation="DEV-2026-0001", deviation_class="major", program="CART-19", lots=("L-1",),
        title="t", owner=None, due=date(2026, 3, 31), began=date(2026, 3, 1),
        days_to_due=days_to_due, age=40, bucket=">30",
    )  # fmt: skip


@pytest.mark.parametrize(
    "kind, days_to_due, level, subject",
    [
        ("deviation", -12, "qa-management",
         "OVERDUE 12 days: DEV-2026-0001 investigation (major) \u2014 escalated to qa-management"),
        ("deviation", -1, "qa-management",
         "OVERDUE 1 day: DEV-2026-0001 investigation (major) \u2014 escalated to qa-management"),
        ("capa", -20, "head-of-quality",
         "OVERDUE 20 days: CAPA-2026-0002 action for DEV-2026-0001 (major) \u2014 escalated to "
         "head-of-quality"),
        ("deviation", 3, "warning",
         "Due in 3 days: DEV-2026-0001 investigation (major) \u2014 due 2026-03-31"),
        ("capa", 0, "warning",
         "Due today: CAPA-2026-0002 action for DEV-2026-0001 (major) \u2014 due 2026-03-31"),
    ],
)  # fmt: skip
def test_subjects(kind: str, days_to_due: int, level: str, subject: str) -> None:
    assert subject_for(item(kind, days_to_due), level) == subject


def test_templates_escape_html_and_name_the_next_step() -> None:
    from dataclasses import replace

    from atmpvault.archive.core.render import render
    from atmpvault.archive.quality.escalation import Escalation, context_for

    evil = '<script>alert("x")</script>'
    owed = replace(item("deviation", -3), title=evil)
    e = Escalation(owed, "qa-management", date(2026, 4, 3), ("qa-management",), "s", "new")
    context = {**context_for(e, e.lists), "subject": "s", "lists": ["qa-management"],
               "recipients": [QAM]}  # fmt: skip
    text = render("quality/escalation.txt.j2", context)
    html = render("quality/escalation.html.j2", context)
    assert evil in text and "<script>" not in html and "&lt;script&gt;" in html
    for part in (text, html):
        assert "3 days ago; escalated to" in part and "deviation assign DEV-2026-0001" in part
        assert "deviation investigate DEV-2026-0001" in part


# -- through the CLI and a real SMTP server ---------------------------------------------------


def ok(vault: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    result = run(vault, *args, env=env)
    assert result.exit_code == 0, (args, result.stderr)
    return result


def ok_json(vault: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(ok(vault, *args, "--json", env=env).stdout)


def escalate(vault: Path, today: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return run(vault, "deviation", "escalate", "--today", today, "--json", *args, env=env)


def head(vault: Path) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(vault / "repo.git"), "rev-parse", "HEAD"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def opened(vault: Path, cls: str, title: str, discovered: str) -> str:
    body = ok_json(
        vault, "deviation", "open", "--lot", "L-0001", "--class", cls, "--title", title,
        "--description", "found on the line", "--discovered", discovered,
    )  # fmt: skip
    return str(body["id"])


@pytest.fixture
def quality(clock: Clock, tmp_path: Path) -> dict[str, Any]:
    """An owned major deviation due 2026-03-31 with a CAPA due 2026-04-05, an unowned
    critical one due 2026-03-31, and the lists qa-management (head-of-quality not yet)."""
    vault = tmp_path / "vault"
    ok(vault, "init")
    clock.at = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    ok(vault, "people", "set", OWNER, OWNER_AT, "--reason", "QA investigator")
    ok(vault, "lists", "set", "qa-management", QAM, "--reason", "QA managers")
    ok(vault, "lot", "new", "L-0001", "--program", "CART-19")
    ok(vault, "lot", "start", "L-0001")
    major = opened(vault, "major", "port weld leak", "2026-03-01")
    ok(vault, "deviation", "assign", major, "--owner", OWNER)
    capa = ok_json(
        vault, "deviation", "capa", "add", major, "--action", "requalify the welder",
        "--owner", OWNER, "--due", "2026-04-05",
    )["id"]  # fmt: skip
    critical = opened(vault, "critical", "LN2 freezer excursion", "2026-03-16")
    return {"vault": vault, "major": major, "capa": capa, "critical": critical}


def escalations(vault: Path) -> dict[str, Any]:
    """Every escalation record, by id, with its commit."""
    with Vault.open(Settings(vault=vault, user="qa.tester"), domains()) as v:
        return {r.id: (r.body, r.commit) for r in v.catalog.records(ESCALATION_KIND.name)}


def notices(vault: Path) -> dict[str, Any]:
    with Vault.open(Settings(vault=vault, user="qa.tester"), domains()) as v:
        return {r.id: (r.body, r.commit) for r in v.catalog.records(NOTICE_KIND.name)}


def rcpts(server: SmtpServer) -> dict[str, list[str]]:
    """Subject -> recipients, for every message the server took."""
    return {
        str(m["Subject"]): sorted(e.rcpt_tos)
        for m, e in zip(server.collector.messages(), server.collector.envelopes, strict=True)
    }


def test_dry_run_sends_and_writes_nothing(
    quality: dict[str, Any],
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    vault = quality["vault"]
    before = head(vault)
    result = escalate(vault, "2026-04-02", env=smtp_server.env())
    assert result.exit_code == 0, result.stderr
    found = {e["item"]: e for e in json.loads(result.stdout)}
    assert smtp_server.collector.envelopes == [] and head(vault) == before
    assert escalations(vault) == {}
    major = found[quality["major"]]
    assert {k: major[k] for k in ("kind", "level", "days_overdue", "due", "owner", "lists",
                                  "notice", "status")} == {
        "kind": "deviation", "level": "qa-management", "days_overdue": 2, "due": "2026-03-31",
        "owner": OWNER, "lists": ["qa-management"], "notice": None, "status": "new",
    }  # fmt: skip
    capa = found[quality["capa"]]
    assert (capa["level"], capa["days_overdue"], capa["kind"]) == ("warning", -3, "capa")
    # the critical one was discovered 2026-03-16: due 2026-03-31 too, and has no owner
    assert found[quality["critical"]]["owner"] is None
    table = run(vault, "deviation", "escalate", "--today", "2026-04-02")
    assert "dry run: 3 escalation(s) would be sent" in table.stdout
    assert "would send" in table.stdout


def test_send_once_per_level_per_day_then_the_next_level(
    quality: dict[str, Any],
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    vault = quality["vault"]
    env = smtp_server.env()
    ok(vault, "lists", "set", "head-of-quality", HOQ, "--reason", "head of quality")
    sent = escalate(vault, "2026-04-02", "--send", env=env)
    assert sent.exit_code == 0, sent.stderr
    by_item = {e["item"]: e for e in json.loads(sent.stdout)}
    assert {e["status"] for e in by_item.values()} == {"sent"}
    got = rcpts(smtp_server)
    assert got == {
        "OVERDUE 2 days: DEV-2026-0001 investigation (major) \u2014 escalated to qa-management":
            sorted([OWNER_AT, QAM]),
        "Due in 3 days: CAPA-2026-0001 action for DEV-2026-0001 (major) \u2014 due 2026-04-05":
            sorted([OWNER_AT, QAM]),
        "OVERDUE 2 days: DEV-2026-0002 investigation (critical) \u2014 escalated to qa-management":
            [QAM],  # no owner: the lists only
    }  # fmt: skip
    records = escalations(vault)
    assert set(records) == {
        f"{quality['major']}/qa-management/2026-04-02",
        f"{quality['capa']}/warning/2026-04-02",
        f"{quality['critical']}/qa-management/2026-04-02",
    }
    recorded_notices = notices(vault)
    for body, commit in records.values():
        notice_body, notice_commit = recorded_notices[body["notice"]]
        assert notice_commit == commit  # one commit: the escalation and its notice
        assert notice_body["key"] == f"quality/escalation/{body['id']}"
        assert body["on"] == "2026-04-02" and body["lists"] == ["qa-management"]
        assert by_item[body["item"]]["notice"] == body["notice"]
    major = records[f"{quality['major']}/qa-management/2026-04-02"][0]
    assert (major["kind"], major["owner"], major["days_overdue"], major["due"]) == (
        "deviation",
        OWNER,
        2,
        "2026-03-31",
    )
    assert recorded_notices[major["notice"]][0]["people"] == [OWNER]

    # again the same day: nothing new
    before = head(vault)
    again = escalate(vault, "2026-04-02", "--send", env=env)
    assert again.exit_code == 0, again.stderr
    assert {e["status"] for e in json.loads(again.stdout)} == {"already-sent"}
    assert len(smtp_server.collector.envelopes) == 3 and head(vault) == before

    # 14 days overdue: head of quality; the CAPA (due 2026-04-05) is overdue 9: QA management
    later = escalate(vault, "2026-04-14", "--send", env=env)
    assert later.exit_code == 0, later.stderr
    levels = {e["item"]: (e["level"], e["days_overdue"]) for e in json.loads(later.stdout)}
    assert levels == {
        quality["major"]: ("head-of-quality", 14),
        quality["critical"]: ("head-of-quality", 14),
        quality["capa"]: ("qa-management", 9),
    }
    got = rcpts(smtp_server)
    subject = (
        "OVERDUE 14 days: DEV-2026-0001 investigation (major) \u2014 escalated to head-of-quality"
    )
    assert got[subject] == sorted([OWNER_AT, HOQ])
    assert len(smtp_server.collector.envelopes) == 6
    assert len(escalations(vault)) == 6


def test_warning_window_and_closed_items(quality: dict[str, Any]) -> None:
    vault = quality["vault"]
    # five days before the CAPA is due: a warning; six days before: nothing yet
    early = {e["item"]: e for e in json.loads(escalate(vault, "2026-03-30").stdout)}
    assert quality["capa"] not in early  # due 2026-04-05: six days ahead
    assert early[quality["major"]]["level"] == "warning"  # due 2026-03-31: tomorrow
    window = {e["item"]: e for e in json.loads(escalate(vault, "2026-03-31").stdout)}
    assert window[quality["capa"]]["level"] == "warning"
    assert window[quality["major"]]["days_overdue"] == 0  # due today: not yet overdue
    assert window[quality["major"]]["level"] == "warning"
    # a closed deviation and a done CAPA are not escalated
    ok(vault, "deviation", "investigate", quality["critical"], "--root-cause", "alarm relay",
       "--impact", "none: product moved in time")  # fmt: skip
    ok(vault, "deviation", "close", quality["critical"], "--summary", "relay replaced")
    found = {e["item"] for e in json.loads(escalate(vault, "2026-04-10").stdout)}
    assert found == {quality["major"], quality["capa"]}


def test_a_failing_list_holds_back_no_other(
    quality: dict[str, Any],
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    vault = quality["vault"]
    env = smtp_server.env()
    # 2026-04-14: both deviations at head-of-quality, a list not defined; the CAPA at QA mgmt
    result = escalate(vault, "2026-04-14", "--send", env=env)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and "head-of-quality: not defined" in line
    assert "2 escalation(s) not delivered in full" in line and "2 notice(s) went out" in line
    statuses = {e["item"]: e["status"] for e in json.loads(result.stdout)}
    # the owned one reached its owner, the unowned one nobody
    assert statuses == {
        quality["major"]: "partly-sent", quality["critical"]: "undelivered",
        quality["capa"]: "sent",
    }  # fmt: skip
    assert len(smtp_server.collector.envelopes) == 2
    got = rcpts(smtp_server)
    assert sorted(got.values()) == [[OWNER_AT], sorted([OWNER_AT, QAM])]
    assert set(escalations(vault)) == {
        f"{quality['major']}/head-of-quality/2026-04-14",
        f"{quality['capa']}/qa-management/2026-04-14",
    }
    # the list defined, the next run that day sends only what was missed, to whom missed it
    ok(vault, "lists", "set", "head-of-quality", HOQ, "--reason", "head of quality")
    again = escalate(vault, "2026-04-14", "--send", env=env)
    assert again.exit_code == 0, again.stderr
    statuses = {e["item"]: e["status"] for e in json.loads(again.stdout)}
    assert statuses == {
        quality["major"]: "sent", quality["critical"]: "sent", quality["capa"]: "already-sent",
    }  # fmt: skip
    later = smtp_server.collector.envelopes[2:]
    assert sorted(sorted(e.rcpt_tos) for e in later) == [[HOQ], [HOQ]]  # the owner not twice
    records = escalations(vault)
    major, _ = records[f"{quality['major']}/head-of-quality/2026-04-14"]
    assert major["lists"] == ["head-of-quality"]
    with Vault.open(Settings(vault=vault, user="qa.tester"), domains()) as v:
        versions = v.catalog.record_versions(
            ESCALATION_KIND.name, f"{quality['major']}/head-of-quality/2026-04-14"
        )
    assert [r.body["lists"] for r in versions] == [[], ["head-of-quality"]]
    assert versions[0].body["notice"] != versions[1].body["notice"]


def test_smtp_down_records_nothing(
    quality: dict[str, Any],
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    vault = quality["vault"]
    smtp_server.controller.stop()
    before = head(vault)
    result = escalate(vault, "2026-04-02", "--send", env=smtp_server.env())
    assert result.exit_code == 1
    assert "could not send notice by SMTP" in result.stderr and result.stderr.count("\n") == 1
    assert {e["status"] for e in json.loads(result.stdout)} == {"undelivered"}
    assert head(vault) == before and escalations(vault) == {}
    back = start_server()
    try:
        retried = escalate(vault, "2026-04-02", "--send", env=back.env())
        assert retried.exit_code == 0, retried.stderr
        assert len(back.collector.envelopes) == 3
    finally:
        back.controller.stop()


def test_an_owner_missing_from_the_directory(
    quality: dict[str, Any],
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    vault = quality["vault"]
    with Vault.open(Settings(vault=vault, user="qa.tester"), domains()) as v, v.writing():
        from atmpvault.archive.core.configuration import CONFIG_PATH, commit_config

        raw = json.loads(v.read_file(CONFIG_PATH) or b"{}")
        raw["people"] = {}
        commit_config(v, raw, "directory emptied", {"Action": "edit-config"}, "test", None)
    result = escalate(vault, "2026-04-02", "--send", env=smtp_server.env())
    assert result.exit_code == 1 and "'Dana Whitfield' is not in the directory" in result.stderr
    assert sorted(sorted(e.rcpt_tos) for e in smtp_server.collector.envelopes) == [[QAM]] * 3


def test_escalation_bad_input(quality: dict[str, Any]) -> None:
    vault = quality["vault"]
    before = head(vault)
    result = run(vault, "deviation", "escalate", "--today", "soon", "--send")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "--today 'soon' is not a date" in result.stderr and head(vault) == before
