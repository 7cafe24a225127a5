"""A bulk import holds batches, not the archive: the source walked lazily, the report
spooled to disk and streamed out, the repository's packs rolled up within a bound."""

from __future__ import annotations

import json
import os
import random
import subprocess
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import pytest

from atmpvault.archive.core.pdf import make_pdf
from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents import importer
from atmpvault.archive.documents.importer import ImportReport, plan_folder, run_import
from atmpvault.repository import packs
from atmpvault.repository.fastimport import NewCommit
from atmpvault.repository.git import GitStore
from tests.conftest import run

FOLDER_ARGS = ("--program", "CART-19", "--type", "batch-record")


def corpus(root: Path, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        folder = root / f"{n // 7:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"br-{n:05d}.pdf").write_bytes(make_pdf([[f"Batch record marker{n:05d}"]]))


def test_a_folder_is_walked_as_the_import_asks_for_files(vault: Vault, tmp_path: Path) -> None:
    corpus(tmp_path / "src", 30)
    report = ImportReport()
    plan = plan_folder(vault, tmp_path / "src", "CART-19", "batch-record", report)

    first = list(islice(iter(plan), 3))

    assert [i.path.name for i in first] == ["br-00000.pdf", "br-00001.pdf", "br-00002.pdf"]
    assert plan.count() == 30
    assert report.refused == [] and report.symlinks_skipped == []


def test_the_streamed_json_report_is_the_report(vault_path: Path, tmp_path: Path) -> None:
    corpus(tmp_path / "src", 12)
    (tmp_path / "src" / "000" / "copy.pdf").write_bytes(
        (tmp_path / "src" / "000" / "br-00000.pdf").read_bytes()
    )
    first = run(vault_path, "import", str(tmp_path / "src"), *FOLDER_ARGS, "--json")
    corpus(tmp_path / "src", 3, start=12)

    again = run(vault_path, "import", str(tmp_path / "src"), *FOLDER_ARGS, "--json")

    assert first.exit_code == 1  # the copy is refused
    summary = json.loads(again.stdout)
    assert again.stdout == json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    assert summary["imported"] == 3 and summary["skipped"] == 12
    assert [d["path"].rsplit("/", 1)[1] for d in summary["documents"]] == [
        "br-00012.pdf",
        "br-00013.pdf",
        "br-00014.pdf",
    ]
    assert len(summary["already_archived"]) == 12
    assert json.loads(first.stdout)["documents"][0]["id"] == "DOC-000001"


def test_a_spool_keeps_its_entries_in_order(tmp_path: Path) -> None:
    report = ImportReport()
    for n in range(1000):
        report.documents.append({"path": f"f{n}", "id": f"DOC-{n:06d}", "title": "é"})

    assert len(report.documents) == 1000
    assert report.documents[999] == {"path": "f999", "id": "DOC-000999", "title": "é"}
    assert [d["path"] for d in report.documents][:2] == ["f0", "f1"]
    report.close()


def test_large_packs_are_kept_out_of_later_roll_ups(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packs, "KEEP_OBJECTS", 40)
    monkeypatch.setattr(packs, "PACK_LIMIT", 2)
    monkeypatch.setattr(importer, "BATCH", 4)
    corpus(tmp_path / "src", 40)
    report = ImportReport()

    run_import(
        vault, plan_folder(vault, tmp_path / "src", "CART-19", "batch-record", report), report
    )

    pack_dir = vault.store.path / "objects" / "pack"
    kept = sorted(pack_dir.glob("*.keep"))
    assert report.imported == 40
    assert kept, "no pack reached KEEP_OBJECTS"
    assert all(packs.pack_objects(k.with_suffix(".pack")) >= 40 for k in kept)
    assert len(packs.rolling_packs(vault.store.path)) <= 3
    fsck = subprocess.run(
        ["git", f"--git-dir={vault.store.path}", "fsck", "--full"], capture_output=True
    )
    assert fsck.returncode == 0
    assert vault.verify() == []


def test_history_is_read_a_chunk_at_a_time_in_order(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atmpvault.repository import history

    corpus(tmp_path / "src", 7)
    report = ImportReport()
    run_import(
        vault, plan_folder(vault, tmp_path / "src", "CART-19", "batch-record", report), report
    )
    monkeypatch.setattr(history, "CHUNK", 2)
    expected = subprocess.run(
        ["git", f"--git-dir={vault.store.path}", "log", "--reverse", "--format=%H", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    seen = list(vault.store.changes())
    since = list(vault.store.history(since=expected[2]))

    assert [info.sha for info, _ in seen] == expected
    assert all(paths for _, paths in seen)
    assert seen[-1][1][0].endswith("DOC-000007/content")
    assert [info.sha for info in since] == expected[3:]
    assert vault.verify() == []


def test_a_copy_in_the_next_batch_is_caught_while_the_first_is_still_being_applied(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 2)
    src = tmp_path / "src"
    corpus(src, 2)  # 000/br-00000.pdf, 000/br-00001.pdf: the first batch
    original = (src / "000" / "br-00001.pdf").read_bytes()
    (src / "001").mkdir()
    (src / "001" / "br-00001.pdf").write_bytes(original)  # same name and bytes: skipped
    (src / "001" / "copy.pdf").write_bytes(original)  # same bytes, another name: refused
    report = ImportReport()

    run_import(vault, plan_folder(vault, src, "CART-19", "batch-record", report), report)

    assert report.imported == 2
    assert report.skipped == 1
    assert [r["path"].rsplit("/", 1)[1] for r in report.refused] == ["copy.pdf"]
    assert [d["id"] for d in report.documents] == ["DOC-000001", "DOC-000002"]
    assert vault.verify() == []


@pytest.mark.parametrize("attributes", [True, False])
def test_roll_ups_search_no_delta_for_document_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, attributes: bool
) -> None:
    if not attributes:  # the check's own check: without them, the same files delta
        monkeypatch.setattr(packs, "ATTRIBUTES", Path(os.devnull))
    store = GitStore.create(tmp_path / "repo.git")
    body = random.Random(7).randbytes(20_000)
    for n in range(20):  # a pack each, its file first (fast-import deltas only the next blob)
        alike = body[: n * 100] + b"%05d" % n + body[n * 100 :]
        files = {f"docs/0/{n:02d}/DOC-{n:06d}/{name}": name.encode() + alike
                 for name in ("content", "text")}  # fmt: skip
        store.commit(NewCommit(files, f"import {n}", "qa", datetime(2026, 1, 1, tzinfo=UTC)),
                     store.head())  # fmt: skip

    packs.pack(store.path)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={store.path}", *args], capture_output=True, text=True
        ).stdout

    names = dict(line.split(" ", 1) for line in git("rev-list", "--objects", "--all").splitlines()
                 if " " in line)  # fmt: skip
    deltas = {"content": 0, "text": 0, "tree": 0}
    for idx in (store.path / "objects" / "pack").glob("*.idx"):
        for line in git("verify-pack", "-v", str(idx)).splitlines():
            oid, kind, *rest = line.split() or ["", ""]
            if len(rest) >= 5 and kind in ("blob", "tree"):  # a delta: its depth and base
                deltas[names[oid].rsplit("/", 1)[-1] if kind == "blob" else "tree"] += 1
    assert deltas["text"] > 0 and deltas["tree"] > 0  # text and trees still delta
    assert (deltas["content"] == 0) is attributes  # a document's own file: never searched
