"""The quick start's main job: the demo builds a vault that verifies clean."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run


def test_demo_builds_a_vault_that_lists_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "demo"
    result = run(None, "demo", str(path))
    assert result.exit_code == 0, result.stderr
    assert "ok: every version re-hashed" in result.stdout
    listed = json.loads(run(path, "ls", "--json").stdout)
    assert len(listed) == 12
    assert {d["program"] for d in listed} == {"CART-19", "AAV9-SMA"}
    assert any(d["status"] == "withdrawn" for d in listed)
    assert any(d["version"] == 3 for d in listed)
