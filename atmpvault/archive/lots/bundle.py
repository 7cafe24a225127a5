"""Checking an auditor bundle offline: the zip alone, no vault.

Every file the manifest lists must be there with its SHA-256 and size, nothing else may
be (folders aside), every member must obey the zip rule (core/zips.py), and
manifest.sha256 must agree with manifest.json, manifest.json's own hash included, so an
edited manifest is found too. Each difference is named, one per line.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atmpvault.archive.core.zips import is_symlink, member_problem, zip_member_problems
from atmpvault.errors import IntegrityError, NotFound, VaultError

# The files every bundle has besides the lot's own (lots/export.py writes them).
MANIFEST_JSON = "manifest.json"
MANIFEST_SHA256 = "manifest.sha256"
README = "README.txt"
TRAIL_CSV = "audit-trail.csv"
TRAIL_PDF = "audit-trail.pdf"
MAX_MANIFEST = 64 << 20  # a manifest.json larger than this is not one atmpvault wrote
SUM_LINE = re.compile(r"(?P<sha>[0-9a-f]{64}) [ *](?P<path>.+)")
# What reading a member whose bytes were damaged in place raises (bad CRC, bad deflate).
UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)


@dataclass
class BundleReport:
    """What `bundle verify` checked and every difference it found."""

    path: str
    lot: str | None = None
    as_of: str | None = None
    generated_from: str | None = None
    files: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "ok": not self.problems, "lot": self.lot, "as_of": self.as_of,
            "generated_from": self.generated_from, "files": self.files,
            "problems": list(self.problems),
        }  # fmt: skip


def verify_bundle(path: Path) -> BundleReport:
    """Check a bundle zip against its manifests; every difference is in `problems`."""
    if not path.exists():
        raise NotFound(f"no such file: {path}")
    if path.is_dir():
        raise VaultError(f"{path} is a folder; give the bundle's .zip file")
    try:
        with zipfile.ZipFile(path) as archive:
            return _check(path, archive)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise IntegrityError(f"{path} is not a readable zip: {exc}") from None
    except zipfile.LargeZipFile as exc:  # pragma: no cover - zip64 is allowed
        raise IntegrityError(f"{path}: {exc}") from None


def _check(path: Path, archive: zipfile.ZipFile) -> BundleReport:
    report = BundleReport(str(path))
    infos = archive.infolist()
    report.problems += [f"unsafe member: {p}" for p in zip_member_problems(infos)]
    hashes: dict[str, tuple[str, int] | None] = {}  # None: there, but unreadable
    manifest_bytes: dict[str, bytes] = {}
    for info in infos:
        name = info.filename
        if info.is_dir() or member_problem(name) is not None or is_symlink(info):
            continue
        if name in hashes:
            continue
        keep = name in (MANIFEST_JSON, MANIFEST_SHA256)
        try:
            hashes[name], kept = _digest(archive, info, keep)
        except UNREADABLE as exc:
            hashes[name] = None
            report.problems.append(f"changed: {name} (cannot be read: {exc})")
            continue
        if keep:
            manifest_bytes[name] = kept
    report.files = len(hashes)
    listed = _manifest(manifest_bytes, hashes, report)
    if listed is None:
        return report
    for rel, (sha, size) in sorted(listed.items()):
        found = hashes.get(rel, "absent")
        if found == "absent":
            report.problems.append(f"missing: {rel}")
        elif found is not None and found[0] != sha:
            report.problems.append(f"changed: {rel} (its SHA-256 is not the manifest's)")
        elif found is not None and found[1] != size:
            report.problems.append(f"changed: {rel} ({found[1]} bytes; the manifest says {size})")
    report.problems += [
        f"extra: {name}"
        for name in sorted(hashes)
        if name not in listed and name not in (MANIFEST_JSON, MANIFEST_SHA256)
    ]
    _check_sums(manifest_bytes, hashes, listed, report)
    return report


def _digest(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: bool
) -> tuple[tuple[str, int], bytes]:
    digest, size, kept = hashlib.sha256(), 0, bytearray()
    with archive.open(info) as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
            if keep and size <= MAX_MANIFEST:
                kept.extend(block)
    return (digest.hexdigest(), size), bytes(kept)


def _manifest(
    found: dict[str, bytes], hashes: dict[str, Any], report: BundleReport
) -> dict[str, tuple[str, int]] | None:
    """manifest.json's files as path -> (sha256, size), or None (named) if it is unusable."""
    if MANIFEST_JSON not in hashes:
        report.problems.append(f"missing: {MANIFEST_JSON} (nothing can be checked without it)")
        return None
    if MANIFEST_JSON not in found:
        return None  # unreadable: already named
    try:
        data = json.loads(found[MANIFEST_JSON].decode("utf-8"))
        files = {
            str(f["path"]): (str(f["sha256"]), int(f["size"]))
            for f in data["files"]
            if isinstance(f, dict)
        }
    except (ValueError, KeyError, TypeError) as exc:
        report.problems.append(
            f"manifest mismatch: {MANIFEST_JSON} is not a bundle manifest ({exc})"
        )
        return None
    report.lot, report.as_of = _text(data.get("lot")), _text(data.get("as_of"))
    report.generated_from = _text(data.get("generated_from"))
    return files


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _check_sums(
    found: dict[str, bytes], hashes: dict[str, Any], listed: dict[str, tuple[str, int]],
    report: BundleReport,
) -> None:  # fmt: skip
    """manifest.sha256 gives the manifest's files and manifest.json itself, no more."""
    if MANIFEST_SHA256 not in hashes:
        report.problems.append(f"missing: {MANIFEST_SHA256}")
        return
    if MANIFEST_SHA256 not in found:
        return  # unreadable: already named
    sums: dict[str, str] = {}
    for number, line in enumerate(found[MANIFEST_SHA256].decode("utf-8", "replace").splitlines()):
        match = SUM_LINE.fullmatch(line)
        if match is None:
            report.problems.append(
                f"manifest mismatch: {MANIFEST_SHA256} line {number + 1} is not 'SHA256  PATH'"
            )
            continue
        sums[match["path"]] = match["sha"]
    expected = {rel: sha for rel, (sha, _size) in listed.items()}
    expected[MANIFEST_JSON] = hashes[MANIFEST_JSON][0]
    for rel in sorted(set(expected) | set(sums)):
        if rel not in sums:
            report.problems.append(f"manifest mismatch: {MANIFEST_SHA256} does not list {rel}")
        elif rel not in expected:
            report.problems.append(
                f"manifest mismatch: {MANIFEST_SHA256} lists {rel}, which {MANIFEST_JSON} does not"
            )
        elif sums[rel] != expected[rel]:
            report.problems.append(
                f"manifest mismatch: {MANIFEST_JSON} was changed after {MANIFEST_SHA256} was written"
                if rel == MANIFEST_JSON
                else f"manifest mismatch: {rel} has one SHA-256 in {MANIFEST_SHA256}, "
                f"another in {MANIFEST_JSON}"
            )
