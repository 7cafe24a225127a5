"""Fixtures: every test builds its own real vault (real git, real SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from atmpvault.archive.core import values
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.cli import cli
from atmpvault.config import Settings

PG_URL = os.environ.get("ATMPVAULT_TEST_PG_URL")
# The tree under test, first on the path of every process the tests start, so a real
# `atmpvault` process (to kill it, time it out, or run several at once) runs this code
# and never a stale installed copy.
ROOT = Path(__file__).resolve().parents[1]
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)
CLI = [sys.executable, "-m", "atmpvault"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a real `atmpvault` process: no stray ATMPVAULT_* or GIT_*."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ATMPVAULT_") and k not in ("GIT_DIR", "GIT_WORK_TREE")
    }
    env["ATMPVAULT_USER"] = "qa.tester"
    env["ATMPVAULT_NO_ACCESS_NOTE"] = "1"  # tests of the note itself set it to ""
    env.update(extra)
    return env


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not PG_URL:
        raise pytest.UsageError(
            "CI is set but ATMPVAULT_TEST_PG_URL is not: the PostgreSQL catalog suite "
            "must not be skipped silently in CI"
        )


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    assert PG_URL, "ATMPVAULT_TEST_PG_URL is not set"
    import sqlalchemy as sa

    name = f"atmpvault_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = sa.engine.make_url(PG_URL)
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None (SQLite inside the vault) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    if not PG_URL:
        pytest.skip("ATMPVAULT_TEST_PG_URL is not set")
    with postgres_database() as url:
        yield url


@pytest.fixture
def catalog_vault(tmp_path: Path, catalog_url: str | None) -> Path:
    """A vault created through the CLI with its catalog at `catalog_url`.

    `init` is told the URL by ATMPVAULT_CATALOG_URL; the vault's settings file then
    names it, so every later command finds the catalog the way a team's would.
    """
    path = tmp_path / "vault"
    env = {"ATMPVAULT_CATALOG_URL": catalog_url} if catalog_url else {}
    result = run(path, "init", env=env)
    assert result.exit_code == 0, result.output
    if catalog_url:
        (path / "settings.json").write_text(json.dumps({"catalog_url": catalog_url}))
    return path


# A moment either side of midnight UTC, for writes that must straddle a day boundary
# (vault dates are UTC days) whatever the wall-clock time the tests run at.
BEFORE_MIDNIGHT = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


class Clock:
    """The vault's clock (`values.now`) where a test sets it: each reading 1 ms on."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every write of this test stamped by a Clock, set with `clock.at = ...`."""
    pinned = Clock(BEFORE_MIDNIGHT)
    monkeypatch.setattr(values, "now", pinned)
    return pinned


def day_of(recorded_at: str) -> date:
    """The UTC day of a time the vault reported (recorded_at, a log entry's time)."""
    return datetime.fromisoformat(recorded_at).astimezone(UTC).date()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(vault=tmp_path / "vault", user="qa.tester", lock_timeout=10)


@pytest.fixture
def vault(settings: Settings) -> Iterator[Vault]:
    """A fresh vault on SQLite, opened through the library."""
    with Vault.create(settings, domains()) as v:
        yield v


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    """A fresh vault created through the CLI; its path."""
    path = tmp_path / "vault"
    result = run(path, "init")
    assert result.exit_code == 0, result.output
    return path


def run(vault: Path | None, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process against `vault`, with stdout and stderr kept apart."""
    argv = (["--vault", str(vault)] if vault is not None else []) + list(args)
    base = {"ATMPVAULT_USER": "qa.tester", "ATMPVAULT_HOME": "", "ATMPVAULT_NO_ACCESS_NOTE": "1"}
    return CliRunner().invoke(cli, argv, env={**base, **(env or {})}, catch_exceptions=False)


@pytest.fixture
def sample_pdf(tmp_path: Path) -> Path:
    from atmpvault.archive.core.pdf import make_pdf

    path = tmp_path / "batch-record-L0042.pdf"
    path.write_bytes(make_pdf([["Batch record L-0042", "Viability 93%"]], title="BR L-0042"))
    return path
