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
    # The quality story: a deviation closed into its lot's batch record, a lot released,
    # another held by an open deviation.
    assert "cannot be released: deviation DEV-2026-0002" in result.stdout
    released = json.loads(run(path, "lot", "show", "C19-2026-001", "--json").stdout)
    assert released["lot"]["status"] == "administered"  # released, shipped, infused
    assert "deviation-package" in {d["type"] for d in released["documents"]}
    listed = json.loads(run(path, "ls", "--json").stdout)
    assert len(listed) == 14  # 12 seeded, the closure package and a CoC certificate
    assert "dosing board --days 35" in result.stdout and "ld-before-release" in result.stdout
    custody = json.loads(run(path, "custody", "status", "--json").stdout)
    assert [(c["lot"], c["step"], c["open_breaks"]) for c in custody] == [
        ("C19-2026-001", "administration", 0), ("C19-2026-002", "collection", 1),
    ]  # fmt: skip
    assert {d["program"] for d in listed} == {"CART-19", "AAV9-SMA"}
    assert any(d["status"] == "withdrawn" for d in listed)
    assert any(d["version"] == 3 for d in listed)
    # Access control on at the end: you, the admin, signed the protocol and the lot.
    assert "users ls  # you, as admin: access control on" in result.stdout
    signed = json.loads(run(path, "signatures", "lot:C19-2026-001", "--json").stdout)
    assert [(s["meaning"], s["name"]) for s in signed] == [("review", "Demo Administrator")]
    assert (path / "demo-key").is_file()


def test_processes_the_tests_start_run_the_tree_under_test() -> None:
    """A child `atmpvault` imports this checkout, not whatever copy is installed."""
    import subprocess
    import sys

    from tests.conftest import ROOT, cli_env

    found = subprocess.run(
        [sys.executable, "-c", "import atmpvault; print(atmpvault.__file__)"],
        capture_output=True, text=True, env=cli_env(), check=True,
    ).stdout.strip()  # fmt: skip
    assert found == str(ROOT / "atmpvault" / "__init__.py")
