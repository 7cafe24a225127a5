"""Every module imports alone in a fresh interpreter (no import circle, no hidden order).

After pip-tools' test_circular_imports: a circle held together by function-level imports
or by the order other modules happen to be imported in shows up here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import atmpvault

ROOT = Path(atmpvault.__file__).parent


def modules() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":
            found.append(".".join(parts))
    return found


def test_every_package_is_listed() -> None:
    names = modules()
    assert "atmpvault.archive.core.vault" in names and "atmpvault.cli" in names
    assert len(names) > 40


@pytest.mark.parametrize("module", modules())
def test_module_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
