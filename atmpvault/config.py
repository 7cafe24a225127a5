"""Settings: flag > ATMPVAULT_* environment > the vault's local settings file > default.

The vault's own configuration (document types, index engine) is versioned inside the
repository; this module holds only what is local to one machine: where the vault is,
who is acting, where the catalog lives and how long to wait for the write lock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from atmpvault.errors import InvalidInput

LOCAL_SETTINGS = "settings.json"

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


@dataclass(frozen=True)
class Settings:
    """What one invocation needs to know before it opens the vault."""

    vault: Path
    user: str | None = None
    catalog_url: str | None = None
    lock_timeout: float = 30.0
    fault: str | None = None  # a named crash point, for crash-consistency tests only


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
        catalog_url=environ.get("ATMPVAULT_CATALOG_URL") or local.get("catalog_url") or None,
        lock_timeout=timeout,
        fault=environ.get("ATMPVAULT_FAULT") or None,
    )


def _read_local(vault: Path) -> dict[str, object]:
    try:
        data = json.loads((vault / LOCAL_SETTINGS).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}  # no settings, or not a vault at all: Vault.open says which
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {vault / LOCAL_SETTINGS}: {exc}") from None
    return data if isinstance(data, dict) else {}
