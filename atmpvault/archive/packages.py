"""Submission packages: eCTD v3.2.2-style sequences assembled from archived documents.

A package is one sequence (four digits, 0000 first) of one application. Its record,
at regulatory/packages/<APP>/<NNNN>.json, lists the leaves: each pins one archived
document version to a path in the sequence, with a lifecycle operation. Building
writes the sequence (m1-m5 folders, index.xml with an MD5 per leaf, index-md5.txt and
a SHA-256 manifest) to a folder or a byte-reproducible zip. Finalising tags the commit
that records the submitted package (seq/<APP>/<NNNN>); from then on its leaves cannot
change and a build reads them from the tagged commit.

The backbone is eCTD-*style*: leaves sit under their module element (m1-m5) with the
section path carried by their href, not under the full ICH heading tree, and no
util/dtd or util/style files are shipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any
from xml.parsers import expat

from atmpvault.archive import values
from atmpvault.archive.documents import CONTENT, WITHDRAWN, DocumentVersion, doc_dir
from atmpvault.errors import IntegrityError, InvalidInput, NotFound, VaultError


def xml_escape(text: str) -> str:
    """Text for an XML element (xml.sax.saxutils would pull urllib into every CLI start)."""
    return escape(text, quote=False)


def quoteattr(text: str) -> str:
    """A double-quoted XML attribute value."""
    return f'"{escape(text, quote=True)}"'


if TYPE_CHECKING:
    from atmpvault.archive.regulatory import Application
    from atmpvault.archive.vault import Vault
    from atmpvault.repository.git import GitStore

PACKAGES_ROOT = "regulatory/packages"
TAG_PREFIX = "seq"
RECORD_FORMAT = 1

SUBMISSION_TYPES = (
    "original",
    "protocol-amendment",
    "information-amendment",
    "safety-report-7-day",
    "safety-report-15-day",
    "annual-report",
    "response-to-fda",
    "meeting-request",
    "designation-request",
    "bla-original",
    "bla-rolling-part",
    "pas",
    "cbe-30",
    "cbe-0",
)
OPERATIONS = ("new", "replace", "append", "delete")

PLANNED = "planned"
IN_PREPARATION = "in-preparation"
SUBMITTED = "submitted"
ACKNOWLEDGED = "acknowledged"
FINALISED = (SUBMITTED, ACKNOWLEDGED)

# The calendar trigger a finalised supplement starts (REGULATORY.md §1), on its submitted date.
CALENDAR_TRIGGERS = {"pas": "pas-received", "cbe-30": "cbe30-submitted", "cbe-0": "cbe0-submitted"}

# Submission types only one kind of application receives (the rest go to either).
TYPE_KINDS = {
    "protocol-amendment": ("ind",),
    "information-amendment": ("ind",),
    "safety-report-7-day": ("ind",),
    "safety-report-15-day": ("ind",),
    "bla-original": ("bla",),
    "bla-rolling-part": ("bla",),
    "pas": ("bla",),
    "cbe-30": ("bla",),
    "cbe-0": ("bla",),
}

MAX_NAME = 64  # characters per file or folder name (eCTD v3.2.2, FDA)
MAX_PATH = 150  # characters from the sequence folder on (FDA)
PDF_VERSIONS = ((1, 4), (1, 7))  # FDA PDF specification: 1.4 to 1.7 inclusive

APP_RE = re.compile(r"[A-Z]{2,5}-[0-9]{4,10}")
SEQUENCE_RE = re.compile(r"[0-9]{4}")
SEGMENT_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
SECTION_RE = re.compile(r"m[1-5](?:/[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
FILE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9]{1,8})?")
DOC_REF_RE = re.compile(r"(?P<doc>[^@]+)(?:@(?P<version>[0-9]{1,9}))?")
_NOT_NAME = re.compile(r"[^a-z0-9]+")

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


# -- values -----------------------------------------------------------------------------


def app_id(value: str) -> str:
    """An application id such as IND-012345 (the applications module's own rule)."""
    from atmpvault.archive.regulatory import app_id as checked

    result = checked(value)
    assert APP_RE.fullmatch(result), result  # it names a folder of the repository
    return result


def sequence(value: str) -> str:
    """A sequence number: four digits, 0000 first."""
    if not SEQUENCE_RE.fullmatch(value):
        raise InvalidInput(f"invalid sequence {value[:20]!r}: use four digits, e.g. 0001")
    return value


def submission_type(value: str) -> str:
    if value not in SUBMISSION_TYPES:
        raise InvalidInput(
            f"unknown submission type {value[:40]!r}; choose one of: {', '.join(SUBMISSION_TYPES)}"
        )
    return value


def section(value: str) -> str:
    """An eCTD section folder such as m3/32p/32p1: m1-m5, then lowercase a-z, 0-9, hyphens."""
    value = value.strip().strip("/")
    if not SECTION_RE.fullmatch(value):
        raise InvalidInput(
            f"invalid section {value[:60]!r}: start with m1..m5, then folders of lowercase "
            "a-z, 0-9 and hyphens, e.g. m3/32p/32p1"
        )
    for part in value.split("/"):
        if len(part) > MAX_NAME:
            raise InvalidInput(f"section folder {part[:20]!r}... is over {MAX_NAME} characters")
    return value


def operation(value: str) -> str:
    if value not in OPERATIONS:
        raise InvalidInput(f"unknown operation {value!r}; choose one of: {', '.join(OPERATIONS)}")
    return value


def calendar_date(value: str, what: str) -> date:
    """A calendar date given as YYYY-MM-DD, not after tomorrow (UTC)."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{what} {value[:30]!r} is not a date: use YYYY-MM-DD") from None
    if day > values.now().date() + timedelta(days=1):
        raise InvalidInput(f"{what} {day.isoformat()} is in the future")
    return day


def parse_doc_ref(value: str) -> tuple[str, int | None]:
    """DOC or DOC@VERSION, e.g. DOC-000007@2."""
    match = DOC_REF_RE.fullmatch(value.strip())
    if match is None:
        raise InvalidInput(f"invalid document {value[:40]!r}: use DOC-000007 or DOC-000007@2")
    version = match["version"]
    number = int(version) if version is not None else None
    if number == 0:
        raise InvalidInput("document versions start at 1")
    return values.doc_id(match["doc"]), number


def normalise_name(filename: str) -> str:
    """An eCTD file name: lowercase a-z, 0-9 and hyphens, plus the extension, <= 64 characters.

    >>> normalise_name("Batch Analysis (Lot L-0042) – Rev. 2.PDF")
    'batch-analysis-lot-l-0042-rev-2.pdf'
    """
    base = PurePosixPath(filename.replace("\\", "/")).name
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    ext = _NOT_NAME.sub("", _ascii(ext))[:8]
    suffix = f".{ext}" if ext else ""
    stem = _NOT_NAME.sub("-", _ascii(stem)).strip("-") or "document"
    stem = stem[: MAX_NAME - len(suffix)].rstrip("-") or "document"
    return stem + suffix


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


# -- records ----------------------------------------------------------------------------


def record_path(app: str, seq: str) -> str:
    return f"{PACKAGES_ROOT}/{app}/{seq}.json"


def tag_name(app: str, seq: str) -> str:
    return f"{TAG_PREFIX}/{app}/{seq}"


@dataclass(frozen=True)
class Leaf:
    """One file of a sequence: a pinned document version at an href, with its operation."""

    id: str
    doc: str
    version: int
    sha256: str
    commit: str
    filename: str
    section: str
    href: str | None  # None for a delete leaf, which carries no file
    operation: str
    title: str
    modifies: str | None = None  # APP/NNNN/<href of the earlier leaf>
    modifies_leaf: str | None = None  # that leaf's id, for modified-file in index.xml
    added_at: str = ""
    added_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doc": self.doc,
            "version": self.version,
            "sha256": self.sha256,
            "commit": self.commit,
            "filename": self.filename,
            "section": self.section,
            "href": self.href,
            "operation": self.operation,
            "title": self.title,
            "modifies": self.modifies,
            "modifies_leaf": self.modifies_leaf,
            "added_at": self.added_at,
            "added_by": self.added_by,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Leaf:
        return cls(**data)


@dataclass(frozen=True)
class Package:
    """One sequence of one application, as recorded in the repository."""

    app: str
    sequence: str
    type: str
    status: str
    created_at: str
    created_by: str
    leaves: tuple[Leaf, ...] = ()
    submitted: str | None = None
    acknowledged: str | None = None
    finalised_at: str | None = None
    finalised_by: str | None = None
    tag: str | None = None
    calendar_event: str | None = None

    @property
    def finalised(self) -> bool:
        return self.status in FINALISED

    @property
    def name(self) -> str:
        return f"{self.app}/{self.sequence}"

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "sequence": self.sequence,
            "type": self.type,
            "status": self.status,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "submitted": self.submitted,
            "acknowledged": self.acknowledged,
            "finalised_at": self.finalised_at,
            "finalised_by": self.finalised_by,
            "tag": self.tag,
            "calendar_event": self.calendar_event,
            "leaves": [leaf.to_json() for leaf in self.leaves],
        }

    def record(self) -> bytes:
        data = {"format": RECORD_FORMAT, **self.to_json()}
        return (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_record(cls, raw: bytes) -> Package:
        data = json.loads(raw)
        data.pop("format", None)
        leaves = tuple(Leaf.from_json(item) for item in data.pop("leaves", []))
        return cls(leaves=leaves, **data)


@dataclass(frozen=True)
class Submission:
    """A sequence a document version was put in (item 6: ls, search and show)."""

    app: str
    sequence: str
    status: str
    submitted: str | None
    leaf: str
    href: str | None
    operation: str
    commit: str  # of the document version, where its record and text are read back

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "sequence": self.sequence,
            "status": self.status,
            "submitted": self.submitted,
            "leaf": self.leaf,
            "href": self.href,
            "operation": self.operation,
        }


def read_packages(store: GitStore, commit: str | None) -> list[Package]:
    """Every package recorded as of `commit`, in application and sequence order."""
    if commit is None:
        return []
    found = []
    for path in sorted(store.paths(commit, PACKAGES_ROOT)):
        if path.endswith(".json"):
            found.append(Package.from_record(store.read(commit, path)))
    return found


def memberships(store: GitStore, commit: str | None) -> dict[tuple[str, int], list[Submission]]:
    """(document, version) -> the sequences it is in, as of `commit`."""
    result: dict[tuple[str, int], list[Submission]] = {}
    for package in read_packages(store, commit):
        for leaf in package.leaves:
            result.setdefault((leaf.doc, leaf.version), []).append(
                Submission(
                    package.app,
                    package.sequence,
                    package.status,
                    package.submitted,
                    leaf.id,
                    leaf.href,
                    leaf.operation,
                    leaf.commit,
                )
            )
    return result


def search_tokens(submissions: Iterable[Submission]) -> tuple[str | None, tuple[str, ...]]:
    """The index's app and sequences values for a version in these sequences.

    The index keeps one app per version, but a version can be in sequences of two
    applications (an IND and later the BLA), so the sequences field carries 'APP',
    'APP/NNNN' and 'NNNN' tokens and the --app/--sequence filters match on it exactly.
    """
    subs = list(submissions)
    tokens = set()
    for sub in subs:
        tokens.update({sub.app, f"{sub.app}/{sub.sequence}", sub.sequence})
    apps = sorted({sub.app for sub in subs})
    return (apps[0] if apps else None), tuple(sorted(tokens))


def search_filter(app: str | None, seq: str | None) -> str | None:
    """The sequences-field term that --app and/or --sequence stand for (see search_tokens)."""
    app = app_id(app) if app is not None else None
    seq = sequence(seq) if seq is not None else None
    if app and seq:
        return f"{app}/{seq}"
    return app or seq


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


def lay_out(vault: Vault, package: Package) -> Layout:
    """Every file of the sequence in memory, checked; raises before anything is written."""
    store = vault.store
    leaves = list(package.leaves)
    if not leaves:
        raise VaultError(f"{package.name} has no leaves yet; add documents with 'package add'")
    layout = Layout(package.sequence)
    check_collisions(leaves)
    for leaf in leaves:
        if leaf.href is None:
            continue
        check_href(leaf.href, package.sequence)
        data = store.read(leaf.commit, f"{doc_dir(leaf.doc)}/{CONTENT}")
        if hashlib.sha256(data).hexdigest() != leaf.sha256:
            raise IntegrityError(
                f"{leaf.doc} v{leaf.version} does not match the SHA-256 recorded when it was "
                f"added to {package.name} as {leaf.id}; run 'atmpvault verify'"
            )
        layout.files[leaf.href] = data
        if leaf.href.endswith(".pdf"):
            layout.pdf_checks.append(check_pdf(leaf, data))
    failed = [c for c in layout.pdf_checks if not c.ok]
    if failed:
        detail = "; ".join(
            f"{c.leaf} {c.href} ({c.doc} v{c.version}): {', '.join(c.problems)}" for c in failed
        )
        raise VaultError(
            f"{package.name} does not meet FDA's PDF specification, nothing was built: {detail}"
        )
    if REGIONAL in layout.files:
        raise VaultError(f"{REGIONAL} is generated; no leaf may take its place")
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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
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
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def _digests(path: Path) -> tuple[dict[str, tuple[str, str]], dict[str, bytes]]:
    """Every file of a built dir or zip: relative path -> (md5, sha256); plus the small
    backbone files' bytes. Paths are only ever looked up, never opened from the index."""
    hashes: dict[str, tuple[str, str]] = {}
    small: dict[str, bytes] = {}

    def take(name: str, chunks: Iterator[bytes]) -> None:
        md5, sha = hashlib.md5(), hashlib.sha256()
        buf = bytearray()
        keep = PurePosixPath(name).name in (INDEX, INDEX_MD5, MANIFEST)
        for chunk in chunks:
            md5.update(chunk)
            sha.update(chunk)
            if keep:
                buf.extend(chunk)
        hashes[name] = (md5.hexdigest(), sha.hexdigest())
        if keep:
            small[name] = bytes(buf)

    if path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    with archive.open(info) as fh:
                        take(info.filename, _chunks(fh))
        except (zipfile.BadZipFile, OSError) as exc:
            raise IntegrityError(f"{path} is not a readable zip: {exc}") from None
        except zipfile.LargeZipFile as exc:  # pragma: no cover - zip64 is supported
            raise IntegrityError(f"{path}: {exc}") from None
    elif path.is_dir():
        for dirpath, _dirs, names in os.walk(path):
            for name in names:
                full = Path(dirpath) / name
                if full.is_symlink():
                    continue
                with full.open("rb") as fh:
                    take(full.relative_to(path).as_posix(), _chunks(fh))
    else:
        raise NotFound(f"no such built package: {path}")
    return hashes, small


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
    """The attributes of every leaf in an index.xml; refuses entity declarations."""
    leaves: list[dict[str, str]] = []
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def forbid(*_args: object) -> None:
        raise IntegrityError("index.xml declares entities; refused")

    def start(name: str, attrs: dict[str, str]) -> None:
        if name.rpartition(" ")[2] == "leaf":
            leaves.append({key.rpartition(" ")[2]: value for key, value in attrs.items()})

    parser.EntityDeclHandler = forbid
    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise IntegrityError(f"index.xml is not well-formed XML: {exc}") from None
    return leaves


def verify_build(path: Path) -> VerifyReport:
    """Re-check every checksum of a built sequence (folder or zip); list each difference."""
    hashes, small = _digests(path)
    root = _sequence_root(hashes, path)
    name = root.rstrip("/") or path.name
    report = VerifyReport(str(path), name if SEQUENCE_RE.fullmatch(name) else None)
    inside = {name[len(root) :]: h for name, h in hashes.items() if name.startswith(root)}
    report.files = len(inside)
    problems = report.problems
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


# -- the domain ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    """Where a sequence was written, how many files, and the PDF report."""

    package: Package
    output: Path
    files: int
    pdf_checks: list[PdfCheck]
    index_md5: str

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.package.app,
            "sequence": self.package.sequence,
            "output": str(self.output),
            "files": self.files,
            "index_md5": self.index_md5,
            "pdf_checks": [c.to_json() for c in self.pdf_checks],
        }


class Packages:
    """Creating, filling, building, finalising and listing submission packages."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault

    # -- reading ---------------------------------------------------------------------

    def _read(self, app: str, seq: str, at: str | None = None) -> Package | None:
        found = self.vault.read_records(record_path(app, seq), at)
        raw = found.get(record_path(app, seq))
        return Package.from_record(raw) if raw is not None else None

    def get(self, app: str, seq: str) -> Package:
        """One package, as recorded now."""
        app, seq = app_id(app), sequence(seq)
        found = self._read(app, seq)
        if found is None:
            raise NotFound(f"{app} has no sequence {seq}; create it with 'package new'")
        return found

    def ls(self, app: str) -> list[Package]:
        """Every sequence of an application, in order."""
        app = app_id(app)
        self._require_application(app)
        return [p for p in read_packages(self.vault.store, self.vault.store.head()) if p.app == app]

    def frozen(self, package: Package) -> Package:
        """The finalised package as its tag recorded it; refuses if the record drifted."""
        tag = self.vault.store.tags(tag_name(package.app, package.sequence)).get(
            tag_name(package.app, package.sequence)
        )
        if tag is None:
            raise IntegrityError(
                f"{package.name} is recorded as finalised but its tag "
                f"{tag_name(package.app, package.sequence)} is missing; run "
                f"'package finalise {package.app} {package.sequence}' again to restore it"
            )
        tagged = self._read(package.app, package.sequence, tag)
        if tagged is None or tagged.leaves != package.leaves:
            raise IntegrityError(
                f"{package.name} no longer matches the content frozen by its tag "
                f"{tag_name(package.app, package.sequence)}"
            )
        return tagged

    def submissions_of(self, doc: str, version: int) -> list[Submission]:
        """The sequences a document version was put in (submitted or not)."""
        found = memberships(self.vault.store, self.vault.store.head())
        return found.get((doc, version), [])

    def members(self, app: str | None, seq: str | None) -> dict[tuple[str, int], list[Submission]]:
        """(document, version) pairs in the sequences named (any of an app, or NNNN)."""
        app = app_id(app) if app is not None else None
        seq = sequence(seq) if seq is not None else None
        if app is not None:
            self._require_application(app)
        result = {}
        for key, subs in memberships(self.vault.store, self.vault.store.head()).items():
            chosen = [
                s
                for s in subs
                if (app is None or s.app == app) and (seq is None or s.sequence == seq)
            ]
            if chosen:
                result[key] = chosen
        return result

    def versions_in(
        self, rows: Iterable[DocumentVersion], app: str | None, seq: str | None
    ) -> list[DocumentVersion]:
        """Of the documents `rows` lists, the versions put in the sequences named.

        A sequence pins a version, which need not be the latest, so the listing shows
        the pinned versions (none later than the row's, e.g. under --as-of).
        """
        listed = {r.id: r for r in rows}
        return [
            self.vault.documents.show(doc, version)
            for doc, version in sorted(self.members(app, seq))
            if doc in listed and version <= listed[doc].version
        ]

    def _require_application(self, app: str) -> Application:
        from atmpvault.archive.regulatory import Regulatory

        return Regulatory(self.vault).app(app)

    # -- writing ---------------------------------------------------------------------

    def _commit(self, package: Package, action: str, subject: str, reason: str | None) -> str:
        return self.vault.commit_records(
            {record_path(package.app, package.sequence): package.record()},
            subject,
            {"Action": action, "Package": package.name},
            reason=reason,
        )

    def new(self, app: str, seq: str, type: str) -> Package:
        """Plan a new sequence of an application; a sequence number is used once."""
        app, seq, type = app_id(app), sequence(seq), submission_type(type)
        vault = self.vault
        with vault.writing():
            application = self._require_application(app)
            kinds = TYPE_KINDS.get(type)
            if kinds is not None and application.kind not in kinds:
                raise VaultError(
                    f"{type} is a {' or '.join(k.upper() for k in kinds)} submission; "
                    f"{app} is an {application.kind.upper()}"
                )
            existing = self._read(app, seq)
            if existing is not None:
                raise VaultError(
                    f"sequence {seq} of {app} is already used ({existing.type}, "
                    f"{existing.status}); sequence numbers are never reused"
                )
            package = Package(
                app=app,
                sequence=seq,
                type=type,
                status=PLANNED,
                created_at=values.iso(values.now()),
                created_by=vault.actor,
            )
            self._commit(package, "package-new", f"package new {package.name} ({type})", None)
        return package

    def add(
        self,
        app: str,
        seq: str,
        doc_ref: str,
        section_path: str,
        op: str = "new",
        modifies: str | None = None,
        title: str | None = None,
    ) -> tuple[Package, Leaf]:
        """Pin a document version to a section of a sequence in preparation."""
        app, seq = app_id(app), sequence(seq)
        doc, number = parse_doc_ref(doc_ref)
        where, op = section(section_path), operation(op)
        title = values.title(title)
        if op == "new" and modifies is not None:
            raise InvalidInput("--modifies applies to replace, append and delete, not new")
        if op != "new" and modifies is None:
            raise InvalidInput(
                f"--operation {op} needs --modifies APP/NNNN/LEAF naming the earlier leaf"
            )
        vault = self.vault
        with vault.writing():
            package = self.get(app, seq)
            if package.finalised:
                raise VaultError(
                    f"sequence is finalised: {package.name} was submitted on "
                    f"{package.submitted}; plan a new sequence instead"
                )
            version = self._version(doc, number)
            target, target_leaf = (
                self._modified(package, modifies) if modifies is not None else (None, None)
            )
            leaf = self._leaf(package, version, where, op, title, target, target_leaf)
            check_collisions([*package.leaves, leaf])
            if leaf.href is not None:
                check_href(leaf.href, seq)
            updated = Package(
                **{
                    **_fields(package),
                    "status": IN_PREPARATION,
                    "leaves": (*package.leaves, leaf),
                }
            )
            self._commit(
                updated,
                "package-add",
                f"package add {doc} v{version.version} to {package.name} as {leaf.id} ({op})",
                None,
            )
        return updated, leaf

    def _version(self, doc: str, number: int | None) -> DocumentVersion:
        found = self.vault.documents.show(doc, number)
        if found.status == WITHDRAWN:
            raise VaultError(
                f"{doc} version {found.version} records its withdrawal; "
                "a withdrawn document cannot be submitted"
            )
        return found

    def _modified(self, package: Package, ref: str) -> tuple[str, Leaf]:
        """The earlier leaf named by APP/NNNN/LEAF (an href or a leaf id)."""
        app, _, rest = ref.partition("/")
        seq, _, leaf_ref = rest.partition("/")
        if not app or not seq or not leaf_ref:
            raise InvalidInput(
                f"--modifies {ref[:80]!r}: use APP/NNNN/LEAF, e.g. IND-012345/0000/m3/32p/spec.pdf"
            )
        app, seq = app_id(app), sequence(seq)
        if app != package.app:
            raise VaultError(f"--modifies must name a leaf of {package.app}, not of {app}")
        if seq >= package.sequence:
            raise VaultError(
                f"--modifies must name an earlier sequence than {package.sequence}, not {seq}"
            )
        earlier = self._read(app, seq)
        if earlier is None:
            raise NotFound(f"{app} has no sequence {seq}")
        if not earlier.finalised:
            raise VaultError(
                f"{app}/{seq} is not finalised ({earlier.status}); only submitted leaves "
                "can be replaced, appended to or deleted"
            )
        for leaf in self.frozen(earlier).leaves:
            if leaf_ref in (leaf.id, leaf.href):
                if leaf.operation == "delete" or leaf.href is None:
                    raise VaultError(f"{ref} is a delete leaf; it has no file to modify")
                return f"{app}/{seq}/{leaf.href}", leaf
        raise NotFound(f"{app}/{seq} has no leaf {leaf_ref!r}; see 'package show {app} {seq}'")

    def _leaf(
        self,
        package: Package,
        version: DocumentVersion,
        where: str,
        op: str,
        title: str | None,
        modifies: str | None,
        target: Leaf | None,
    ) -> Leaf:
        number = len(package.leaves) + 1
        href = None if op == "delete" else f"{where}/{normalise_name(version.filename)}"
        return Leaf(
            id=f"leaf-{number:04d}",
            doc=version.id,
            version=version.version,
            sha256=version.sha256,
            commit=version.commit,
            filename=version.filename,
            section=where,
            href=href,
            operation=op,
            title=title or version.title or version.filename,
            modifies=modifies,
            modifies_leaf=target.id if target is not None else None,
            added_at=values.iso(values.now()),
            added_by=self.vault.actor,
        )

    def build(self, app: str, seq: str, output: Path) -> BuildResult:
        """Lay out the sequence, check it, and write it to a folder or a .zip."""
        package = self.get(app, seq)
        if package.finalised:
            package = self.frozen(package)
        layout = lay_out(self.vault, package)
        if output.suffix.lower() == ".zip":
            if not output.parent.is_dir():
                raise NotFound(f"no such folder: {output.parent}")
            if output.is_dir():
                raise VaultError(f"{output} is a folder; give a new .zip file name")
            written = output
            _guard(lambda: write_zip(layout, output), output)
        else:
            if output.exists() and not output.is_dir():
                raise VaultError(f"{output} exists and is not a folder")
            output.mkdir(parents=True, exist_ok=True)
            written = _guard(lambda: write_folder(layout, output), output)
        return BuildResult(
            package,
            written,
            len(layout.files),
            layout.pdf_checks,
            layout.files[INDEX_MD5].decode("ascii"),
        )

    def finalise(self, app: str, seq: str, submitted: str) -> Package:
        """Freeze a sequence as submitted: record it, tag that commit, feed the calendar.

        Run again after an interruption, it restores a missing tag or calendar event.
        """
        app, seq = app_id(app), sequence(seq)
        day = calendar_date(submitted, "--submitted")
        vault = self.vault
        with vault.writing():
            package = self.get(app, seq)
            tag = tag_name(app, seq)
            if package.finalised:
                repaired = False
                if tag not in vault.store.tags(tag):
                    self._retag(package)
                    repaired = True
                if self._calendar_pending(package):
                    package = self._feed_calendar(package)
                    repaired = True
                if repaired:
                    return package
                raise VaultError(
                    f"sequence is finalised: {package.name} was submitted on {package.submitted}"
                )
            lay_out(vault, package)  # a frozen sequence must be buildable
            for leaf in package.leaves:
                if leaf.modifies is not None:
                    earlier = self.get(app, leaf.modifies.split("/")[1])
                    if earlier.submitted and earlier.submitted > day.isoformat():
                        raise VaultError(
                            f"{leaf.id} modifies {earlier.name}, submitted on "
                            f"{earlier.submitted}, after {day.isoformat()}"
                        )
            now = values.now()
            final = Package(
                **{
                    **_fields(package),
                    "status": SUBMITTED,
                    "submitted": day.isoformat(),
                    "finalised_at": values.iso(now),
                    "finalised_by": vault.actor,
                    "tag": tag,
                }
            )
            sha = self._commit(
                final,
                "package-finalise",
                f"package finalise {final.name}: submitted {day.isoformat()}",
                None,
            )
            vault.store.tag(tag, sha, f"{final.name} submitted {day.isoformat()}", vault.actor, now)
            return self._feed_calendar(final)

    def _retag(self, package: Package) -> None:
        """Restore the tag of a finalisation interrupted between its commit and its tag."""
        store = self.vault.store
        for info in store.history():
            t = info.trailers
            if t.get("Action") == "package-finalise" and t.get("Package") == package.name:
                store.tag(
                    tag_name(package.app, package.sequence),
                    info.sha,
                    f"{package.name} submitted {package.submitted}",
                    self.vault.actor,
                    values.now(),
                )
                return
        raise IntegrityError(f"{package.name} is finalised but no finalise commit was found")

    @staticmethod
    def _calendar_pending(package: Package) -> bool:
        return package.type in CALENDAR_TRIGGERS and package.calendar_event is None

    def _feed_calendar(self, package: Package) -> Package:
        """Record the event a finalised supplement starts (e.g. pas-received: the PAS goal)."""
        from atmpvault.archive.regulatory import Regulatory

        trigger = CALENDAR_TRIGGERS.get(package.type)
        if trigger is None or package.submitted is None:
            return package
        event = Regulatory(self.vault).add_event(
            package.app,
            trigger,
            date.fromisoformat(package.submitted),
            note=f"submission package {package.name} ({package.type}) finalised",
        )
        updated = Package(**{**_fields(package), "calendar_event": event.id})
        self._commit(
            updated,
            "package-calendar",
            f"package {package.name}: calendar event {event.id} {trigger}",
            None,
        )
        return updated

    def acknowledge(self, app: str, seq: str, on: str) -> Package:
        """Record FDA's acknowledgement of a submitted sequence."""
        app, seq = app_id(app), sequence(seq)
        day = calendar_date(on, "--on")
        with self.vault.writing():
            package = self.get(app, seq)
            if package.status != SUBMITTED:
                raise VaultError(
                    f"{package.name} is {package.status}; only a submitted sequence "
                    "can be acknowledged"
                )
            self.frozen(package)
            assert package.submitted is not None
            if day.isoformat() < package.submitted:
                raise InvalidInput(
                    f"--on {day.isoformat()} is before the submission on {package.submitted}"
                )
            updated = Package(
                **{**_fields(package), "status": ACKNOWLEDGED, "acknowledged": day.isoformat()}
            )
            self._commit(
                updated,
                "package-acknowledge",
                f"package acknowledge {updated.name}: {day.isoformat()}",
                None,
            )
        return updated


def _fields(package: Package) -> dict[str, Any]:
    return {name: getattr(package, name) for name in Package.__dataclass_fields__}


def _guard(write: Any, target: Path) -> Any:
    """Run a write, turning an OS error into one line naming the target."""
    try:
        return write()
    except OSError as exc:
        raise VaultError(f"cannot write {target}: {exc.strerror or exc}") from None
