"""The `git fast-import` stream one write sends: its commits, files and tags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class NewCommit:
    """A commit to write: the files it adds or replaces (None: removes), message, actor, time,
    and the annotated tags (name, message) to point at it, written in the same stream."""

    files: dict[str, bytes | None]
    message: str
    actor: str
    when: datetime
    tags: tuple[tuple[str, str], ...] = ()


def write_commit(out: IO[bytes], new: NewCommit, mark: int, parent: str | None, ref: str) -> None:
    stamp = f"{new.actor} <> {int(new.when.timestamp())} +0000"
    message = new.message.encode("utf-8")
    head = [
        f"commit {ref}",
        f"mark :{mark}",
        f"author {stamp}",
        f"committer {stamp}",
        f"data {len(message)}",
    ]
    out.write("\n".join(head).encode("utf-8") + b"\n" + message + b"\n")
    if parent:
        out.write(f"from {parent}\n".encode("ascii"))
    for path, data in new.files.items():
        if data is None:
            out.write(f"D {path}\n".encode())
            continue
        out.write(f"M 100644 inline {path}\ndata {len(data)}\n".encode())
        out.write(data)
        out.write(b"\n")
    out.write(b"\n")
    for name, text in new.tags:
        body = text.encode("utf-8")
        out.write(f"tag {name}\nfrom :{mark}\ntagger {stamp}\ndata {len(body)}\n".encode())
        out.write(body + b"\n")


def read_marks(marks: Path) -> dict[int, str]:
    shas: dict[int, str] = {}
    for line in marks.read_text(encoding="ascii").splitlines():
        mark, _, sha = line.partition(" ")
        shas[int(mark[1:])] = sha
    return shas
