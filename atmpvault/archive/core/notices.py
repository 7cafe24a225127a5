"""Notices: e-mails rendered from templates, sent to distribution lists, recorded in the archive.

A shared mechanism: milestone alerts use it today, certificates and deviations later.

- Distribution lists (name -> addresses) live in the vault's configuration,
  config/vault.json, so every change to who is told what is a commit with a reason.
- A notice is rendered twice, NAME.txt.j2 and NAME.html.j2 (autoescaped), into one
  multipart/alternative message.
- Delivery is by SMTP when the vault's local settings name a server (smtp_host...),
  otherwise the message is written to VAULT/outbox/<NOTICE-ID>.eml.
- Every delivered notice is recorded as notices/<NOTICE-ID>.json (to whom, subject,
  key, template, when, how, Message-ID, the plain text) through one commit.

A caller names each notice by a key ("milestone/IND-012345/.../overdue"); a key reaches
each list at most once (`reached`), so a job run daily does not repeat itself, and a
list that could not be reached (not defined yet, the server down) is sent the key later
under a notice of its own. The check, the delivery and the record happen under the
vault's write lock. A failed delivery records nothing, so the next run tries again; a
crash between delivery and record can, at worst, send one notice twice, never lose one.
`DistributionLists.reach` sorts the lists a caller names into those that can be sent to
and the problems of the rest, so one bad list need not hold back the others.
"""

from __future__ import annotations

import json
import re
import secrets
import smtplib
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.domain import hooks
from atmpvault.archive.core.records import NOTICE_KIND, Record
from atmpvault.archive.core.render import render
from atmpvault.errors import (
    AlreadySent,
    DeliveryFailed,
    InvalidInput,
    NotFound,
    NothingChanged,
    VaultError,
)
from atmpvault.files import write_atomically

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.vault import Vault

OUTBOX_DIR = "outbox"
DEFAULT_SENDER = "atmpvault@localhost"
SMTP_TIMEOUT = 30.0

MAX_ADDRESS = 254
MAX_LOCAL_PART = 64
MAX_LIST_NAME = 64
MAX_LIST_SIZE = 500
MAX_SUBJECT = 250
MAX_KEY = 200

LIST_NAME_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
# RFC 5322 dot-atom local part, and a DNS host name with at least two labels: strict on
# purpose (no quoted local parts, no IP literals, no display names, ASCII only).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS_RE = re.compile(rf"(?P<local>{_ATOM}(?:\.{_ATOM})*)@(?P<domain>{_LABEL}(?:\.{_LABEL})+)")
KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+=-]*")
# Long lines are allowed up to RFC 5322's hard limit (998): the email package folds a
# long Subject before its first word, which readers then show with a leading space.
MAIL_POLICY = SMTP_POLICY.clone(max_line_length=998)
NOTICE_ID_RE = re.compile(r"NTC-\d{8}-\d{6}-[0-9A-F]{6}")


# -- values ------------------------------------------------------------------------------


def email_address(value: str) -> str:
    """One plain e-mail address, e.g. "qa.lead@example.org"; the domain is lower-cased."""
    shown = repr(value if len(value) <= 60 else value[:60] + "...")
    if values.CONTROL_RE.search(value):
        raise InvalidInput(f"e-mail address {shown} contains control characters")
    match = ADDRESS_RE.fullmatch(value)
    if match is None or len(value) > MAX_ADDRESS or len(match["local"]) > MAX_LOCAL_PART:
        raise InvalidInput(
            f"invalid e-mail address {shown}: use a plain address such as qa.lead@example.org "
            "(no display name, quotes, spaces or IP literals)"
        )
    return f"{match['local']}@{match['domain'].lower()}"


def list_name(value: str) -> str:
    """A distribution list name, e.g. regulatory-leadership."""
    if len(value) > MAX_LIST_NAME or not LIST_NAME_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid list name {value[:60]!r}: use lower-case letters, digits and hyphens, "
            "e.g. regulatory-leadership"
        )
    return value


def notice_key(value: str) -> str:
    """The key that makes a notice unique, e.g. milestone/IND-012345/EVT-1/IND_EFFECTIVE/..."""
    if len(value) > MAX_KEY or not KEY_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid notice key {value[:60]!r}: letters, digits and . _ : / @ + = - "
            f"only, at most {MAX_KEY}"
        )
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- distribution lists ------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """Which of the lists named can be sent to, and what is wrong with the others."""

    lists: tuple[str, ...]
    problems: tuple[tuple[str, str], ...]  # (list, what is wrong), one line each


class DistributionLists:
    """The vault's distribution lists, kept in config/vault.json."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    def all(self) -> dict[str, tuple[str, ...]]:
        """Every list, by name."""
        return dict(sorted(self.vault.config.distribution_lists.items()))

    def get(self, name: str) -> tuple[str, ...]:
        """The addresses of one list; NotFound names the lists that exist."""
        lists = self.vault.config.distribution_lists
        if name not in lists:
            known = ", ".join(sorted(lists)) or "none yet"
            raise NotFound(
                f"unknown distribution list {name!r} (defined: {known}); define it with "
                f"'atmpvault lists set {name} ADDRESS... --reason R'"
            )
        return lists[name]

    def resolve(self, names: Iterable[str]) -> tuple[str, ...]:
        """The valid addresses of every named list, each address once, in order."""
        found: list[str] = []
        for name in names:
            valid, _bad = _split_addresses(self.get(name))
            if not valid:
                raise NotFound(f"distribution list {name!r} has no valid address")
            found += valid
        return _unique(found)

    def reach(self, names: Iterable[str]) -> Reach:
        """Sort lists into those a notice can go to and why the others cannot (never raises)."""
        lists = self.vault.config.distribution_lists
        usable: list[str] = []
        problems: list[tuple[str, str]] = []
        for name in dict.fromkeys(names):
            if not LIST_NAME_RE.fullmatch(name) or len(name) > MAX_LIST_NAME:
                problems.append((name, "not a valid list name; change the routing"))
                continue
            if name not in lists:
                problems.append(
                    (name, f"not defined; define it with 'atmpvault lists set {name} ADDRESS...'")
                )
                continue
            valid, bad = _split_addresses(lists[name])
            if bad:
                shown = ", ".join(repr(a[:60]) for a in bad)
                problems.append((name, f"invalid address(es) {shown} left out; fix the list"))
            if valid:
                usable.append(name)
            elif not bad:
                problems.append((name, "has no address; fix the list"))
        return Reach(tuple(usable), tuple(problems))

    def defined(self) -> dict[str, tuple[str, ...]]:
        """Every list as the tip has it now (the configuration read at open may be older)."""
        from atmpvault.archive.core.configuration import CONFIG_PATH, VaultConfig

        raw = self.vault.read_file(CONFIG_PATH)
        return VaultConfig.parse(raw or b"{}").distribution_lists

    def set(
        self, name: str, addresses: Iterable[str], reason: str, actor: str | None = None
    ) -> tuple[str, ...]:
        """Replace a list's addresses (creating it if new); a commit with the reason."""
        name = list_name(name)
        checked: dict[str, str] = {}
        for address in addresses:
            valid = email_address(address)
            checked.setdefault(valid.lower(), valid)
        if not checked:
            raise InvalidInput(f"list {name!r} needs at least one address")
        if len(checked) > MAX_LIST_SIZE:
            raise InvalidInput(f"a list holds at most {MAX_LIST_SIZE} addresses")
        new = tuple(checked.values())
        self._change(name, new, values.reason(reason), actor)
        return new

    def remove(self, name: str, reason: str, actor: str | None = None) -> None:
        """Delete a list no workflow still needs (alerts routed to it); a commit with the reason."""
        self._change(list_name(name), None, values.reason(reason), actor)

    def users(self, name: str) -> list[str]:
        """Why a list is still needed, one reason per line, as the workflows report it."""
        return [
            why
            for hook in hooks(self.vault.domains, "list_users")
            for why in hook(self.vault, name)
        ]

    def _change(
        self, name: str, addresses: tuple[str, ...] | None, reason: str, actor: str | None
    ) -> None:
        from atmpvault.archive.core.configuration import CONFIG_PATH, commit_config

        vault = self.vault
        with vault.writing():
            # Read the configuration as the tip has it now, under the lock, and change only
            # our key, so settings other modules keep in the same file are left untouched.
            raw: dict[str, Any] = json.loads(vault.read_file(CONFIG_PATH) or b"{}")
            lists = dict(raw.get("distribution_lists", {}))
            if addresses is None:
                if name not in lists:
                    raise NotFound(f"unknown distribution list {name!r}; nothing to remove")
                # Asked under the lock, so a route added a moment ago is seen: removing a list
                # that alerts still go to would silently stop them for everyone on it.
                needed = self.users(name)
                if needed:
                    raise VaultError(
                        f"list {name!r} is still needed: {'; '.join(needed)}; nothing was removed"
                    )
                del lists[name]
                action, subject = "remove-distribution-list", f"Remove distribution list {name}"
            else:
                if tuple(lists.get(name, ())) == addresses:
                    raise NothingChanged(f"list {name!r} already has exactly these addresses")
                lists[name] = list(addresses)
                action = "set-distribution-list"
                subject = f"Set distribution list {name} ({len(addresses)} addresses)"
            raw["distribution_lists"] = dict(sorted(lists.items()))
            commit_config(vault, raw, subject, {"Action": action, "List": name}, reason, actor)


# -- notices -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One notice as recorded in the archive."""

    id: str
    key: str
    lists: tuple[str, ...]
    to: tuple[str, ...]
    sender: str
    subject: str
    template: str
    sent_at: str
    delivery: str  # "smtp" or "outbox"
    message_id: str
    actor: str
    text: str
    refused: tuple[str, ...] = ()  # recipients the SMTP server refused while taking the rest
    commit: str | None = None
    people: tuple[str, ...] = ()  # people of the vault's directory it went to, by name

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "lists": list(self.lists),
            "to": list(self.to),
            "sender": self.sender,
            "subject": self.subject,
            "template": self.template,
            "sent_at": self.sent_at,
            "delivery": self.delivery,
            "message_id": self.message_id,
            "actor": self.actor,
            "refused": list(self.refused),
            "commit": self.commit,
            **({"people": list(self.people)} if self.people else {}),
        }

    def body(self) -> dict[str, Any]:
        """The stored record: everything but the commit (a record cannot name its commit)."""
        data = {**self.to_json(), "text": self.text}
        del data["commit"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], commit: str | None = None) -> Notice:
        return cls(
            id=data["id"],
            key=data["key"],
            lists=tuple(data["lists"]),
            to=tuple(data["to"]),
            sender=data["sender"],
            subject=data["subject"],
            template=data["template"],
            sent_at=data["sent_at"],
            delivery=data["delivery"],
            message_id=data["message_id"],
            actor=data["actor"],
            text=data.get("text", ""),
            refused=tuple(data.get("refused", ())),
            commit=commit,
            people=tuple(data.get("people", ())),
        )


class Notices:
    """Send notices to distribution lists and keep the record of every one sent.

    >>> notice = Notices(vault).send(
    ...     "milestone/IND-012345/EVT-000001/IND_EFFECTIVE/2026-02-04/due-7d",
    ...     ["regulatory-leadership"], "regulatory/milestone-alert", "IND_EFFECTIVE due in 7 days",
    ...     {"m": milestone, ...},
    ... )
    >>> notice.delivery
    'outbox'
    """

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.lists = DistributionLists(vault)

    # -- reading -------------------------------------------------------------------------

    def all(self) -> list[Notice]:
        """Every notice recorded, oldest first."""
        found = self.vault.catalog.records(NOTICE_KIND.name)
        notices = [Notice.from_json(r.body, r.commit) for r in found]
        return sorted(notices, key=lambda n: (n.sent_at, n.id))

    def get(self, notice_id: str) -> Notice:
        """One notice by id."""
        if not NOTICE_ID_RE.fullmatch(notice_id):
            raise InvalidInput(
                f"invalid notice id {notice_id[:40]!r}: e.g. NTC-20260301-070000-3FA2C1"
            )
        found = self.vault.catalog.record(NOTICE_KIND.name, notice_id)
        if found is None:
            raise NotFound(f"no notice {notice_id}")
        return Notice.from_json(found.body, found.commit)

    def sent_as(self, key: str) -> str | None:
        """The id of the first notice sent with this key, if one was (one indexed query)."""
        from atmpvault.archive.core.record_tables import records

        found = self.vault.catalog.records(NOTICE_KIND.name, where=[records.c.ref == key])
        return min(found, key=_sent_order).id if found else None

    def sent_keys(self) -> dict[str, str]:
        """Key -> notice id for every notice recorded (the first, if a key went out twice)."""
        found = sorted(self.vault.catalog.records(NOTICE_KIND.name), key=_sent_order)
        keys: dict[str, str] = {}
        for r in found:
            keys.setdefault(r.columns.ref or "", r.id)
        return keys

    def reached(self, key: str) -> dict[str, str]:
        """List -> the id of the notice that took this key to it (one indexed query)."""
        from atmpvault.archive.core.record_tables import records

        found = self.vault.catalog.records(NOTICE_KIND.name, where=[records.c.ref == key])
        return _lists_reached(found).get(key, {})

    def reached_keys(self) -> dict[str, dict[str, str]]:
        """Key -> list -> notice id, for every notice recorded."""
        return _lists_reached(self.vault.catalog.records(NOTICE_KIND.name))

    def already_sent(self, key: str) -> bool:
        """Whether a notice with this key has been sent (and recorded) before."""
        return self.sent_as(key) is not None

    # -- sending -------------------------------------------------------------------------

    def send(
        self,
        key: str,
        lists: Iterable[str],
        template: str,
        subject: str,
        context: Mapping[str, Any],
        people: Iterable[str] = (),
        unit: UnitOfWork | None = None,
    ) -> Notice:
        """Render, deliver (SMTP or outbox) and record one notice; refuse a key sent before.

        It goes to distribution lists and/or people of the vault's directory (by name).
        Given a `unit`, its record joins that unit's commit (one user action, one commit);
        otherwise it is a commit of its own.
        """
        from atmpvault.archive.core.people import People

        key = notice_key(key)
        names = tuple(dict.fromkeys(list_name(n) for n in lists))
        persons = tuple(dict.fromkeys(people))
        if not names and not persons:
            raise InvalidInput("a notice needs at least one distribution list or person")
        subject = self._subject(subject)
        settings = self.vault.settings
        sender = email_address(settings.smtp_from) if settings.smtp_from else DEFAULT_SENDER
        with self.vault.writing():
            reached = self.reached(key)
            again = [n for n in names if n in reached]
            if again:
                raise AlreadySent(
                    f"notice {key!r} was already sent to {', '.join(again)} as {reached[again[0]]}"
                )
            directory = People(self.vault)
            to = _unique((*self.lists.resolve(names), *(directory.address(p) for p in persons)))
            full = {**context, "subject": subject, "lists": list(names), "recipients": list(to)}
            text = render(f"{template}.txt.j2", full)
            html = render(f"{template}.html.j2", full)
            moment = values.now()
            notice_id = f"NTC-{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(3).upper()}"
            message_id = make_msgid(idstring=notice_id, domain=sender.rpartition("@")[2])
            message = EmailMessage(policy=MAIL_POLICY)
            message["Subject"] = subject
            message["From"] = sender
            message["To"] = ", ".join(to)
            message["Date"] = format_datetime(moment)
            message["Message-ID"] = message_id
            message["X-Atmpvault-Notice"] = notice_id
            message["X-Atmpvault-Key"] = key
            message.set_content(text)
            message.add_alternative(html, subtype="html")
            if settings.smtp_host:
                refused = self._deliver_smtp(message, sender, to)
                delivery = "smtp"
            else:
                self._write_outbox(notice_id, message)
                refused, delivery = (), "outbox"
            notice = Notice(
                id=notice_id,
                key=key,
                lists=names,
                to=to,
                sender=sender,
                subject=subject,
                template=template,
                sent_at=values.iso(moment),
                delivery=delivery,
                message_id=message_id,
                actor=self.vault.actor,
                text=text,
                refused=refused,
                people=persons,
            )
            if unit is not None:
                unit.put(NOTICE_KIND, notice_id, notice.body())
                return notice
            trailers = {"Notice": notice_id, "Notice-Key": key}
            subject_line = f"Notice {notice_id}: {subject}"
            with self.vault.unit("notice", subject_line, trailers=trailers) as own:
                own.put(NOTICE_KIND, notice_id, notice.body())
            commit = own.commit
        return replace(notice, commit=commit)

    @staticmethod
    def _subject(value: str) -> str:
        if values.CONTROL_RE.search(value):
            raise InvalidInput("a notice subject cannot contain control characters or line breaks")
        subject = value.strip()
        if not subject or len(subject) > MAX_SUBJECT:
            raise InvalidInput(f"a notice subject needs 1 to {MAX_SUBJECT} characters")
        return subject

    def _deliver_smtp(
        self, message: EmailMessage, sender: str, to: tuple[str, ...]
    ) -> tuple[str, ...]:
        """Hand the message to the configured server; return the recipients it refused."""
        s = self.vault.settings
        assert s.smtp_host
        port = s.smtp_port or (587 if s.smtp_starttls else 25)
        try:
            with smtplib.SMTP(s.smtp_host, port, timeout=SMTP_TIMEOUT) as server:
                if s.smtp_starttls:
                    server.starttls(context=ssl.create_default_context())
                if s.smtp_user:
                    server.login(s.smtp_user, s.smtp_password or "")
                refused = server.send_message(message, from_addr=sender, to_addrs=list(to))
        except (smtplib.SMTPException, OSError) as exc:
            detail = _one_line(str(exc)) or type(exc).__name__
            raise DeliveryFailed(
                f"could not send notice by SMTP via {s.smtp_host}:{port}: {detail}; "
                "nothing was recorded as sent, so the next run will try again"
            ) from exc
        return tuple(sorted(refused))

    def _write_outbox(self, notice_id: str, message: EmailMessage) -> Path:
        outbox = self.vault.path / OUTBOX_DIR
        target = outbox / f"{notice_id}.eml"
        try:
            outbox.mkdir(exist_ok=True)
            write_atomically(target, message.as_bytes())
        except OSError as exc:
            raise DeliveryFailed(
                f"could not write {target}: {exc.strerror or exc}; nothing was recorded as sent"
            ) from exc
        return target


def _sent_order(record: Record) -> tuple[str, str]:
    return (str(record.body.get("sent_at", "")), record.id)


def _lists_reached(found: Iterable[Record]) -> dict[str, dict[str, str]]:
    reached: dict[str, dict[str, str]] = {}
    for r in sorted(found, key=_sent_order):
        by_list = reached.setdefault(r.columns.ref or "", {})
        for name in r.body.get("lists", ()):
            by_list.setdefault(name, r.id)
    return reached


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    """Each address once (compared without case), in order."""
    seen: dict[str, str] = {}
    for address in addresses:
        seen.setdefault(address.lower(), address)
    return tuple(seen.values())


def _split_addresses(addresses: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(valid, invalid): a hand-edited bad address is left out and reported, never sent to."""
    valid: list[str] = []
    bad: list[str] = []
    for address in addresses:
        try:
            valid.append(email_address(address))
        except InvalidInput:
            bad.append(address)
    return tuple(valid), tuple(bad)
