"""A team on one archive (issue 15): a shared upstream served by path and by a real
`git daemon` on loopback, workstations that publish every write and converge after
`sync`, concurrent writers on two workstations (SQLite catalogs, then one shared
PostgreSQL catalog), and each failure: an unreachable upstream, a writer killed before
and after its push, an upstream rewritten behind the vault's back, and two workstations
revising the same document at the same moment.

Every workstation command here runs as a real `atmpvault` process; reads compared
between workstations run in-process.
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import CLI, PG_URL, cli_env, postgres_database, run

NEW = ("--program", "CART-19", "--type", "batch-record")


# -- helpers ------------------------------------------------------------------------------


def atm(
    vault: Path | None, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """One real `atmpvault` process."""
    argv = [*CLI, *(["--vault", str(vault)] if vault is not None else []), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, env=cli_env(**env), timeout=timeout, check=False
    )


def ok(vault: Path | None, *args: str, **env: str) -> str:
    done = atm(vault, *args, **env)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", f"--git-dir={repo}", *args],
        capture_output=True,
        text=True,
        check=check,
        env=cli_env(),
    )


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "refs/heads/main").stdout.strip()


def commits(repo: Path) -> int:
    return int(git(repo, "rev-list", "--count", "refs/heads/main").stdout)


def listing(vault: Path) -> list[dict[str, Any]]:
    result = run(vault, "ls", "--json")
    assert result.exit_code == 0, result.stderr
    return list(json.loads(result.stdout))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """A real `git daemon` on loopback, receive-pack enabled, serving `base`."""

    def __init__(self, base: Path) -> None:
        self.base, self.port = base, free_port()
        self.url = f"git://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "git", "daemon", "--reuseaddr", f"--base-path={self.base}", "--export-all",
                "--enable=receive-pack", "--listen=127.0.0.1", f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(400):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, "git daemon exited"
                time.sleep(0.05)
        raise AssertionError("git daemon never answered")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    """A `git daemon` serving tmp_path/srv on a free loopback port, stopped at the end."""
    base = tmp_path / "srv"
    base.mkdir()
    served = Daemon(base)
    try:
        served.start()
        yield served
    finally:
        served.stop()


def shared(tmp_path: Path, how: str, daemon: Daemon | None) -> tuple[Path, str]:
    """A new shared upstream: its bare repository, and the URL workstations use."""
    if how == "daemon":
        assert daemon is not None
        bare = daemon.base / "atmpvault.git"
        url = f"{daemon.url}/atmpvault.git"
    else:
        bare = tmp_path / "srv-path" / "atmpvault.git"
        url = str(bare)
    ok(None, "init-shared", str(bare))
    return bare, url


@pytest.fixture(params=["path", "daemon"])
def upstream(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A shared upstream by plain path, or served by a `git daemon` on loopback."""
    served = request.getfixturevalue("daemon") if request.param == "daemon" else None
    return shared(tmp_path, request.param, served)


@pytest.fixture
def served(tmp_path: Path, daemon: Daemon) -> tuple[Path, str]:
    """A shared upstream served by a `git daemon` on loopback."""
    return shared(tmp_path, "daemon", daemon)


def workstation(tmp_path: Path, url: str, name: str) -> Path:
    vault = tmp_path / name
    ok(None, "clone", url, str(vault))
    return vault


def answers(vault: Path) -> dict[str, Any]:
    """What a workstation answers: listing, every history, calendar, audit trail."""
    got: dict[str, Any] = {}
    for args in (("ls", "--json"), ("calendar", "--json"), ("log", "--json")):
        result = run(vault, *args)
        assert result.exit_code == 0, (args, result.stderr)
        got[args[0]] = json.loads(result.stdout)
    for doc in got["ls"]:
        result = run(vault, "history", doc["id"], "--json")
        assert result.exit_code == 0, result.stderr
        got[f"history {doc['id']}"] = json.loads(result.stdout)
    return got


def assert_converged(*vaults: Path) -> dict[str, Any]:
    """After `sync`, every workstation answers identically and verifies clean."""
    for vault in vaults:
        ok(vault, "sync")
    first = answers(vaults[0])
    for vault in vaults[1:]:
        assert answers(vault) == first
    for vault in vaults:
        verified = run(vault, "verify")
        assert verified.exit_code == 0, verified.stdout + verified.stderr
    return first


# -- 1. the shared repository refuses anything but growth ----------------------------------


def test_init_shared_makes_a_repository_whose_history_can_only_grow(tmp_path: Path) -> None:
    bare = tmp_path / "atmpvault.git"
    said = ok(None, "init-shared", str(bare))
    assert "shared repository ready" in said
    assert commits(bare) == 1
    files = git(bare, "ls-tree", "-r", "--name-only", "refs/heads/main").stdout.split()
    assert "config/vault.json" in files
    for key in ("receive.denyNonFastForwards", "receive.denyDeletes"):
        assert git(bare, "config", key).stdout.strip() == "true"

    # A plain git clone, as anyone with access to the share has: it cannot rewrite.
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, env=cli_env())
    seeded = head(bare)
    subprocess.run(
        ["git", "-c", "user.name=x", "-c", "user.email=x@x", "-C", str(work),
         "commit", "-q", "--amend", "--allow-empty", "-m", "the seed, rewritten"],
        check=True, env=cli_env(),
    )  # fmt: skip
    forced = subprocess.run(
        ["git", "-C", str(work), "push", "--force", "origin", "HEAD:main"],
        capture_output=True, text=True, env=cli_env(),
    )  # fmt: skip
    assert forced.returncode != 0
    assert "non-fast-forward" in forced.stderr or "rejected" in forced.stderr
    deleted = subprocess.run(
        ["git", "-C", str(work), "push", "origin", ":main"],
        capture_output=True, text=True, env=cli_env(),
    )  # fmt: skip
    assert deleted.returncode != 0
    assert "deletion prohibited" in deleted.stderr or "rejected" in deleted.stderr
    assert head(bare) == seeded and commits(bare) == 1
    assert git(bare, "fsck", "--strict").returncode == 0


# -- 2. two workstations publish and converge ------------------------------------------------


def test_two_workstations_publish_and_converge(tmp_path: Path, upstream: tuple[Path, str]) -> None:
    bare, url = upstream
    a = workstation(tmp_path, url, "a")
    b = workstation(tmp_path, url, "b")
    added = json.loads(ok(a, "add", str(write(tmp_path / "a1.txt", "BR from a\n")), *NEW, "--json"))
    ok(a, "app", "new", "ind", "IND 012345", "--program", "CART-19")
    ok(a, "event", "add", "IND-012345", "ind-received", "--on", "2026-01-05")
    # b has not synced: its write fetches first, so its id follows a's.
    second = json.loads(
        ok(b, "add", str(write(tmp_path / "b1.txt", "BR from b\n")), *NEW, "--json")
    )
    assert (added["id"], second["id"]) == ("DOC-000001", "DOC-000002")
    ok(b, "lot", "new", "L-0042", "--program", "CART-19")
    ok(b, "add", str(write(tmp_path / "a1r.txt", "BR from a, r2\n")), "--id", added["id"],
       "--reason", "QA review corrections")  # fmt: skip
    assert commits(bare) == 1 + 6

    shown = json.loads(ok(a, "remote", "show", "--json"))
    assert shown["upstream"] == url and (shown["behind"], shown["ahead"]) == (3, 0)
    shown = json.loads(ok(b, "remote", "show", "--json"))
    assert (shown["behind"], shown["ahead"]) == (0, 0)
    synced = json.loads(ok(a, "sync", "--json"))
    assert synced["commits"] == 3

    got = assert_converged(a, b)
    assert [(d["id"], d["version"]) for d in got["ls"]] == [("DOC-000001", 2), ("DOC-000002", 1)]
    assert head(a / "repo.git") == head(b / "repo.git") == head(bare)
    assert json.loads(ok(a, "remote", "show", "--json"))["behind"] == 0
    assert git(bare, "fsck", "--strict").returncode == 0


# -- 3. two workstations writing at once -------------------------------------------------------

# One workstation's writer: a loop of real `atmpvault` commands, 100 writes of five kinds
# (new documents, revisions with a reason, applications, events, lots), one JSON line each.
WRITER = textwrap.dedent(
    """
    import json, subprocess, sys, time
    from pathlib import Path

    cli, vault, tag, count, gun = json.loads(sys.argv[1]), *sys.argv[2:6]
    folder = Path(vault).parent / f"files-{tag}"
    folder.mkdir()
    while not Path(gun).exists():
        time.sleep(0.005)
    number = {"a": 100000, "b": 200000}[tag]
    docs, apps, events = [], [], {}

    def atm(*args):
        done = subprocess.run([*cli, "--vault", vault, *args], capture_output=True, text=True)
        print(json.dumps({"args": args, "rc": done.returncode, "out": done.stdout,
                          "err": done.stderr}), flush=True)
        return done.stdout if done.returncode == 0 else None

    for i in range(int(count)):
        slot, cycle = i % 10, i // 10
        if slot in (0, 1, 2):
            path = folder / f"doc-{i}.txt"
            path.write_text(f"batch record from workstation {tag}, write {i}\\n")
            out = atm("add", str(path), "--program", "CART-19", "--type", "batch-record",
                      "--json")
            if out:
                docs.append((json.loads(out)["id"], path))
        elif slot in (3, 4, 5):
            if len(docs) < slot - 2:
                print(json.dumps({"args": ["revise", "nothing to revise"], "rc": -1}))
                continue
            doc, path = docs[-(slot - 2)]
            path.write_text(path.read_text() + f"revised by {tag} at write {i}\\n")
            atm("add", str(path), "--id", doc, "--reason", f"correction {tag}{i}")
        elif slot in (6, 7):
            atm("lot", "new", f"L-{tag.upper()}{i:03d}", "--program", "CART-19")
        elif slot == 8 and cycle % 2 == 0:
            number += 1
            if atm("app", "new", "ind", f"{number:06d}", "--program", "CART-19"):
                apps.append(f"IND-{number:06d}")
        elif not apps:
            print(json.dumps({"args": ["event", "no application"], "rc": -1}))
        else:
            app = apps[-1]
            first = events.setdefault(app, 0) == 0
            events[app] += 1
            day = f"2026-0{1 + events[app] % 9}-0{1 + cycle % 9}"
            if first:
                atm("event", "add", app, "ind-received", "--on", day)
            else:
                atm("event", "add", app, "meeting-request-received", "--on", day,
                    "--meeting-type", "C")
    """
)
WRITES = 100  # per workstation, as issue 15 asks


def write_concurrently(tmp_path: Path, vaults: list[Path]) -> list[dict[str, Any]]:
    """Every vault's writer started at the same moment; every command's outcome."""
    gun = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, json.dumps(CLI), str(vault), tag, str(WRITES), str(gun)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )  # fmt: skip
        for vault, tag in zip(vaults, "ab", strict=False)
    ]
    gun.touch()
    outcomes: list[dict[str, Any]] = []
    for proc in writers:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        outcomes += [json.loads(line) for line in out.splitlines()]
    return outcomes


def assert_all_written(bare: Path, outcomes: list[dict[str, Any]], *vaults: Path) -> None:
    failed = [o for o in outcomes if o["rc"] != 0]
    assert not failed, [(o["args"][:2], o.get("err")) for o in failed[:5]]
    assert len(outcomes) == 2 * WRITES
    assert commits(bare) == 1 + 2 * WRITES  # the seed, then one commit per write
    assert git(bare, "fsck", "--strict").returncode == 0
    got = assert_converged(*vaults)
    docs = got["ls"]
    assert sorted(d["id"] for d in docs) == [f"DOC-{n:06d}" for n in range(1, 61)]
    assert {d["version"] for d in docs} == {2}  # every revision kept, none lost
    writes = [e for e in got["log"] if e["action"] != "init"]
    assert len(writes) == 2 * WRITES
    assert len({e["commit"] for e in got["log"]}) == len(got["log"])
    records = [(e["kind"], e["id"], e["version"]) for e in writes]
    assert len(set(records)) == len(records)  # no two writes took the same id and version
    lots = json.loads(run(vaults[0], "lot", "ls", "--json").stdout)
    assert len({lot["id"] for lot in lots}) == 40
    events = {e["id"] for e in writes if e["kind"] == "event"}
    assert len(events) == 30


def test_two_workstations_write_100_each_concurrently(
    tmp_path: Path, upstream: tuple[Path, str]
) -> None:
    """By a git daemon on loopback and by path (a file share)."""
    bare, url = upstream
    vaults = [workstation(tmp_path, url, name) for name in ("a", "b")]
    outcomes = write_concurrently(tmp_path, vaults)
    assert_all_written(bare, outcomes, *vaults)


def test_two_workstations_write_concurrently_on_one_postgresql_catalog(
    tmp_path: Path, served: tuple[Path, str]
) -> None:
    if not PG_URL:
        pytest.skip("ATMPVAULT_TEST_PG_URL is not set")
    bare, url = served
    with postgres_database() as catalog:
        vaults = []
        for name in ("a", "b"):
            vault = workstation(tmp_path, url, name)
            (vault / "settings.json").write_text(
                json.dumps({"catalog_url": catalog, "upstream": url})
            )
            (vault / "catalog.sqlite").unlink()  # the clone's own: from now on the shared one
            vaults.append(vault)
        outcomes = write_concurrently(tmp_path, vaults)
        assert_all_written(bare, outcomes, *vaults)
        assert not any((vault / "catalog.sqlite").exists() for vault in vaults)
        engine = sa.create_engine(catalog)
        try:
            with engine.connect() as conn:
                documents = conn.execute(sa.text("SELECT count(*) FROM versions")).scalar_one()
        finally:
            engine.dispose()
        assert documents == 120  # 60 documents, two versions each, each applied once


# -- 4. failures ----------------------------------------------------------------------------


def refs(repo: Path) -> str:
    """Every ref of a repository and where it points."""
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)").stdout


def state(vault: Path) -> tuple[str, str, list[dict[str, Any]]]:
    """A workstation as a user sees it: its branch, its other refs, its listing."""
    repo = vault / "repo.git"
    others = "\n".join(
        line for line in refs(repo).splitlines() if not line.startswith("refs/remotes/")
    )
    return head(repo), others, listing(vault)


def add_new(vault: Path, tmp_path: Path, name: str, **env: str) -> subprocess.CompletedProcess[str]:
    return atm(vault, "add", str(write(tmp_path / name, f"batch record {name}\n")), *NEW, **env)


@pytest.mark.parametrize("how", ["daemon", "path"])
def test_an_unreachable_upstream_refuses_the_write_and_changes_nothing(
    tmp_path: Path, daemon: Daemon, how: str
) -> None:
    bare, url = shared(tmp_path, how, daemon)
    a = workstation(tmp_path, url, "a")
    assert add_new(a, tmp_path, "first.txt").returncode == 0
    if how == "daemon":
        daemon.stop()
    else:
        bare.rename(bare.with_name("moved-away.git"))
    before = state(a)
    for args in (
        ("add", str(write(tmp_path / "second.txt", "a second record\n")), *NEW),
        ("add", str(write(tmp_path / "r2.txt", "revised\n")), "--id", "DOC-000001",
         "--reason", "QA review corrections"),
        ("lot", "new", "L-0042", "--program", "CART-19"),
    ):  # fmt: skip
        refused = atm(a, *args)
        assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
        assert "upstream unreachable" in refused.stderr
        assert "nothing written" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert state(a) == before
    # Reads answer from the local copy, and say when it is older than the team allows.
    assert [d["id"] for d in json.loads(ok(a, "ls", "--json"))] == ["DOC-000001"]
    settings = json.loads((a / "settings.json").read_text())
    (a / "settings.json").write_text(json.dumps({**settings, "stale_after_minutes": 1e-6}))
    late = atm(a, "ls")
    assert late.returncode == 0 and "last reached its upstream" in late.stderr


@pytest.mark.parametrize("how", ["daemon", "path"])
def test_a_writer_killed_before_its_push_leaves_nothing_anywhere(
    tmp_path: Path, daemon: Daemon, how: str
) -> None:
    bare, url = shared(tmp_path, how, daemon)
    a = workstation(tmp_path, url, "a")
    assert add_new(a, tmp_path, "first.txt").returncode == 0
    up, before = head(bare), state(a)
    killed = add_new(a, tmp_path, "killed.txt", ATMPVAULT_FAULT="before-push")
    assert killed.returncode == -9
    assert head(bare) == up and head(a / "repo.git") == before[0]
    assert listing(a) == before[2]
    assert git(bare, "tag", "--list").stdout == ""
    # The next write is not hindered by what the killed one left behind.
    again = add_new(a, tmp_path, "killed.txt")
    assert again.returncode == 0, again.stderr
    assert [d["id"] for d in listing(a)] == ["DOC-000001", "DOC-000002"]
    assert commits(bare) == 3 and head(bare) == head(a / "repo.git")


@pytest.mark.parametrize("then", ["sync", "write"])
def test_a_writer_killed_after_its_push_is_brought_in_once(
    tmp_path: Path, served: tuple[Path, str], then: str
) -> None:
    bare, url = served
    a = workstation(tmp_path, url, "a")
    assert add_new(a, tmp_path, "first.txt").returncode == 0
    local = head(a / "repo.git")
    killed = add_new(a, tmp_path, "pushed.txt", ATMPVAULT_FAULT="after-push")
    assert killed.returncode == -9
    assert commits(bare) == 3  # the upstream has it ...
    assert head(a / "repo.git") == local  # ... this copy does not yet
    if then == "sync":
        assert json.loads(ok(a, "sync", "--json"))["commits"] == 1
        expected = ["DOC-000001", "DOC-000002"]
    else:
        assert add_new(a, tmp_path, "next.txt").returncode == 0
        expected = ["DOC-000001", "DOC-000002", "DOC-000003"]
    assert commits(bare) == 1 + len(expected)  # never doubled
    assert head(a / "repo.git") == head(bare)
    docs = listing(a)
    assert [d["id"] for d in docs] == expected  # never lost, listed once
    log = json.loads(run(a, "log", "--json").stdout)
    assert [e["id"] for e in log if e["action"] == "add"] == expected
    verified = run(a, "verify")
    assert verified.exit_code == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("rewrite", ["moved-back", "unrelated"])
def test_an_upstream_rewritten_behind_the_vaults_back_is_refused_loudly(
    tmp_path: Path, served: tuple[Path, str], rewrite: str
) -> None:
    bare, url = served
    a = workstation(tmp_path, url, "a")
    for name in ("first.txt", "second.txt"):
        assert add_new(a, tmp_path, name).returncode == 0
    before = state(a)
    if rewrite == "moved-back":
        target = git(bare, "rev-parse", "refs/heads/main~1").stdout.strip()
    else:
        empty = git(bare, "hash-object", "-t", "tree", "-w", "--stdin").stdout.strip()
        target = subprocess.run(
            ["git", f"--git-dir={bare}", "-c", "user.name=x", "-c", "user.email=x@x",
             "commit-tree", empty, "-m", "another history"],
            capture_output=True, text=True, check=True, env=cli_env(),
        ).stdout.strip()  # fmt: skip
    git(bare, "update-ref", "refs/heads/main", target)  # behind the repository's own rules

    for args in (("add", str(write(tmp_path / "third.txt", "third\n")), *NEW), ("sync",)):
        refused = atm(a, *args)
        assert refused.returncode == 3, (args, refused.stdout, refused.stderr)
        assert "upstream" in refused.stderr and "nothing local was discarded" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert state(a) == before
    assert head(bare) == target


# A writer that waits for the starting gun, then runs one `atmpvault` command.
AT_THE_GUN = "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): time.sleep(0.002)\n" + (
    "os.execv(sys.argv[2], sys.argv[2:])"
)


@pytest.mark.parametrize("same_bytes", [True, False])
def test_two_workstations_revising_one_document_at_the_same_moment(
    tmp_path: Path, served: tuple[Path, str], same_bytes: bool
) -> None:
    bare, url = served
    a = workstation(tmp_path, url, "a")
    b = workstation(tmp_path, url, "b")
    assert add_new(a, tmp_path, "br.txt").returncode == 0
    ok(b, "sync")
    files = [
        write(tmp_path / f"br-r2-{name}.txt", "corrected\n" if same_bytes else f"by {name}\n")
        for name in ("a", "b")
    ]
    gun = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                AT_THE_GUN,
                str(gun),
                *CLI,
                "--vault",
                str(vault),
                "add",
                str(path),
                "--id",
                "DOC-000001",
                "--reason",
                f"correction from {vault.name}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )  # fmt: skip
        for vault, path in ((a, files[0]), (b, files[1]))
    ]
    gun.touch()
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append((proc.returncode, out, err))
    codes = sorted(code for code, _out, _err in done)
    if same_bytes:
        assert codes == [0, 1], done
        said = next(err for code, _out, err in done if code == 1).strip()
        assert "\n" not in said and "nothing changed" in said and "DOC-000001 version 2" in said
        assert commits(bare) == 3
    else:
        assert codes == [0, 0], done
        assert commits(bare) == 4
    got = assert_converged(a, b)
    history = got["history DOC-000001"]
    expected = [1, 2] if same_bytes else [1, 2, 3]
    assert [v["version"] for v in history] == expected
    kept = {v["sha256"] for v in history[1:]}
    assert kept == {hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
