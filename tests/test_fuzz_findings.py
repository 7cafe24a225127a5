"""Plain tests for what the command-line fuzzer (tests/test_fuzz.py) found."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from atmpvault.errors import QueryError
from atmpvault.indexer.query import parse
from tests.conftest import CLI, cli_env, run


@pytest.mark.parametrize("query", ["\udcff", "batch \udce9tude", 'title:"r\udcc3sum\udce9"'])
def test_a_query_with_bytes_that_are_not_utf8_is_bad_input(query: str) -> None:
    # A terminal in Latin-1 hands Python such bytes as lone surrogates; the engine
    # raised UnicodeEncodeError on them.
    with pytest.raises(QueryError, match="is not text"):
        parse(query)


def test_search_for_bytes_that_are_not_utf8_exits_2(vault_path: Path, sample_pdf: Path) -> None:
    assert (
        run(vault_path, "add", str(sample_pdf), "--program", "CART-19", "--type", "sop").exit_code
        == 0
    )
    result = subprocess.run(
        [os.fsencode(a) for a in [*CLI, "--vault", str(vault_path), "search"]] + [b"\xe9tude"],
        capture_output=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().splitlines() == [
        "atmpvault: position 1 is not text (a byte that is not UTF-8?)"
    ]
