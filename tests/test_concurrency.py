"""Writers are serialised and never collide; readers never wait for them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from atmpvault.repository.lock import WriteLock
from tests.conftest import CLI, cli_env, run

# One writer process: waits for the starting gun, then adds its documents one by one
# through a single long-lived Vault, printing one JSON line per document archived.
WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.versions import Documents
    from atmpvault.archive.domains import domains
    from atmpvault.config import Settings

    vault_path, gun, *files = sys.argv[1:]
    while not Path(gun).exists():
        time.sleep(0.005)
    settings = Settings(vault=Path(vault_path), user="writer", lock_timeout=60)
    with Vault.open(settings, domains()) as vault:
        for name in files:
            v = Documents(vault).add(Path(name), "CART-19", "batch-record", lot="L-0042")
            print(json.dumps({"id": v.id, "sha256": v.sha256, "file": name}), flush=True)
    """
)


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ATMPVAULT_")}
    return {**base, "ATMPVAULT_USER": "qa.tester", **extra}


def cli(vault: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--vault", str(vault), *args],
        capture_output=True,
        text=True,
        env=env(**extra),
        timeout=30,
        check=False,
    )


def head(vault: Path) -> str:
    return subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "rev-parse", "refs/heads/main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    assert run(path, "init").exit_code == 0
    return path


def test_four_concurrent_writers_all_succeed_with_unique_ids(vault: Path, tmp_path: Path) -> None:
    gun = tmp_path / "go"
    writers = []
    for w in range(4):
        files = []
        for n in range(3):
            path = tmp_path / f"w{w}-{n}.bin"
            path.write_bytes(f"writer {w} document {n}\n".encode() * (50 + n))
            files.append(str(path))
        writers.append(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(vault), str(gun), *files],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env(),
            )
        )
    gun.touch()
    reported = []
    for proc in writers:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        reported += [json.loads(line) for line in out.splitlines()]

    ids = [r["id"] for r in reported]
    assert len(ids) == 12
    assert sorted(ids) == [f"DOC-{n:06d}" for n in range(1, 13)]
    listed = {d["id"]: d for d in json.loads(run(vault, "ls", "--json").stdout)}
    assert set(listed) == set(ids)
    for r in reported:
        data = Path(r["file"]).read_bytes()
        assert listed[r["id"]]["sha256"] == r["sha256"] == hashlib.sha256(data).hexdigest()
        assert run(vault, "get", r["id"]).stdout_bytes == data
    verified = cli(vault, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_reader_is_not_blocked_by_a_writer_holding_the_lock(vault: Path, tmp_path: Path) -> None:
    src = tmp_path / "a.txt"
    src.write_text("archived before the lock was taken\n")
    assert run(vault, "add", str(src), "--program", "CART-19", "--type", "sop").exit_code == 0
    # A commit the catalog has not seen yet: the reader must not wait to catch up.
    late = tmp_path / "b.txt"
    late.write_text("committed, then the writer died\n")
    crashed = cli(
        vault,
        "add",
        str(late),
        "--program",
        "CART-19",
        "--type",
        "sop",
        ATMPVAULT_FAULT="after-commit",
    )
    assert crashed.returncode == -9

    with WriteLock(vault / "lock", timeout=5):
        # A reader that waited for the lock would outlive the 30 s subprocess timeout.
        result = cli(vault, "ls", "--json", ATMPVAULT_LOCK_TIMEOUT="120")
        assert result.returncode == 0, result.stderr
        assert [d["id"] for d in json.loads(result.stdout)] == ["DOC-000001"]
        shown = cli(vault, "show", "DOC-000001", "--json", ATMPVAULT_LOCK_TIMEOUT="120")
        assert shown.returncode == 0, shown.stderr

    after = cli(vault, "ls", "--json")
    assert [d["id"] for d in json.loads(after.stdout)] == ["DOC-000001", "DOC-000002"]


def test_a_writer_that_waits_too_long_gives_up_and_writes_nothing(
    vault: Path, tmp_path: Path
) -> None:
    src = tmp_path / "a.txt"
    src.write_text("waiting writer\n")
    before = head(vault)

    with WriteLock(vault / "lock", timeout=5):
        result = cli(
            vault,
            "add",
            str(src),
            "--program",
            "CART-19",
            "--type",
            "sop",
            ATMPVAULT_LOCK_TIMEOUT="1",
        )

    assert result.returncode == 1
    assert "vault is busy" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert head(vault) == before
    assert json.loads(run(vault, "ls", "--json").stdout) == []
    assert run(vault, "verify").exit_code == 0


def test_an_open_vault_does_not_hold_the_index_writer_between_writes(
    tmp_path: Path, sample_pdf: Path
) -> None:
    """A long-lived process that indexed once must not lock every other one out of the index."""
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.versions import Documents
    from atmpvault.archive.domains import domains
    from atmpvault.config import Settings
    from atmpvault.indexer.index import SearchFilters

    path = tmp_path / "vault"
    with Vault.create(Settings(vault=path, user="qa.long"), domains()) as long_lived:
        Documents(long_lived).add(sample_pdf, "CART-19", "batch-record")
        # Searching catches the index up: this process wrote to the index, then let go.
        assert long_lived.search("viability", SearchFilters()).total == 1
        other = tmp_path / "other.txt"
        other.write_text("viability of a second lot\n")
        added = subprocess.run(
            [*CLI, "--vault", str(path), "add", str(other), "--program", "CART-19",
             "--type", "batch-record"],
            capture_output=True, text=True, env=cli_env(), timeout=60,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        found = subprocess.run(
            [*CLI, "--vault", str(path), "search", "viability", "--json"],
            capture_output=True, text=True, env=cli_env(), timeout=60,
        )  # fmt: skip
        assert found.returncode == 0 and "Traceback" not in found.stderr, found.stderr
        assert json.loads(found.stdout)["total"] == 2
