"""Bad input: one line on stderr, exit 1 (refused) or 2 (bad value), and nothing written."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import run

DOC = "DOC-000001"
UNKNOWN = "DOC-000099"


# -- helpers ------------------------------------------------------------------------------


def state(vault: Path) -> tuple[Any, Any]:
    """What a bad command must leave alone: the audit trail and the listing."""
    log, ls = run(vault, "log", "--json"), run(vault, "ls", "--json")
    assert log.exit_code == 0 and ls.exit_code == 0, log.stderr + ls.stderr
    return json.loads(log.stdout), json.loads(ls.stdout)


def assert_refused(result: Result, exit_code: int, *fragments: str) -> str:
    """One line on stderr naming the problem, nothing on stdout, the expected exit code."""
    assert "Traceback" not in result.stderr + result.stdout
    assert result.exit_code == exit_code, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("atmpvault: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]


def refused_and_unchanged(
    vault: Path, args: list[str], exit_code: int, *fragments: str, env: dict[str, str] | None = None
) -> str:
    before = state(vault)
    line = assert_refused(run(vault, *args, env=env), exit_code, *fragments)
    assert state(vault) == before
    return line


@pytest.fixture
def doc(vault_path: Path, tmp_path: Path) -> dict[str, Any]:
    """DOC-000001 (CART-19, batch-record, lot L-0042) with two versions."""
    files = {}
    for n in (1, 2):
        files[n] = tmp_path / f"br-v{n}.pdf"
        files[n].write_bytes(f"%PDF-1.4 batch record version {n}\n".encode())
    first = run(
        vault_path,
        "add",
        str(files[1]),
        "--program",
        "CART-19",
        "--type",
        "batch-record",
        "--lot",
        "L-0042",
        "--json",
    )
    assert first.exit_code == 0, first.stderr
    second = run(vault_path, "add", str(files[2]), "--id", DOC, "--reason", "QA corrections")
    assert second.exit_code == 0, second.stderr
    shown = json.loads(run(vault_path, "show", DOC, "--version", "1", "--json").stdout)
    fresh = tmp_path / "fresh.pdf"
    fresh.write_bytes(b"%PDF-1.4 something new\n")
    return {"files": files, "first_recorded_at": shown["recorded_at"], "fresh": str(fresh)}


def as_new(file: str) -> list[str]:
    return ["add", file, "--program", "CART-19", "--type", "batch-record"]


def as_revision(file: str) -> list[str]:
    return ["add", file, "--id", DOC, "--reason", "new data"]


# -- FILE problems ------------------------------------------------------------------------


def missing(tmp_path: Path) -> str:
    return str(tmp_path / "no-such-file.pdf")


def directory(tmp_path: Path) -> str:
    path = tmp_path / "a-folder"
    path.mkdir()
    (path / "inside.pdf").write_bytes(b"x")
    return str(path)


def dangling_symlink(tmp_path: Path) -> str:
    path = tmp_path / "dangling.pdf"
    path.symlink_to(tmp_path / "gone.pdf")
    return str(path)


def unreadable_by_permission(tmp_path: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root reads a chmod 000 file; the case below covers root")
    path = tmp_path / "locked.pdf"
    path.write_bytes(b"secret")
    path.chmod(0)
    return str(path)


def unreadable_by_the_kernel(tmp_path: Path) -> str:
    # Reading offset 0 of one's own memory fails with EIO, even for root.
    if not Path("/proc/self/mem").exists():
        pytest.skip("needs Linux /proc")
    path = tmp_path / "unreadable.pdf"
    path.symlink_to("/proc/self/mem")
    return str(path)


FILE_CASES: list[tuple[Callable[[Path], str], str]] = [
    (missing, "no such file"),
    (directory, "is a directory"),
    (dangling_symlink, "no such file"),
    (unreadable_by_permission, "cannot read"),
    (unreadable_by_the_kernel, "cannot read"),
]


@pytest.mark.parametrize("command", [as_new, as_revision], ids=["new", "revision"])
@pytest.mark.parametrize(("make", "fragment"), FILE_CASES, ids=[c[0].__name__ for c in FILE_CASES])
def test_bad_file_is_refused(
    doc: dict[str, Any],
    vault_path: Path,
    tmp_path: Path,
    command: Callable[[str], list[str]],
    make: Callable[[Path], str],
    fragment: str,
) -> None:
    file = make(tmp_path)
    refused_and_unchanged(vault_path, command(file), 1, fragment, file)


# -- unknown documents, versions, times ---------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["show", UNKNOWN],
        ["show", UNKNOWN, "--json"],
        ["get", UNKNOWN],
        ["get", UNKNOWN, "--version", "1"],
        ["history", UNKNOWN],
        ["withdraw", UNKNOWN, "--reason", "gone"],
        ["add", "{fresh}", "--id", UNKNOWN, "--reason", "revise"],
    ],
)
def test_unknown_document_is_refused(
    doc: dict[str, Any], vault_path: Path, args: list[str]
) -> None:
    args = [a.format(**doc) for a in args]
    refused_and_unchanged(vault_path, args, 1, UNKNOWN)


def test_unknown_document_get_to_a_file_writes_no_file(
    doc: dict[str, Any], vault_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.pdf"
    refused_and_unchanged(vault_path, ["get", UNKNOWN, "-o", str(out)], 1, UNKNOWN)
    assert not out.exists()


@pytest.mark.parametrize("number", ["3", "99"])
@pytest.mark.parametrize("command", ["show", "get", "get-to-file"])
def test_version_out_of_range_names_the_range(
    doc: dict[str, Any], vault_path: Path, tmp_path: Path, command: str, number: str
) -> None:
    out = tmp_path / "out.pdf"
    args = ["get", DOC, "-o", str(out)] if command == "get-to-file" else [command, DOC]
    line = refused_and_unchanged(vault_path, [*args, "--version", number], 1, DOC)
    assert "1 to 2" in line
    assert f"no version {number}" in line
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    "when",
    ["2000-01-01", "2001-06-30T12:00:00Z", "{before}"],
)
@pytest.mark.parametrize("command", ["show", "get", "get-to-file"])
def test_as_of_before_the_document_existed(
    doc: dict[str, Any], vault_path: Path, tmp_path: Path, command: str, when: str
) -> None:
    from datetime import datetime, timedelta

    before = datetime.fromisoformat(doc["first_recorded_at"]) - timedelta(microseconds=1)
    when = when.format(before=before.isoformat())
    out = tmp_path / "out.pdf"
    args = ["get", DOC, "-o", str(out)] if command == "get-to-file" else [command, DOC]
    line = refused_and_unchanged(vault_path, [*args, "--as-of", when], 1, DOC, "did not exist yet")
    assert doc["first_recorded_at"] in line
    assert not out.exists()


BAD_DATES = [
    "yesterday",
    "2026-02-30",
    "2026-13-01",
    "31/12/2026",
    "2026-03-01T25:00",
    "2026-03-01T10:00:00+25:00",
    "",
    "2026-03-01\x00",
]


@pytest.mark.parametrize("value", BAD_DATES)
@pytest.mark.parametrize(
    "args",
    [
        ["show", DOC, "--as-of"],
        ["get", DOC, "--as-of"],
        ["ls", "--as-of"],
        ["log", "--since"],
        ["log", "--until"],
    ],
    ids=["show", "get", "ls", "log-since", "log-until"],
)
def test_unparseable_date_is_a_usage_error(
    doc: dict[str, Any], vault_path: Path, args: list[str], value: str
) -> None:
    refused_and_unchanged(vault_path, [*args, value], 2, "cannot read", "as a date")


# -- codes: program, id, lot ---------------------------------------------------------------


BAD_PROGRAMS = [
    "CART/19",
    "../CART-19",
    "CART..19",
    "CART-19\x00",
    "CART\x0019",
    "CART\n19",
    "CART-19\r",
    "CART\x1b19",
    "CART\t19",
    "cart-19",
    "Cart-19",
    "CART 19",
    "-CART",
    "C" * 41,
]


@pytest.mark.parametrize("value", BAD_PROGRAMS)
@pytest.mark.parametrize("where", ["add", "ls"])
def test_bad_program_is_a_usage_error(
    doc: dict[str, Any], vault_path: Path, where: str, value: str
) -> None:
    if where == "add":
        args = ["add", doc["fresh"], "--program", value, "--type", "batch-record"]
    else:
        args = ["ls", "--program", value, "--json"]
    refused_and_unchanged(vault_path, args, 2, "invalid program")


BAD_IDS = [
    "DOC/000001",
    "../DOC-000001",
    "DOC-000001/..",
    "DOC..000001",
    "DOC-000001\x00",
    "DOC\x00-000001",
    "DOC-000001\n",
    "DOC\x1b000001",
    "doc-000001",
    "DOC 000001",
    "D" * 41,
]


@pytest.mark.parametrize("value", BAD_IDS)
@pytest.mark.parametrize(
    "args",
    [
        ["show", "{id}"],
        ["get", "{id}"],
        ["history", "{id}"],
        ["withdraw", "{id}", "--reason", "gone"],
        ["add", "{fresh}", "--id", "{id}", "--reason", "revise"],
        ["log", "--doc", "{id}"],
    ],
    ids=["show", "get", "history", "withdraw", "add-id", "log-doc"],
)
def test_bad_document_id_is_a_usage_error(
    doc: dict[str, Any], vault_path: Path, args: list[str], value: str
) -> None:
    args = [a.format(id=value, fresh=doc["fresh"]) for a in args]
    refused_and_unchanged(vault_path, args, 2, "invalid document id")


BAD_LOTS = [
    "L/0042",
    "..",
    "L..0042",
    "../L-0042",
    "L-0042/..",
    "L-0042\x00",
    "L\x000042",
    "L\n0042",
    "L-0042\r",
    "L\x7f0042",
    "L\t0042",
    "L 0042",
    ".L-0042",
    "L" * 65,
]


@pytest.mark.parametrize("value", BAD_LOTS)
@pytest.mark.parametrize("where", ["add", "add-id", "ls"])
def test_bad_lot_is_a_usage_error(
    doc: dict[str, Any], vault_path: Path, where: str, value: str
) -> None:
    args = {
        "add": as_new(doc["fresh"]) + ["--lot", value],
        "add-id": as_revision(doc["fresh"]) + ["--lot", value],
        "ls": ["ls", "--lot", value, "--json"],
    }[where]
    refused_and_unchanged(vault_path, args, 2, "invalid lot")


# -- document types, titles, metadata, reasons, users -------------------------------------


BAD_TYPES = ["batch_record", "Batch-Record", "batch-records", "pdf", "batch-record\x00", "../sop"]


@pytest.mark.parametrize(
    ("where", "value"),
    # An empty --type on ls means no filter, so "" is a bad value only for add.
    [("add", v) for v in [*BAD_TYPES, ""]] + [("ls", v) for v in BAD_TYPES],
)
def test_unknown_type_lists_the_valid_types(
    doc: dict[str, Any], vault_path: Path, where: str, value: str
) -> None:
    if where == "add":
        args = ["add", doc["fresh"], "--program", "CART-19", "--type", value]
    else:
        args = ["ls", "--type", value, "--json"]
    line = refused_and_unchanged(vault_path, args, 2)
    assert "batch-record" in line and "deviation-package" in line and "sop" in line


@pytest.mark.parametrize(
    ("title", "fragment"),
    [
        ("T" * 100_000, "100,000 characters"),
        ("T" * 501, "limit is 500"),
        ("Batch record\nAction: withdraw", "control characters"),
        ("Batch\x00record", "control characters"),
        ("Batch\x1b[31mrecord", "control characters"),
    ],
    ids=["100KB", "501", "newline", "nul", "escape"],
)
@pytest.mark.parametrize("command", [as_new, as_revision], ids=["new", "revision"])
def test_bad_title_is_a_usage_error(
    doc: dict[str, Any],
    vault_path: Path,
    command: Callable[[str], list[str]],
    title: str,
    fragment: str,
) -> None:
    refused_and_unchanged(
        vault_path, [*command(doc["fresh"]), "--title", title], 2, "title", fragment
    )


BAD_META = [
    ("site", "must be KEY=VALUE"),
    ("site:PHL", "must be KEY=VALUE"),
    ("=PHL", "invalid --meta key"),
    ("Site=PHL", "invalid --meta key"),
    ("SITE=PHL", "invalid --meta key"),
    ("my site=PHL", "invalid --meta key"),
    ("site/x=PHL", "invalid --meta key"),
    ("si\x00te=PHL", "invalid --meta key"),
    ("1site=PHL", "invalid --meta key"),
    ("k" * 65 + "=v", "invalid --meta key"),
    ("site=PH\x00L", "control characters"),
    ("site=PHL\nAction: withdraw", "control characters"),
    ("site=\x1b[2J", "control characters"),
    ("site=", "required"),
    ("site=   ", "required"),
    ("site=" + "v" * 2001, "limit is 2,000"),
]


@pytest.mark.parametrize(("pair", "fragment"), BAD_META)
@pytest.mark.parametrize("command", [as_new, as_revision], ids=["new", "revision"])
def test_bad_meta_is_a_usage_error(
    doc: dict[str, Any],
    vault_path: Path,
    command: Callable[[str], list[str]],
    pair: str,
    fragment: str,
) -> None:
    args = [*command(doc["fresh"]), "--meta", "lot.site=PHL", "--meta", pair]
    refused_and_unchanged(vault_path, args, 2, "--meta", fragment)


def test_too_many_meta_values_is_a_usage_error(doc: dict[str, Any], vault_path: Path) -> None:
    metas = [arg for i in range(51) for arg in ("--meta", f"k{i}=v")]
    refused_and_unchanged(vault_path, [*as_new(doc["fresh"]), *metas], 2, "at most 50")


@pytest.mark.parametrize(
    ("reason", "fragment"),
    [
        ("", "required"),
        ("   ", "required"),
        ("fix\nAction: withdraw", "control characters"),
        ("fix\x00", "control characters"),
        ("r" * 2001, "limit is 2,000"),
    ],
    ids=["empty", "blank", "trailer-injection", "nul", "too-long"],
)
@pytest.mark.parametrize("command", ["add-id", "withdraw"])
def test_bad_reason_is_a_usage_error(
    doc: dict[str, Any], vault_path: Path, command: str, reason: str, fragment: str
) -> None:
    if command == "add-id":
        args = ["add", doc["fresh"], "--id", DOC, "--reason", reason]
    else:
        args = ["withdraw", DOC, "--reason", reason]
    refused_and_unchanged(vault_path, args, 2, "--reason", fragment)


BAD_USERS = [
    ("newline", "qa\nAction: init", "control characters"),
    ("nul", "qa\x00lead", "control characters"),
    ("angle-brackets", "QA Lead <qa@example.com>", "'<' or '>'"),
    ("too-long", "u" * 101, "limit is 100"),
]


@pytest.mark.parametrize(
    ("source", "user", "fragment"),
    # An environment variable cannot hold NUL.
    [pytest.param("flag", u, f, id=f"flag-{i}") for i, u, f in BAD_USERS]
    + [pytest.param("environment", u, f, id=f"env-{i}") for i, u, f in BAD_USERS if i != "nul"],
)
def test_bad_user_name_is_a_usage_error(
    doc: dict[str, Any], vault_path: Path, source: str, user: str, fragment: str
) -> None:
    args = as_new(doc["fresh"])
    if source == "flag":
        refused_and_unchanged(vault_path, [*args, "--user", user], 2, "user name", fragment)
    else:
        refused_and_unchanged(
            vault_path, args, 2, "user name", fragment, env={"ATMPVAULT_USER": user}
        )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["add", "{fresh}", "--id", DOC, "--program", "CART-19", "--reason", "r"],
            "fixed at version 1",
        ),
        (["add", "{fresh}", "--id", DOC, "--type", "sop", "--reason", "r"], "fixed at version 1"),
        (["add", "{fresh}", "--type", "sop"], "--program and --type"),
        (["add", "{fresh}", "--program", "CART-19"], "--program and --type"),
        (["add", "{fresh}", "--program", "CART-19", "--type", "sop", "--reason", "r"], "--reason"),
        (["show", DOC, "--version", "1", "--as-of", "2030-01-01"], "not both"),
        (["get", DOC, "--version", "1", "--as-of", "2030-01-01"], "not both"),
    ],
)
def test_inconsistent_options_are_usage_errors(
    doc: dict[str, Any], vault_path: Path, args: list[str], fragment: str
) -> None:
    args = [a.format(**doc) for a in args]
    refused_and_unchanged(vault_path, args, 2, fragment)


# -- the vault itself -----------------------------------------------------------------------


def nonexistent(tmp_path: Path) -> Path:
    return tmp_path / "nowhere"


def empty_directory(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def unrelated_directory(tmp_path: Path) -> Path:
    path = tmp_path / "projects"
    path.mkdir()
    (path / "notes.txt").write_text("not a vault\n")
    (path / "repo.git").mkdir()
    return path


def regular_file(tmp_path: Path) -> Path:
    path = tmp_path / "vault.txt"
    path.write_text("not a vault\n")
    return path


NOT_VAULTS = [nonexistent, empty_directory, unrelated_directory, regular_file]


def listing(path: Path) -> Any:
    if not path.exists():
        return None
    if path.is_file():
        return path.read_bytes()
    return sorted((str(p.relative_to(path)), p.is_dir()) for p in path.rglob("*"))


@pytest.mark.parametrize(
    "args",
    [
        ["ls", "--json"],
        ["log", "--json"],
        ["show", DOC],
        ["history", DOC],
        ["verify"],
        ["rebuild"],
        ["withdraw", DOC, "--reason", "x"],
        ["add", "{fresh}", "--program", "CART-19", "--type", "sop"],
    ],
    ids=lambda a: a[0],
)
@pytest.mark.parametrize("make", NOT_VAULTS, ids=[m.__name__ for m in NOT_VAULTS])
def test_a_path_that_is_not_a_vault(
    tmp_path: Path, make: Callable[[Path], Path], args: list[str]
) -> None:
    fresh = tmp_path / "fresh.pdf"
    fresh.write_bytes(b"data")
    path = make(tmp_path)
    before = listing(path)
    result = run(path, *[a.format(fresh=fresh) for a in args])
    assert_refused(result, 1, "not an atmpvault vault", str(path))
    assert listing(path) == before


def test_no_vault_anywhere_names_the_default(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from atmpvault.cli import cli

    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        result = runner.invoke(
            cli, ["ls"], env={"ATMPVAULT_HOME": "", "ATMPVAULT_USER": "qa"}, catch_exceptions=False
        )
        assert_refused(result, 1, "not an atmpvault vault", "vault")
        assert not Path("vault").exists()


def test_second_init_is_refused_and_changes_nothing(doc: dict[str, Any], vault_path: Path) -> None:
    files = listing(vault_path / "repo.git")
    refused_and_unchanged(vault_path, ["init"], 1, "already exists", str(vault_path))
    refused_and_unchanged(vault_path, ["init", "--user", "someone.else"], 1, "already exists")
    assert listing(vault_path / "repo.git") == files


@pytest.mark.parametrize(
    "make", [unrelated_directory, regular_file], ids=["non-empty-directory", "regular-file"]
)
def test_init_refuses_a_path_in_use(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path)
    before = listing(path)
    assert_refused(run(path, "init"), 1, str(path))
    assert listing(path) == before


def test_get_into_a_missing_directory_is_refused(
    doc: dict[str, Any], vault_path: Path, tmp_path: Path
) -> None:
    target = tmp_path / "no-such-dir" / "out.pdf"
    refused_and_unchanged(vault_path, ["get", DOC, "-o", str(target)], 1, "cannot write")
    assert not target.parent.exists()
