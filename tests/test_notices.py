"""Notices: distribution lists, rendering, SMTP delivery to a real server, the outbox, the record."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import trustme
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
    """An aiosmtpd handler that keeps every envelope it is given, and whether it came over TLS."""

    envelopes: list[Envelope] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        self.over_tls.append(session.ssl is not None)
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            BytesParser(policy=policy.default).parsebytes(bytes(e.original_content or b""))  # type: ignore[misc]
            for e in self.envelopes
        ]


class LoopbackController(Controller):
    """An aiosmtpd server on 127.0.0.1, on a port the kernel picks as it binds.

    Asking for a free port first and binding to it later races with every other test
    process doing the same; port 0 cannot collide, and the port is read back once bound.
    """

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()


@dataclass
class SmtpServer:
    controller: Controller
    collector: Collector
    port: int

    def env(self) -> dict[str, str]:
        return {"ATMPVAULT_SMTP_HOST": "127.0.0.1", "ATMPVAULT_SMTP_PORT": str(self.port)}


def start_server(authenticator: Any = None, **smtp: Any) -> SmtpServer:
    """A running loopback server; `smtp` goes to aiosmtpd's SMTP (tls_context, ...)."""
    collector = Collector()
    if authenticator is not None:
        smtp = {"authenticator": authenticator, "auth_require_tls": False, "auth_required": True,
                **smtp}  # fmt: skip
    controller = LoopbackController(collector, **smtp)
    controller.start()
    return SmtpServer(controller, collector, controller.port)


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


# -- STARTTLS against a real server with a certificate made here --------------------------------


@pytest.fixture
def test_ca() -> trustme.CA:
    """A private certificate authority, trusted by no one until a test says so."""
    return trustme.CA()


def start_tls_server(ca: trustme.CA, name: str = "127.0.0.1") -> SmtpServer:
    """A loopback server that refuses mail before STARTTLS and LOGIN outside TLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        return AuthResult(success=data.login == b"alerts" and data.password == b"s3cret")

    return start_server(
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )


def trust(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust `ca` the way a site trusts its own CA: OpenSSL's SSL_CERT_FILE."""
    bundle = tmp_path / "site-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def test_starttls_to_a_server_the_site_trusts(
    vault: Vault, test_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trust(test_ca, tmp_path, monkeypatch)
    server = start_tls_server(test_ca)
    try:
        with_lists(vault)
        tls = {"smtp_starttls": True, "smtp_user": "alerts", "smtp_password": "s3cret"}
        with smtp_vault(vault, server, **tls) as v:
            notice = Notices(v).send(
                "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
            )
    finally:
        server.controller.stop()
    assert notice.delivery == "smtp"
    assert server.collector.over_tls == [True]
    (message,) = server.collector.messages()
    assert message["X-Atmpvault-Notice"] == notice.id


@pytest.mark.parametrize("trusted, name", [(False, "127.0.0.1"), (True, "mail.example.org")])
def test_starttls_refuses_a_certificate_it_cannot_verify(
    vault: Vault,
    test_ca: trustme.CA,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    trusted: bool,
    name: str,
) -> None:
    """An unknown CA, or a trusted one's certificate for another host: nothing is sent."""
    if trusted:
        trust(test_ca, tmp_path, monkeypatch)
    else:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with_lists(vault)
    head = vault.store.head()
    server = start_tls_server(test_ca, name)
    try:
        with (
            smtp_vault(vault, server, smtp_starttls=True, smtp_user="alerts",
                       smtp_password="s3cret") as v,
            pytest.raises(DeliveryFailed, match="certificate verify failed") as caught,
        ):  # fmt: skip
            Notices(v).send(
                "k/1", ["regulatory-leadership"], "regulatory/milestone-alert", "s", context()
            )
        assert "nothing was recorded as sent" in str(caught.value)
    finally:
        server.controller.stop()
    assert server.collector.envelopes == []
    assert vault.store.head() == head
    with Vault.open(vault.settings, domains()) as again:
        assert not Notices(again).already_sent("k/1")
        assert Notices(again).all() == []


def test_alerts_by_starttls_through_the_cli(
    vault_path: Path, test_ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trust(test_ca, tmp_path, monkeypatch)
    server = start_tls_server(test_ca)
    try:
        run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19")
        run(vault_path, "event", "add", "IND-012345", "ind-received", "--on", "2026-01-05")
        assert run(vault_path, "lists", "set", "regulatory-leadership", "ra@example.org",
                   "--reason", "RA").exit_code == 0  # fmt: skip
        env = {**server.env(), "ATMPVAULT_SMTP_STARTTLS": "true",
               "ATMPVAULT_SMTP_USER": "alerts", "ATMPVAULT_SMTP_PASSWORD": "s3cret"}  # fmt: skip
        sent = run(vault_path, "alerts", "--today", "2026-01-20", "--send", "--json", env=env)
    finally:
        server.controller.stop()
    assert sent.exit_code == 0, sent.stderr
    assert [a["status"] for a in json.loads(sent.stdout)] == ["sent"]
    assert server.collector.over_tls == [True]
    assert server.collector.envelopes[0].rcpt_tos == ["ra@example.org"]


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
    settings = vault.settings._replace(smtp_host="127.0.0.1", smtp_port=server.port, **extra)
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
