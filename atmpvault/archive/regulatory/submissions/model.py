"""Submission packages: the sequence, its leaves, and the rules for their names.

A package is one sequence (four digits, 0000 first) of one application. Its record,
at regulatory/packages/<APP>/<NNNN>.json, lists the leaves: each pins one archived
document version to a path in the sequence, with a lifecycle operation.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from html import escape
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.regulatory.kinds import PACKAGE_KIND, PACKAGES_ROOT
from atmpvault.errors import InvalidInput

if TYPE_CHECKING:
    pass


def xml_escape(text: str) -> str:
    """Text for an XML element (xml.sax.saxutils would pull urllib into every CLI start)."""
    return escape(text, quote=False)


def quoteattr(text: str) -> str:
    """A double-quoted XML attribute value."""
    return f'"{escape(text, quote=True)}"'


TAG_PREFIX = "seq"
RECORD_FORMAT = 1

SUBMISSION_TYPES = (
    "original",
    "protocol-amendment",
    "information-amendment",
    "safety-report-7-day",
    "safety-report-15-day",
    "annual-report",
    "postmarketing-15-day",
    "periodic-safety-report",
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
    "postmarketing-15-day": ("bla",),
    "periodic-safety-report": ("bla",),
}

MAX_NAME = 64  # characters per file or folder name (eCTD v3.2.2, FDA)
MAX_PATH = 150  # characters from the sequence folder on (FDA)

SEQUENCE_RE = re.compile(r"[0-9]{4}")
SEGMENT_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
SECTION_RE = re.compile(r"m[1-5](?:/[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
FILE_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9]{1,8})?")
_NOT_NAME = re.compile(r"[^a-z0-9]+")


# -- values -----------------------------------------------------------------------------


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


def calendar_date(value: str, what: str, within: values.DateRange = values.DEFAULT_DATES) -> date:
    """A date something happened (submitted, acknowledged), as YYYY-MM-DD: not in the
    future (a day's grace east of UTC) and inside the vault's date range `within`."""
    return values.day(value, what, within, happened=True)


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
        return PACKAGE_KIND.encode(self.to_json())

    @classmethod
    def from_record(cls, raw: bytes, where: str = "package record") -> Package:
        return cls.from_json(PACKAGE_KIND.decode(raw, where))

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Package:
        data = dict(body)
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
