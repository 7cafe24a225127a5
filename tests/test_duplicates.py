"""One file, one document: duplicates refused, import races settled under the lock, and the
traces of old races reported by verify."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.records import ACTIVE, DocumentVersion, doc_id_for
from atmpvault.archive.documents.versions import Documents, extract_text
from atmpvault.archive.domains import domains
from atmpvault.config import Settings
from tests.conftest import CLI, cli_env, run

ARGS = ("--program", "CART-19", "--type", "batch-record")


def write(path: Path, data: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data, encoding="utf-8")
    return path


def listed(vault: Path) -> list[dict[str, Any]]:
    result = run(vault, "ls", "--json")
    assert result.exit_code == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def verify_json(vault: Path) -> dict[str, Any]:
    result = run(vault, "verify", "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_add_of_bytes_already_archived_is_refused_naming_the_document(
    vault_path: Path, tmp_path: Path
) -> None:
    first = write(tmp_path / "BR-0042.txt", "executed batch record L-0042")
    copy = write(tmp_path / "copy" / "BR-0042-scan.txt", "executed batch record L-0042")
    assert run(vault_path, "add", str(first), *ARGS).exit_code == 0

    refused = run(vault_path, "add", str(copy), *ARGS)

    assert refused.exit_code == 1
    assert refused.stderr == (
        f"atmpvault: {copy}: identical bytes are already archived as DOC-000001 v1 "
        "(BR-0042.txt); --allow-duplicate archives them anyway\n"
    )
    assert [d["id"] for d in listed(vault_path)] == ["DOC-000001"]


def test_allow_duplicate_archives_on_purpose_and_records_it(
    vault_path: Path, tmp_path: Path
) -> None:
    first = write(tmp_path / "a" / "BR-0042.txt", "executed batch record L-0042")
    again = write(tmp_path / "b" / "BR-0042.txt", "executed batch record L-0042")
    assert run(vault_path, "add", str(first), *ARGS).exit_code == 0

    added = run(vault_path, "add", str(again), *ARGS, "--allow-duplicate", "--json")

    assert added.exit_code == 0, added.stderr
    assert json.loads(added.stdout)["id"] == "DOC-000002"
    shown = json.loads(run(vault_path, "show", "DOC-000002", "--json").stdout)
    assert shown["duplicate_of"] == "DOC-000001"
    assert shown["source_path"] is None  # added, not imported
    assert "duplicate_of DOC-000001" in run(vault_path, "show", "DOC-000002").stdout
    # A duplicate archived on purpose is no suspect.
    assert verify_json(vault_path) == {"ok": True, "problems": []}
    # --allow-duplicate is for new documents only.
    revise = run(vault_path, "add", str(first), "--id", "DOC-000001", "--reason", "r",
                 "--allow-duplicate")  # fmt: skip
    assert revise.exit_code == 2


def test_import_refuses_a_copy_under_another_name_unless_allowed(
    vault_path: Path, tmp_path: Path
) -> None:
    root = tmp_path / "scans"
    write(root / "BR-0042.txt", "executed batch record L-0042")
    copy = write(root / "sub" / "BR-0042 (1).txt", "executed batch record L-0042")
    write(root / "BR-0043.txt", "executed batch record L-0043")

    result = run(vault_path, "import", str(root), *ARGS, "--json")

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["imported"] == 2
    ids = {Path(d["path"]).name: d["id"] for d in summary["documents"]}
    assert summary["refused"] == [
        {
            "path": str(copy),
            "error": f"{copy}: identical bytes are already archived as {ids['BR-0042.txt']} "
            "v1 (BR-0042.txt); --allow-duplicate archives them anyway",
        }
    ]
    assert len(listed(vault_path)) == 2

    allowed = run(vault_path, "import", str(root), *ARGS, "--allow-duplicate", "--json")

    assert allowed.exit_code == 0, allowed.stderr
    summary = json.loads(allowed.stdout)
    # The copy is archived; the files archived before are still skipped, never doubled.
    assert (summary["imported"], summary["skipped"]) == (1, 2)
    [doc] = summary["documents"]
    shown = json.loads(run(vault_path, "show", doc["id"], "--json").stdout)
    assert (shown["duplicate_of"], shown["source_path"]) == (
        ids["BR-0042.txt"],
        "sub/BR-0042 (1).txt",
    )
    assert len(listed(vault_path)) == 3


def test_two_concurrent_imports_of_one_folder_archive_each_file_once(
    vault_path: Path, tmp_path: Path
) -> None:
    root = tmp_path / "scans"
    count = 300
    for n in range(count):
        write(root / f"batch-{n // 100}" / f"BR-{n:04d}.txt", f"batch record {n}\n" * 20)

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, "--vault", str(vault_path), "import", str(root), *ARGS, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(ATMPVAULT_LOCK_TIMEOUT="120"),
        )

    # Started together, both find nothing archived before either commits: the race.
    first, second = start(), start()
    results = [p.communicate(timeout=300) for p in (first, second)]

    assert [p.returncode for p in (first, second)] == [0, 0], results
    summaries = [json.loads(out) for out, _ in results]
    assert sum(s["imported"] for s in summaries) == count
    assert all(s["imported"] + s["skipped"] == count for s in summaries)
    assert all(s["refused"] == [] for s in summaries)
    docs = listed(vault_path)
    assert len(docs) == count
    assert len({d["sha256"] for d in docs}) == count
    # Which process archived a file, the other names the same document for it.
    archived = {d["path"]: d["id"] for s in summaries for d in s["documents"]}
    for summary in summaries:
        for entry in summary["already_archived"]:
            assert archived[entry["path"]] == entry["id"]
    assert verify_json(vault_path) == {"ok": True, "problems": []}


def _archive_twice_as_an_old_import_race_did(settings: Settings, path: Path) -> list[str]:
    """Two documents of the same bytes and name, written without any duplicate check."""
    data = path.read_bytes()
    ids = []
    with Vault.open(settings, domains()) as vault:
        documents = Documents(vault)
        for _ in range(2):
            seq = documents.catalog.next_seq()
            draft = DocumentVersion(
                id=doc_id_for(seq), version=1, seq=seq, program="CART-19",
                type="batch-record", title=None, lot=None, filename=path.name, size=0,
                sha256="", status=ACTIVE, action="import", recorded_at="", user="qa.tester",
                reason=None,
            )  # fmt: skip
            with vault.unit("import", "", actor="qa.tester") as unit:
                documents.stage(unit, draft, data, extract_text(data, path.name))
            ids.append(draft.id)
    return ids


def test_verify_lists_suspected_duplicates_as_warnings_not_problems(
    vault_path: Path, tmp_path: Path
) -> None:
    scan = write(tmp_path / "BR-0042.txt", "executed batch record L-0042")
    write(tmp_path / "other" / "BR-0042.txt", "another record, same name")
    assert run(vault_path, "import", str(tmp_path / "other"), *ARGS).exit_code == 0
    settings = Settings(vault=vault_path, user="qa.tester", lock_timeout=10)
    first, second = _archive_twice_as_an_old_import_race_did(settings, scan)

    report = verify_json(vault_path)

    assert report["ok"] is True and report["problems"] == []
    [warning] = report["warnings"]
    assert warning["kind"] == "suspected_duplicate"
    assert warning["documents"] == [first, second]
    assert (warning["filename"], len(warning["sha256"])) == ("BR-0042.txt", 64)
    text = run(vault_path, "verify")
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0] == (
        f"WARNING  suspected duplicates: {first}, {second} have identical bytes "
        f"(SHA-256 {warning['sha256'][:12]}) and the same file name BR-0042.txt; if they are "
        "one record archived twice, withdraw all but one"
    )
    assert text.stdout.splitlines()[1].startswith("ok: ")

    # Withdrawing the extra one settles it.
    assert run(vault_path, "withdraw", second, "--reason", "archived twice").exit_code == 0
    assert verify_json(vault_path) == {"ok": True, "problems": []}
