"""The weekly digest: its windows and sections, routing, a real SMTP server, the outbox,
once per list per ISO week, escaping, and a list that cannot be reached."""

from __future__ import annotations

import json
from datetime import date
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.alerts import ROUTES_PATH
from atmpvault.archive.regulatory.applications import Regulatory
from atmpvault.archive.regulatory.derivation import Milestone
from atmpvault.archive.regulatory.digest import (
    Sections,
    digest_key,
    iso_week,
    plan,
    sections,
    subject_for,
    week_of,
)
from atmpvault.archive.regulatory.obligations import Closure
from atmpvault.config import Settings
from tests.conftest import run
from tests.test_hardening_alerts import alert_runs, commit_by_hand
from tests.test_notices import EVIL, SmtpServer, parts, smtp_server  # noqa: F401  (fixture)

# -- the rules of the digest ----------------------------------------------------------------


@pytest.mark.parametrize(
    "today, week, monday",
    [
        (date(2026, 11, 30), "2026-W49", date(2026, 11, 30)),  # a Monday
        (date(2026, 12, 6), "2026-W49", date(2026, 11, 30)),  # its Sunday
        (date(2026, 12, 7), "2026-W50", date(2026, 12, 7)),
        (date(2027, 1, 1), "2026-W53", date(2026, 12, 28)),  # ISO 2026 has 53 weeks
        (date(2025, 12, 29), "2026-W01", date(2025, 12, 29)),  # week 1 of 2026 starts in 2025
    ],
)
def test_iso_week(today: date, week: str, monday: date) -> None:
    assert iso_week(today) == week
    assert week_of(today) == monday
    assert digest_key("regulatory-leadership", today) == f"digest/regulatory-leadership/{week}"


def milestone(
    rule: str,
    due: date,
    today: date,
    kind: str = "sponsor-due",
    app: str = "IND-012345",
    program: str = "CART-19",
    closed_on: date | None = None,
) -> Milestone:
    closure = None
    if closed_on is not None:
        closure = Closure(f"{app}/{rule}/EV-000001", "done", closed_on, "ra.lead", "recorded")
    return Milestone(
        app=app, program=program, rule=rule, kind=kind, due=due, days_left=(due - today).days,
        source="21 CFR 312.30(c)", trigger="investigator-added", trigger_date=date(2026, 1, 5),
        event="EV-000001", produces="protocol amendment", closure=closure,
    )  # fmt: skip


TODAY = date(2026, 2, 2)  # a Monday: ISO week 2026-W06


def test_sections_and_their_windows() -> None:
    found = sections(
        [
            milestone("A_DUE_TODAY", date(2026, 2, 2), TODAY),
            milestone("B_DUE_IN_7", date(2026, 2, 9), TODAY),  # the last day of "the next 7"
            milestone("C_DUE_IN_8", date(2026, 2, 10), TODAY),  # too far ahead
            milestone("D_OVERDUE", date(2025, 6, 1), TODAY),  # overdue however long ago
            milestone("E_GATE_PASSED", date(2026, 2, 1), TODAY, kind="gate"),  # never overdue
            milestone("F_DONE_7_AGO", date(2026, 1, 19), TODAY, closed_on=date(2026, 1, 26)),
            milestone("G_DONE_8_AGO", date(2026, 1, 19), TODAY, closed_on=date(2026, 1, 25)),
            milestone("H_DONE_EARLY", date(2026, 5, 5), TODAY, closed_on=date(2026, 2, 2)),
        ],
        TODAY,
    )
    assert [m.rule for m in found.overdue] == ["D_OVERDUE"]
    assert [m.rule for m in found.due] == ["A_DUE_TODAY", "B_DUE_IN_7"]
    assert [m.rule for m in found.completed] == ["F_DONE_7_AGO", "H_DONE_EARLY"]
    assert found.counts() == {"overdue": 1, "due": 2, "completed": 2}
    assert subject_for(TODAY, found.counts()) == (
        "[atmpvault] Week of 2026-02-02: 2 due, 1 overdue, 2 completed"
    )
    assert not Sections() and found


def test_plan_routes_marks_sent_and_silent_lists() -> None:
    owed = [
        milestone("PAS", date(2026, 2, 5), TODAY, kind="fda-goal", app="BLA-125000"),
        milestone("NEW_INVESTIGATOR", date(2026, 2, 4), TODAY),
    ]
    routes = {"regulatory-leadership": ("*",), "manufacturing-leadership": ("PAS",),
              "quality-leadership": ("BPDR",), "unrouted": ()}  # fmt: skip
    sent = {digest_key("regulatory-leadership", TODAY): {"regulatory-leadership": "NTC-1"}}
    digests = {d.list: d for d in plan(owed, TODAY, routes, sent)}
    assert set(digests) == {"manufacturing-leadership", "quality-leadership",
                            "regulatory-leadership"}  # fmt: skip
    assert [m.rule for m in digests["manufacturing-leadership"].sections.due] == ["PAS"]
    assert digests["manufacturing-leadership"].status == "new"
    assert digests["quality-leadership"].status == "nothing"
    assert (digests["regulatory-leadership"].status, digests["regulatory-leadership"].notice) == (
        "already-sent",
        "NTC-1",
    )


# -- end to end, with a real SMTP server and the outbox ------------------------------------


def setup_vault(path: Path) -> None:
    """Two programs; on Monday 2026-02-02 (2026-W06):

    CART-19  IND-012345  NEW_INVESTIGATOR EV-000001 due 2025-12-31: overdue
                         NEW_INVESTIGATOR EV-000002 due 2026-01-19: done 2026-01-30 (below)
                         NEW_INVESTIGATOR EV-000003 due 2026-02-04: due
             BLA-125000  PAS EV-000004 due 2026-02-05: due
    AAV-GT1  IND-054321  IND_EFFECTIVE EV-000005 due 2026-02-04: due (a status)
             BLA-125001  PAS EV-000006 due 2026-03-20: closed by approval on 2026-01-28
    """
    with Vault.open(Settings(vault=path, user="ra.lead"), domains()) as vault:
        reg = Regulatory(vault)
        reg.new_app("ind", "012345", "CART-19")
        reg.new_app("bla", "125000", "CART-19")
        reg.new_app("ind", "054321", "AAV-GT1")
        reg.new_app("bla", "125001", "AAV-GT1")
        reg.add_event("IND-012345", "investigator-added", date(2025, 12, 1))
        reg.add_event("IND-012345", "investigator-added", date(2025, 12, 20))
        reg.add_event("IND-012345", "investigator-added", date(2026, 1, 5))
        reg.add_event("BLA-125000", "pas-received", date(2025, 10, 5))
        reg.add_event("IND-054321", "ind-received", date(2026, 1, 5))
        reg.add_event("BLA-125001", "pas-received", date(2025, 11, 20))
        reg.add_event("BLA-125001", "supplement-approved", date(2026, 1, 28))
    done = run(path, "milestone", "done", "IND-012345", "NEW_INVESTIGATOR", "--event",
               "EV-000002", "--on", "2026-01-30", "--reason", f"amendment filed {EVIL}",
               "--today", "2026-01-30")  # fmt: skip
    assert done.exit_code == 0, done.stderr
    for name, addresses in {
        "regulatory-leadership": ["ra.head@example.org", "cmo@example.org"],
        "manufacturing-leadership": ["mfg.head@example.org"],
    }.items():
        result = run(path, "lists", "set", name, *addresses, "--reason", "digest recipients")
        assert result.exit_code == 0, result.stderr
    routed = run(path, "alerts", "route", "manufacturing-leadership", "PAS",
                 "--reason", "supplements only")  # fmt: skip
    assert routed.exit_code == 0, routed.stderr


def digest(path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = run(path, "alerts", "digest", "--week", *args, "--json", env=env)
    assert result.exit_code == 0, result.stderr
    return {d["list"]: d for d in json.loads(result.stdout)}


def notices(path: Path) -> list[dict[str, Any]]:
    result = run(path, "notices", "ls", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML of a message, with the line ends it was written with."""
    text, html = parts(message)
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def by_list(server: SmtpServer) -> dict[str, tuple[list[str], EmailMessage]]:
    """Each received digest by the list its key names: (recipients, message)."""
    found = {}
    for envelope, message in zip(
        server.collector.envelopes, server.collector.messages(), strict=True
    ):
        name = str(message["X-Atmpvault-Key"]).split("/")[1]
        assert name not in found, f"{name} was sent two digests"
        found[name] = (sorted(envelope.rcpt_tos), message)
    return found


REGULATORY_TEXT = """\
Weekly digest for regulatory-leadership, week of 2026-02-02 (2026-W06), as of 2026-02-02.
3 due, 1 overdue, 2 completed; rules: every rule.

OVERDUE (1; open and past their date on 2026-02-02)
  Program CART-19
    IND-012345
      - OVERDUE NEW_INVESTIGATOR (sponsor-due): protocol amendment; due 2025-12-31, 33 days ago
        IND-012345/NEW_INVESTIGATOR/EV-000001, triggered by investigator-added on 2025-12-01

DUE IN THE NEXT 7 DAYS (3; 2026-02-02 to 2026-02-09)
  Program AAV-GT1
    IND-054321
      - IND_EFFECTIVE (status): IND in effect unless on clinical hold; due 2026-02-04, in 2 days
        IND-054321/IND_EFFECTIVE/EV-000005, triggered by ind-received on 2026-01-05
  Program CART-19
    BLA-125000
      - PAS (fda-goal): approval of the supplement (no distribution before); due 2026-02-05, in 3 days
        BLA-125000/PAS/EV-000004, triggered by pas-received on 2025-10-05
    IND-012345
      - NEW_INVESTIGATOR (sponsor-due): protocol amendment; due 2026-02-04, in 2 days
        IND-012345/NEW_INVESTIGATOR/EV-000003, triggered by investigator-added on 2026-01-05

COMPLETED OR WAIVED IN THE LAST 7 DAYS (2; 2026-01-26 to 2026-02-02)
  Program AAV-GT1
    BLA-125001
      - PAS (fda-goal): approval of the supplement (no distribution before); done on 2026-01-28 by ra.lead (was due 2026-03-20)
        BLA-125001/PAS/EV-000006, triggered by pas-received on 2025-11-20
        Evidence: EV-000007
  Program CART-19
    IND-012345
      - NEW_INVESTIGATOR (sponsor-due): protocol amendment; done on 2026-01-30 by qa.tester (was due 2026-01-19)
        IND-012345/NEW_INVESTIGATOR/EV-000002, triggered by investigator-added on 2025-12-20
        Reason: amendment filed <script>alert("x")</script>

Sent by atmpvault to: regulatory-leadership, once for 2026-W06.
FDA goal dates are expectations, not guarantees.
"""


def test_dry_run_sends_nothing(vault_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    setup_vault(vault_path)
    found = digest(vault_path, "--today", "2026-02-02", env=smtp_server.env())
    assert {n: (d["status"], d["counts"]) for n, d in found.items()} == {
        "manufacturing-leadership": ("new", {"overdue": 0, "due": 1, "completed": 1}),
        "regulatory-leadership": ("new", {"overdue": 1, "due": 3, "completed": 2}),
    }
    regulatory = found["regulatory-leadership"]
    assert regulatory["key"] == "digest/regulatory-leadership/2026-W06"
    assert regulatory["subject"] == "[atmpvault] Week of 2026-02-02: 3 due, 1 overdue, 2 completed"
    assert [m["key"] for m in regulatory["completed"]] == [
        "BLA-125001/PAS/EV-000006",
        "IND-012345/NEW_INVESTIGATOR/EV-000002",
    ]
    table = run(vault_path, "alerts", "digest", "--week", "--today", "2026-02-02")
    assert table.exit_code == 0, table.stderr
    assert "would send  manufacturing-leadership  0        1    1" in table.stdout
    assert "completed  AAV-GT1  BLA-125001  PAS" in table.stdout
    assert "dry run: 2 digest(s) would be sent for 2026-W06, 0 already sent" in table.stdout
    assert smtp_server.collector.envelopes == []
    assert notices(vault_path) == []
    assert not (vault_path / "outbox").exists()


def test_digest_by_smtp_once_a_week(vault_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    setup_vault(vault_path)
    env = smtp_server.env()
    sent = digest(vault_path, "--today", "2026-02-02", "--send", env=env)
    assert {n: d["status"] for n, d in sent.items()} == {
        "manufacturing-leadership": "sent",
        "regulatory-leadership": "sent",
    }
    received = by_list(smtp_server)
    rcpt, message = received["regulatory-leadership"]
    assert rcpt == ["cmo@example.org", "ra.head@example.org"]
    assert message["Subject"] == "[atmpvault] Week of 2026-02-02: 3 due, 1 overdue, 2 completed"
    assert message.get_content_type() == "multipart/alternative"
    text, html = bodies(message)
    assert text == REGULATORY_TEXT
    # The closure's reason is what a user typed: escaped in the HTML, as typed in the text.
    assert "<script>" not in html
    assert "amendment filed &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    # Sections in order, and inside each, programs then applications in name order.
    heads = ["Overdue (1)", "Due in the next 7 days (3)", "Completed or waived in the last 7 days"]
    assert [html.index(h) for h in heads] == sorted(html.index(h) for h in heads)
    due = html[html.index(heads[1]) : html.index(heads[2])]
    order = ["Program AAV-GT1", "IND-054321", "Program CART-19", "BLA-125000", "IND-012345"]
    assert [due.index(h) for h in order] == sorted(due.index(h) for h in order)

    # Routed only PAS: only PAS, due and completed; nothing of the IND.
    rcpt, message = received["manufacturing-leadership"]
    assert rcpt == ["mfg.head@example.org"]
    assert message["Subject"] == "[atmpvault] Week of 2026-02-02: 1 due, 0 overdue, 1 completed"
    text, html = bodies(message)
    assert "rules: PAS." in text
    assert "BLA-125000/PAS/EV-000004" in text and "BLA-125001/PAS/EV-000006" in text
    assert "IND-" not in text and "IND-" not in html and "NEW_INVESTIGATOR" not in text
    assert "OVERDUE (0; open and past their date on 2026-02-02)\n  None.\n" in text

    # Again later the same ISO week (cron twice, a retry, Sunday): nothing new.
    for day in ("2026-02-02", "2026-02-08"):
        again = run(vault_path, "alerts", "digest", "--week", "--today", day, "--send", env=env)
        assert again.exit_code == 0, again.stderr
        assert "0 digest(s) sent for 2026-W06, 2 already sent" in again.stdout
    assert len(smtp_server.collector.envelopes) == 2
    recorded = notices(vault_path)
    assert sorted(n["key"] for n in recorded) == [
        "digest/manufacturing-leadership/2026-W06",
        "digest/regulatory-leadership/2026-W06",
    ]
    assert {(n["delivery"], n["template"]) for n in recorded} == {
        ("smtp", "regulatory/weekly-digest")
    }
    shown = run(vault_path, "notices", "show", recorded[0]["id"])
    assert shown.exit_code == 0 and "Weekly digest for" in shown.stdout

    # The next week is a new digest; the closures of 2026-01-28 and -30 have aged out.
    following = digest(vault_path, "--today", "2026-02-09", "--send", env=env)
    assert following["regulatory-leadership"]["status"] == "sent"
    assert following["regulatory-leadership"]["key"] == "digest/regulatory-leadership/2026-W07"
    assert following["regulatory-leadership"]["counts"]["completed"] == 0
    assert len(smtp_server.collector.envelopes) == 4


def test_outbox_and_a_list_with_nothing_to_say(vault_path: Path) -> None:
    setup_vault(vault_path)
    route = run(vault_path, "alerts", "route", "manufacturing-leadership", "BPDR", "--reason", "r")
    assert route.exit_code == 0, route.stderr
    result = run(vault_path, "alerts", "digest", "--week", "--today", "2026-02-03", "--send")
    assert result.exit_code == 0, result.stderr
    assert "nothing to say  manufacturing-leadership" in result.stdout
    assert (
        "1 digest(s) sent for 2026-W06, 0 already sent; "
        "1 list(s) with nothing to say, sent nothing" in result.stdout
    )
    (eml,) = sorted((vault_path / "outbox").glob("*.eml"))
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message["To"] == "ra.head@example.org, cmo@example.org"
    assert message["X-Atmpvault-Key"] == "digest/regulatory-leadership/2026-W06"
    text, html = bodies(message)  # type: ignore[arg-type]
    assert "as of 2026-02-03" in text and "due 2026-02-04, in 1 day\n" in text
    assert "<script>" not in html
    (notice,) = notices(vault_path)
    assert notice["delivery"] == "outbox" and notice["lists"] == ["regulatory-leadership"]
    again = run(vault_path, "alerts", "digest", "--week", "--today", "2026-02-04", "--send")
    assert again.exit_code == 0 and "0 digest(s) sent for 2026-W06, 1 already sent" in again.stdout
    assert len(list((vault_path / "outbox").glob("*.eml"))) == 1


def test_an_unreachable_list_holds_back_no_other(
    vault_path: Path,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    setup_vault(vault_path)
    # Routing edited by hand to a list nobody defined (an older release, git by hand).
    commit_by_hand(
        vault_path,
        {ROUTES_PATH: {"format": 1, "routes": {"regulatory-leadership": ["*"],
                                               "quality-leadership": ["PAS"]}}},
    )  # fmt: skip
    env = smtp_server.env()
    dry = run(vault_path, "alerts", "digest", "--week", "--today", "2026-02-02", env=env)
    assert dry.exit_code == 0, dry.stderr
    assert "WILL MISS: digest for quality-leadership: quality-leadership: not defined" in dry.stdout

    result = run(vault_path, "alerts", "digest", "--week", "--today", "2026-02-02", "--send",
                 env=env)  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("atmpvault: 1 weekly digest(s) not delivered in full")
    assert "quality-leadership: not defined" in result.stderr
    assert list(by_list(smtp_server)) == ["regulatory-leadership"]
    (record,) = alert_runs(vault_path)
    assert record["sent"] == [notices(vault_path)[0]["id"]]
    assert [(u["key"], u["lists"]) for u in record["undelivered"]] == [
        ("digest/quality-leadership/2026-W06", ["quality-leadership"])
    ]

    # Defined later that week: the next run sends it, and only it.
    defined = run(vault_path, "lists", "set", "quality-leadership", "qa@example.org",
                  "--reason", "r")  # fmt: skip
    assert defined.exit_code == 0, defined.stderr
    later = digest(vault_path, "--today", "2026-02-04", "--send", env=env)
    assert {n: d["status"] for n, d in later.items()} == {
        "quality-leadership": "sent",
        "regulatory-leadership": "already-sent",
    }
    received = by_list(smtp_server)
    assert received["quality-leadership"][0] == ["qa@example.org"]
    assert received["quality-leadership"][1]["Subject"] == (
        "[atmpvault] Week of 2026-02-02: 1 due, 0 overdue, 1 completed"
    )


def test_smtp_down_exits_1_and_sends_later(vault_path: Path) -> None:
    from tests.test_notices import start_server

    setup_vault(vault_path)
    down = start_server()
    down.controller.stop()
    result = run(vault_path, "alerts", "digest", "--week", "--today", "2026-02-02", "--send",
                 env=down.env())  # fmt: skip
    assert result.exit_code == 1
    assert "2 weekly digest(s) not delivered in full" in result.stderr
    assert "could not send notice by SMTP via 127.0.0.1:" in result.stderr
    assert notices(vault_path) == []
    back = start_server()
    try:
        sent = digest(vault_path, "--today", "2026-02-03", "--send", env=back.env())
    finally:
        back.controller.stop()
    assert {d["status"] for d in sent.values()} == {"sent"}
    assert len(back.collector.envelopes) == 2


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--week"),
        (["--week", "--today", "2026-02-30"], "--today"),
    ],
)
def test_bad_options(vault_path: Path, args: list[str], message: str) -> None:
    result = run(vault_path, "alerts", "digest", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
