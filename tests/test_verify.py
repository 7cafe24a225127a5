"""Tamper detection, borg style: change a byte or a row, expect `verify` to exit 3 and say where.

`verify` runs as a real process with a timeout, so a corrupted object that made git
or GitPython wait forever fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
from pathlib import Path

import pytest

from atmpvault.archive.documents.records import CONTENT, doc_dir
from tests.conftest import CLI, run

DOCS = ("DOC-000001", "DOC-000002", "DOC-000003")


def verify(vault: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATMPVAULT_")}
    env["ATMPVAULT_USER"] = "qa.tester"
    return subprocess.run(
        [*CLI, "--vault", str(vault), "verify", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def verify_here(vault: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`verify` in-process, for damage that cannot make git wait (catalog edits)."""
    result = run(vault, "verify", *args)
    return subprocess.CompletedProcess(["verify"], result.exit_code, result.stdout, result.stderr)


def git(vault: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", *args],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Change one byte of a file git keeps read-only."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    at = len(data) // 2 if offset is None else offset
    data[at] ^= 0x20
    path.write_bytes(bytes(data))


def update_catalog(vault: Path, sql: str, *params: object) -> None:
    conn = sqlite3.connect(vault / "catalog.sqlite")
    with conn:
        changed = conn.execute(sql, params).rowcount
    conn.close()
    assert changed == 1, f"{sql} changed {changed} rows"


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    """Three documents of incompressible bytes, one of them revised."""
    path = tmp_path / "vault"
    assert run(path, "init").exit_code == 0
    rng = random.Random(7)
    for n in range(1, 4):
        src = tmp_path / f"doc-{n}.bin"
        src.write_bytes(rng.randbytes(20_000))
        result = run(
            path,
            "add",
            str(src),
            "--program",
            "CART-19",
            "--type",
            "sop",
            "--title",
            f"SOP {n}",
            "--lot",
            f"L-{n:04d}",
        )
        assert result.exit_code == 0, result.stderr
    src = tmp_path / "doc-2-r2.bin"
    src.write_bytes(rng.randbytes(20_000))
    result = run(path, "add", str(src), "--id", "DOC-000002", "--reason", "periodic review")
    assert result.exit_code == 0, result.stderr
    return path


def stored_versions(vault: Path) -> list[tuple[str, int, str]]:
    """(document, version, commit) of every version, read before anything is damaged."""
    found = []
    for doc_id in DOCS:
        for entry in json.loads(run(vault, "history", doc_id, "--json").stdout):
            found.append((doc_id, entry["version"], entry["commit"]))
    return found


def healthy_documents(vault: Path, versions: list[tuple[str, int, str]]) -> set[str]:
    """Documents every version of which git can still read in full."""
    broken = set()
    for doc_id, _number, commit in versions:
        for name in (CONTENT, "record.json"):
            result = subprocess.run(
                [
                    "git",
                    f"--git-dir={vault / 'repo.git'}",
                    "cat-file",
                    "blob",
                    f"{commit}:{doc_dir(doc_id)}/{name}",
                ],
                capture_output=True,
                check=False,
            )
            if result.returncode != 0:
                broken.add(doc_id)
    return set(DOCS) - broken


def assert_names_only_the_damage(
    result: subprocess.CompletedProcess[str], healthy: set[str]
) -> None:
    """A damaged object is reported; documents that are intact are not."""
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    wrongly = [line for line in problems for doc_id in healthy if doc_id in line]
    assert not wrongly, "intact documents reported as damaged:\n" + "\n".join(wrongly)


def content_oid(vault: Path, doc_id: str) -> str:
    return git(vault, "rev-parse", f"refs/heads/main:{doc_dir(doc_id)}/{CONTENT}")


def explode_packs(vault: Path) -> None:
    """Turn every packed object into a loose object file."""
    pack_dir = vault / "repo.git" / "objects" / "pack"
    for pack in sorted(pack_dir.glob("*.pack")):
        data = pack.read_bytes()
        for sibling in pack_dir.glob(pack.stem + ".*"):
            sibling.chmod(0o644)
            sibling.unlink()
        subprocess.run(
            ["git", f"--git-dir={vault / 'repo.git'}", "unpack-objects", "-q"],
            input=data,
            check=True,
        )


def stored(pack: Path) -> dict[str, tuple[int, int]]:
    """Object id -> (offset, stored size) of every object of `pack`, as git lists them."""
    listing = subprocess.run(
        ["git", "verify-pack", "-v", str(pack.with_suffix(".idx"))],
        capture_output=True, check=True, text=True,
    ).stdout  # fmt: skip
    found = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 5 and len(fields[0]) == 40 and fields[1] in ("blob", "tree", "commit"):
            found[fields[0]] = (int(fields[4]), int(fields[3]))
    return found


def object_at(pack: Path, offset: int) -> str:
    """The object of `pack` whose stored bytes include the byte at `offset`."""
    for oid, (start, size) in stored(pack).items():
        if start <= offset < start + size:
            return oid
    raise AssertionError(f"no object at offset {offset} of {pack}")


def test_clean_vault_verifies(vault: Path) -> None:
    result = verify(vault, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == {"ok": True, "problems": []}


def test_changed_byte_in_a_loose_object_is_named(vault: Path) -> None:
    explode_packs(vault)
    versions = stored_versions(vault)
    oid = content_oid(vault, "DOC-000002")
    loose = vault / "repo.git" / "objects" / oid[:2] / oid[2:]
    assert loose.is_file(), "the content blob should be a loose object here"
    flip_byte(loose)

    result = verify(vault)

    assert result.returncode == 3, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert any(oid in line or "DOC-000002" in line for line in problems), result.stdout
    assert "Traceback" not in result.stderr
    assert healthy_documents(vault, versions) == {"DOC-000001", "DOC-000003"}
    assert_names_only_the_damage(result, {"DOC-000001", "DOC-000003"})


def test_changed_byte_in_a_pack_is_named(vault: Path) -> None:
    versions = stored_versions(vault)
    git(vault, "repack", "-a", "-d", "-q")
    packs = sorted((vault / "repo.git" / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 1
    at = packs[0].stat().st_size // 2
    damaged = object_at(packs[0], at)
    flip_byte(packs[0], at)

    result = verify(vault)

    assert result.returncode == 3, result.stdout + result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    # The byte changed lies in one object: verify names it, or the documents it broke.
    broken = set(DOCS) - healthy_documents(vault, versions)
    assert broken, "the damaged object should be part of a document"
    for doc in broken:
        assert any(doc in line and damaged in line for line in problems), (doc, result.stdout)
    assert "Traceback" not in result.stderr
    assert_names_only_the_damage(result, healthy_documents(vault, versions))


@pytest.mark.parametrize(
    ("field", "column", "value"),
    [("title", "title", "x"), ("sha256", "sha256", "0" * 64)],
)
def test_edited_catalog_row_is_named(vault: Path, field: str, column: str, value: str) -> None:
    update_catalog(
        vault,
        f"UPDATE versions SET {column} = ? WHERE doc_id = 'DOC-000003' AND version = 1",
        value,
    )

    result = verify_here(vault)

    assert result.returncode == 3, result.stdout + result.stderr
    assert any(
        "DOC-000003 v1" in line and field in line
        for line in result.stdout.splitlines()
        if line.startswith("PROBLEM")
    ), result.stdout
    assert len([line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]) == 1


def test_problems_as_json(vault: Path) -> None:
    update_catalog(vault, "UPDATE versions SET title = 'x' WHERE doc_id = 'DOC-000001'")

    result = verify_here(vault, "--json")

    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == 1
    assert "DOC-000001 v1" in report["problems"][0] and "title" in report["problems"][0]


def test_deleted_version_row_is_named(vault: Path) -> None:
    update_catalog(vault, "DELETE FROM versions WHERE doc_id = 'DOC-000002' AND version = 1")

    result = verify_here(vault)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "DOC-000002 v1" in result.stdout


def test_deleted_document_row_is_named(vault: Path) -> None:
    # Without this row `ls` silently omits the document and its id could be handed out again.
    update_catalog(vault, "DELETE FROM documents WHERE id = 'DOC-000003'")

    result = verify_here(vault)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "DOC-000003" in result.stdout


def test_document_row_pointing_at_the_wrong_version_is_named(vault: Path) -> None:
    update_catalog(vault, "UPDATE documents SET latest = 1 WHERE id = 'DOC-000002'")

    result = verify_here(vault)

    assert result.returncode == 3, result.stdout + result.stderr
    assert "DOC-000002" in result.stdout


def test_catalog_that_forgot_its_commit_is_reported_not_a_traceback(vault: Path) -> None:
    update_catalog(vault, "DELETE FROM catalog_state WHERE key = 'last_commit'")

    result = verify(vault)

    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 3, result.stdout + result.stderr
    assert "catalog" in result.stdout
