"""Notices: distribution lists, rendering, SMTP delivery to a real server, the outbox, the record."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from atmpvault.archive.core.notices import (
    AlreadySent,
    DeliveryFailed,
    DistributionLists,
    Notices,
    email_address,
)
from atmpvault.archive.core.records import NOTICE_KIND
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.config import Settings, load_settings
from atmpvault.errors import InvalidInput, NotFound
from tests.conftest import run

EVIL = '<script>alert("x")</script>'


# -- a real SMTP server on loopback ----------------------------------------------------------


@dataclass
class Collector:
    """An aiosmtpd handler that keeps every envelope it is given."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            BytesParser(policy=policy.default).parsebytes(bytes(e.original_content or b""))  # type: ignore[misc]
            for e in self.envelopes
        ]


@dataclass
class SmtpServer:
    controller: Controller
    collector: Collector
    port: int

    def env(self) -> dict[str, str]:
        return {"ATMPVAULT_SMTP_HOST": "127.0.0.1", "ATMPVAULT_SMTP_PORT": str(self.port)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(authenticator: Any = None) -> SmtpServer:
    collector = Collector()
    port = free_port()
    extra: dict[str, Any] = {}
    if authenticator is not None:
        extra = {"authenticator": authenticator, "auth_require_tls": False, "auth_required": True}
    controller = Controller(collector, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    return SmtpServer(controller, collector, port)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 that collects what it receives."""
    server = start_server()
    try:
        yield server
    finally:
        try:
            server.controller.stop()
        except AssertionError:
            pass  # the test stopped it already


# -- helpers -----------------------------------------------------------------------------------


def context(**overrides: Any) -> dict[str, Any]:
    """What the milestone-alert templates expect, with values to override."""
    m = {
        "app": "IND-012345",
        "program": "CART-19",
        "rule": "IND_EFFECTIVE",
        "kind": "status",
        "due": "2026-02-04",
        "days_left": 5,
        "source": "21 CFR 312.40(b)",
        "trigger": "ind-received",
        "trigger_date": "2026-01-05",
        "event": "EV-000001",
        "produces": "IND in effect unless on clinical hold",
    }
    m.update(overrides)
    return {
        "m": m,
        "threshold": "due-7d",
        "threshold_label": "due within 7 days",
        "overdue_word": "OVERDUE",
        "today": "2026-01-30",
    }


def with_lists(vault: Vault) -> None:
    lists = DistributionLists(vault)
    lists.set("regulatory-leadership", ["ra.head@example.org", "cmo@example.org"], "setup")
    lists.set("manufacturing-leadership", ["mfg.head@example.org", "ra.head@example.org"], "setup")


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()  # type: ignore[attr-defined]


# -- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("qa.lead@example.org", "qa.lead@example.org"),
        ("QA.Lead+alerts@Example.ORG", "QA.Lead+alerts@example.org"),
        ("o'brien@mail.example.co.uk", "o'brien@mail.example.co.uk"),
        ("a@b-c.example", "a@b-c.example"),
    ],
)
def test_valid_addresses(value: str, expected: str) -> None:
    assert email_address(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "a@localhost",  # no dot in the domain
        "a@@example.org",
        "a..b@example.org",
        ".a@example.org",
        "a.@example.org",
        "a b@example.org",
        "QA <qa@example.org>",
        '"quoted"@example.org',
        "a@[127.0.0.1]",
        "a@-example.org",
        "a@example-.org",
        "a@example..org",
        "qa@example.org\nBcc: attacker@evil.example",
        "qa@example.org\r",
        "qa\x00@example.org",
        "jörg@example.org",
        "x" * 65 + "@example.org",
        "a@" + "b" * 250 + ".org",
    ],
)
def test_invalid_addresses(value: str) -> None:
    with pytest.raises(InvalidInput):
        email_address(value)


# -- distribution lists ----------------------------------------------------------------------


def test_lists_set_and_ls_json(vault_path: Path) -> None:
    result = run(
        vault_path, "lists", "set", "regulatory-leadership", "ra.head@example.org",
        "CMO@Example.org", "ra.head@example.org", "--reason", "RA head and CMO", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "name": "regulatory-leadership",
        "addresses": ["ra.head@example.org", "CMO@example.org"],  # deduplicated, domain lowered
    }
    run(vault_path, "lists", "set", "manufacturing-leadership", "mfg@example.org", "--reason", "x")
    listed = run(vault_path, "lists", "ls", "--json")
    assert listed.exit_code == 0
    assert json.loads(listed.stdout) == [
        {"name": "manufacturing-leadership", "addresses": ["mfg@example.org"]},
        {"name": "regulatory-leadership", "addresses": ["ra.head@example.org", "CMO@example.org"]},
    ]
    table = run(vault_path, "lists", "ls")
    assert "regulatory-leadership" in table.stdout and "mfg@example.org" in table.stdout

    # Changes are audited: each is a commit with its actor and reason.
    log = json.loads(run(vault_path, "log", "--json").stdout)
    changes = [e for e in log if e["action"] == "set-distribution-list"]
    assert [(e["user"], e["reason"]) for e in changes] == [
        ("qa.tester", "RA head and CMO"),
        ("qa.tester", "x"),
    ]


def test_lists_bad_input(vault_path: Path) -> None:
    bad = run(
        vault_path, "lists", "set", "ra", "qa@example.org\nBcc: x@evil.example", "--reason", "r"
    )
    assert bad.exit_code == 2
    assert bad.stderr.count("\n") == 1 and "control characters" in bad.stderr
    assert "Traceback" not in bad.output
    assert (
        run(vault_path, "lists", "set", "RA_Leads", "qa@example.org", "--reason", "r").exit_code
        == 2
    )
    assert run(vault_path, "lists", "set", "ra", "not-an-address", "--reason", "r").exit_code == 2
    no_reason = run(vault_path, "lists", "set", "ra", "qa@example.org")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    assert run(vault_path, "lists", "set", "ra", "--reason", "r").exit_code == 2  # no address
    assert json.loads(run(vault_path, "lists", "ls", "--json").stdout) == []


def test_lists_unchanged_and_removed(vault_path: Path) -> None:
    assert run(vault_path, "lists", "set", "ra", "qa@example.org", "--reason", "r").exit_code == 0
    again = run(vault_path, "lists", "set", "ra", "qa@example.org", "--reason", "r")
    assert again.exit_code == 1 and "already has exactly these addresses" in again.stderr
    assert run(vault_path, "lists", "rm", "ra", "--reason", "gone").exit_code == 0
    assert json.loads(run(vault_path, "lists", "ls", "--json").stdout) == []
    missing = run(vault_path, "lists", "rm", "ra", "--reason", "gone")
    assert missing.exit_code == 1 and "unknown distribution list 'ra'" in missing.stderr


def test_lists_keep_the_rest_of_the_configuration(vault: Vault) -> None:
    engine, types = vault.config.index_engine, vault.config.document_types
    DistributionLists(vault).set("ra", ["qa@example.org"], "setup")
    assert vault.config.distribution_lists == {"ra": ("qa@example.org",)}
    with Vault.open(vault.settings, domains()) as again:
        assert again.config.distribution_lists == {"ra": ("qa@example.org",)}
        assert again.config.index_engine == engine and again.config.document_types == types


# -- sending -----------------------------------------------------------------------------------


def test_outbox_when_no_smtp(vault: Vault) -> None:
    with_lists(vault)
    notices = Notices(vault)
    key = "test/outbox/1"
    assert not notices.already_sent(key)
    notice = notices.send(
        key, ["regulatory-leadership", "manufacturing-leadership"], "regulatory/milestone-alert",
        "IND_EFFECTIVE due in 5 days", context(produces=EVIL),
    )  # fmt: skip
    assert notice.delivery == "outbox"
    # Each address once, across lists.
    assert notice.to == ("ra.head@example.org", "cmo@example.org", "mfg.head@example.org")
    eml = vault.path / "outbox" / f"{notice.id}.eml"
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "IND_EFFECTIVE due in 5 days"
    assert message["Message-ID"] == notice.message_id
    assert message["To"] == "ra.head@example.org, cmo@example.org, mfg.head@example.org"
    text, html = parts(message)
    assert EVIL in text  # plain text is not HTML: shown as typed
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert not list((vault.path / "outbox").glob(".*"))  # no partial file left behind

    # Recorded in the archive: to whom, what, when, how.
    assert notices.already_sent(key)
    with Vault.open(vault.settings, domains()) as again:
        (recorded,) = Notices(again).all()
        assert recorded.id == notice.id and recorded.key == key
        assert recorded.to == notice.to and recorded.delivery == "outbox"
        assert recorded.lists == ("regulatory-leadership", "manufacturing-leadership")
        assert recorded.actor == "qa.tester" and recorded.template == "regulatory/milestone-alert"
        assert EVIL in recorded.text
        assert Notices(again).get(notice.id).message_id == notice.message_id
    # The record is a file of the repository, sharded like documents, with its format.
    raw = vault.read_file(NOTICE_KIND.path_for(notice.id))
    assert raw is not None and json.loads(raw)["sent_at"] == notice.sent_at
    assert json.loads(raw)["format"] == 1


def test_same_key_is_not_sent_twice(vault: Vault) -> None:
    with_lists(vault)
    Notices(vault).send(
        "test/once", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
    )
    with pytest.raises(AlreadySent, match="already sent"):
        Notices(vault).send(
            "test/once", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
        )
    assert len(list((vault.path / "outbox").iterdir())) == 1


def test_unknown_list_is_refused_before_anything_is_sent(vault: Vault) -> None:
    with_lists(vault)
    head = vault.store.head()
    with pytest.raises(NotFound, match="unknown distribution list 'qa-leadership'.*lists set"):
        Notices(vault).send("k/1", ["qa-leadership"], "regulatory/milestone-alert", "s", context())
    assert vault.store.head() == head
    assert not (vault.path / "outbox").exists()


@pytest.mark.parametrize(
    "subject, key",
    [("two\nlines", "k/1"), ("Bcc: x\r\n", "k/1"), ("", "k/1"), ("ok", "bad key"), ("ok", "")],
)
def test_bad_subject_or_key(vault: Vault, subject: str, key: str) -> None:
    with_lists(vault)
    with pytest.raises(InvalidInput):
        Notices(vault).send(
            key, ["regulatory-leadership"], "regulatory/milestone-alert", subject, context()
        )


def test_missing_template_value_is_an_error(vault: Vault) -> None:
    from atmpvault.archive.core.render import TemplateProblem

    with_lists(vault)
    with pytest.raises(TemplateProblem, match="undefined"):
        Notices(vault).send(
            "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "s", {"m": {}}
        )
    assert Notices(vault).all() == []


def smtp_vault(vault: Vault, server: SmtpServer, **extra: Any) -> Vault:
    settings = replace(vault.settings, smtp_host="127.0.0.1", smtp_port=server.port, **extra)
    return Vault.open(settings, domains())


def test_smtp_delivery_to_a_real_server(vault: Vault, smtp_server: SmtpServer) -> None:
    with_lists(vault)
    with smtp_vault(vault, smtp_server, smtp_from="atmpvault@ra.example.org") as v:
        notice = Notices(v).send(
            "test/smtp/1",
            ["manufacturing-leadership"],
            "regulatory/milestone-alert",
            "PAS due",
            context(app=EVIL),
        )
    assert notice.delivery == "smtp" and notice.sender == "atmpvault@ra.example.org"
    assert not (vault.path / "outbox").exists()
    (envelope,) = smtp_server.collector.envelopes
    assert envelope.mail_from == "atmpvault@ra.example.org"
    assert sorted(envelope.rcpt_tos) == ["mfg.head@example.org", "ra.head@example.org"]
    (message,) = smtp_server.collector.messages()
    assert message["Message-ID"] == notice.message_id
    assert message["X-Atmpvault-Notice"] == notice.id
    text, html = parts(message)
    assert EVIL in text and "<script>" not in html and "&lt;script&gt;" in html
    with Vault.open(vault.settings, domains()) as again:
        assert [n.delivery for n in Notices(again).all()] == ["smtp"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login(vault: Vault) -> None:
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")

    server = start_server(authenticator)
    try:
        with_lists(vault)
        with (
            smtp_vault(vault, server, smtp_user="alerts", smtp_password="wrong") as v,
            pytest.raises(DeliveryFailed, match="nothing was recorded"),
        ):
            Notices(v).send(
                "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
            )
        with smtp_vault(vault, server, smtp_user="alerts", smtp_password="s3cret") as v:
            Notices(v).send(
                "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
            )
    finally:
        server.controller.stop()
    assert logins == [(b"alerts", b"wrong"), (b"alerts", b"s3cret")]
    assert len(server.collector.envelopes) == 1


def test_smtp_failure_records_nothing(vault: Vault, smtp_server: SmtpServer) -> None:
    with_lists(vault)
    smtp_server.controller.stop()
    head = vault.store.head()
    with smtp_vault(vault, smtp_server) as v:
        with pytest.raises(DeliveryFailed) as caught:
            Notices(v).send(
                "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
            )
        assert f"127.0.0.1:{smtp_server.port}" in str(caught.value)
        assert "\n" not in str(caught.value)
        assert not Notices(v).already_sent("k/1")
    assert vault.store.head() == head


def test_notices_ls_and_show(vault_path: Path) -> None:
    run(vault_path, "lists", "set", "regulatory-leadership", "ra@example.org", "--reason", "r")
    with Vault.open(Settings(vault=vault_path, user="qa.tester"), domains()) as v:
        notice = Notices(v).send(
            "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "Hello", context()
        )
    listed = run(vault_path, "notices", "ls", "--json")
    assert listed.exit_code == 0
    (row,) = json.loads(listed.stdout)
    assert (
        row["id"] == notice.id and row["to"] == ["ra@example.org"] and row["delivery"] == "outbox"
    )
    assert set(row) >= {
        "id",
        "key",
        "lists",
        "to",
        "subject",
        "template",
        "sent_at",
        "delivery",
        "message_id",
    }
    assert json.loads(run(vault_path, "notices", "ls", "--key", "other/", "--json").stdout) == []
    shown = run(vault_path, "notices", "show", notice.id)
    assert shown.exit_code == 0 and "ra@example.org" in shown.stdout and "DUE SOON" in shown.stdout
    assert run(vault_path, "notices", "show", "NTC-20260101-000000-000000").exit_code == 1
    assert run(vault_path, "notices", "show", "nope").exit_code == 2


# -- settings ----------------------------------------------------------------------------------


def test_smtp_settings_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(
        json.dumps({"smtp_host": "mail.example.org", "smtp_port": 2525, "smtp_starttls": True,
                    "smtp_user": "alerts", "smtp_from": "atmpvault@example.org"})
    )  # fmt: skip
    settings = load_settings(tmp_path, None, {})
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "mail.example.org", 2525, True,
    )  # fmt: skip
    assert settings.smtp_user == "alerts" and settings.smtp_password is None
    env = {"ATMPVAULT_SMTP_HOST": "relay.example.org", "ATMPVAULT_SMTP_STARTTLS": "no",
           "ATMPVAULT_SMTP_PASSWORD": "pw"}  # fmt: skip
    settings = load_settings(tmp_path, None, env)
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_starttls) == (
        "relay.example.org", 2525, False,
    )  # fmt: skip
    assert settings.smtp_password == "pw"
    with pytest.raises(InvalidInput, match="smtp_port"):
        load_settings(tmp_path, None, {"ATMPVAULT_SMTP_PORT": "smtp"})
    with pytest.raises(InvalidInput, match="smtp_starttls"):
        load_settings(tmp_path, None, {"ATMPVAULT_SMTP_STARTTLS": "maybe"})


def test_bad_smtp_from(vault: Vault, smtp_server: SmtpServer) -> None:
    with_lists(vault)
    with (
        smtp_vault(vault, smtp_server, smtp_from="Alerts <a@example.org>") as v,
        pytest.raises(InvalidInput, match="e-mail address"),
    ):
        Notices(v).send(
            "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
        )
    assert smtp_server.collector.envelopes == []
