"""Manifest encodings: UTF-8 with or without a BOM and UTF-16 with a BOM are read;
anything else is refused as a whole, naming the first line that is not text."""

from __future__ import annotations

import codecs
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run

ROWS = "path,program,type,title\nbr.txt,CART-19,batch-record,Überprüfung Charge L-0042 – Zellzahl\n"


def head(vault: Path) -> str:
    return subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "rev-parse", "-q", "--verify", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "br.txt").write_text("batch record L-0042\n")
    (legacy / "sop.txt").write_text("standard operating procedure\n")
    return legacy


@pytest.mark.parametrize(
    "data",
    [
        ROWS.encode("utf-8"),
        codecs.BOM_UTF8 + ROWS.encode("utf-8"),
        ROWS.encode("utf-16"),  # with the machine's BOM
        codecs.BOM_UTF16_LE + ROWS.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + ROWS.encode("utf-16-be"),
        codecs.BOM_UTF16_LE + ROWS.replace("\n", "\r\n").encode("utf-16-le"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16", "utf-16-le-bom", "utf-16-be-bom", "utf-16-crlf"],
)
def test_readable_encodings_are_imported(vault_path: Path, folder: Path, data: bytes) -> None:
    manifest = folder / "manifest.csv"
    manifest.write_bytes(data)

    result = run(vault_path, "import", "--manifest", str(manifest), "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["imported"] == 1
    shown = json.loads(run(vault_path, "show", "DOC-000001", "--json").stdout)
    assert shown["title"] == "Überprüfung Charge L-0042 – Zellzahl"


@pytest.mark.parametrize(
    ("data", "line", "says"),
    [
        (ROWS.encode("latin-1", "replace"), 2, "not UTF-8 text (byte 0xdc)"),
        (
            "path,program,type,title\nsop.txt,CART-19,sop,SOP\n"
            "br.txt,CART-19,batch-record,Clé\n".encode("cp1252"),
            3,
            "not UTF-8 text (byte 0xe9)",
        ),
        (
            "path,program,type\nbr.txt,CART-19,sop\n".encode("utf-16-le"),
            1,
            "contains a NUL character",
        ),
        (codecs.BOM_UTF16_LE + ROWS.encode("utf-16-le") + b"\x00", 3, "not UTF-16 text"),
        (codecs.BOM_UTF16_LE + "path\n".encode("utf-16-le") + b"\x00\xdc\n\x00", 2, "not UTF-16"),
    ],
    ids=["latin-1", "cp1252-line-3", "utf-16-no-bom", "utf-16-odd-length", "utf-16-lone-surrogate"],
)
def test_other_encodings_are_refused_by_line(
    vault_path: Path, folder: Path, data: bytes, line: int, says: str
) -> None:
    manifest = folder / "manifest.csv"
    manifest.write_bytes(data)
    before = head(vault_path)

    result = run(vault_path, "import", "--manifest", str(manifest))

    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"manifest {manifest} line {line}: {says}" in result.stderr, result.stderr
    assert "UTF-8, or UTF-16 with a byte order mark" in result.stderr
    assert head(vault_path) == before
    assert json.loads(run(vault_path, "ls", "--json").stdout) == []
