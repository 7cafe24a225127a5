"""Laying a sequence out eCTD v3.2.2-style: m1-m5, index.xml with an MD5 per leaf,
index-md5.txt and a SHA-256 manifest, written to a folder or a byte-reproducible zip.

The backbone is eCTD-*style*: leaves sit under their module element (m1-m5) with the
section path carried by their href, not under the full ICH heading tree, and no
util/dtd or util/style files are shipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.documents.records import CONTENT, doc_dir
from atmpvault.archive.regulatory.submissions.model import (
    FILE_RE,
    MAX_NAME,
    MAX_PATH,
    SECTION_RE,
    Leaf,
    Package,
    quoteattr,
    xml_escape,
)
from atmpvault.errors import IntegrityError, VaultError
from atmpvault.files import atomic_write

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


PDF_VERSIONS = ((1, 4), (1, 7))  # FDA PDF specification: 1.4 to 1.7 inclusive

MODULES = {
    "m1": "m1-administrative-information-and-prescribing-information",
    "m2": "m2-common-technical-document-summaries",
    "m3": "m3-quality",
    "m4": "m4-nonclinical-study-reports",
    "m5": "m5-clinical-study-reports",
}
REGIONAL = "m1/us/us-regional.xml"
INDEX = "index.xml"
INDEX_MD5 = "index-md5.txt"
MANIFEST = "sha256-manifest.txt"
ECTD_NS = "http://www.ich.org/ectd"
XLINK_NS = "http://www.w3c.org/1999/xlink"  # sic: the ICH DTD's own spelling
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


# -- PDF checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class PdfCheck:
    """The checkable points of FDA's PDF specification, for one leaf."""

    leaf: str
    href: str
    doc: str
    version: int
    pdf_version: str | None
    pages: int | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf": self.leaf,
            "href": self.href,
            "doc": self.doc,
            "version": self.version,
            "pdf_version": self.pdf_version,
            "pages": self.pages,
            "ok": self.ok,
            "problems": list(self.problems),
        }


def check_pdf(leaf: Leaf, data: bytes) -> PdfCheck:
    """Not encrypted, PDF 1.4 to 1.7, no JavaScript (FDA PDF specification)."""
    from atmpvault.indexer.extract import ExtractionError, inspect_pdf

    assert leaf.href is not None
    try:
        info = inspect_pdf(data)
    except ExtractionError as exc:
        return PdfCheck(leaf.id, leaf.href, leaf.doc, leaf.version, None, None, (str(exc),))
    problems = []
    if info.encrypted:
        problems.append("encrypted (FDA accepts no security settings or passwords)")
    parsed = _pdf_version(info.version)
    if parsed is None or not PDF_VERSIONS[0] <= parsed <= PDF_VERSIONS[1]:
        problems.append(f"PDF version {info.version or '?'} (FDA accepts 1.4 to 1.7)")
    if info.has_javascript:
        problems.append("contains JavaScript (FDA accepts none)")
    return PdfCheck(
        leaf.id, leaf.href, leaf.doc, leaf.version, info.version, info.pages, tuple(problems)
    )


def _pdf_version(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d)\.(\d)", text.strip())
    return (int(match[1]), int(match[2])) if match else None


# -- layout -----------------------------------------------------------------------------


@dataclass
class Layout:
    """The files of one built sequence, relative to its NNNN/ folder, and the PDF report."""

    sequence: str
    files: dict[str, bytes] = field(default_factory=dict)
    pdf_checks: list[PdfCheck] = field(default_factory=list)

    def paths(self) -> list[str]:
        return sorted(self.files)


def check_href(href: str, seq: str) -> None:
    """Refuse an href that is not a safe eCTD path inside the sequence folder."""
    parts = href.split("/")
    if len(parts) < 2 or not SECTION_RE.fullmatch("/".join(parts[:-1])):
        raise IntegrityError(f"leaf path {href[:80]!r} is not inside an m1-m5 section")
    if not FILE_RE.fullmatch(parts[-1]) or any(len(p) > MAX_NAME for p in parts):
        raise IntegrityError(f"leaf path {href[:80]!r} has a name that is not eCTD-safe")
    if len(f"{seq}/{href}") > MAX_PATH:
        raise VaultError(
            f"path {seq}/{href} is {len(seq) + 1 + len(href)} characters; the limit is "
            f"{MAX_PATH}: choose a shorter section or file name"
        )


def check_collisions(leaves: Iterable[Leaf]) -> None:
    """Refuse two leaves that would be written to the same file."""
    seen: dict[str, Leaf] = {}
    for leaf in leaves:
        if leaf.href is None:
            continue
        other = seen.get(leaf.href)
        if other is not None:
            raise VaultError(
                f"file names collide after normalising: {other.doc} v{other.version} "
                f"({other.filename!r}) and {leaf.doc} v{leaf.version} ({leaf.filename!r}) "
                f"are both {leaf.href}; put one in another section"
            )
        seen[leaf.href] = leaf


def leaf_file(vault: Vault, package: Package, leaf: Leaf) -> tuple[bytes, PdfCheck | None]:
    """A leaf's bytes, checked as a build checks each leaf (a safe path, not the generated
    backbone, the SHA-256 recorded when it was added), with its PDF check if it is a PDF."""
    assert leaf.href is not None
    check_href(leaf.href, package.sequence)
    if leaf.href == REGIONAL:
        raise VaultError(f"{REGIONAL} is generated; no leaf may take its place")
    data = vault.store.read(leaf.commit, f"{doc_dir(leaf.doc)}/{CONTENT}")
    if hashlib.sha256(data).hexdigest() != leaf.sha256:
        raise IntegrityError(
            f"{leaf.doc} v{leaf.version} does not match the SHA-256 recorded when it was "
            f"added to {package.name} as {leaf.id}; run 'atmpvault verify'"
        )
    return data, check_pdf(leaf, data) if leaf.href.endswith(".pdf") else None


def pdf_failures(failed: Iterable[PdfCheck]) -> str:
    """The leaves that fail FDA's PDF specification, each with its problems, on one line."""
    return "; ".join(
        f"{c.leaf} {c.href} ({c.doc} v{c.version}): {', '.join(c.problems)}" for c in failed
    )


def lay_out(vault: Vault, package: Package) -> Layout:
    """Every file of the sequence in memory, checked; raises before anything is written."""
    leaves = list(package.leaves)
    if not leaves:
        raise VaultError(f"{package.name} has no leaves yet; add documents with 'package add'")
    layout = Layout(package.sequence)
    check_collisions(leaves)
    for leaf in leaves:
        if leaf.href is None:
            continue
        data, pdf = leaf_file(vault, package, leaf)
        layout.files[leaf.href] = data
        if pdf is not None:
            layout.pdf_checks.append(pdf)
    failed = [c for c in layout.pdf_checks if not c.ok]
    if failed:
        raise VaultError(
            f"{package.name} does not meet FDA's PDF specification, nothing was built: "
            f"{pdf_failures(failed)}"
        )
    layout.files[REGIONAL] = regional_xml(package)
    index = index_xml(package, layout.files)
    layout.files[INDEX] = index
    layout.files[INDEX_MD5] = hashlib.md5(index).hexdigest().encode("ascii")
    layout.files[MANIFEST] = manifest(layout.files)
    return layout


def regional_xml(package: Package) -> bytes:
    """A minimal US regional (m1) backbone naming the application, sequence and type."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<fda-regional:fda-regional xmlns:fda-regional="http://www.ich.org/fda">',
        "  <admin>",
        f"    <application-number>{xml_escape(package.app)}</application-number>",
        f"    <sequence-number>{package.sequence}</sequence-number>",
        f"    <submission-type>{xml_escape(package.type)}</submission-type>",
        "  </admin>",
        "</fda-regional:fda-regional>",
        "",
    ]
    return "\n".join(lines).encode("utf-8")


def index_xml(package: Package, files: dict[str, bytes]) -> bytes:
    """The backbone: every leaf, with its href, MD5 and lifecycle operation, by module."""
    by_module: dict[str, list[str]] = {m: [] for m in MODULES}
    regional = files[REGIONAL]
    by_module["m1"].append(
        _leaf_xml("regional-backbone", "new", REGIONAL, regional, "US regional", None)
    )
    for leaf in package.leaves:
        module = leaf.section.split("/", 1)[0]
        modified = (
            f"../{leaf.modifies.split('/')[1]}/{INDEX}#{leaf.modifies_leaf}"
            if leaf.modifies and leaf.modifies_leaf
            else None
        )
        data = files[leaf.href] if leaf.href is not None else None
        by_module[module].append(
            _leaf_xml(leaf.id, leaf.operation, leaf.href, data, leaf.title, modified)
        )
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE ectd:ectd SYSTEM "util/dtd/ich-ectd-3-2.dtd">',
        f'<ectd:ectd xmlns:ectd="{ECTD_NS}" xmlns:xlink="{XLINK_NS}" dtd-version="3.2">',
    ]
    for module, element in MODULES.items():
        entries = by_module[module]
        if entries:
            lines.append(f"  <{element}>")
            lines.extend(entries)
            lines.append(f"  </{element}>")
    lines.extend(["</ectd:ectd>", ""])
    return "\n".join(lines).encode("utf-8")


def _leaf_xml(
    leaf_id: str,
    op: str,
    href: str | None,
    data: bytes | None,
    title: str,
    modified: str | None,
) -> str:
    attrs = [f"ID={quoteattr(leaf_id)}", f"operation={quoteattr(op)}"]
    if href is not None and data is not None:
        attrs += [
            'xlink:type="simple"',
            f"xlink:href={quoteattr(href)}",
            f"checksum={quoteattr(hashlib.md5(data).hexdigest())}",
            'checksum-type="md5"',
        ]
    if modified is not None:
        attrs.append(f"modified-file={quoteattr(modified)}")
    return f"    <leaf {' '.join(attrs)}>\n      <title>{xml_escape(title)}</title>\n    </leaf>"


def manifest(files: dict[str, bytes]) -> bytes:
    """sha256sum-style lines for every file of the sequence but the manifest itself."""
    lines = [
        f"{hashlib.sha256(data).hexdigest()}  {path}\n"
        for path, data in sorted(files.items())
        if path != MANIFEST
    ]
    return "".join(lines).encode("utf-8")


# -- writing a build ---------------------------------------------------------------------


def write_zip(layout: Layout, target: Path) -> None:
    """A zip whose bytes depend only on the layout: sorted, fixed times, modes, compression."""
    folders = {f"{layout.sequence}/{m}/" for m in MODULES}
    for path in layout.files:
        parts = path.split("/")[:-1]
        for n in range(1, len(parts) + 1):
            folders.add(f"{layout.sequence}/{'/'.join(parts[:n])}/")
    entries: list[tuple[str, bytes | None]] = [(f"{layout.sequence}/", None)]
    entries += [(name, None) for name in folders]
    entries += [(f"{layout.sequence}/{p}", data) for p, data in layout.files.items()]
    entries.sort(key=lambda item: item[0])
    with atomic_write(target) as raw, zipfile.ZipFile(raw, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.create_system = 3  # unix, so the modes below are read back as written
            if data is None:
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data, compresslevel=9)


def write_folder(layout: Layout, parent: Path) -> Path:
    """Write the sequence as parent/NNNN/, whole or not at all; refuse to overwrite."""
    final = parent / layout.sequence
    if final.exists():
        raise VaultError(f"{final} already exists; build into another folder")
    staging = Path(tempfile.mkdtemp(prefix=f".{layout.sequence}.", dir=parent))
    root = staging.resolve()
    try:
        for module in MODULES:
            (staging / module).mkdir(mode=0o755)
        for rel, data in sorted(layout.files.items()):
            target = (staging / rel).resolve()
            if not target.is_relative_to(root):
                raise IntegrityError(f"leaf path {rel!r} would leave the output folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.chmod(target, 0o644)
        os.chmod(staging, 0o755)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
