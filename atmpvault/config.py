"""Settings: flag > ATMPVAULT_* environment > the vault's local settings file > default.

The vault's own configuration (document types, index engine) is versioned inside the
repository; this module holds only what is local to one machine: where the vault is,
who is acting, where the catalog lives and how long to wait for the write lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from atmpvault.errors import InvalidInput

LOCAL_SETTINGS = "settings.json"
CONFIG_PATH = "config/vault.json"  # the vault's own configuration, in its repository

DEFAULT_DOCUMENT_TYPES = (
    "ind",
    "bla",
    "rmat",
    "supplement",
    "annual-report",
    "correspondence",
    "meeting",
    "batch-record",
    "deviation-package",
    "capa",
    "coc-certificate",
    "release-certificate",
    "sop",
    "protocol",
    "report",
    "certificate-of-analysis",
    "label",
    "other",
)


class Settings(NamedTuple):
    """What one invocation needs to know before it opens the vault (a named tuple: every
    command makes this class, and a tuple's costs a tenth of a frozen dataclass's)."""

    vault: Path
    user: str | None = None
    catalog_url: str | None = None
    lock_timeout: float = 30.0
    fault: str | None = None  # a named crash point, for crash-consistency tests only
    max_file_mb: int = 1024  # the largest file add or import reads (ATMPVAULT_MAX_FILE_MB)
    # Outgoing mail for notices; without smtp_host, notices go to VAULT/outbox/ as .eml files.
    smtp_host: str | None = None
    smtp_port: int | None = None  # default: 587 with STARTTLS, else 25
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    # Say on each command that a vault without users is not access-controlled
    # (ATMPVAULT_NO_ACCESS_NOTE=1 silences it, e.g. for a personal archive or scripts).
    access_note: bool = True
    # A team's shared repository (any git URL): every write publishes there first.
    upstream: str | None = None
    stale_after_minutes: float = 60.0  # a copy older than this is said to be so


def load_settings(
    vault: str | Path | None, user: str | None, environ: Mapping[str, str]
) -> Settings:
    """Resolve settings for one invocation."""
    path = Path(vault or environ.get("ATMPVAULT_HOME") or "vault")
    local = _read_local(path)
    timeout_text = environ.get("ATMPVAULT_LOCK_TIMEOUT") or str(local.get("lock_timeout", 30))
    try:
        timeout = float(timeout_text)
    except ValueError:
        raise InvalidInput(
            f"ATMPVAULT_LOCK_TIMEOUT must be a number of seconds, not {timeout_text!r}"
        ) from None
    return Settings(
        vault=path,
        user=user or environ.get("ATMPVAULT_USER") or None,
        catalog_url=environ.get("ATMPVAULT_CATALOG_URL") or _text(local.get("catalog_url")),
        lock_timeout=timeout,
        fault=environ.get("ATMPVAULT_FAULT") or None,
        max_file_mb=_max_file_mb(environ.get("ATMPVAULT_MAX_FILE_MB") or local.get("max_file_mb")),
        access_note=environ.get("ATMPVAULT_NO_ACCESS_NOTE", "") in ("", "0"),
        upstream=_text(local.get("upstream")),
        stale_after_minutes=_minutes(local.get("stale_after_minutes")),
        **_smtp_settings(local, environ),
    )


def _minutes(value: object) -> float:
    """How old a copy of a shared vault may be before commands say so (default 60)."""
    if value in (None, ""):
        return float(Settings._field_defaults["stale_after_minutes"])
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InvalidInput(f"{LOCAL_SETTINGS}: stale_after_minutes must be a number above 0")
    return float(value)


def _max_file_mb(value: object) -> int:
    """The largest file to archive, in MB (2**20 bytes); 1024 when unset."""
    if value in (None, ""):
        return int(Settings._field_defaults["max_file_mb"])
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise InvalidInput(f"ATMPVAULT_MAX_FILE_MB must be a whole number of MB, not {value!r}")
    return number


def _smtp_settings(local: Mapping[str, object], environ: Mapping[str, str]) -> dict[str, Any]:
    """smtp_* keys of the local settings file, each overridden by ATMPVAULT_SMTP_*."""
    raw = {
        key: environ.get(f"ATMPVAULT_{key.upper()}") or local.get(key)
        for key in ("smtp_host", "smtp_port", "smtp_starttls", "smtp_user", "smtp_password",
                    "smtp_from")
    }  # fmt: skip
    port = raw["smtp_port"]
    if port is not None:
        try:
            port = int(str(port))
        except ValueError:
            raise InvalidInput(f"smtp_port must be a port number, not {port!r}") from None
        if not 0 < port < 65536:
            raise InvalidInput(f"smtp_port must be between 1 and 65535, not {port}")
    starttls = raw["smtp_starttls"]
    if isinstance(starttls, str):
        if starttls.lower() not in _BOOLEANS:
            raise InvalidInput(f"smtp_starttls must be true or false, not {starttls!r}")
        starttls = _BOOLEANS[starttls.lower()]
    text = {k: (str(v) if v not in (None, "") else None) for k, v in raw.items()}
    return {**text, "smtp_port": port, "smtp_starttls": bool(starttls)}


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
             "0": False, "false": False, "no": False, "off": False}  # fmt: skip


def _text(value: object) -> str | None:
    """A setting that must be text, or None when unset."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{LOCAL_SETTINGS}: expected text, not {value!r}")
    return value


def _read_local(vault: Path) -> dict[str, object]:
    try:
        data = json.loads((vault / LOCAL_SETTINGS).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}  # no settings, or not a vault at all: Vault.open says which
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {vault / LOCAL_SETTINGS}: {exc}") from None
    return data if isinstance(data, dict) else {}
