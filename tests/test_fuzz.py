"""Fuzz the command line: whatever the arguments, no traceback, and a refused command
(exit 2, or exit 1 with nothing done) leaves the vault as it was.

Every command group runs in-process (`catch_exceptions=False`, so an exception fails the
test) against one vault seeded per module: documents, an IND with events, a planned
sequence with a leaf, a distribution list routed to a rule. "As it was" is the branch
tip, the tags and every row of the catalog. Hypothesis runs derandomized with a bounded
number of examples, so CI sees the same cases every time and the file stays well under
a minute.
"""

from __future__ import annotations

import codecs
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import run

FUZZ = settings(
    derandomize=True,
    deadline=None,
    max_examples=int(os.environ.get("ATMPVAULT_FUZZ_EXAMPLES", "30")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

# -- the seeded vault ----------------------------------------------------------------------


def ok(vault: Path, *args: str) -> str:
    result = run(vault, *args)
    assert result.exit_code == 0, (args, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def here(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty working folder: relative paths the fuzzer makes up land here, nowhere else."""
    folder = tmp_path_factory.mktemp("fuzz-cwd")
    (folder / "files").mkdir()
    (folder / "files" / "BR-0042.txt").write_text("batch record L-0042 viability 93%\n")
    (folder / "files" / "SOP-7.txt").write_text("standard operating procedure 7\n")
    (folder / "files" / "blob.bin").write_bytes(bytes(range(256)) * 4)
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)


@pytest.fixture(scope="module")
def vault(here: Path) -> Path:
    path = here / "vault"
    ok(path, "init")
    files = here / "files"
    ok(path, "add", str(files / "BR-0042.txt"), "--program", "CART-19", "--type", "batch-record",
       "--lot", "L-0042", "--title", "Batch record L-0042", "--meta", "site=Leiden")  # fmt: skip
    ok(path, "add", str(files / "SOP-7.txt"), "--program", "CART-19", "--type", "sop")
    (files / "SOP-7.txt").write_text("standard operating procedure 7, revision 2\n")
    ok(path, "add", str(files / "SOP-7.txt"), "--id", "DOC-000002", "--reason", "review")
    ok(path, "app", "new", "ind", "012345", "--program", "CART-19")
    ok(path, "event", "add", "IND-012345", "ind-received", "--on", "2026-01-05")
    ok(path, "event", "add", "IND-012345", "fatal-safety-case", "--on", "2026-02-20")
    ok(path, "package", "new", "IND-012345", "--sequence", "0000", "--type", "original")
    ok(path, "package", "add", "IND-012345", "0000", "DOC-000001", "--section", "m3/32p/32p1")
    ok(path, "lists", "set", "qa", "qa@example.com", "--reason", "alert recipients")
    ok(path, "alerts", "route", "qa", "*", "--reason", "everyone hears everything")
    return path


def snapshot(vault: Path) -> dict[str, Any]:
    """What a refused command must leave alone: the branch tip, the tags, the catalog."""
    refs = subprocess.run(
        ["git", f"--git-dir={vault / 'repo.git'}", "for-each-ref", "--format=%(refname) %(objectname)"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    conn = sqlite3.connect(vault / "catalog.sqlite")
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = {n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"'))) for n in names}
    finally:
        conn.close()
    return {"refs": refs, "catalog": rows}


def check(vault: Path, argv: list[str], partial: bool = False) -> None:
    """Run `argv`; no traceback, a known exit code, and a refusal that changed nothing.

    `partial`: a command that may keep part of its work and still exit 1 (an import
    with some rows refused)."""
    before = snapshot(vault)
    result = run(vault, *argv)  # an exception escaping the CLI fails here, with its traceback
    where = f"atmpvault {argv!r} exited {result.exit_code}:\n{result.stderr}"
    assert result.exit_code in (0, 1, 2, 3), where
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, where
    if result.exit_code != 0:
        assert result.stderr.strip(), where  # a refusal says why
    if result.exit_code == 2 or (result.exit_code == 1 and not partial):
        assert snapshot(vault) == before, "refused, yet the vault changed: " + where


# -- strategies ----------------------------------------------------------------------------

# Any text, control characters and the lone surrogates a non-UTF-8 argv decodes to included.
junk = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["", " ", "\x00", "\n", "\t", "\x1b[31m", "\udcff", "\u202e", "\ufeff", "-", "--", "🧬" * 30]
)
huge = st.integers(min_value=-(10**30), max_value=10**30).map(str) | st.sampled_from(
    ["0", "-1", "1.5", "1e9", "NaN", "inf", "0x10", "٣", "9" * 400, "+1", " 7"]
)


def _mutate(base: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(base) | st.builds(
        lambda b, j, at: b[:at] + j + b[at:], st.sampled_from(base), junk, st.integers(0, 12)
    )


doc_ids = _mutate(
    ["DOC-000001", "DOC-000002", "DOC-000003", "DOC-999999", "doc-000001", "DOC-1", "DOC-",
     "DOC-0000001", "DOC-000000", "DOC-000001@1", "DOC-000001@0", "DOC-000001@99999999999",
     "DOC-000001@", "IND-012345", "N-000001"]
)  # fmt: skip
app_ids = _mutate(
    ["IND-012345", "IND-000000", "IND-999999", "BLA-125123", "ind-012345", "IND-12345",
     "IND-0123456", "IND012345", "XYZ-012345", "*"]
)  # fmt: skip
sequences = _mutate(["0000", "0001", "9999", "000", "00000", "-001", "+001", "00a1"])
dates = (
    _mutate(
        ["2026-01-05", "2026-02-30", "2026-13-01", "0000-01-01", "0001-01-01", "9999-12-31",
         "10000-01-01", "1900-01-01", "2026-1-5", "20260105", "2026-01-05T25:00:00",
         "2026-01-05T10:00:00+99:00", "2026-01-05T10:00:00Z", "today", "now", "yesterday",
         "-2026-01-05", "2026-W01-1", "2026-001"]
    )
    | st.dates().map(str)
    | st.datetimes().map(lambda d: d.isoformat())
)  # fmt: skip
names = _mutate(["CART-19", "batch-record", "sop", "L-0042", "qa", "site=Leiden", "m3/32p/32p1"])
queries = st.lists(
    st.sampled_from(
        ['"', "(", ")", "AND", "OR", "NOT", "title:", "program:", "lot:L-0042", "*", "?", "~",
         "^2", "[", "]", "{", "}", "a:b:c", "\\", ":", "batch", "record", '"batch record"',
         "viability~2", "TO", "[a TO b]", "-", "+", "sha256:", "2026-01-05", "((((((((("]
    ) | junk,
    min_size=1, max_size=8,
).map(" ".join)  # fmt: skip
# Paths stay relative and inside the working folder: the fuzzer never writes elsewhere.
paths = _mutate(["out.bin", "out", "files", "files/BR-0042.txt", "seq.zip", "cal.ics", "x.csv"]).filter(
    lambda p: p and not p.startswith(("/", "~", "-")) and ".." not in p and "\x00" not in p
)  # fmt: skip


def options(**choices: st.SearchStrategy[Any]) -> st.SearchStrategy[list[str]]:
    """Some of these options, each with a value drawn (None: a flag)."""

    def flatten(picked: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for name, value in picked.items():
            flag = "--" + name.rstrip("_").replace("_", "-")
            out += [flag] if value is None else [flag, value]
        return out

    return st.fixed_dictionaries({}, optional=choices).map(flatten)


def command(
    *head: str, args: tuple[st.SearchStrategy[str], ...] = (), **opts: Any
) -> st.SearchStrategy[list[str]]:
    """`head`, its positional arguments (the last one now and then left out), some options."""
    positional = st.tuples(st.tuples(*args), st.integers(0, 5)).map(
        lambda t: list(t[0]) if t[1] else list(t[0][:-1])
    )
    return st.tuples(positional, options(**opts)).map(lambda t: [*head, *t[0], *t[1]])


FLAG = st.none()
ROUTINE = {"json": FLAG}


def manifest_bytes() -> st.SearchStrategy[bytes]:
    """CSV manifests: plausible rows, odd cells, in odd encodings (or raw bytes)."""
    cell = st.sampled_from(
        ["files/BR-0042.txt", "files/SOP-7.txt", "files/blob.bin", "files", "nope.pdf",
         "../vault/catalog.sqlite", "/etc/hostname", "CART-19", "sop", "batch-record", "L-0042",
         "", '"', '""', "a,b", "x\ny", "=cmd()", "meta.site"]
    ) | junk  # fmt: skip
    header = st.lists(
        st.sampled_from(["path", "program", "type", "title", "lot", "meta.site", "meta.", "bogus", ""])
        | junk, min_size=0, max_size=6,
    ).map(lambda cols: ["path", "program", "type", *cols])  # fmt: skip
    rows = st.lists(st.lists(cell, max_size=7), max_size=5)
    text = st.tuples(header, rows, st.sampled_from(["\n", "\r\n", "\r"])).map(
        lambda t: t[2].join(",".join(r) for r in [t[0], *t[1]]) + t[2]
    )
    encodings = [
        "utf-8",
        "utf-8-sig",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "latin-1",
        "cp1252",
        "utf-32",
    ]
    encoded = st.tuples(text, st.sampled_from(encodings)).map(
        lambda t: t[0].encode(t[1], "surrogatepass" if "utf" in t[1] else "replace")
    )
    return encoded | st.binary(max_size=300) | encoded.map(lambda b: codecs.BOM_UTF16_LE + b[:-1])


# -- the fuzz tests, one per command group ---------------------------------------------------


@FUZZ
@given(argv=st.one_of(
    command("add", args=(paths,), program=names, type=names, title=junk, lot=names, meta=junk,
            id=doc_ids, reason=junk, allow_duplicate=FLAG, **ROUTINE),
    command("withdraw", args=(doc_ids,), reason=junk, **ROUTINE),
))  # fmt: skip
def test_add_and_withdraw(vault: Path, argv: list[str]) -> None:
    check(vault, argv)


@FUZZ
@given(argv=st.one_of(
    command("show", args=(doc_ids,), version=huge, as_of=dates, **ROUTINE),
    command("get", args=(doc_ids,), version=huge, as_of=dates, output=paths),
    command("history", args=(doc_ids,), **ROUTINE),
))  # fmt: skip
def test_show_get_history(vault: Path, argv: list[str]) -> None:
    check(vault, argv)


@FUZZ
@given(argv=st.one_of(
    command("ls", program=names, type=names, lot=names, unsearchable=FLAG, app=app_ids,
            sequence=sequences, as_of=dates, **ROUTINE),
    command("log", since=dates, until=dates, user=junk, kind=names | junk, id=doc_ids, **ROUTINE),
))  # fmt: skip
def test_ls_and_log(vault: Path, argv: list[str]) -> None:
    check(vault, argv)


@FUZZ
@given(argv=command("search", args=(queries,), program=names, type=names, lot=names, app=app_ids,
                    sequence=sequences, since=dates, until=dates, all_versions=FLAG, limit=huge,
                    facets=FLAG, **ROUTINE))  # fmt: skip
def test_search(vault: Path, argv: list[str]) -> None:
    check(vault, argv)


@FUZZ
@given(
    data=manifest_bytes(), extra=options(program=names, type=names, allow_duplicate=FLAG, **ROUTINE)
)
def test_import_manifest(vault: Path, here: Path, data: bytes, extra: list[str]) -> None:
    manifest = here / "manifest.csv"
    manifest.write_bytes(data)
    check(vault, ["import", "--manifest", str(manifest), *extra], partial=True)


@FUZZ
@given(argv=st.one_of(
    command("import", args=(paths,), program=names, type=names, manifest=paths, **ROUTINE),
    command("app", "new", args=(st.sampled_from(["ind", "bla"]) | junk, huge | junk),
            program=names, **ROUTINE),
    command("app", "show", args=(app_ids,), as_of=dates, **ROUTINE),
    command("app", "ls", **ROUTINE),
))  # fmt: skip
def test_import_and_app(vault: Path, argv: list[str]) -> None:
    check(vault, argv, partial=argv[0] == "import")


TRIGGERS = st.sampled_from(
    ["ind-received", "fatal-safety-case", "bla-received", "meeting-request-received",
     "fda-letter-received", "clinical-hold", "IND-RECEIVED", ""]
) | junk  # fmt: skip


@FUZZ
@given(argv=st.one_of(
    command("event", "add", args=(app_ids, TRIGGERS), on=dates, review=names, meeting_type=junk,
            response_days=huge, letter_kind=junk, doc=doc_ids, note=junk, **ROUTINE),
    command("event", "correct", args=(_mutate(["EVT-000001", "EVT-000002", "EV-1"]),), on=dates,
            reason=junk, **ROUTINE),
    command("event", "ls", args=(app_ids,), **ROUTINE),
))  # fmt: skip
def test_event(vault: Path, argv: list[str]) -> None:
    check(vault, argv)


@FUZZ
@given(argv=command("calendar", program=names, app=app_ids, days=huge, from_=dates, to=dates,
                    overdue=FLAG, kind=_mutate(["sponsor-due", "fda-due", "gate", "status"]),
                    ics=paths, **ROUTINE))  # fmt: skip
def test_calendar(vault: Path, argv: list[str]) -> None:
    check(vault, argv)


@FUZZ
@given(argv=st.one_of(
    command("package", "new", args=(app_ids,), sequence=sequences, type=_mutate(["original", "pas"]),
            **ROUTINE),
    command("package", "add", args=(app_ids, sequences, doc_ids), section=names,
            operation=_mutate(["new", "replace", "append", "delete"]), modifies=junk, title=junk,
            **ROUTINE),
    command("package", "build", args=(app_ids, sequences), output=paths, **ROUTINE),
    command("package", "finalise", args=(app_ids, sequences), submitted=dates, **ROUTINE),
    command("package", "acknowledge", args=(app_ids, sequences), on=dates, **ROUTINE),
    command("package", "show", args=(app_ids, sequences), **ROUTINE),
    command("package", "ls", args=(app_ids,), **ROUTINE),
    command("package", "verify", args=(paths,), **ROUTINE),
))  # fmt: skip
def test_package(vault: Path, argv: list[str]) -> None:
    check(vault, argv)


@FUZZ
@given(argv=st.one_of(
    command("lists", "set", args=(names, _mutate(["qa@example.com", "a@b", "@", "x"])), reason=junk,
            **ROUTINE),
    command("lists", "rm", args=(names,), reason=junk),
    command("lists", "ls", **ROUTINE),
    command("notices", "ls", key=junk, **ROUTINE),
    command("notices", "show", args=(_mutate(["N-000001", "alert/IND-012345"]),), **ROUTINE),
    command("alerts", days=huge, **ROUTINE),
    command("alerts", "route", args=(names, _mutate(["*", "IND_EFFECTIVE", "IND_ANNUAL"])),
            reason=junk),
    command("alerts", "routes", **ROUTINE),
    command("verify", **ROUTINE),
))  # fmt: skip
def test_lists_notices_alerts_verify(vault: Path, argv: list[str]) -> None:
    check(vault, argv)
