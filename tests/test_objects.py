"""Reading a small file from the object files (repository/objects.py) answers exactly as git
does, whether the objects are loose or packed with either kind of delta, and hands over
to git whatever it cannot answer, never a wrong answer."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atmpvault.repository.fastimport import NewCommit
from atmpvault.repository.git import GitStore, ObjectDamaged
from atmpvault.repository.objects import NotReadHere, read_path
from tests.test_verify import explode_packs, flip_byte, stored

WHEN = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", f"--git-dir={repo}", *args], capture_output=True, text=True, check=True
    ).stdout


def cat_file(repo: Path, commit: str, path: str) -> bytes | None:
    """What git itself answers for `path` at `commit` (None: no such file)."""
    done = subprocess.run(
        ["git", f"--git-dir={repo}", "cat-file", "blob", f"{commit}:{path}"], capture_output=True
    )
    return done.stdout if done.returncode == 0 else None


def history(tmp_path: Path) -> tuple[GitStore, list[str], list[str]]:
    """A repository of 40 commits, each revising a growing configuration a little (good
    material for deltas) and adding a document beside it."""
    store = GitStore.create(tmp_path / "repo.git")
    settings = {f"key{n}": f"value {n} " * 20 for n in range(60)}
    commits: list[str] = []
    paths = ["config/vault.json", "notices/a/b.json", "README"]
    for n in range(40):
        settings[f"key{n}"] = f"changed in commit {n}"
        text = "\n".join(f"{k}: {v}" for k, v in settings.items()).encode()
        files: dict[str, bytes | None] = {"config/vault.json": text}
        files[f"docs/{n % 3}/DOC-{n:06d}/record.json"] = b'{"id": %d}\n' % n
        if n == 5:
            files["notices/a/b.json"] = b"a notice"
        if n == 30:
            files["notices/a/b.json"] = None  # removed again
        commits.append(store.commit(NewCommit(files, f"commit {n}", "qa", WHEN), store.head()))
        paths.append(f"docs/{n % 3}/DOC-{n:06d}/record.json")
    return store, commits, paths


def answers_as_git(repo: Path, commits: list[str], paths: list[str]) -> None:
    for commit in commits:
        for path in paths + ["config", "config/vault.json/more", "docs/0", "nothing/here"]:
            assert read_path(repo, commit, path) == cat_file(repo, commit, path), (commit, path)


@pytest.mark.parametrize(
    "repack",
    [
        [],  # as written: a pack per write
        ["repack", "-a", "-d", "-f", "--depth=50", "--window=250"],  # deltas by offset
        ["-c", "repack.useDeltaBaseOffset=false", "repack", "-a", "-d", "-f", "--depth=50"],
    ],
    ids=["written", "offset-deltas", "id-deltas"],
)
def test_every_file_at_every_commit_reads_as_git_reads_it(
    tmp_path: Path, repack: list[str]
) -> None:
    store, commits, paths = history(tmp_path)
    if repack:
        git(store.path, *repack)
        assert len(list((store.path / "objects" / "pack").glob("*.pack"))) == 1
        stats = git(store.path, "verify-pack", "-v", *(store.path / "objects/pack").glob("*.idx"))
        assert "chain length = 2" in stats  # the configuration's versions are deltas
    answers_as_git(store.path, commits, paths)


def test_loose_objects_read_as_git_reads_them(tmp_path: Path) -> None:
    store, commits, paths = history(tmp_path)
    explode_packs(tmp_path)  # the vault folder of tmp_path / "repo.git"
    assert not list((store.path / "objects" / "pack").glob("*.pack"))
    answers_as_git(store.path, commits, paths)


def test_what_it_cannot_answer_is_left_to_git(tmp_path: Path) -> None:
    store, commits, _paths = history(tmp_path)
    head = commits[-1]
    with pytest.raises(NotReadHere):
        read_path(store.path, "0" * 40, "config/vault.json")  # no such object here
    with pytest.raises(NotReadHere):
        read_path(store.path, head[:12], "config/vault.json")  # not a full id
    (store.path / "objects" / "info" / "alternates").write_text("/elsewhere/objects\n")
    with pytest.raises(NotReadHere):
        read_path(store.path, head, "config/vault.json")
    (store.path / "objects" / "info" / "alternates").unlink()
    # GitStore asks git for what the object files do not answer, and answers alike.
    assert store.read_small(head[:12], "config/vault.json") == cat_file(
        store.path, head, "config/vault.json"
    )


def test_a_damaged_object_is_never_read_as_a_file(tmp_path: Path) -> None:
    """A byte changed in the configuration's compressed object: the reader does not return
    what it inflates to; git is asked, and the damage is reported as damage."""
    store, commits, _paths = history(tmp_path)
    git(store.path, "repack", "-a", "-d", "-f")
    blob = git(store.path, "rev-parse", f"{commits[-1]}:config/vault.json").strip()
    (pack,) = (store.path / "objects" / "pack").glob("*.pack")
    flip_byte(pack, stored(pack)[blob][0] + 8)  # inside its compressed bytes
    with pytest.raises(NotReadHere):
        read_path(store.path, commits[-1], "config/vault.json")
    with pytest.raises(ObjectDamaged):
        store.read_small(commits[-1], "config/vault.json")


def test_ls_and_search_of_a_controlled_vault_start_no_git_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The access check reads the configuration and the acting user's record at the tip
    from the object files; on a current vault, `ls` and `search` start no git at all."""
    from tests.conftest import CLI, cli_env, run
    from tests.signing import team

    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    team(vault, tmp_path / "keys", monkeypatch, me=("admin", "quality"))
    doc = tmp_path / "sop.txt"
    doc.write_text("Thawing of cryopreserved apheresis material")
    assert run(vault, "add", str(doc), "--program", "CART-19", "--type", "sop").exit_code == 0
    assert run(vault, "search", "thawing").exit_code == 0  # the index is current
    shims = tmp_path / "shims"
    shims.mkdir()
    calls = tmp_path / "git-calls"
    real = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    (shims / "git").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {real} "$@"\n')
    (shims / "git").chmod(0o755)
    env = cli_env(PATH=f"{shims}{os.pathsep}{os.environ['PATH']}")
    for argv in (["ls"], ["search", "thawing"]):
        done = subprocess.run([*CLI, "--vault", str(vault), *argv], capture_output=True,
                              text=True, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "DOC-000001" in done.stdout
    assert not calls.exists(), calls.read_text()
