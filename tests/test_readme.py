"""The README's search examples find something in the demo vault (the README stays true)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import run

README = Path(__file__).resolve().parents[1] / "README.md"


def examples() -> list[list[str]]:
    """Each search example: the query language table's, then the command lines'."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| form | example |") :].split("\n\n", 1)[0]
    found = [
        [query]
        for row in table.splitlines()[2:]
        for query in re.findall(r"`([^`]+)`", row.split("|")[2])
    ]
    for line in text.splitlines():
        if line.startswith("atmpvault --vault V search "):
            found.append(shlex.split(line.removeprefix("atmpvault --vault V search ")))
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("readme") / "demo"
    assert run(None, "demo", str(path)).exit_code == 0
    return path


def test_the_readme_has_search_examples() -> None:
    assert len(examples()) >= 20


@pytest.mark.parametrize("args", examples(), ids=lambda a: " ".join(a)[:60])
def test_readme_example_finds_something_in_the_demo(demo: Path, args: list[str]) -> None:
    result = run(demo, "search", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["total"] >= 1, args


def test_status_filters_and_every_hit_says_its_status(demo: Path) -> None:
    withdrawn = json.loads(run(demo, "search", "status:withdrawn", "--json").stdout)["hits"]
    assert [(h["id"], h["status"]) for h in withdrawn] == [("DOC-000008", "withdrawn")]
    active = json.loads(run(demo, "search", "fda", "--json").stdout)["hits"]
    assert {h["status"] for h in active if h["id"] != "DOC-000008"} == {"active"}
    text = run(demo, "search", "vector copy number").stdout
    assert "DOC-000008 v2  [WITHDRAWN]" in text
