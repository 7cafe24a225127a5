"""`atmpvault import`: folders and CSV manifests, refusals with line numbers, resumption
after the importing process is killed, and output fit for scripts."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from atmpvault.archive.core.pdf import make_pdf
from tests.conftest import CLI, cli_env, run

TIMEOUT = 600
SUMMARY_KEYS = {
    "imported",
    "skipped",
    "refused",
    "unsearchable",
    "documents",
    "already_archived",
    "symlinks_skipped",
}
FOLDER_ARGS = ("--program", "CART-19", "--type", "batch-record")


def cli(vault: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The real `atmpvault` in a child process (stdout and stderr are pipes, not a TTY)."""
    return subprocess.run(
        [*CLI, "--vault", str(vault), *args],
        capture_output=True,
        env=cli_env(),
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def listed(vault: Path) -> list[dict[str, Any]]:
    result = run(vault, "ls", "--json")
    assert result.exit_code == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def search_ids(vault: Path, query: str) -> set[str]:
    result = run(vault, "search", query, "--json", "--limit", "1000")
    assert result.exit_code == 0, result.stderr
    return {h["id"] for h in json.loads(result.stdout)["hits"]}


def shown(vault: Path, doc_id: str) -> dict[str, Any]:
    result = run(vault, "show", doc_id, "--json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def import_json(vault: Path, *args: str, exit_code: int = 0) -> dict[str, Any]:
    result = run(vault, "import", *args, "--json")
    assert result.exit_code == exit_code, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    assert set(data) == SUMMARY_KEYS
    return data


# -- folders --------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> dict[str, bytes]:
    """A nested folder of mixed files; returns relative path -> bytes of what should import."""
    root = tmp_path / "scans"
    files = {
        "br-0001.pdf": make_pdf([["Executed batch record", "Leukapheresis received"]]),
        "notes.txt": b"Operator notes: cryobag inspected, no leaks.\n",
        "sub/viability.csv": b"lot,viability\nL-0042,93\nL-0043,91\n",
        "sub/deeper/README.md": b"# Transfer\nShipment log for thaw station.\n",
        "sub/deeper/release.json": b'{"release": {"lot": "L-0042", "decision": "approved"}}',
        "sub/instrument.bin": bytes(range(256)) * 8,
    }
    for rel, data in files.items():
        write(root / rel, data)
    # Skipped: dotfiles, dot-directories, and a second copy of a file already in the folder
    # (same bytes, same name; a copy under another name is refused: test_duplicates.py).
    write(root / ".DS_Store", b"finder junk")
    write(root / "sub" / ".hidden.txt", b"hidden operator notes")
    write(root / ".cache" / "tmp.txt", b"cached, never archived")
    write(root / "sub" / "zz" / "notes.txt", files["notes.txt"])
    return files


def test_folder_import_is_recursive_and_byte_exact(
    vault_path: Path, tmp_path: Path, folder: dict[str, bytes]
) -> None:
    root = tmp_path / "scans"
    summary = import_json(vault_path, str(root), *FOLDER_ARGS)

    assert summary["imported"] == len(folder) == 6
    assert summary["skipped"] == 1  # the copy of notes.txt
    notes_id = next(d["id"] for d in summary["documents"] if d["path"] == str(root / "notes.txt"))
    assert summary["already_archived"] == [
        {"path": str(root / "sub" / "zz" / "notes.txt"), "id": notes_id}
    ]
    assert summary["refused"] == []
    [unsearchable] = summary["unsearchable"]
    assert set(unsearchable) == {"path", "id", "reason"}
    assert Path(unsearchable["path"]) == root / "sub" / "instrument.bin"
    assert "unsupported format: .bin" in unsearchable["reason"]

    docs = listed(vault_path)
    assert len(docs) == 6
    by_sha = {d["sha256"]: d for d in docs}
    assert set(by_sha) == {sha256(data) for data in folder.values()}
    for rel, data in folder.items():
        doc = by_sha[sha256(data)]
        assert doc["filename"] == Path(rel).name
        assert (doc["program"], doc["type"], doc["version"]) == ("CART-19", "batch-record", 1)
        got = run(vault_path, "get", doc["id"])
        assert got.exit_code == 0, got.stderr
        assert got.stdout_bytes == data, f"{rel} does not come back byte-identical"
    # The duplicate was archived once, from the first path met in the walk.
    assert by_sha[sha256(folder["notes.txt"])]["filename"] == "notes.txt"
    assert shown(vault_path, notes_id)["source_path"] == "notes.txt"
    assert {d["filename"] for d in docs}.isdisjoint({".DS_Store", ".hidden.txt", "tmp.txt"})

    bin_doc = by_sha[sha256(folder["sub/instrument.bin"])]
    assert unsearchable["id"] == bin_doc["id"]
    assert bin_doc["searchable"] is False
    assert [
        d["id"] for d in json.loads(run(vault_path, "ls", "--unsearchable", "--json").stdout)
    ] == [bin_doc["id"]]
    assert all(d["searchable"] for d in docs if d["id"] != bin_doc["id"])

    # Text from every supported kind is searchable.
    for word, rel in [
        ("leukapheresis", "br-0001.pdf"),
        ("cryobag", "notes.txt"),
        ("viability", "sub/viability.csv"),
        ("thaw", "sub/deeper/README.md"),
        ("approved", "sub/deeper/release.json"),
    ]:
        assert search_ids(vault_path, word) == {by_sha[sha256(folder[rel])]["id"]}, word
    assert search_ids(vault_path, "hidden OR cached OR finder") == set()

    verified = run(vault_path, "verify")
    assert verified.exit_code == 0, verified.output


def test_rerunning_a_folder_import_imports_nothing(
    vault_path: Path, tmp_path: Path, folder: dict[str, bytes]
) -> None:
    root = tmp_path / "scans"
    first = import_json(vault_path, str(root), *FOLDER_ARGS)
    assert (first["imported"], first["skipped"]) == (6, 1)
    head = listed(vault_path)

    again = import_json(vault_path, str(root), *FOLDER_ARGS)

    assert (again["imported"], again["skipped"], again["refused"]) == (0, 7, [])
    assert again["documents"] == again["unsearchable"] == []
    assert len(again["already_archived"]) == 7
    assert listed(vault_path) == head


def test_a_file_already_archived_by_add_is_skipped(vault_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    one = write(root / "one.txt", "first record")
    write(root / "two.txt", "second record")
    assert run(vault_path, "add", str(one), *FOLDER_ARGS).exit_code == 0

    summary = import_json(vault_path, str(root), *FOLDER_ARGS)

    assert (summary["imported"], summary["skipped"]) == (1, 1)
    assert sorted(d["filename"] for d in listed(vault_path)) == ["one.txt", "two.txt"]


def test_folder_import_needs_program_and_type(vault_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    write(root / "a.txt", "a record")
    for args in ([], ["--program", "CART-19"], ["--type", "batch-record"]):
        result = run(vault_path, "import", str(root), *args)
        assert result.exit_code == 2, result.output
        assert "--program and --type" in result.stderr
        assert "Traceback" not in result.stderr
    assert listed(vault_path) == []


def test_folder_import_refuses_bad_program_and_type(vault_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "in"
    write(root / "a.txt", "a record")
    bad_program = run(vault_path, "import", str(root), "--program", "cart-19", "--type", "sop")
    assert bad_program.exit_code == 2
    assert "invalid program" in bad_program.stderr
    bad_type = run(vault_path, "import", str(root), "--program", "CART-19", "--type", "memo")
    assert bad_type.exit_code == 2
    assert "unknown document type" in bad_type.stderr
    assert listed(vault_path) == []


def test_import_of_a_missing_folder_exits_1(vault_path: Path, tmp_path: Path) -> None:
    result = run(vault_path, "import", str(tmp_path / "nowhere"), *FOLDER_ARGS)
    assert result.exit_code == 1
    assert "no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_needs_a_folder_or_a_manifest(vault_path: Path, tmp_path: Path) -> None:
    assert run(vault_path, "import").exit_code == 2
    manifest = write(tmp_path / "m.csv", "path,program,type\n")
    both = run(vault_path, "import", str(tmp_path), "--manifest", str(manifest))
    assert both.exit_code == 2


def test_json_prints_only_json(vault_path: Path, tmp_path: Path, folder: dict[str, bytes]) -> None:
    result = cli(vault_path, "import", str(tmp_path / "scans"), *FOLDER_ARGS, "--json")
    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert set(summary) == SUMMARY_KEYS
    assert summary["imported"] == 6
    assert result.stderr == b""


def test_without_a_tty_there_is_no_progress_bar(
    vault_path: Path, tmp_path: Path, folder: dict[str, bytes]
) -> None:
    result = cli(vault_path, "import", str(tmp_path / "scans"), *FOLDER_ARGS)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "Importing" not in out
    assert "Importing" not in result.stderr.decode()
    assert "\r" not in out and "#" not in out
    lines = out.splitlines()
    assert lines[0] == "imported 6, skipped 1 already archived, refused 0, not searchable 1"
    # Which file became which document (a header and 6 rows), the table of files not
    # searchable, and nothing else.
    assert lines[2].split() == ["ID", "PATH", "TITLE"]
    assert lines[3].split()[1:] == [str(tmp_path / "scans" / "br-0001.pdf"), "br-0001"]
    assert "Not searchable (archived byte for byte):" in lines
    assert any("instrument.bin" in line and "unsupported format" in line for line in lines)
    assert len([line for line in lines if line.strip()]) == 4 + 7


# -- manifests ------------------------------------------------------------------------------


def csv_text(rows: list[list[str]]) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def test_manifest_applies_metadata_and_refuses_bad_rows_by_line(
    vault_path: Path, tmp_path: Path
) -> None:
    legacy = tmp_path / "legacy"
    good = {
        "records/br-0042.pdf": make_pdf([["Executed batch record L-0042", "Viability 93%"]]),
        "sop-112.txt": b"Standard operating procedure for cryostorage.",
    }
    for rel, data in good.items():
        write(legacy / rel, data)
    for name in ("a.txt", "b.txt", "c.txt"):
        write(legacy / name, f"valid file {name} behind an invalid row")
    outside = write(tmp_path / "outside.txt", "outside the manifest's folder")
    header = ["path", "program", "type", "title", "lot", "meta.site"]
    rows = [
        header,
        [
            "records/br-0042.pdf",
            "CART-19",
            "batch-record",
            "Batch record L-0042",
            "L-0042",
            "Leiden",
        ],  # line 2
        ["missing.pdf", "CART-19", "batch-record", "", "", ""],  # line 3: no such file
        ["../outside.txt", "CART-19", "batch-record", "", "", ""],  # line 4: traversal
        [str(outside), "CART-19", "batch-record", "", "", ""],  # line 5: absolute
        ["a.txt", "cart-19", "batch-record", "", "", ""],  # line 6: program lower case
        ["b.txt", "CART-19", "memo", "", "", ""],  # line 7: unknown type
        ["c.txt", "CART-19", "batch-record", "", "bad/lot", ""],  # line 8: bad lot
        ["sop-112.txt", "AAV-HEMO", "sop", "SOP-112 rev 4", "", ""],  # line 9
    ]
    manifest = write(legacy / "manifest.csv", csv_text(rows))

    summary = import_json(vault_path, "--manifest", str(manifest), exit_code=1)

    assert summary["imported"] == 2
    assert summary["skipped"] == 0
    assert summary["unsearchable"] == []
    refused = summary["refused"]
    assert [r["path"] for r in refused] == [
        "missing.pdf",
        "../outside.txt",
        str(outside),
        "a.txt",
        "b.txt",
        "c.txt",
    ]
    for line, entry, reason in zip(
        range(3, 9),
        refused,
        ["no such file", "inside the manifest's folder", "inside the manifest's folder",
         "invalid program", "unknown document type", "invalid lot"],
        strict=True,
    ):  # fmt: skip
        assert entry["error"].startswith(f"manifest.csv line {line}: "), entry
        assert reason in entry["error"], entry

    docs = {d["filename"]: d for d in listed(vault_path)}
    assert set(docs) == {"br-0042.pdf", "sop-112.txt"}
    br = shown(vault_path, docs["br-0042.pdf"]["id"])
    assert (br["program"], br["type"], br["title"], br["lot"]) == (
        "CART-19",
        "batch-record",
        "Batch record L-0042",
        "L-0042",
    )
    assert br["meta"] == {"site": "Leiden"}
    assert br["action"] == "import"
    sop = shown(vault_path, docs["sop-112.txt"]["id"])
    assert (sop["program"], sop["type"], sop["title"], sop["lot"], sop["meta"]) == (
        "AAV-HEMO",
        "sop",
        "SOP-112 rev 4",
        None,
        {},
    )
    for rel, data in good.items():
        doc_id = docs[Path(rel).name]["id"]
        assert run(vault_path, "get", doc_id).stdout_bytes == data
    assert search_ids(vault_path, "cryostorage") == {docs["sop-112.txt"]["id"]}
    assert search_ids(vault_path, "lot:L-0042") == {docs["br-0042.pdf"]["id"]}


def test_manifest_refusals_for_people_name_the_line(vault_path: Path, tmp_path: Path) -> None:
    write(tmp_path / "ok.txt", "fine")
    manifest = write(
        tmp_path / "manifest.csv",
        "path,program,type\nok.txt,CART-19,sop\nmissing.txt,CART-19,sop\n",
    )
    result = run(vault_path, "import", str(manifest))  # a .csv argument is a manifest
    assert result.exit_code == 1
    assert result.stdout.startswith("imported 1, skipped 0 already archived, refused 1")
    assert "manifest.csv line 3" in result.stderr
    assert "missing.txt" in result.stderr
    assert "Traceback" not in result.stderr


def test_manifest_defaults_from_options(vault_path: Path, tmp_path: Path) -> None:
    write(tmp_path / "x.txt", "defaulted record")
    write(tmp_path / "y.txt", "overridden record")
    manifest = write(
        tmp_path / "manifest.csv", "path,program,type,lot\nx.txt,,,L-1\ny.txt,AAV-HEMO,capa,\n"
    )
    summary = import_json(
        vault_path, "--manifest", str(manifest), "--program", "CART-19", "--type", "sop"
    )
    assert summary["imported"] == 2
    docs = {d["filename"]: d for d in listed(vault_path)}
    assert (docs["x.txt"]["program"], docs["x.txt"]["type"], docs["x.txt"]["lot"]) == (
        "CART-19",
        "sop",
        "L-1",
    )
    assert (docs["y.txt"]["program"], docs["y.txt"]["type"]) == ("AAV-HEMO", "capa")


@pytest.mark.parametrize(
    "header",
    ["program,type,title", "path,type,title", "path,program,title,lot"],
)
def test_manifest_missing_column_exits_2_on_line_1(
    vault_path: Path, tmp_path: Path, header: str
) -> None:
    write(tmp_path / "a.txt", "record")
    manifest = write(tmp_path / "manifest.csv", f"{header}\na.txt,CART-19,sop,x\n")
    result = run(vault_path, "import", "--manifest", str(manifest), "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "line 1" in result.stderr
    assert "missing column" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert listed(vault_path) == []


def test_manifest_unknown_column_exits_2(vault_path: Path, tmp_path: Path) -> None:
    manifest = write(tmp_path / "manifest.csv", "path,program,type,colour\n")
    result = run(vault_path, "import", "--manifest", str(manifest))
    assert result.exit_code == 2
    assert "line 1" in result.stderr and "colour" in result.stderr


def test_missing_manifest_exits_1(vault_path: Path, tmp_path: Path) -> None:
    result = run(vault_path, "import", "--manifest", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert "no such manifest" in result.stderr


# -- resuming after the importer is killed --------------------------------------------------


def commits(vault: Path) -> int:
    result = subprocess.run(
        ["git", "--git-dir", str(vault / "repo.git"), "rev-list", "--count", "main"],
        capture_output=True,
        text=True,
        check=False,
    )
    return int(result.stdout.strip()) if result.returncode == 0 else 0


def make_corpus(root: Path, count: int) -> dict[str, bytes]:
    """`count` small, distinct PDFs; each carries its own searchable word."""
    files = {}
    for n in range(count):
        name = f"br-{n:05d}.pdf"
        data = make_pdf([[f"Batch record marker{n:05d}", f"Lot L-{n:05d} viability 9{n % 10}%"]])
        write(root / name, data)
        files[name] = data
    return files


def start_and_kill(vault: Path, root: Path) -> tuple[bool, int]:
    """Start a real import and SIGKILL its process group once some commits are in.

    Returns whether it was killed before finishing, and how many documents were
    committed by then.
    """
    proc = subprocess.Popen(
        [*CLI, "--vault", str(vault), "import", str(root), *FOLDER_ARGS, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=cli_env(),
        start_new_session=True,
    )
    deadline = time.monotonic() + TIMEOUT
    try:
        while proc.poll() is None and commits(vault) <= 50:
            if time.monotonic() > deadline:
                pytest.fail("the import made no progress")
            time.sleep(0.02)
    finally:
        # A power cut: the importer, its workers and git fast-import die together.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate(timeout=TIMEOUT)
    killed = proc.returncode == -signal.SIGKILL
    if not killed:
        assert proc.returncode == 0, err.decode()
        assert json.loads(out)["imported"] > 0
    return killed, commits(vault) - 1  # less the vault's initial commit


def test_killed_import_resumes_and_archives_every_file_once(tmp_path: Path) -> None:
    count = 600
    for attempt in range(2):
        vault = tmp_path / f"vault-{attempt}"
        assert run(vault, "init").exit_code == 0
        root = tmp_path / f"corpus-{count}"
        files = make_corpus(root, count)
        killed, first_run = start_and_kill(vault, root)
        if killed and 0 < first_run < count:
            break
        count *= 2  # it finished before the kill: try again with more to do
    # Even if no attempt was interrupted, the re-run below must still be correct.

    result = cli(vault, "import", str(root), *FOLDER_ARGS, "--json")

    assert result.returncode == 0, result.stderr.decode()
    summary = json.loads(result.stdout)
    assert summary["refused"] == []
    assert summary["imported"] + summary["skipped"] == count
    assert summary["skipped"] == first_run
    docs = listed(vault)
    assert len(docs) == count
    assert len({d["id"] for d in docs}) == count
    assert {d["sha256"] for d in docs} == {sha256(data) for data in files.values()}
    assert commits(vault) == count + 1  # one commit per document, none twice
    verified = cli(vault, "verify")
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()

    # Documents from both runs are found, the first run's through catch-up of the index.
    by_name = {d["filename"]: d["id"] for d in docs}
    seq = {name: int(doc_id.rsplit("-", 1)[1]) for name, doc_id in by_name.items()}
    from_first = sorted(name for name in by_name if seq[name] <= first_run)
    from_second = sorted(name for name in by_name if seq[name] > first_run)
    assert len(from_first) == first_run
    for name in from_first[:1] + from_first[-1:] + from_second[:1] + from_second[-1:]:
        marker = "marker" + name[3:8]
        assert search_ids(vault, marker) == {by_name[name]}, name
    everything = run(vault, "search", "*", "--json", "--limit", "10000")
    assert json.loads(everything.stdout)["total"] == count
    assert {d["id"] for d in docs} == {h["id"] for h in json.loads(everything.stdout)["hits"]}
