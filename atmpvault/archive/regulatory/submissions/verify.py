"""Verifying a built sequence: every checksum re-computed, every member accounted for,
each difference named.

The rule for the members of a zip, for every zip atmpvault reads or writes, is in
core/zips.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from atmpvault.archive.core.zips import is_symlink, member_problem, zip_member_problems
from atmpvault.archive.regulatory.submissions.ectd import (
    INDEX,
    INDEX_MD5,
    MANIFEST,
)
from atmpvault.archive.regulatory.submissions.model import (
    SEQUENCE_RE,
)
from atmpvault.errors import IntegrityError, NotFound

# -- verifying a build --------------------------------------------------------------------


@dataclass
class VerifyReport:
    """What `package verify` checked and every difference it found."""

    path: str
    sequence: str | None
    leaves: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sequence": self.sequence,
            "leaves": self.leaves,
            "files": self.files,
            "ok": not self.problems,
            "problems": list(self.problems),
        }


@dataclass
class _Contents:
    """Every regular file of a build with its (md5, sha256), the backbone files' bytes,
    every member's name (folders too), and what is wrong with any member."""

    hashes: dict[str, tuple[str, str]] = field(default_factory=dict)
    small: dict[str, bytes] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def take(self, name: str, chunks: Iterator[bytes]) -> None:
        md5, sha = hashlib.md5(), hashlib.sha256()
        buf = bytearray()
        keep = PurePosixPath(name).name in (INDEX, INDEX_MD5, MANIFEST)
        for chunk in chunks:
            md5.update(chunk)
            sha.update(chunk)
            if keep:
                buf.extend(chunk)
        self.hashes[name] = (md5.hexdigest(), sha.hexdigest())
        if keep:
            self.small[name] = bytes(buf)


def _digests(path: Path) -> _Contents:
    """Every member of a built dir or zip. Paths are only ever looked up, never opened
    from the index; an unsafe member is named, never read."""
    found = _Contents()
    if path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                found.problems += zip_member_problems(infos)
                seen: set[str] = set()
                for info in infos:
                    name = info.filename
                    found.names.append(name)
                    unsafe = member_problem(name) is not None or is_symlink(info)
                    if info.is_dir() or unsafe or name in seen:
                        continue
                    seen.add(name)
                    with archive.open(info) as fh:
                        found.take(name, _chunks(fh))
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise IntegrityError(f"{path} is not a readable zip: {exc}") from None
        except zipfile.LargeZipFile as exc:  # pragma: no cover - zip64 is supported
            raise IntegrityError(f"{path}: {exc}") from None
        except NotImplementedError as exc:  # e.g. a compression method zipfile lacks
            raise IntegrityError(f"{path}: a member cannot be read: {exc}") from None
    elif path.is_dir():
        for dirpath, dirs, names in os.walk(path):
            for name in [*dirs, *names]:
                full = Path(dirpath) / name
                rel = full.relative_to(path).as_posix()
                if full.is_symlink():
                    found.problems.append(f"{rel}: a symbolic link")
                elif name in names and not full.is_file():
                    found.problems.append(f"{rel}: not a regular file")
                elif name in names:
                    found.names.append(rel)
                    with full.open("rb") as fh:
                        found.take(rel, _chunks(fh))
                else:
                    found.names.append(rel + "/")
    else:
        raise NotFound(f"no such built package: {path}")
    return found


def _chunks(fh: IO[bytes]) -> Iterator[bytes]:
    while block := fh.read(1 << 20):
        yield block


def _sequence_root(hashes: dict[str, tuple[str, str]], path: Path) -> str:
    """The prefix ('' or 'NNNN/') under which index.xml sits."""
    if INDEX in hashes:
        return ""
    roots = sorted(
        name[: -len(INDEX)]
        for name in hashes
        if name.endswith(f"/{INDEX}") and SEQUENCE_RE.fullmatch(name[: -len(INDEX) - 1])
    )
    if len(roots) != 1:
        raise IntegrityError(
            f"{path} holds {'no' if not roots else len(roots)} eCTD sequence folder(s) with an "
            f"{INDEX}; give the sequence folder or its zip"
        )
    return roots[0]


def parse_index(data: bytes) -> list[dict[str, str]]:
    """The attributes of every leaf in an index.xml; refuses entities (safexml)."""
    from atmpvault.indexer import safexml

    try:
        root = safexml.parse(data, doctype=True)
    except safexml.UnsafeXml as exc:
        raise IntegrityError(f"index.xml declares entities; refused ({exc})") from None
    except safexml.XmlError as exc:
        raise IntegrityError(f"index.xml is not well-formed XML: {exc}") from None
    return [safexml.attributes(e) for e in safexml.iter_local(root, "leaf")]


def verify_build(path: Path) -> VerifyReport:
    """Re-check every checksum of a built sequence (folder or zip); list each difference."""
    contents = _digests(path)
    hashes, small = contents.hashes, contents.small
    root = _sequence_root(hashes, path)
    name = root.rstrip("/") or path.name
    report = VerifyReport(str(path), name if SEQUENCE_RE.fullmatch(name) else None)
    inside = {name[len(root) :]: h for name, h in hashes.items() if name.startswith(root)}
    report.files = len(inside)
    problems = report.problems
    problems += contents.problems
    problems += [
        f"{member}: outside the sequence folder {root}"
        for member in contents.names
        if not member.startswith(root) and member != root and member_problem(member) is None
    ]
    index = small[root + INDEX]
    stated = small.get(root + INDEX_MD5)
    if stated is None:
        problems.append(f"{INDEX_MD5} is missing")
    elif stated.decode("ascii", "replace").strip().lower() != hashlib.md5(index).hexdigest():
        problems.append(
            f"{INDEX}: its MD5 differs from {INDEX_MD5} ({INDEX} or {INDEX_MD5} changed)"
        )
    try:
        leaves = parse_index(index)
    except IntegrityError as exc:
        problems.append(str(exc))
        leaves = []
    for attrs in leaves:
        href = attrs.get("href")
        if href is None:
            continue
        report.leaves += 1
        label = f"{href} (leaf {attrs.get('ID', '?')})"
        found = inside.get(href)
        if found is None:
            problems.append(f"{label}: listed in {INDEX} but missing")
        elif attrs.get("checksum-type", "md5").lower() != "md5":
            problems.append(f"{label}: unsupported checksum-type {attrs['checksum-type']!r}")
        elif attrs.get("checksum", "").lower() != found[0]:
            problems.append(f"{label}: MD5 differs from {INDEX}")
    listed = small.get(root + MANIFEST)
    if listed is None:
        problems.append(f"{MANIFEST} is missing")
    else:
        named: set[str] = set()
        for number, line in enumerate(listed.decode("utf-8", "replace").splitlines(), 1):
            digest, sep, rel = line.partition("  ")
            if not sep or not re.fullmatch(r"[0-9a-f]{64}", digest):
                problems.append(f"{MANIFEST} line {number} is not 'SHA256  PATH'")
                continue
            named.add(rel)
            found = inside.get(rel)
            if found is None:
                problems.append(f"{rel}: listed in {MANIFEST} but missing")
            elif found[1] != digest:
                problems.append(f"{rel}: SHA-256 differs from {MANIFEST}")
        for rel in sorted(set(inside) - named - {MANIFEST}):
            problems.append(f"{rel}: present but not in {MANIFEST}")
    return report
