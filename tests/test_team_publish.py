"""`publish`: an existing vault's history becomes a new shared repository's; `sync
--watch` keeps a read-only wall display up to date."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.conftest import CLI, cli_env, run


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def add(vault: Path, folder: Path, name: str) -> str:
    path = folder / name
    path.write_text(f"batch record {name}")
    result = run(vault, "add", str(path), "--program", "CART-19", "--type", "batch-record",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return str(json.loads(result.stdout)["id"])


def test_publish_makes_a_vault_the_content_of_a_new_shared_repository(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    first = add(vault, tmp_path, "one.txt")
    busy = tmp_path / "busy.git"
    assert run(None, "init-shared", str(busy)).exit_code == 0
    refused = run(vault, "publish", str(busy))
    assert refused.exit_code == 1 and "is not empty" in refused.stderr
    assert (
        "upstream" not in json.loads((vault / "settings.json").read_text() or "{}")
        if (vault / "settings.json").exists()
        else True
    )

    empty = tmp_path / "empty.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(empty)], check=True)
    published = run(vault, "publish", str(empty))
    assert published.exit_code == 0, published.stderr
    local = git(vault / "repo.git", "rev-parse", "main")
    assert git(empty, "rev-parse", "main") == local
    assert json.loads((vault / "settings.json").read_text())["upstream"] == str(empty)
    again = run(vault, "publish", str(empty))
    assert again.exit_code == 1 and "already publishes to" in again.stderr

    # From now on every write is published, and a colleague's clone sees both.
    second = add(vault, tmp_path, "two.txt")
    assert git(empty, "rev-parse", "main") == git(vault / "repo.git", "rev-parse", "main")
    colleague = tmp_path / "colleague"
    assert run(None, "clone", f"file://{empty}", str(colleague)).exit_code == 0
    listed = json.loads(run(colleague, "ls", "--json").stdout)
    assert sorted(d["id"] for d in listed) == sorted([first, second])


def test_sync_watch_keeps_a_wall_display_current(tmp_path: Path) -> None:
    upstream = tmp_path / "shared.git"
    assert run(None, "init-shared", str(upstream)).exit_code == 0
    writer, wall = tmp_path / "writer", tmp_path / "wall"
    for vault in (writer, wall):
        assert run(None, "clone", str(upstream), str(vault)).exit_code == 0
    watching = subprocess.Popen(
        [*CLI, "--vault", str(wall), "sync", "--watch", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        assert watching.stdout is not None
        while watching.stdout.readline().strip() != "}":  # its first sync, reported
            assert watching.poll() is None, watching.stderr.read() if watching.stderr else ""
        written = add(writer, tmp_path, "new.txt")  # only a later sync can bring this
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = json.loads(run(wall, "ls", "--json").stdout)
            if [d["id"] for d in shown] == [written]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the wall display never caught up")
    finally:
        watching.terminate()
        out, _ = watching.communicate(timeout=30)
    assert '"commits": 1' in out  # the later sync that brought the colleague's write
    assert git(wall / "repo.git", "rev-parse", "main") == git(upstream, "rev-parse", "main")
