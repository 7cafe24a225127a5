"""`atmpvault search` end to end: JSON shape, filters, query forms, extraction failures,
the light search path, catch-up after a crash and after a rebuild — on both engines.

The query language itself is covered by the index contract (test_index_contract.py);
these tests check that each form reaches the index intact through the CLI and the vault.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core import values
from atmpvault.archive.core.pdf import make_pdf
from tests.conftest import AFTER_MIDNIGHT, BEFORE_MIDNIGHT, CLI, Clock, cli_env, day_of, run

ENGINES = ["tantivy", "whoosh"]
TIMEOUT = 120

# "kind" says what a hit is: "document" here; records (events...) are hits of their own kind.
HIT_KEYS = {
    "kind", "id", "version", "title", "program", "type", "lot", "status", "score", "snippet",
}  # fmt: skip


# -- helpers ------------------------------------------------------------------------------


def cli(vault: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """The real `atmpvault` in a child process."""
    return subprocess.run(
        [*CLI, "--vault", str(vault), *args],
        capture_output=True,
        env=cli_env(**env),
        timeout=TIMEOUT,
        check=False,
    )


def init(vault: Path, engine: str) -> None:
    result = run(vault, "init", "--index-engine", engine)
    assert result.exit_code == 0, result.output


def add(vault: Path, path: Path, *args: str) -> dict[str, Any]:
    result = run(vault, "add", str(path), *args, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def search(vault: Path, query: str, *args: str) -> dict[str, Any]:
    result = run(vault, "search", query, *args, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def ids(vault: Path, query: str, *args: str) -> set[str]:
    return {h["id"] for h in search(vault, query, "--limit", "1000", *args)["hits"]}


def listed(vault: Path, *args: str) -> list[dict[str, Any]]:
    result = run(vault, "ls", *args, "--json")
    assert result.exit_code == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def shown(vault: Path, doc_id: str) -> dict[str, Any]:
    result = run(vault, "show", doc_id, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def write(directory: Path, name: str, data: bytes | str) -> Path:
    path = directory / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


# -- a small corpus, built once per engine --------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    vault: Path
    engine: str
    recorded: dict[str, str]  # id -> recorded_at of its latest version


@pytest.fixture(scope="module", params=ENGINES)
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Four documents in two programs; DOC-000001 has two versions. Read-only for tests.

    Everything is recorded a moment before midnight UTC but DOC-000001's second version,
    a moment after: the corpus spans two days whatever the time the tests run at.
    """
    clock = Clock(BEFORE_MIDNIGHT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(values, "now", clock)
        return build_corpus(request.param, tmp_path_factory, clock)


def build_corpus(engine: str, tmp_path_factory: pytest.TempPathFactory, clock: Clock) -> Corpus:
    base = tmp_path_factory.mktemp(f"corpus-{engine}")
    vault = base / "vault"
    init(vault, engine)
    files = base / "files"
    files.mkdir()
    br1 = write(
        files,
        "br-c19-001.pdf",
        make_pdf(
            [["Batch record for lot C19-2026-001, preliminary.", "Cell viability 93% after thaw."]]
        ),
    )
    add(vault, br1, "--program", "CART-19", "--type", "batch-record",
        "--lot", "C19-2026-001", "--title", "Batch record C19-2026-001")  # fmt: skip
    dev = write(
        files,
        "deviation.txt",
        "Deviation: temperature excursion during shipment. Root cause courier delay.",
    )
    add(vault, dev, "--program", "CART-19", "--type", "deviation-package",
        "--lot", "C19-2026-002", "--title", "Deviation report")  # fmt: skip
    coa = write(
        files, "coa.txt", "Certificate of analysis: vector copy number within specification."
    )
    add(vault, coa, "--program", "AAV-HEMO", "--type", "certificate-of-analysis",
        "--title", "Certificate of analysis")  # fmt: skip
    br4 = write(
        files,
        "br-ah-010.pdf",
        make_pdf([["Batch record AH-2026-010.", "Viability 88%. Potency assay complete."]]),
    )
    add(vault, br4, "--program", "AAV-HEMO", "--type", "batch-record",
        "--lot", "AH-2026-010", "--title", "Batch record AH-2026-010")  # fmt: skip
    br1_r2 = write(
        files,
        "br-c19-001-r2.pdf",
        make_pdf(
            [["Batch record for lot C19-2026-001, approved.", "Cell viability 93% after thaw."]]
        ),
    )
    clock.at = AFTER_MIDNIGHT
    result = run(vault, "add", str(br1_r2), "--id", "DOC-000001", "--reason", "QA approval")
    assert result.exit_code == 0, result.stderr
    recorded = {d["id"]: d["recorded_at"] for d in listed(vault)}
    assert len(recorded) == 4
    return Corpus(vault, engine, recorded)


ALL = {"DOC-000001", "DOC-000002", "DOC-000003", "DOC-000004"}


def test_search_json_has_exactly_the_documented_keys(corpus: Corpus) -> None:
    result = run(corpus.vault, "search", "viability", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)  # stdout is JSON and nothing else
    assert set(data) == {"query", "total", "hits", "facets"}
    assert data["query"] == "viability"
    assert data["total"] == 2
    assert data["facets"] is None
    assert {(h["id"], h["version"]) for h in data["hits"]} == {("DOC-000001", 2), ("DOC-000004", 1)}
    for hit in data["hits"]:
        assert set(hit) == HIT_KEYS and hit["kind"] == "document"
        assert isinstance(hit["score"], float)
        assert "«" in hit["snippet"] and "»" in hit["snippet"]
    by_id = {h["id"]: h for h in data["hits"]}
    assert by_id["DOC-000001"]["title"] == "Batch record C19-2026-001"
    assert by_id["DOC-000001"]["program"] == "CART-19"
    assert by_id["DOC-000001"]["type"] == "batch-record"
    assert by_id["DOC-000001"]["lot"] == "C19-2026-001"
    assert by_id["DOC-000004"]["lot"] == "AH-2026-010"


def test_search_for_people(corpus: Corpus) -> None:
    result = run(corpus.vault, "search", "courier")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("1 match(es) for 'courier'")
    assert "DOC-000002 v1" in result.stdout
    assert "«courier»" in result.stdout


def test_facets_count_by_program_and_type(corpus: Corpus) -> None:
    everything = search(corpus.vault, "*", "--facets")
    assert everything["total"] == 4
    assert everything["facets"] == {
        "program": {"CART-19": 2, "AAV-HEMO": 2},
        "type": {"batch-record": 2, "deviation-package": 1, "certificate-of-analysis": 1},
    }
    viability = search(corpus.vault, "viability", "--facets")
    assert viability["facets"] == {
        "program": {"CART-19": 1, "AAV-HEMO": 1},
        "type": {"batch-record": 2},
    }
    # Facets count every match, not only the hits shown.
    limited = search(corpus.vault, "*", "--facets", "--limit", "1")
    assert len(limited["hits"]) == 1
    assert limited["facets"] == everything["facets"]


def test_limit(corpus: Corpus) -> None:
    two = search(corpus.vault, "*", "--limit", "2")
    assert two["total"] == 4
    assert len(two["hits"]) == 2
    assert len(search(corpus.vault, "*")["hits"]) == 4
    refused = run(corpus.vault, "search", "*", "--limit", "0")
    assert refused.exit_code == 2


def test_filters(corpus: Corpus) -> None:
    v = corpus.vault
    assert ids(v, "*", "--program", "CART-19") == {"DOC-000001", "DOC-000002"}
    assert ids(v, "viability", "--program", "AAV-HEMO") == {"DOC-000004"}
    assert ids(v, "*", "--type", "batch-record") == {"DOC-000001", "DOC-000004"}
    assert ids(v, "*", "--type", "certificate-of-analysis") == {"DOC-000003"}
    assert ids(v, "*", "--lot", "C19-2026-002") == {"DOC-000002"}
    assert ids(v, "*", "--program", "CART-19", "--type", "batch-record") == {"DOC-000001"}
    assert ids(v, "courier", "--program", "AAV-HEMO") == set()


def test_since_and_until(corpus: Corpus) -> None:
    v, at = corpus.vault, corpus.recorded
    # Versions are recorded in order: DOC-000002, 3, 4, then DOC-000001 v2 last.
    assert ids(v, "*", "--since", at["DOC-000003"]) == {"DOC-000003", "DOC-000004", "DOC-000001"}
    assert ids(v, "*", "--until", at["DOC-000003"]) == {"DOC-000002", "DOC-000003"}
    assert ids(v, "*", "--since", at["DOC-000003"], "--until", at["DOC-000004"]) == {
        "DOC-000003",
        "DOC-000004",
    }
    # DOC-000001's latest version is recorded the day after all the others.
    first, last = day_of(at["DOC-000002"]), day_of(at["DOC-000001"])
    assert last == first + timedelta(days=1)
    assert ids(v, "*", "--since", first.isoformat()) == ALL  # a date as --since means its start
    assert ids(v, "*", "--until", last.isoformat()) == ALL  # and as --until its end
    assert ids(v, "*", "--since", last.isoformat()) == {"DOC-000001"}
    assert ids(v, "*", "--until", first.isoformat()) == ALL - {"DOC-000001"}
    assert ids(v, "*", "--until", "2001-01-01") == set()
    assert ids(v, "*", "--until", (first - timedelta(days=1)).isoformat()) == set()
    assert ids(v, "*", "--since", (last + timedelta(days=1)).isoformat()) == set()
    bad = run(v, "search", "*", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "Traceback" not in bad.output + bad.stderr


def test_all_versions_finds_text_only_in_an_old_version(corpus: Corpus) -> None:
    v = corpus.vault
    assert search(v, "preliminary")["hits"] == []
    old = search(v, "preliminary", "--all-versions")
    assert [(h["id"], h["version"]) for h in old["hits"]] == [("DOC-000001", 1)]
    assert [(h["id"], h["version"]) for h in search(v, "approved")["hits"]] == [("DOC-000001", 2)]
    every = search(v, "viability", "--all-versions")
    assert {(h["id"], h["version"]) for h in every["hits"]} == {
        ("DOC-000001", 1),
        ("DOC-000001", 2),
        ("DOC-000004", 1),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("viability", {"DOC-000001", "DOC-000004"}),
        ("VIABILITY", {"DOC-000001", "DOC-000004"}),
        ('"temperature excursion"', {"DOC-000002"}),
        ('"excursion temperature"', set()),
        ("viability AND potency", {"DOC-000004"}),
        ("viability potency", {"DOC-000004"}),
        ("sterility OR courier OR vector", {"DOC-000002", "DOC-000003"}),
        ("viability NOT potency", {"DOC-000001"}),
        ("(courier OR vector) AND NOT specification", {"DOC-000002"}),
        ("lot:C19-2026-001", {"DOC-000001"}),
        ("lot:c19-2026-001", {"DOC-000001"}),
        ("program:AAV-HEMO", {"DOC-000003", "DOC-000004"}),
        ("id:DOC-000002", {"DOC-000002"}),
        ("title:deviation", {"DOC-000002"}),
        ("type:certificate-of-analysis", {"DOC-000003"}),
        ("vect*", {"DOC-000003"}),
        ("excur*", {"DOC-000002"}),
        ("viabilty~", {"DOC-000001", "DOC-000004"}),
        ("courrier~1", {"DOC-000002"}),
        ("recorded_at:[2001-01-01 TO *]", ALL),
        ("recorded_at:[2001-01-01 TO 2002-12-31]", set()),
        ("viability AND recorded_at:[* TO 2002-01-01]", set()),
        ("*", ALL),
    ],
)
def test_each_query_form_works_through_the_cli(
    corpus: Corpus, query: str, expected: set[str]
) -> None:
    assert ids(corpus.vault, query) == expected


def test_recorded_at_range_of_dates_covers_whole_days(corpus: Corpus) -> None:
    at = corpus.recorded
    first, last = day_of(at["DOC-000002"]).isoformat(), day_of(at["DOC-000001"]).isoformat()
    assert first != last
    assert ids(corpus.vault, f"recorded_at:[{first} TO {last}]") == ALL
    assert ids(corpus.vault, f"recorded_at:[{first} TO {first}]") == ALL - {"DOC-000001"}
    assert ids(corpus.vault, f"recorded_at:[{last} TO {last}]") == {"DOC-000001"}
    assert ids(corpus.vault, f"courier AND recorded_at:[{first} TO *]") == {"DOC-000002"}
    assert ids(corpus.vault, f"recorded_at:{{* TO {first}}}") == set()


@pytest.mark.parametrize("query", ['"unclosed', "title:", "(a OR", "a OR", "NOT", "nosuchfield:x"])
def test_malformed_query_exits_2_with_one_line(corpus: Corpus, query: str) -> None:
    result = run(corpus.vault, "search", query, "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("atmpvault: ")
    assert "Traceback" not in result.stderr


def test_malformed_query_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    init(vault, "tantivy")
    result = cli(vault, "search", '"unclosed')
    assert result.returncode == 2
    err = result.stderr.decode()
    assert len(err.strip().splitlines()) == 1, err
    assert "unclosed quote" in err
    assert "Traceback" not in err
    assert result.stdout == b""


# -- extraction failures: archived byte for byte, reported as not searchable ----------------


def _pdf_bytes(writer: Any) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(
        io.BytesIO(make_pdf([["Hypothermic storage record, lot C19-2026-009"]]))
    ).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", algorithm="AES-256")
    return _pdf_bytes(writer)


def image_only_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    return _pdf_bytes(writer)


def truncated_pdf() -> bytes:
    data = make_pdf([["Truncated release certificate", "Sterility passed"]] * 3)
    return data[: len(data) // 2]


@pytest.mark.parametrize("engine", ENGINES)
def test_extraction_failures_are_archived_and_reported(tmp_path: Path, engine: str) -> None:
    vault = tmp_path / "vault"
    init(vault, engine)
    cases = {
        "locked.pdf": (encrypted_pdf(), "encrypted PDF"),
        "truncated.pdf": (truncated_pdf(), "damaged PDF"),
        "not-really.pdf": (b"PK\x03\x04 this is a zip, not a PDF", "not a PDF"),
        "scan.pdf": (image_only_pdf(), "no text layer"),
    }
    unsearchable: dict[str, tuple[bytes, str]] = {}
    for name, (data, kind) in cases.items():
        doc_id = add(vault, write(tmp_path, name, data), "--program", "CART-19",
                     "--type", "batch-record")["id"]  # fmt: skip
        unsearchable[doc_id] = (data, kind)
    text_pdf = make_pdf([["Executed batch record", "Viability 91% mononuclear"]], title="BR")
    readable = add(vault, write(tmp_path, "readable.pdf", text_pdf), "--program", "CART-19",
                   "--type", "batch-record")["id"]  # fmt: skip

    for doc_id, (data, kind) in unsearchable.items():
        got = run(vault, "get", doc_id)
        assert got.exit_code == 0, got.stderr
        assert got.stdout_bytes == data, f"{doc_id} ({kind}) is not archived byte for byte"
        record = shown(vault, doc_id)
        assert record["searchable"] is False
        assert record["sha256"] == hashlib.sha256(data).hexdigest()
        assert kind in (record["unsearchable_reason"] or ""), record
        human = run(vault, "show", doc_id)
        assert human.exit_code == 0, human.stderr
        assert f"searchable   no: {record['unsearchable_reason']}" in human.stdout.splitlines()
        assert kind in human.stdout

    assert {d["id"] for d in listed(vault, "--unsearchable")} == set(unsearchable)

    record = shown(vault, readable)
    assert record["searchable"] is True
    assert record["unsearchable_reason"] is None
    assert "searchable   yes" in run(vault, "show", readable).stdout.splitlines()
    assert run(vault, "get", readable).stdout_bytes == text_pdf
    assert ids(vault, "mononuclear") == {readable}
    assert ids(vault, "viability") == {readable}
    # The words inside the encrypted and the truncated PDF were never extracted.
    assert ids(vault, "hypothermic OR sterility") == set()


# -- the light search path and catch-up -------------------------------------------------------

PROBE = """
import json, sys
from atmpvault.cli import cli
cli.main(["--vault", sys.argv[1], "search", sys.argv[2], "--json", "--limit", "1000"],
         prog_name="atmpvault", standalone_mode=False)
print(json.dumps({"sqlalchemy": "sqlalchemy" in sys.modules, "git": "git" in sys.modules}))
"""


def probe(vault: Path, query: str) -> tuple[set[str], dict[str, bool]]:
    """Search in a fresh interpreter; the ids found and which heavy modules were loaded."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(vault), query],
        capture_output=True,
        env=cli_env(),
        timeout=TIMEOUT,
        check=False,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    body, _, last = result.stdout.rstrip("\n").rpartition("\n")
    found = {h["id"] for h in json.loads(body)["hits"]}
    return found, json.loads(last)


@pytest.mark.parametrize("engine", ENGINES)
def test_search_on_a_current_index_loads_neither_sqlalchemy_nor_git(
    tmp_path: Path, engine: str
) -> None:
    vault = tmp_path / "vault"
    init(vault, engine)
    first = add(vault, write(tmp_path, "a.txt", "Cryopreservation record for lot L-0001"),
                "--program", "CART-19", "--type", "batch-record")["id"]  # fmt: skip
    # `add` leaves the index behind; this search brings it up to the repository's tip.
    assert ids(vault, "cryopreservation") == {first}

    found, loaded = probe(vault, "cryopreservation")
    assert found == {first}
    assert loaded == {"sqlalchemy": False, "git": False}

    # A document just added: the index is not current, and search catches up.
    second = add(vault, write(tmp_path, "b.txt", "Cryopreservation deviation for lot L-0002"),
                 "--program", "CART-19", "--type", "deviation-package")["id"]  # fmt: skip
    found, _ = probe(vault, "cryopreservation")
    assert found == {first, second}
    found, loaded = probe(vault, "deviation")
    assert found == {second}
    assert loaded == {"sqlalchemy": False, "git": False}


@pytest.mark.parametrize("engine", ENGINES)
def test_search_agrees_with_the_catalog_after_a_crash_after_commit(
    tmp_path: Path, engine: str
) -> None:
    vault = tmp_path / "vault"
    init(vault, engine)
    for n in range(3):
        add(vault, write(tmp_path, f"r{n}.txt", f"Release record number {n} leukapheresis"),
            "--program", "CART-19", "--type", "batch-record")  # fmt: skip
    assert len(ids(vault, "leukapheresis")) == 3  # the index is current before the crash
    path = write(tmp_path, "crash.txt", "Chain of custody handover transduction")

    crashed = cli(vault, "add", str(path), "--program", "CART-19", "--type", "coc-certificate",
                  "--json", ATMPVAULT_FAULT="after-commit")  # fmt: skip

    assert crashed.returncode == -signal.SIGKILL
    assert crashed.stdout == b""
    assert ids(vault, "transduction") == {"DOC-000004"}
    in_catalog = {d["id"] for d in listed(vault)}
    assert "DOC-000004" in in_catalog
    assert ids(vault, "*") == in_catalog == {"DOC-000001", "DOC-000002", "DOC-000003", "DOC-000004"}
    assert run(vault, "get", "DOC-000004").stdout_bytes == path.read_bytes()
    verified = cli(vault, "verify")
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()


@pytest.mark.parametrize("engine", ENGINES)
def test_rebuild_then_search_gives_the_same_hits(tmp_path: Path, engine: str) -> None:
    vault = tmp_path / "vault"
    init(vault, engine)
    for n, word in enumerate(["apheresis", "transduction", "expansion", "formulation"]):
        add(vault, write(tmp_path, f"s{n}.txt", f"Step {word} for lot L-{n:04d} viability"),
            "--program", "CART-19", "--type", "batch-record", "--lot", f"L-{n:04d}")  # fmt: skip
    revised = write(tmp_path, "s0-r2.txt", "Step apheresis for lot L-0000 viability corrected")
    assert run(vault, "add", str(revised), "--id", "DOC-000001", "--reason", "typo").exit_code == 0
    withdrawn = run(vault, "withdraw", "DOC-000003", "--reason", "superseded")
    assert withdrawn.exit_code == 0, withdrawn.stderr

    queries = [
        ("viability",),
        ("viability", "--all-versions"),
        ("*",),
        ("*", "--all-versions"),
        ("corrected OR transduction",),
        ("lot:L-0002",),
    ]

    def hits() -> list[set[tuple[str, int]]]:
        return [
            {
                (h["id"], h["version"])
                for h in search(vault, q[0], "--limit", "1000", *q[1:])["hits"]
            }
            for q in queries
        ]

    before = hits()
    assert ("DOC-000001", 2) in before[0] and ("DOC-000001", 1) not in before[0]
    assert ("DOC-000001", 1) in before[1]
    rebuilt = run(vault, "rebuild", "--json")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["versions"] == 6
    assert hits() == before
    verified = run(vault, "verify")
    assert verified.exit_code == 0, verified.output
