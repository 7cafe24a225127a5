"""Electronic signatures (21 CFR 11.50, 11.70): a user's SSH signature over a statement
naming who signs, their printed name, the meaning, the UTC time and the exact version
signed, bound to it by the SHA-256 of its bytes.

A signature is a record (signatures/.../SIG-000001.json) written in the same commit as
what it signs when a step needs one (`gate`), or on its own (`atmpvault sign`). Its
statement is rebuilt from the record's fields to check it, so a changed field, a
changed target byte or a signature copied onto another target no longer verifies.
A refused attempt (a key that is not the user's, a meaning their roles do not allow)
is recorded on the user (users.py) and locks their signing after a few in a row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import access, values
from atmpvault.archive.core.domain import load
from atmpvault.archive.core.records import Columns, RecordKind
from atmpvault.archive.core.users import USER_KIND, current_key, read_user, valid_key
from atmpvault.errors import AccessDenied, InvalidInput, NotFound, SignatureRefused

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.sshsig import PublicKey
    from atmpvault.archive.core.vault import Vault


def _signature_columns(body: Mapping[str, Any]) -> Columns:
    target = body["target"]
    return Columns(status=body.get("meaning"), ref=f"{target['kind']}:{target['id']}")


SIGNATURE_KIND = RecordKind(
    name="signature",
    root="signatures",
    id_pattern=r"SIG-[0-9]{6,9}",
    fields=frozenset(
        {
            "id",
            "signer",
            "name",
            "meaning",
            "signed_at",
            "target",
            "comment",
            "key",
            "signature",
            "lots",
            "gate",
        }
    ),  # fmt: skip
    columns=_signature_columns,
    lots=lambda body: body.get("lots") or (),
)

_TARGET_RE = re.compile(
    r"(?:(?P<kind>[a-z][a-z-]{0,39}):)?(?P<id>[^@\s]{1,100})@(?P<version>\d{1,6})"
)


@dataclass(frozen=True)
class Target:
    """One version of a record or document, by the SHA-256 of its stored bytes."""

    kind: str
    id: str
    version: int
    sha256: str
    lots: tuple[str, ...] = ()
    current: int = 0  # the newest version of the record, when it was resolved

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "version": self.version, "sha256": self.sha256}

    @property
    def label(self) -> str:
        return f"{self.kind} {self.id} v{self.version}"


def statement(body: Mapping[str, Any]) -> bytes:
    """The exact bytes a signature signs, rebuilt from the signature record's fields."""
    target = body["target"]
    lines = [
        "atmpvault electronic signature",
        f"signer: {body['signer']}",
        f"name: {body['name']}",
        f"meaning: {body['meaning']}",
        f"time: {body['signed_at']}",
        f"target: {target['kind']} {target['id']} v{target['version']}",
        f"sha256: {target['sha256']}",
        f"comment: {body.get('comment') or ''}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def manifestation(body: Mapping[str, Any]) -> str:
    """What a person reads wherever the signed version is shown: printed name, date and
    time (UTC), meaning."""
    when = str(body["signed_at"])[:19].replace("T", " ")
    return f"{body['name']} ({body['signer']}), {when} UTC, {body['meaning']}"


SHOWN = ("id", "signer", "name", "meaning", "signed_at", "target", "comment", "key", "gate")


def shown(body: Mapping[str, Any]) -> dict[str, Any]:
    """A signature as every view's JSON gives it: who, the meaning, when, the version it
    binds, and the manifestation people read."""
    return {**{k: body.get(k) for k in SHOWN}, "manifestation": manifestation(body)}


def public_key_of(entry: Mapping[str, Any]) -> PublicKey:
    from atmpvault.archive.core.sshsig import PublicKey

    kind, blob = str(entry["key"]).split()[:2]
    return PublicKey(kind, blob, str(entry["fingerprint"]))


class Signatures:
    """Sign a version, list a version's signatures, and check every signature."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    # -- targets -------------------------------------------------------------------

    def target(self, text: str) -> Target:
        """The version TEXT names: ID@V (a document's or a distinctive record id) or
        KIND:ID@V (any record: lot:L-0042@3); its bytes as stored."""
        match = _TARGET_RE.fullmatch(text.strip())
        if match is None:
            raise InvalidInput(
                f"invalid target {text[:60]!r}: name a version as ID@V (DOC-000042@2, "
                "DEV-2026-0001@5) or KIND:ID@V (lot:L-0042@3)"
            )
        record_id, version = match["id"], int(match["version"])
        kind = match["kind"] or self.kind_of(record_id)
        found = self.resolve(kind, record_id, version)
        if found is None:
            raise NotFound(f"no {kind} {record_id} version {version} in this vault")
        return found

    def kind_of(self, record_id: str) -> str:
        """The kind of a record named by its id alone: one of the kinds whose ids look so
        that holds it (a deviation's id has a document id's shape too), else the first."""
        shaped = [k for k in self.vault.kinds if k.distinctive and k.is_id(record_id)]
        for kind in shaped:
            if kind.generic and self.vault.catalog.record_head(kind.name, record_id):
                return kind.name
        if shaped:
            return shaped[0].name
        raise InvalidInput(
            f"{record_id[:40]!r} is not a document or record id this vault knows by its "
            "shape; name its kind: KIND:ID@V (lot:L-0042@3)"
        )

    def resolve(self, kind: str, record_id: str, version: int) -> Target | None:
        """One version of a record or document, hashed from the repository; None if absent."""
        vault = self.vault
        found = next((k for k in vault.kinds if k.name == kind), None)
        if found is None:
            raise InvalidInput(f"unknown kind {kind!r}")
        if not found.generic:
            for domain in vault.domains:
                if domain.signable is not None:
                    target = load(domain.signable)(vault, kind, record_id, version)
                    if target is not None:
                        return Target(*target)
            return None
        record = vault.catalog.record(kind, record_id, version)
        head = vault.catalog.record_head(kind, record_id)
        if record is None or head is None:
            return None
        raw = vault.read_file(record.path, record.commit) or b""
        return Target(
            kind, record_id, version, hashlib.sha256(raw).hexdigest(),
            found.lots_of(record.body), head[0],
        )  # fmt: skip

    # -- signing -------------------------------------------------------------------

    def sign(
        self, text: str, meaning: str, key_file: Path | None, comment: str | None = None
    ) -> dict[str, Any]:
        """`atmpvault sign`: a signature of the current version TEXT names, as one commit."""
        meaning = _meaning(meaning)
        vault = self.vault
        with vault.writing():
            target = self.target(text)
            if target.current and target.version != target.current:
                raise AccessDenied(
                    f"{target.kind} {target.id} is at v{target.current}; only its current "
                    f"version can be signed ({target.id}@{target.current}); nothing written"
                )
            subject = f"Sign {target.label} ({meaning})"
            with vault.unit("sign", subject, reason=f"{meaning} signature") as unit:
                body = self.sign_in(unit, target, meaning, key_file, comment)
        return body

    def gate(
        self,
        unit: UnitOfWork,
        command: str,
        kind: str,
        record_id: str,
        key_file: Path | None,
        owner: str | None = None,
    ) -> dict[str, Any] | None:
        """The signature a step needs (`command`, e.g. "lot release") over the version of
        a record this unit writes; None in a vault without users, or for a step the
        configuration asks no signature of."""
        vault = self.vault
        if not vault.controlled:
            return None
        gate = access.of(vault)["gates"].get(command)
        if not gate:
            return None
        if gate.get("independent") and owner is not None and owner == unit.actor:
            raise AccessDenied(
                f"{unit.actor} owns {record_id}; its {gate['meaning']} must be signed by "
                "someone else"
            )
        staged = unit.records[(kind, record_id)]
        version = next(v for k, i, v in unit.touched if (k, i) == (kind, record_id))
        target = Target(
            kind, record_id, version, hashlib.sha256(staged.raw).hexdigest(),
            staged.kind.lots_of(staged.body), version,
        )  # fmt: skip
        return self.sign_in(unit, target, gate["meaning"], key_file, gate=command,
                            roles=gate["roles"])  # fmt: skip

    def sign_in(
        self,
        unit: UnitOfWork,
        target: Target,
        meaning: str,
        key_file: Path | None,
        comment: str | None = None,
        gate: str | None = None,
        roles: list[str] | None = None,
    ) -> dict[str, Any]:
        """Sign `target` as the unit's actor and stage the signature in the unit.

        AccessDenied: not a user, disabled, locked, no valid key (nothing is recorded).
        SignatureRefused: a role that may not sign so, a key that is not theirs, a
        signature ssh-keygen could not make (the unit records the failed attempt).
        """
        from atmpvault.archive.core.sshsig import SigningFailed, sign, verify

        vault = self.vault
        if not vault.controlled:
            raise AccessDenied(
                "signatures need users; this vault has none ('atmpvault users add' makes it "
                "access-controlled)"
            )
        who = unit.actor
        user = read_user(vault, who)
        if user is None or not user["enabled"]:
            raise AccessDenied(f"{who} is not an enabled user of this vault; nothing written")
        if user["signing_locked"]:
            raise AccessDenied(
                f"signing is locked for {who} after failed attempts; an admin unlocks it with "
                f"'atmpvault users unlock {who} --reason R'"
            )
        may = set(access.of(vault)["meanings"].get(meaning, [])) & set(roles or access.ROLES)
        if not may & set(user["roles"]):
            raise SignatureRefused(
                f"{who} ({', '.join(user['roles'])}) may not sign with the meaning "
                f"{meaning!r}: it needs the role {' or '.join(sorted(may)) or '(none)'}",
                who,
            )
        entry = current_key(user)
        if entry is None:
            raise AccessDenied(
                f"{who} has no valid key (revoked or none); an admin registers a new one with "
                f"'atmpvault users rotate-key {who} --public-key FILE --reason R'"
            )
        key = public_key_of(entry)
        body: dict[str, Any] = {
            "id": self._next_id(unit),
            "signer": who,
            "name": user["name"],
            "meaning": meaning,
            "signed_at": values.iso(unit.when),
            "target": target.to_json(),
            "comment": values.text(comment, "comment", values.MAX_REASON) if comment else None,
            "key": key.fingerprint,
            "lots": list(target.lots),
            "gate": gate,
        }
        said = statement(body)
        try:
            body["signature"] = sign(said, key, key_file)
        except SigningFailed as exc:
            raise SignatureRefused(f"{who}'s signature was not made: {exc}", who) from None
        if not verify(said, body["signature"], who, key, unit.when):
            raise SignatureRefused(
                f"the key given is not {who}'s registered key {key.fingerprint}", who
            )
        unit.put(SIGNATURE_KIND, body["id"], body)
        if user["failed_signatures"]:
            user["failed_signatures"] = 0  # attempts count in a row
            unit.put(USER_KIND, who, user)
        unit.trailers["Signature"] = f"{body['id']} {meaning} {target.label}"
        return body

    def _next_id(self, unit: UnitOfWork) -> str:
        staged = [i for k, i in unit.records if k == SIGNATURE_KIND.name]
        found = max([self.vault.catalog.max_id(SIGNATURE_KIND.name, "SIG-") or "", *staged])
        number = int(found[4:]) + 1 if found else 1
        return f"SIG-{number:06d}"

    # -- reading -------------------------------------------------------------------

    def of(self, kind: str, record_id: str, version: int | None = None) -> list[dict[str, Any]]:
        """The signatures of a record or document (one version, or all), oldest first."""
        from atmpvault.archive.core.record_tables import records

        found = self.vault.catalog.records(
            SIGNATURE_KIND.name, where=[records.c.ref == f"{kind}:{record_id}"]
        )
        bodies = [r.body for r in found]
        if version is not None:
            bodies = [b for b in bodies if b["target"]["version"] == version]
        return sorted(bodies, key=lambda b: (b["target"]["version"], b["signed_at"], b["id"]))

    # -- checking ------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every signature that does not hold, one line each (verify)."""
        vault = self.vault
        problems = []
        meanings = access.of(vault)["meanings"]  # read once, not per signature
        for record in vault.catalog.records(SIGNATURE_KIND.name):
            raw = vault.read_file(record.path, record.commit)
            if raw is None:
                problems.append(f"signature {record.id}: its record is missing from history")
                continue
            body = SIGNATURE_KIND.decode(raw, record.path)
            problem = self._problem(body, meanings)
            if problem:
                problems.append(f"signature {body['id']} ({manifestation(body)}): {problem}")
        return problems

    def _problem(self, body: dict[str, Any], meanings: dict[str, list[str]]) -> str | None:
        from atmpvault.archive.core.sshsig import verify

        vault = self.vault
        who, at = body["signer"], body["signed_at"]
        user = vault.catalog.record(USER_KIND.name, who)
        if user is None:
            return f"signed by {who}, who is not a user of this vault"
        entry = next((k for k in user.body["keys"] if k["fingerprint"] == body["key"]), None)
        if entry is None:
            return f"made with key {body['key']}, never registered to {who}"
        held = valid_key(user.body, at)
        if held is None or held["fingerprint"] != body["key"]:
            revoked = entry.get("revoked_from")
            if revoked and revoked <= at:
                return f"made with {who}'s key {body['key']}, revoked from {revoked[:19]}"
            return f"made with key {body['key']}, which was not {who}'s key at {at[:19]}"
        ends = [t for t in (entry.get("until"), entry.get("revoked_from")) if t]
        if not verify(
            statement(body), body["signature"], who, public_key_of(entry),
            datetime.fromisoformat(at), datetime.fromisoformat(entry["from"]),
            datetime.fromisoformat(min(ends)) if ends else None,
        ):  # fmt: skip
            return "the signature does not match its statement (a changed or copied signature)"
        target = body["target"]
        now = self.resolve(target["kind"], target["id"], int(target["version"]))
        if now is None:
            return f"its target {target['kind']} {target['id']} v{target['version']} is gone"
        if now.sha256 != target["sha256"]:
            return (
                f"{target['kind']} {target['id']} v{target['version']} no longer matches the "
                "bytes signed"
            )
        then = vault.catalog.record(USER_KIND.name, who, as_of=at)
        roles = set(then.body["roles"] if then else [])
        if not roles & set(meanings.get(body["meaning"], [])):
            return f"signed by {who} without a role that may sign {body['meaning']!r}"
        return None


def _meaning(value: str) -> str:
    if value not in access.MEANINGS:
        raise AccessDenied(
            f"unknown meaning {value[:30]!r}; meanings: {', '.join(access.MEANINGS)}"
        )
    return value
