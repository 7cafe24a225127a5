"""SSH signatures through OpenSSH's own `ssh-keygen -Y` (the only module that runs it).

A signature is made with the signer's private key, from a key file or from ssh-agent,
over the exact bytes of a statement, in the namespace "atmpvault"; it is checked with an
allowed-signers file naming the one public key that must have made it, at the time it
claims. ssh-keygen asks for a key file's passphrase on the terminal itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from atmpvault.errors import InvalidInput, VaultError

NAMESPACE = "atmpvault"
_KEY_LINE = re.compile(r"(?P<type>(ssh|ecdsa|sk)-[a-z0-9@.-]+)\s+(?P<blob>[A-Za-z0-9+/]+={0,2})")
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"


class SigningFailed(VaultError):
    """ssh-keygen could not sign: a wrong passphrase, a key ssh-agent does not hold."""


@dataclass(frozen=True)
class PublicKey:
    """One public key as OpenSSH writes it (type and base64 blob), with its fingerprint."""

    type: str
    blob: str
    fingerprint: str  # SHA256:...

    @property
    def line(self) -> str:
        return f"{self.type} {self.blob}"


def public_key(text: str, where: str = "the public key") -> PublicKey:
    """A public key from the text of a .pub file; InvalidInput if it is not one."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    match = _KEY_LINE.match(first)
    if match is None:
        raise InvalidInput(f"{where} is not an OpenSSH public key (ssh-ed25519 AAAA...)")
    line = f"{match['type']} {match['blob']}"
    result = _keygen(["-l", "-E", "sha256", "-f", "-"], line.encode("ascii"))
    fields = result.stdout.decode("ascii", "replace").split()
    if result.returncode != 0 or len(fields) < 2 or not fields[1].startswith("SHA256:"):
        raise InvalidInput(f"{where} is not a valid OpenSSH public key")
    return PublicKey(match["type"], match["blob"], fields[1])


def sign(statement: bytes, key: PublicKey, key_file: Path | None) -> str:
    """The armored signature of `statement`: with `key_file` (a private key), else with the
    key ssh-agent holds for `key`. SigningFailed says why ssh-keygen could not."""
    if key_file is None and not os.environ.get("SSH_AUTH_SOCK"):
        raise InvalidInput(
            "no --key given and no ssh-agent running (SSH_AUTH_SOCK is not set): "
            "add your key to ssh-agent or give --key PRIVATE_KEY_FILE"
        )
    with tempfile.TemporaryDirectory(prefix="atmpvault-sign-") as folder:
        if key_file is None:
            pub = Path(folder) / "key.pub"
            pub.write_text(key.line + "\n", encoding="ascii")
            key_file = pub
        elif not key_file.is_file():
            raise InvalidInput(f"--key {key_file}: no such key file")
        result = _keygen(["-Y", "sign", "-n", NAMESPACE, "-f", str(key_file)], statement)
    text = result.stdout.decode("ascii", "replace").strip()
    if result.returncode != 0 or not (text.startswith(_BEGIN) and text.endswith(_END)):
        said = result.stderr.decode("utf-8", "replace").replace("Enter passphrase:", "\n")
        lines = [line.strip() for line in said.splitlines()]
        reason = next((s for s in reversed(lines) if s and not s.startswith("Signing ")), "")
        raise SigningFailed(f"ssh-keygen could not sign: {reason or 'no signature made'}")
    return text + "\n"


def verify(
    statement: bytes,
    signature: str,
    principal: str,
    key: PublicKey,
    at: datetime,
    after: datetime | None = None,
    before: datetime | None = None,
) -> bool:
    """Whether `signature` over `statement` was made by `key` for `principal` at `at`, the
    key registered for them from `after` until `before` (an allowed-signers window)."""
    if not (signature.startswith(_BEGIN) and signature.strip().endswith(_END)):
        return False
    with tempfile.TemporaryDirectory(prefix="atmpvault-verify-") as folder:
        allowed, sig = Path(folder) / "allowed_signers", Path(folder) / "statement.sig"
        line = allowed_signers_line(principal, key, after, before)
        allowed.write_text(line + "\n", encoding="ascii")
        sig.write_text(signature, encoding="ascii")
        stamp = at.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")
        result = _keygen(
            ["-Y", "verify", "-f", str(allowed), "-I", principal, "-n", NAMESPACE,
             "-s", str(sig), f"-Overify-time={stamp}"],
            statement,
        )  # fmt: skip
    return result.returncode == 0


def allowed_signers_line(
    principal: str, key: PublicKey, after: datetime | None, before: datetime | None
) -> str:
    """One line of an allowed-signers file: the key, valid for `principal` in a window."""
    options = [f'namespaces="{NAMESPACE}"']
    if after is not None:
        options.append(f'valid-after="{after.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")}"')
    if before is not None:
        options.append(f'valid-before="{before.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")}"')
    return f"{principal} {','.join(options)} {key.line}"


def _keygen(args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["ssh-keygen", *args], input=data, capture_output=True, timeout=120)
    except FileNotFoundError:
        raise VaultError("ssh-keygen (OpenSSH) is not installed; signatures need it") from None
    except subprocess.TimeoutExpired:
        raise SigningFailed("ssh-keygen did not answer within 2 minutes") from None


def generate(private: Path, comment: str) -> PublicKey:
    """A new ed25519 key pair without a passphrase at `private` and `private`.pub (the
    demo's; a person makes their own with ssh-keygen and a passphrase)."""
    result = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)],
        capture_output=True,
    )
    if result.returncode != 0:
        raise VaultError(f"ssh-keygen could not make a key: {result.stderr.decode().strip()}")
    return public_key(private.with_name(private.name + ".pub").read_text(encoding="ascii"))
