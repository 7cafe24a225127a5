"""Alerts never stop for everyone: routing is checked when it changes, and a broken list,
address or message at send time holds back nobody else, is recorded and retried."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core.configuration import CONFIG_PATH
from atmpvault.archive.core.notices import DistributionLists, Notices
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.alerts import ROUTES_PATH
from atmpvault.config import Settings
from atmpvault.errors import AlreadySent
from tests.conftest import run
from tests.test_alerts import alerts, envelope_for, notices, setup_vault
from tests.test_notices import (  # noqa: F401  (fixture)
    Collector,
    LoopbackController,
    SmtpServer,
    context,
    smtp_server,
    with_lists,
)

# On 2026-04-20 two alerts are owed: NEW_INVESTIGATOR (overdue, regulatory-leadership) and
# PAS (due within 30 days, manufacturing-leadership and regulatory-leadership).
DAY = "2026-04-20"


def open_vault(path: Path) -> Vault:
    return Vault.open(Settings(vault=path, user="qa.tester"), domains())


def commit_by_hand(path: Path, files: dict[str, Any]) -> None:
    """A change made outside atmpvault's checks (git by hand, an older release)."""
    data = {k: (json.dumps(v, indent=2) + "\n").encode("utf-8") for k, v in files.items()}
    with open_vault(path) as vault:
        vault.commit_files(data, "edited by hand", {"Action": "edit-config"}, reason="test")


def hand_lists(path: Path, lists: dict[str, list[str]]) -> None:
    with open_vault(path) as vault:
        raw = json.loads(vault.read_file(CONFIG_PATH) or b"{}")
    raw["distribution_lists"] = lists
    commit_by_hand(path, {CONFIG_PATH: raw})


def alert_runs(path: Path) -> list[dict[str, Any]]:
    with open_vault(path) as vault:
        return [r.body for r in vault.catalog.records("alert-run")]


def routes(path: Path) -> Any:
    return json.loads(run(path, "alerts", "routes", "--json").stdout)


class Picky(Collector):
    """A real SMTP server that refuses some recipients and some messages."""

    def __init__(self, refuse_rcpt: str = "", refuse_subject: str = "") -> None:
        super().__init__()
        self.refuse_rcpt, self.refuse_subject = refuse_rcpt, refuse_subject

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_rcpt and address == self.refuse_rcpt:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = bytes(envelope.original_content or b"")
        if self.refuse_subject and self.refuse_subject.encode() in content:
            return "554 5.7.1 message refused"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def picky() -> Iterator[tuple[Picky, dict[str, str]]]:
    handler = Picky()
    controller = LoopbackController(handler)
    controller.start()
    try:
        yield (
            handler,
            {
                "ATMPVAULT_SMTP_HOST": "127.0.0.1",
                "ATMPVAULT_SMTP_PORT": str(controller.port),
            },
        )
    finally:
        controller.stop()


# -- routing is checked when it changes ---------------------------------------------------------


def test_route_to_unknown_rule_is_refused(vault_path: Path) -> None:
    setup_vault(vault_path)
    before = routes(vault_path)
    bad = run(vault_path, "alerts", "route", "regulatory-leadership", "PAS", "BOGUS",
              "--reason", "r")  # fmt: skip
    assert bad.exit_code == 2 and bad.stderr.count("\n") == 1
    assert "unknown rule(s) BOGUS" in bad.stderr and "BPDR" in bad.stderr
    assert routes(vault_path) == before
    ok = run(vault_path, "alerts", "route", "regulatory-leadership", "BPDR", "*", "--reason", "r")
    assert ok.exit_code == 0, ok.stderr


def test_route_to_undefined_list_is_refused(vault_path: Path) -> None:
    setup_vault(vault_path)
    before = routes(vault_path)
    bad = run(vault_path, "alerts", "route", "quality-leadership", "BPDR", "--reason", "r")
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1
    assert "unknown distribution list 'quality-leadership'" in bad.stderr
    assert "atmpvault lists set quality-leadership" in bad.stderr
    assert routes(vault_path) == before
    run(vault_path, "lists", "set", "quality-leadership", "qa@example.org", "--reason", "r")
    ok = run(vault_path, "alerts", "route", "quality-leadership", "BPDR", "--reason", "r")
    assert ok.exit_code == 0, ok.stderr
    # A route can always be stopped, even to a list that went missing by hand.
    hand_lists(vault_path, {"regulatory-leadership": ["ra.head@example.org"]})
    stop = run(vault_path, "alerts", "route", "quality-leadership", "--reason", "r")
    assert stop.exit_code == 0, stop.stderr


def test_removing_a_routed_list_is_refused(vault_path: Path) -> None:
    setup_vault(vault_path)
    run(vault_path, "lists", "set", "quality-leadership", "qa@example.org", "--reason", "r")
    run(vault_path, "alerts", "route", "quality-leadership", "BPDR", "CBE0", "--reason", "r")
    refused = run(vault_path, "lists", "rm", "quality-leadership", "--reason", "gone")
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "list 'quality-leadership' is still needed: alerts for BPDR, CBE0" in refused.stderr
    assert f"({ROUTES_PATH})" in refused.stderr and "nothing was removed" in refused.stderr
    assert "quality-leadership" in {x["name"] for x in json.loads(
        run(vault_path, "lists", "ls", "--json").stdout)}  # fmt: skip
    # Stop the route first, then the list can go.
    assert run(vault_path, "alerts", "route", "quality-leadership", "--reason", "r").exit_code == 0
    assert run(vault_path, "lists", "rm", "quality-leadership", "--reason", "gone").exit_code == 0


def test_removing_a_list_the_default_routing_uses_is_refused(vault_path: Path) -> None:
    setup_vault(vault_path)
    refused = run(vault_path, "lists", "rm", "regulatory-leadership", "--reason", "gone")
    assert refused.exit_code == 1
    assert "alerts for every rule are routed to it (the default routing)" in refused.stderr


# -- a broken configuration at send time holds back nobody else --------------------------------


def test_undefined_list_at_send_time(vault_path: Path, smtp_server: SmtpServer) -> None:  # noqa: F811
    setup_vault(vault_path)
    # An older release let the list go while the default routing still sends PAS to it.
    hand_lists(vault_path, {"regulatory-leadership": ["ra.head@example.org", "cmo@example.org"]})
    env = smtp_server.env()

    dry = run(vault_path, "alerts", "--today", DAY, env=env)
    assert dry.exit_code == 0
    assert "WILL MISS: PAS for BLA-125000: manufacturing-leadership: not defined" in dry.stdout

    result = run(vault_path, "alerts", "--today", DAY, "--send", "--json", env=env)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert "1 alert(s) not delivered in full" in result.stderr
    assert "PAS for BLA-125000 (due 2026-05-05): manufacturing-leadership: not defined" in (
        result.stderr
    )
    found = {a["rule"]: a for a in json.loads(result.stdout)}
    assert found["NEW_INVESTIGATOR"]["status"] == "sent"
    assert found["PAS"]["status"] == "partly-sent"
    assert found["PAS"]["pending"] == ["manufacturing-leadership"]
    # Everything deliverable went out: both alerts reached regulatory leadership.
    assert len(smtp_server.collector.envelopes) == 2
    assert sorted(envelope_for(smtp_server, "PAS").rcpt_tos) == [
        "cmo@example.org",
        "ra.head@example.org",
    ]
    # Both are recorded: the notices sent, and the run with what it could not deliver.
    sent = notices(vault_path)
    assert len(sent) == 2
    (record,) = alert_runs(vault_path)
    assert sorted(record["sent"]) == sorted(n["id"] for n in sent)
    (missed,) = record["undelivered"]
    assert (missed["rule"], missed["app"], missed["lists"]) == (
        "PAS", "BLA-125000", ["manufacturing-leadership"],
    )  # fmt: skip
    assert record["actor"] == "qa.tester" and record["today"] == DAY
    log = json.loads(run(vault_path, "log", "--json").stdout)
    assert log[-1]["action"] == "alert-run"

    # Once the list exists, the next run sends PAS to it alone, and nothing else.
    run(vault_path, "lists", "set", "manufacturing-leadership", "mfg.head@example.org",
        "--reason", "restored")  # fmt: skip
    again = alerts(vault_path, "--today", DAY, "--send", env=env)
    assert {a["rule"]: a["status"] for a in again} == {
        "NEW_INVESTIGATOR": "already-sent",
        "PAS": "sent",
    }
    assert len(smtp_server.collector.envelopes) == 3
    assert smtp_server.collector.envelopes[-1].rcpt_tos == ["mfg.head@example.org"]
    assert [n["lists"] for n in notices(vault_path)][-1] == ["manufacturing-leadership"]
    # And then the run is quiet: nothing owed, no new record.
    quiet = alerts(vault_path, "--today", DAY, "--send", env=env)
    assert {a["status"] for a in quiet} == {"already-sent"}
    assert len(smtp_server.collector.envelopes) == 3 and len(alert_runs(vault_path)) == 1


def test_route_to_missing_or_invalid_list_at_send_time(vault_path: Path) -> None:
    setup_vault(vault_path)
    commit_by_hand(vault_path, {ROUTES_PATH: {"format": 1, "routes": {
        "regulatory-leadership": ["*"], "Bad_Name": ["PAS"], "quality": ["PAS"]}}})  # fmt: skip
    result = run(vault_path, "alerts", "--today", DAY, "--send")
    assert result.exit_code == 1
    assert "Bad_Name: not a valid list name" in result.stderr
    assert "quality: not defined" in result.stderr
    assert len(list((vault_path / "outbox").glob("*.eml"))) == 2
    assert "NOT DELIVERED: PAS for BLA-125000: quality: not defined" in result.stdout


def test_smtp_failure_midway_sends_the_rest(
    vault_path: Path, picky: tuple[Picky, dict[str, str]]
) -> None:
    setup_vault(vault_path)
    server, env = picky
    server.refuse_subject = "NEW_INVESTIGATOR"  # the first alert of the run fails
    result = run(vault_path, "alerts", "--today", DAY, "--send", env=env)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "NEW_INVESTIGATOR for IND-012345" in result.stderr
    assert "554" in result.stderr and "message refused" in result.stderr
    assert "1 notice(s) went out" in result.stderr
    # The PAS alert after it still went out, and is recorded.
    (message,) = server.messages()
    assert "PAS for BLA-125000" in str(message["Subject"])
    assert [n["subject"] for n in notices(vault_path)] == [str(message["Subject"])]
    (record,) = alert_runs(vault_path)
    assert [m["rule"] for m in record["undelivered"]] == ["NEW_INVESTIGATOR"]
    assert record["undelivered"][0]["status"] == "undelivered"
    # The server takes it now: the next run sends only what was missed.
    server.refuse_subject = ""
    again = alerts(vault_path, "--today", DAY, "--send", env=env)
    assert {a["rule"]: a["status"] for a in again} == {
        "NEW_INVESTIGATOR": "sent",
        "PAS": "already-sent",
    }
    assert len(server.envelopes) == 2


def test_refused_recipient_is_reported(
    vault_path: Path, picky: tuple[Picky, dict[str, str]]
) -> None:
    setup_vault(vault_path)
    server, env = picky
    server.refuse_rcpt = "cmo@example.org"
    result = run(vault_path, "alerts", "--today", "2026-01-20", "--send", env=env)
    assert result.exit_code == 1
    assert "the SMTP server refused cmo@example.org" in result.stderr
    (envelope,) = server.envelopes
    assert envelope.rcpt_tos == ["ra.head@example.org"]
    (notice,) = notices(vault_path)
    assert notice["refused"] == ["cmo@example.org"]
    assert len(alert_runs(vault_path)) == 1
    # The list was reached: the next run does not send it again.
    assert run(vault_path, "alerts", "--today", "2026-01-20", "--send", env=env).exit_code == 0
    assert len(server.envelopes) == 1


def test_invalid_address_in_a_list_is_left_out(
    vault_path: Path,
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    setup_vault(vault_path)
    hand_lists(vault_path, {
        "regulatory-leadership": ["ra.head@example.org", "qa@example.org\nBcc: x@evil.example"],
        "manufacturing-leadership": ["mfg.head@example.org"],
    })  # fmt: skip
    result = run(vault_path, "alerts", "--today", "2026-01-20", "--send", env=smtp_server.env())
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "regulatory-leadership: invalid address(es)" in result.stderr
    (envelope,) = smtp_server.collector.envelopes
    assert envelope.rcpt_tos == ["ra.head@example.org"]
    (message,) = smtp_server.collector.messages()
    assert message["Bcc"] is None and message["To"] == "ra.head@example.org"


# -- the notice mechanism: once per key and list -------------------------------------------------


def test_a_key_reaches_each_list_once(vault: Vault) -> None:
    with_lists(vault)
    notices = Notices(vault)
    template = "regulatory/milestone-alert"
    first = notices.send("k/1", ["regulatory-leadership"], template, "s", context())
    later = notices.send("k/1", ["manufacturing-leadership"], template, "s", context())
    assert notices.reached("k/1") == {
        "regulatory-leadership": first.id,
        "manufacturing-leadership": later.id,
    }
    assert notices.sent_as("k/1") == first.id
    with pytest.raises(AlreadySent, match="already sent to regulatory-leadership"):
        notices.send("k/1", ["regulatory-leadership", "other"], template, "s", context())


def test_reach_sorts_lists(vault: Vault) -> None:
    DistributionLists(vault).set("ra", ["ra@example.org"], "setup")
    reach = DistributionLists(vault).reach(["ra", "qa", "Not-Valid"])
    assert reach.lists == ("ra",)
    assert [name for name, _ in reach.problems] == ["qa", "Not-Valid"]
