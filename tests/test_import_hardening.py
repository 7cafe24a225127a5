"""Add and import take regular files of bounded size, say what became what, and `get`
into a closed pipe is no damage."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI, cli_env, run

ARGS = ("--program", "CART-19", "--type", "batch-record")


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def listed(vault: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(run(vault, "ls", "--json").stdout)
    return data


def real(vault: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The real `atmpvault` in a process, with a deadline (a hang fails the test)."""
    return subprocess.run(
        [*CLI, "--vault", str(vault), *args],
        capture_output=True,
        text=True,
        env=cli_env(**env),
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# -- import: what became what, titles, one file, symbolic links, usage ----------------------


def test_import_says_which_file_became_which_document(vault_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "scans"
    write(root / "BR-0042 executed.txt", "batch record L-0042")
    write(root / "sub" / "CoA-0042.v2.txt", "certificate of analysis L-0042")

    result = run(vault_path, "import", str(root), *ARGS, "--json")

    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["documents"] == [
        {
            "path": str(root / "BR-0042 executed.txt"),
            "id": "DOC-000001",
            "title": "BR-0042 executed",
        },
        {"path": str(root / "sub" / "CoA-0042.v2.txt"), "id": "DOC-000002", "title": "CoA-0042.v2"},
    ]
    docs = {d["id"]: d for d in listed(vault_path)}
    assert docs["DOC-000002"]["filename"] == "CoA-0042.v2.txt"
    assert docs["DOC-000002"]["title"] == "CoA-0042.v2"
    assert docs["DOC-000002"]["source_path"] == "sub/CoA-0042.v2.txt"

    write(root / "BR-0043.txt", "batch record L-0043")
    text = run(vault_path, "import", str(root), *ARGS)
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0] == "imported 1, skipped 2 already archived, refused 0, not searchable 0"
    assert lines[2].split() == ["ID", "PATH", "TITLE"]
    assert lines[3].split() == ["DOC-000003", str(root / "BR-0043.txt"), "BR-0043"]


def test_a_manifest_title_or_an_embedded_one_wins_over_the_file_name(
    vault_path: Path, tmp_path: Path, sample_pdf: Path
) -> None:
    write(tmp_path / "x.txt", "a record")
    write(tmp_path / "manifest.csv", "path,program,type,title\nx.txt,CART-19,sop,SOP-112 rev 4\n")
    assert run(vault_path, "import", str(tmp_path / "manifest.csv")).exit_code == 0
    assert run(vault_path, "import", str(sample_pdf), *ARGS).exit_code == 0

    titles = {d["filename"]: d["title"] for d in listed(vault_path)}

    assert titles == {"x.txt": "SOP-112 rev 4", sample_pdf.name: "BR L-0042"}


def test_import_of_one_file(vault_path: Path, tmp_path: Path) -> None:
    one = write(tmp_path / "in" / "BR-0042.txt", "batch record L-0042")
    write(tmp_path / "in" / "BR-0043.txt", "not this one")

    result = run(vault_path, "import", str(one), *ARGS, "--json")

    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["documents"] == [
        {"path": str(one), "id": "DOC-000001", "title": "BR-0042"}
    ]
    [doc] = listed(vault_path)
    assert (doc["filename"], doc["source_path"]) == ("BR-0042.txt", "BR-0042.txt")


def test_import_without_a_source_is_a_usage_error(tmp_path: Path) -> None:
    # Even with no vault there: the command line is wrong before anything is opened.
    result = run(tmp_path / "no-vault", "import", *ARGS)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr
    assert "give a FOLDER or FILE to import, or --manifest FILE.csv" in result.stderr


def test_symbolic_links_are_skipped_not_refused(vault_path: Path, tmp_path: Path) -> None:
    root = tmp_path / "scans"
    target = write(tmp_path / "elsewhere" / "BR-0099.txt", "outside the folder")
    write(root / "BR-0042.txt", "batch record L-0042")
    (root / "link.txt").symlink_to(target)
    (root / "linked-folder").symlink_to(target.parent, target_is_directory=True)

    result = run(vault_path, "import", str(root), *ARGS, "--json")

    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["imported"], summary["refused"]) == (1, [])
    assert summary["symlinks_skipped"] == [str(root / "linked-folder"), str(root / "link.txt")]
    text = run(vault_path, "import", str(root), *ARGS)
    assert text.exit_code == 0
    assert text.stdout.splitlines()[0].endswith(", symbolic links skipped 2")
    assert [d["filename"] for d in listed(vault_path)] == ["BR-0042.txt"]


# -- only regular files, of bounded size ----------------------------------------------------


def test_add_of_a_device_is_refused(vault_path: Path) -> None:
    result = real(vault_path, "add", "/dev/zero", *ARGS)
    assert result.returncode == 1
    assert result.stderr == "atmpvault: /dev/zero is a device, not a regular file\n"


def test_add_of_a_named_pipe_is_refused_without_waiting(vault_path: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = real(vault_path, "add", str(fifo), *ARGS)  # a hang would time out
    assert result.returncode == 1
    assert result.stderr == f"atmpvault: {fifo} is a named pipe (FIFO), not a regular file\n"
    assert listed(vault_path) == []


def test_import_refuses_a_named_pipe_and_archives_the_rest(
    vault_path: Path, tmp_path: Path
) -> None:
    root = tmp_path / "scans"
    write(root / "BR-0042.txt", "batch record L-0042")
    os.mkfifo(root / "pipe")

    result = real(vault_path, "import", str(root), *ARGS, "--json")

    assert result.returncode == 1
    summary = json.loads(result.stdout)
    assert summary["imported"] == 1
    assert [r["path"] for r in summary["refused"]] == [str(root / "pipe")]
    assert "not a regular file" in summary["refused"][0]["error"]


def test_files_over_the_size_limit_are_refused(vault_path: Path, tmp_path: Path) -> None:
    big = write(tmp_path / "scans" / "video.bin", b"\0" * (2 * 1024 * 1024 + 1))
    write(tmp_path / "scans" / "BR-0042.txt", "batch record L-0042")

    added = real(vault_path, "add", str(big), *ARGS, ATMPVAULT_MAX_FILE_MB="2")
    imported = real(vault_path, "import", str(big.parent), *ARGS, "--json",
                    ATMPVAULT_MAX_FILE_MB="2")  # fmt: skip

    message = f"{big} is 2.0 MB, over the 2 MB limit for one file (ATMPVAULT_MAX_FILE_MB)"
    assert added.returncode == 1
    assert added.stderr == f"atmpvault: {message}\n"
    assert imported.returncode == 1
    summary = json.loads(imported.stdout)
    assert summary["imported"] == 1
    assert summary["refused"] == [{"path": str(big), "error": f"{big}: {message}"}]
    # Under the default limit the same file is archived.
    assert real(vault_path, "add", str(big), *ARGS).returncode == 0


@pytest.mark.parametrize("value", ["0", "big", "-5"])
def test_a_bad_size_limit_is_bad_input(vault_path: Path, tmp_path: Path, value: str) -> None:
    one = write(tmp_path / "BR-0042.txt", "batch record L-0042")
    result = real(vault_path, "add", str(one), *ARGS, ATMPVAULT_MAX_FILE_MB=value)
    assert result.returncode == 2
    assert "ATMPVAULT_MAX_FILE_MB must be a whole number of MB" in result.stderr


# -- get into a pipe closed early -----------------------------------------------------------


def test_get_into_a_pipe_closed_early_exits_quietly(vault_path: Path, tmp_path: Path) -> None:
    data = os.urandom(4 * 1024 * 1024)
    big = write(tmp_path / "scan.bin", data)
    assert run(vault_path, "add", str(big), *ARGS).exit_code == 0

    # `atmpvault get DOC-000001 | head -c 10`
    get = subprocess.Popen(
        [*CLI, "--vault", str(vault_path), "get", "DOC-000001"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    assert get.stdout is not None and get.stderr is not None
    assert get.stdout.read(10) == data[:10]
    get.stdout.close()
    stderr = get.stderr.read().decode()
    get.wait(timeout=60)

    assert stderr == ""  # no "repository error", which would look like damage
    assert get.returncode == 1
    assert real(vault_path, "verify").returncode == 0
    whole = subprocess.run(
        [*CLI, "--vault", str(vault_path), "get", "DOC-000001"],
        capture_output=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    assert whole.stdout == data
