"""`get` of a damaged object: exit 3 with the one line that names it, and nothing more.

Runs as a real process: the stray "Exception ignored ... read of closed file" came from
GitPython's stream being finalized at interpreter exit, after the reader was closed.
"""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path

import pytest

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.versions import Documents
from atmpvault.archive.domains import domains
from atmpvault.config import Settings
from atmpvault.repository.git import ObjectDamaged
from tests.conftest import CLI, cli_env, run
from tests.test_verify import content_oid, explode_packs, flip_byte, git


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    path = tmp_path / "vault"
    assert run(path, "init").exit_code == 0
    src = tmp_path / "BR-0042.bin"
    src.write_bytes(random.Random(11).randbytes(300_000))  # incompressible, several reads
    result = run(path, "add", str(src), "--program", "CART-19", "--type", "batch-record")
    assert result.exit_code == 0, result.stderr
    return path


def damage(vault: Path, where: str) -> None:
    oid = content_oid(vault, "DOC-000001")
    if where == "loose":
        explode_packs(vault)
        flip_byte(vault / "repo.git" / "objects" / oid[:2] / oid[2:])
        return
    git(vault, "repack", "-a", "-d", "-q")
    (pack,) = (vault / "repo.git" / "objects" / "pack").glob("*.pack")
    flip_byte(pack, len(pack.read_bytes()) // 2)


@pytest.mark.parametrize("where", ["loose", "pack"])
@pytest.mark.parametrize("to", ["file", "stdout"])
def test_get_of_a_damaged_object_says_one_line(
    vault: Path, tmp_path: Path, where: str, to: str
) -> None:
    damage(vault, where)
    target = tmp_path / "out.bin"
    args = [*CLI, "--vault", str(vault), "get", "DOC-000001"]
    if to == "file":
        args += ["-o", str(target)]
    result = subprocess.run(args, capture_output=True, env=cli_env(), timeout=60, check=False)

    stderr = result.stderr.decode()
    assert result.returncode == 3, stderr
    assert len(stderr.splitlines()) == 1, stderr
    assert "DOC-000001" in stderr and "corrupt" in stderr, stderr
    assert not target.exists()


def test_get_after_a_damaged_object_still_reads_the_others(vault: Path, tmp_path: Path) -> None:
    src = tmp_path / "SOP-7.bin"
    src.write_bytes(b"an intact standard operating procedure\n" * 100)
    assert run(vault, "add", str(src), "--program", "CART-19", "--type", "sop").exit_code == 0
    damage(vault, "loose")

    with Vault.open(Settings(vault=vault, user="qa.tester"), domains()) as opened:
        with pytest.raises(ObjectDamaged):
            Documents(opened).get("DOC-000001", io.BytesIO())
        out = io.BytesIO()
        Documents(opened).get("DOC-000002", out)
    assert out.getvalue() == src.read_bytes()
