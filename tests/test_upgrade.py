"""A vault made by the previous release (commit 0a06b99) opens and answers as it did.

The fixture is that release's own vault: documents with revisions and a withdrawal, an
IND and a BLA with events and a correction, a finalised PAS sequence (tag and calendar
event), a distribution list and alert notices; with the catalog and index it built.
`expected.json` holds what that release answered. Opening the vault with this release
rebuilds both projections from the repository (their schemas changed), says so once,
and then every answer is the same, with only new keys added.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run

FIXTURES = Path(__file__).parent / "fixtures"
RELEASE = "0a06b99"


@pytest.fixture
def old_vault(tmp_path: Path) -> Path:
    with tarfile.open(FIXTURES / f"vault-{RELEASE}.tar.gz") as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path / "v"


def expected() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"vault-{RELEASE}.expected.json").read_text())
    return data


def same(old: Any, new: Any, where: str) -> None:
    """`new` answers as `old` did; keys may be added, never changed or dropped."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        for key, value in old.items():
            assert key in new, f"{where}: key {key!r} is gone"
            same(value, new[key], f"{where}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), (where, old, new)
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            same(a, b, f"{where}[{i}]")
    else:
        assert old == new, f"{where}: was {old!r}, now {new!r}"


def test_old_vault_is_upgraded_by_rebuilding_its_projections(old_vault: Path) -> None:
    # Both projections were made for another schema: each says once that it is rebuilt,
    # when it is first opened (`ls` opens the catalog, `search` the index).
    first = run(old_vault, "ls", "--json")
    assert first.exit_code == 0, first.stderr
    assert first.stderr.startswith("atmpvault: the catalog was made by an earlier release")
    assert "rebuilding it from the repository" in first.stderr
    searched = run(old_vault, "search", "viability", "--json")
    assert searched.exit_code == 0, searched.stderr
    assert searched.stderr.startswith("atmpvault: index schema 1 is not 2: rebuilding")
    for args in (("ls", "--json"), ("search", "viability", "--json")):
        again = run(old_vault, *args)
        assert again.exit_code == 0 and again.stderr == ""
    assert run(old_vault, "verify").exit_code == 0


@pytest.mark.parametrize("name", sorted(expected()))
def test_old_vault_answers_as_before(old_vault: Path, name: str) -> None:
    case = expected()[name]
    result = run(old_vault, *case["args"])
    assert result.exit_code == 0, result.stderr
    new = json.loads(result.stdout)
    old = case["json"]
    if name.startswith("log"):
        # Writes of records now name the record and its version (they had none before).
        for entry in old:
            if entry["version"] is None:
                entry.pop("version")
    if name.startswith("search"):
        # Events are indexed now, as hits of their own kind, so the corpus statistics
        # behind a relevance score moved; which hits, and in which order, did not.
        for hit in old["hits"]:
            hit.pop("score")
    if name == "notices":
        # A notice now names the commit that recorded it (the old listing had none).
        for entry in old:
            assert entry.pop("commit") is None
    if name == "calendar":
        # Deliberate changes (the calendar lifecycle): a status or gate whose date has
        # passed is history, not overdue, so it leaves the default window; PDUFA goals
        # (the day-74 letter, meeting timelines, minutes) are labelled fda-goal.
        old = [m for m in old if not (m["kind"] in ("status", "gate") and m["days_left"] < 0)]
        for m in old:
            if m["rule"] == "BLA_DAY74" or m["rule"].startswith("MEETING_"):
                m["kind"] = "fda-goal"
    same(old, new, name)


def test_old_vault_history_is_untouched(old_vault: Path) -> None:
    """Upgrading rewrites no history: the branch, the tags and every object stay."""
    import subprocess

    def refs() -> str:
        return subprocess.run(
            ["git", f"--git-dir={old_vault / 'repo.git'}", "show-ref"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    before = refs()
    assert run(old_vault, "ls").exit_code == 0
    assert run(old_vault, "rebuild").exit_code == 0
    assert refs() == before
    log = json.loads(run(old_vault, "log", "--json").stdout)
    assert [e["commit"] for e in log] == [e["commit"] for e in expected()["log"]["json"]]


def test_old_vault_takes_new_writes(old_vault: Path, tmp_path: Path) -> None:
    event = run(old_vault, "event", "add", "IND-012345", "ind-effective", "--on", "2026-02-05",
                "--json")  # fmt: skip
    assert event.exit_code == 0, event.stderr
    assert json.loads(event.stdout)["event"]["id"] == "EV-000005"
    corrected = run(old_vault, "event", "correct", "EV-000002", "--on", "2026-04-02",
                    "--reason", "letter date")  # fmt: skip
    assert corrected.exit_code == 0, corrected.stderr
    history = json.loads(run(old_vault, "log", "--id", "EV-000002", "--json").stdout)
    assert [(e["action"], e["version"]) for e in history] == [
        ("event-add", 1),
        ("event-correct", 2),
    ]
    assert run(old_vault, "verify").exit_code == 0
