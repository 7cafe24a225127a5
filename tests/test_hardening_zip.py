"""`package verify` accounts for every member of a built sequence: nothing outside the
sequence folder, no absolute or climbing path, no name twice, no symbolic link."""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path

import pytest
from click.testing import Result

from atmpvault.archive.regulatory.submissions.verify import zip_member_problems
from tests.conftest import run

IND = "IND-012345"


def refused(result: Result, *words: str) -> str:
    assert result.exit_code == 3, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)
    return result.stderr


def ok(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


@pytest.fixture
def good(vault_path: Path, tmp_path: Path) -> Path:
    """Sequence 0000 of an IND with a cover letter, built as a zip."""
    letter = tmp_path / "Cover Letter.txt"
    letter.write_bytes(b"Dear reviewer\n")
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    added = run(
        vault_path, "add", str(letter), "--program", "CART-19", "--type", "batch-record", "--json"
    )
    doc = json.loads(ok(added).stdout)["id"]
    ok(run(vault_path, "package", "new", IND, "--sequence", "0000", "--type", "original"))
    ok(run(vault_path, "package", "add", IND, "0000", doc, "--section", "m1/us"))
    path = tmp_path / "good.zip"
    ok(run(vault_path, "package", "build", IND, "0000", "-o", str(path)))
    return path


def with_members(good: Path, target: Path, *extra: zipfile.ZipInfo | str) -> Path:
    """A copy of `good` with extra members (a name alone: a small text file)."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of a duplicate name: the point
            for member in extra:
                dst.writestr(member, b"not part of the sequence\n")
    return target


def test_a_built_zip_keeps_the_member_rule(good: Path) -> None:
    with zipfile.ZipFile(good) as archive:
        infos = archive.infolist()
    assert zip_member_problems(infos) == []
    assert all(i.filename.startswith("0000/") for i in infos)
    assert ok(run(None, "package", "verify", str(good))).exit_code == 0


@pytest.mark.parametrize(
    ("member", "words"),
    [
        ("../../../tmp/x", "'../../../tmp/x': climbs out of the archive"),
        ("0000/m1/../../../evil.sh", "climbs out of the archive"),
        ("/tmp/x", "'/tmp/x': an absolute path"),
        ("C:/Windows/evil.dll", "an absolute path"),
        ("0000\\m1\\evil.txt", "a backslash in the name"),
        ("other/readme.txt", "other/readme.txt: outside the sequence folder 0000/"),
        ("readme.txt", "readme.txt: outside the sequence folder 0000/"),
        ("0000//m1/x.txt", "an empty or '.' folder"),
        ("0000/m2/smuggled.pdf", "m2/smuggled.pdf: present but not in"),
    ],
)
def test_every_member_is_accounted_for(good: Path, tmp_path: Path, member: str, words: str) -> None:
    bad = with_members(good, tmp_path / "bad.zip", member)
    refused(run(None, "package", "verify", str(bad)), words)
    report = json.loads(run(None, "package", "verify", str(bad), "--json").stdout)
    assert report["ok"] is False
    assert any(words.split(": ")[-1] in p for p in report["problems"])


def test_a_name_twice_is_refused(good: Path, tmp_path: Path) -> None:
    # The same bytes again: every checksum agrees, yet an unzip keeps only one of them.
    with zipfile.ZipFile(good) as src:
        name = next(n for n in src.namelist() if n.endswith("cover-letter.txt"))
        data = src.read(name)
    bad = tmp_path / "twice.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dst.writestr(name, data)
    refused(run(None, "package", "verify", str(bad)), f"{name}: in the zip 2 times")


def test_a_symbolic_link_member_is_refused(good: Path, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("0000/m1/us/passwd")
    link.create_system = 3
    link.external_attr = 0o120777 << 16
    bad = with_members(good, tmp_path / "link.zip", link)
    refused(run(None, "package", "verify", str(bad)), "0000/m1/us/passwd: a symbolic link")


def test_a_symbolic_link_in_a_folder_is_refused(good: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(good) as archive:
        archive.extractall(tmp_path / "out")
    seq = tmp_path / "out" / "0000"
    ok(run(None, "package", "verify", str(seq)))
    os.symlink("/etc/passwd", seq / "m1" / "us" / "passwd")
    refused(run(None, "package", "verify", str(seq)), "m1/us/passwd: a symbolic link")


def test_files_beside_the_sequence_folder_are_named(good: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(good) as archive:
        archive.extractall(tmp_path / "out")
    ok(run(None, "package", "verify", str(tmp_path / "out")))
    (tmp_path / "out" / "notes.txt").write_text("left behind\n")
    refused(
        run(None, "package", "verify", str(tmp_path / "out")),
        "notes.txt: outside the sequence folder 0000/",
    )
