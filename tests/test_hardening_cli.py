"""What users stumbled on at the command line: repeated options, out-of-range versions,
outputs that would overwrite, withdrawn bytes fetched silently, reasons not shown,
changes without --json, and two filters of one calendar answering differently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run
from tests.test_bad_input import assert_refused, refused_and_unchanged, state
from tests.test_packages import IND, archive, new_sequence, ok, ok_json, pdf


def add(vault: Path, path: Path, *extra: str) -> dict[str, str]:
    result = run(vault, "add", str(path), "--program", "CART-19", "--type", "sop", "--json", *extra)
    return dict(ok_json(result))


def usage_error(vault: Path, *args: str) -> str:
    """Exit 2 with click's usage text, nothing on stdout, the vault untouched."""
    before = state(vault)
    result = run(vault, *args)
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert state(vault) == before
    return result.stderr.strip().splitlines()[-1]


# -- a single-valued option given twice ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["ls", "--program", "CART-19", "--program", "AAV9-SMA"], "--program"),
        (["ls", "--program=CART-19", "--type", "sop", "--program", "X"], "--program"),
        (["log", "--since", "2026-01-01", "--since", "2026-02-01"], "--since"),
        (["alerts", "--days", "3", "--days", "4"], "--days"),
        (["package", "build", IND, "0000", "-o", "a.zip", "-o", "b.zip"], "-o"),
        (["package", "build", IND, "0000", "-oa.zip", "--output", "b.zip"], "--output"),
        (["--vault", "elsewhere", "ls", "--vault", "other"], "--vault"),
    ],
)
def test_a_single_valued_option_given_twice_is_a_usage_error(
    vault_path: Path, args: list[str], named: str
) -> None:
    line = usage_error(vault_path, *args)
    assert line == f"Error: option {named} is given more than once; give it once"


def test_values_that_look_like_options_and_repeatable_options_are_not_repeats(
    vault_path: Path, tmp_path: Path
) -> None:
    path = tmp_path / "sop.txt"
    path.write_bytes(b"SOP text")
    added = add(vault_path, path, "--title", "--lot", "--meta", "a=1", "--meta", "b=2")
    shown = ok_json(run(vault_path, "show", added["id"], "--json"))
    assert shown["title"] == "--lot"
    assert shown["meta"] == {"a": "1", "b": "2"}
    ok(run(vault_path, "ls", "--json", "--json"))  # a flag twice asks for the same thing


# -- versions out of range, withdrawn bytes -----------------------------------------------


@pytest.mark.parametrize("command", ["show", "get"])
@pytest.mark.parametrize("version", ["0", "3", "-1"])
def test_a_version_out_of_range_exits_1_naming_the_range(
    vault_path: Path, tmp_path: Path, command: str, version: str
) -> None:
    path = tmp_path / "sop.txt"
    path.write_bytes(b"v1")
    doc = add(vault_path, path)["id"]
    path.write_bytes(b"v2")
    ok(run(vault_path, "add", str(path), "--id", doc, "--reason", "v2"))
    refused_and_unchanged(
        vault_path,
        [command, doc, "--version", version],
        1,
        f"{doc} has versions 1 to 2; there is no version {version}",
    )


def test_get_of_a_withdrawn_document_says_so_on_stderr(vault_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "sop.txt"
    path.write_bytes(b"the SOP as filed")
    doc = add(vault_path, path)["id"]
    ok(run(vault_path, "withdraw", doc, "--reason", "filed in error"))
    for version in ("1", "2"):
        got = run(vault_path, "get", doc, "--version", version)
        assert got.exit_code == 0, got.stderr
        assert got.stdout_bytes == b"the SOP as filed"
        assert got.stderr.strip() == (
            f"atmpvault: {doc} was withdrawn in v2 at "
            f"{ok_json(run(vault_path, 'show', doc, '--json'))['recorded_at']} "
            f"(filed in error); these are the bytes of v{version}"
        )


def test_get_of_an_active_document_says_nothing_on_stderr(vault_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "sop.txt"
    path.write_bytes(b"current SOP")
    got = run(vault_path, "get", add(vault_path, path)["id"])
    assert (got.exit_code, got.stdout_bytes, got.stderr) == (0, b"current SOP", "")


# -- outputs that would overwrite ---------------------------------------------------------


def test_get_refuses_to_overwrite_a_file_unless_forced(vault_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "sop.txt"
    path.write_bytes(b"archived bytes")
    doc = add(vault_path, path)["id"]
    target = tmp_path / "out.txt"
    target.write_bytes(b"someone's work")
    refused_and_unchanged(
        vault_path, ["get", doc, "-o", str(target)], 1, f"{target} already exists", "--force"
    )
    assert target.read_bytes() == b"someone's work"
    into = tmp_path / "restore"
    into.mkdir()
    (into / "sop.txt").write_bytes(b"kept")
    refused_and_unchanged(vault_path, ["get", doc, "-o", str(into)], 1, "already exists")
    assert (into / "sop.txt").read_bytes() == b"kept"
    ok(run(vault_path, "get", doc, "-o", str(target), "--force"))
    assert target.read_bytes() == b"archived bytes"


@pytest.fixture
def sequence(vault_path: Path, tmp_path: Path) -> Path:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    new_sequence(vault_path, "0000")
    doc = archive(vault_path, tmp_path, "cover.pdf", pdf("Cover letter"))
    ok(run(vault_path, "package", "add", IND, "0000", doc, "--section", "m1/us"))
    return vault_path


@pytest.mark.parametrize("name", ["x.txt", "IND-012345-0000.pdf", "out.ZIP.bak"])
def test_package_build_refuses_a_name_that_is_neither_folder_nor_zip(
    sequence: Path, tmp_path: Path, name: str
) -> None:
    target = tmp_path / name
    assert_refused(
        run(sequence, "package", "build", IND, "0000", "-o", str(target)),
        2,
        "give a folder or a file name ending in .zip",
    )
    assert not target.exists()


def test_package_build_into_an_existing_folder_with_a_dot_in_its_name(
    sequence: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "out.v2"
    folder.mkdir()
    ok(run(sequence, "package", "build", IND, "0000", "-o", str(folder)))
    assert (folder / "0000" / "index.xml").is_file()


def test_package_build_refuses_an_existing_zip_unless_forced(
    sequence: Path, tmp_path: Path
) -> None:
    target = tmp_path / "seq.zip"
    target.write_bytes(b"an earlier build someone kept")
    assert_refused(
        run(sequence, "package", "build", IND, "0000", "-o", str(target)),
        1,
        f"{target} already exists; use --force to replace it",
    )
    assert target.read_bytes() == b"an earlier build someone kept"
    built = ok_json(
        run(sequence, "package", "build", IND, "0000", "-o", str(target), "--force", "--json")
    )
    assert Path(built["output"]) == target
    assert target.read_bytes()[:2] == b"PK"


# -- ls --unsearchable --------------------------------------------------------------------


def test_ls_unsearchable_shows_why(vault_path: Path, tmp_path: Path) -> None:
    blob = tmp_path / "instrument.bin"
    blob.write_bytes(bytes(range(256)))
    doc = add(vault_path, blob)["id"]
    text = tmp_path / "sop.txt"
    text.write_bytes(b"searchable words")
    add(vault_path, text)
    shown = run(vault_path, "ls", "--unsearchable")
    assert shown.exit_code == 0, shown.stderr
    header, *rows = shown.stdout.splitlines()
    assert header.split()[:4] == ["ID", "V", "TYPE", "WHY"]
    assert len(rows) == 1
    assert rows[0].startswith(f"{doc}  1  sop")
    assert "unsupported format: .bin" in rows[0]
    [listed] = ok_json(run(vault_path, "ls", "--unsearchable", "--json"))
    assert "unsupported format: .bin" in listed["unsearchable_reason"]


# -- every command that changes something takes --json -------------------------------------


def test_init_lists_rm_and_alerts_route_answer_in_json(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    made = ok_json(run(vault, "init", "--json"))
    assert made == {"vault": str(vault), "index_engine": "tantivy"}
    ok(run(vault, "lists", "set", "qa", "qa@example.org", "--reason", "QA list"))
    routed = ok_json(run(vault, "alerts", "route", "qa", "BPDR", "--reason", "QA", "--json"))
    assert routed == {"list": "qa", "rules": ["BPDR"]}
    stopped = ok_json(run(vault, "alerts", "route", "qa", "--reason", "none", "--json"))
    assert stopped == {"list": "qa", "rules": []}
    removed = ok_json(run(vault, "lists", "rm", "qa", "--reason", "gone", "--json"))
    assert removed == {"name": "qa", "removed": True}
    assert [e["action"] for e in ok_json(run(vault, "log", "--json"))][-4:] == [
        "set-distribution-list",
        "route-alerts",
        "route-alerts",
        "remove-distribution-list",
    ]


def test_every_command_that_changes_something_takes_json() -> None:
    from atmpvault.cli import cli

    changing = {
        "init", "rebuild", "lists set", "lists rm", "add", "withdraw", "import",
        "app new", "event add", "event correct", "alerts route", "package new",
        "package add", "package rm", "package build", "package finalise",
        "package acknowledge",
    }  # fmt: skip
    commands = {}
    for name, command in cli.load_all().items():
        subs = getattr(command, "commands", None)
        for sub, leaf in (subs or {name: command}).items():
            commands[f"{name} {sub}" if subs else name] = leaf
    assert changing <= set(commands)
    lacking = [n for n in sorted(changing) if "--json" not in _options(commands[n])]
    assert lacking == []
    assert "--json" in _options(cli.commands["alerts"])  # alerts --send


def _options(command: object) -> set[str]:
    return {opt for p in getattr(command, "params", []) for opt in getattr(p, "opts", [])}


# -- calendar filters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "code", "fragment"),
    [
        ("--app", "IND-999999", 1, "no application IND-999999 in this vault; applications: "),
        ("--program", "NOPE", 1, "no application of program NOPE in this vault; programs: "),
        ("--app", "NOPE", 2, "invalid application 'NOPE'"),
        ("--program", "no such", 2, "invalid program"),
    ],
)
def test_calendar_program_and_app_refuse_alike(
    vault_path: Path, option: str, value: str, code: int, fragment: str
) -> None:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    line = refused_and_unchanged(vault_path, ["calendar", option, value], code, fragment)
    if code == 1:
        assert line.endswith("IND-012345" if option == "--app" else "CART-19")


def test_calendar_of_a_known_program_lists_its_milestones(vault_path: Path) -> None:
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    ok(run(vault_path, "event", "add", IND, "ind-received", "--on", "2026-01-05"))
    rows = ok_json(
        run(vault_path, "calendar", "--program", "CART-19", "--from", "2026-01-01", "--json")
    )
    assert rows and {r["app"] for r in rows} == {IND}
    assert json.loads(json.dumps(rows)) == rows
