"""Records: versioned, format-numbered JSON files in the repository, one file per record.

A workflow declares each kind of record it keeps with a `RecordKind`: where its files
live, what its ids look like, which formats this code reads, and which of its fields the
catalog lifts into columns (program, lot, status, due date, a lookup key). The core
reads and writes records only through their kind, so it knows no workflow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from atmpvault.errors import RecordFormatError

FORMAT_KEY = "format"


class Columns(NamedTuple):
    """The fields of a record the catalog keeps as columns, to query many records by SQL."""

    program: str | None = None
    lot: str | None = None
    status: str | None = None
    due: str | None = None  # ISO date
    ref: str | None = None  # a secondary lookup key (e.g. a notice's key)


def _no_columns(_body: Mapping[str, Any]) -> Columns:
    return Columns()


class Reference(NamedTuple):
    """A record a body refers to (a package leaf: a document version); version None: any."""

    kind: str
    id: str
    version: int | None = None


def new_references(
    kind: RecordKind, body: Mapping[str, Any], before: Mapping[str, Any] | None
) -> list[Reference]:
    """What this version of a record refers to that its previous version (`before`) did not.

    One per record referred to (its highest version), sorted, so the audit trail lists the
    write that added a reference, not every later write that kept it.
    """
    if kind.references is None:
        return []
    earlier = set(kind.references(before)) if before is not None else set()
    found: dict[tuple[str, str], Reference] = {}
    for ref in kind.references(body):
        if ref in earlier:
            continue
        known = found.get((ref.kind, ref.id))
        if known is None or (ref.version or 0) > (known.version or 0):
            found[(ref.kind, ref.id)] = ref
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True)
class RecordKind:
    """One kind of record a workflow keeps (application, event, deviation...).

    Records live under `root`. A record file is `<ID>.json`, or with `filename` set,
    `<ID>/<filename>` (documents: `docs/<h>/<hh>/<ID>/record.json`); folders between
    the root and the file (shards, an owning application) are free. Ids match
    `id_pattern`. Files written before formats were numbered carry no `format` and are
    read as `legacy_format`; `fields`, when given, is every key a body may have.
    `lots`, when given, names every lot a body concerns (else its `lot` column does), so
    `lot show` finds it. `references`, when given, names the records a body refers to (a package's leaves:
    document versions), so the audit trail lists a write that adds a reference under the
    record referred to as well; only a generic kind can declare them (its previous
    version, to compare with, is in the catalog).
    """

    name: str
    root: str
    id_pattern: str
    format: int = 1
    legacy_format: int | None = None
    fields: frozenset[str] | None = None
    filename: str | None = None
    sharded: bool = True
    columns: Callable[[Mapping[str, Any]], Columns] = _no_columns
    # False: the owning workflow projects this kind into its own tables (documents).
    generic: bool = True
    indexed: bool = False  # every version is an entry of the full-text index
    # Whether an id's shape alone tells it apart (DOC-000042, EV-000007); a lot's free-form
    # id does not, so `log --doc` does not take it for one (`lot show` lists a lot's writes).
    distinctive: bool = True
    references: Callable[[Mapping[str, Any]], Iterable[Reference]] | None = None
    # The lots a body concerns (a deviation affects several); absent: its `lot` column.
    lots: Callable[[Mapping[str, Any]], Iterable[str]] | None = None

    def __post_init__(self) -> None:
        if self.references is not None and not self.generic:
            raise ValueError(f"{self.name}: only a generic record kind can declare references")

    def lots_of(self, body: Mapping[str, Any]) -> tuple[str, ...]:
        """Every lot a version of a record concerns."""
        if self.lots is not None:
            return tuple(dict.fromkeys(self.lots(body)))
        lot = self.columns(body).lot
        return (lot,) if lot else ()

    def is_id(self, value: str) -> bool:
        """Whether `value` has the shape of this kind's ids."""
        return re.fullmatch(self.id_pattern, value) is not None

    def id_of(self, path: str) -> str | None:
        """The id of the record stored at `path`, or None if no record of this kind is there."""
        if not path.startswith(self.root + "/"):
            return None
        rest = path[len(self.root) + 1 :]
        if self.filename is not None:
            folder, _, name = rest.rpartition("/")
            if name != self.filename:
                return None
            candidate = folder.rpartition("/")[2]
            return candidate if re.fullmatch(self.id_pattern, candidate) else None
        if not rest.endswith(".json"):
            return None
        stem = rest[: -len(".json")]
        if re.fullmatch(self.id_pattern, stem):
            return stem
        last = stem.rpartition("/")[2]
        return last if re.fullmatch(self.id_pattern, last) else None

    def path_for(self, record_id: str) -> str:
        """Where a new record of this kind is written (sharded like documents)."""
        if not re.fullmatch(self.id_pattern, record_id):
            raise ValueError(f"{record_id!r} is not a {self.name} id")
        folder = self.root
        if self.sharded:
            import hashlib  # only writers need it; the CLI starts without it

            shard = hashlib.sha1(record_id.encode("utf-8")).hexdigest()
            folder = f"{self.root}/{shard[0]}/{shard[1:3]}"
        if self.filename is not None:
            return f"{folder}/{record_id}/{self.filename}"
        return f"{folder}/{record_id}.json"

    def decode(self, raw: bytes, where: str) -> dict[str, Any]:
        """The body of a stored record, its format checked; RecordFormatError if unreadable."""
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise RecordFormatError(
                f"{where} is not a readable {self.name} record: {exc}"
            ) from None
        if not isinstance(body, dict):
            raise RecordFormatError(f"{where} is not a readable {self.name} record")
        number = body.pop(FORMAT_KEY, self.legacy_format)
        if number != self.format:
            raise RecordFormatError(
                f"{where} is a {self.name} record of format {number}; this atmpvault reads "
                f"format {self.format}: upgrade atmpvault to read this vault"
            )
        if self.fields is not None:
            unknown = sorted(set(body) - self.fields)
            if unknown:
                raise RecordFormatError(
                    f"{where}: unknown {self.name} field(s) {', '.join(unknown)} in format "
                    f"{number}; upgrade atmpvault to read this vault"
                )
        return body

    def encode(self, body: Mapping[str, Any]) -> bytes:
        """The stored form of a body: its format number first, keys sorted, one per line."""
        data = {FORMAT_KEY: self.format, **{k: v for k, v in body.items() if k != FORMAT_KEY}}
        text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)
        return (text + "\n").encode("utf-8")


class Record(NamedTuple):
    """One version of one record, as the catalog holds it."""

    kind: str
    id: str
    version: int
    body: dict[str, Any]
    path: str
    commit: str
    recorded_at: str
    actor: str
    columns: Columns = Columns()


def kind_for(kinds: tuple[RecordKind, ...], path: str) -> tuple[RecordKind, str] | None:
    """The kind and id of the record stored at `path`, if it is one."""
    for kind in kinds:
        found = kind.id_of(path)
        if found is not None:
            return kind, found
    return None


def _notice_columns(body: Mapping[str, Any]) -> Columns:
    return Columns(status=body.get("delivery"), ref=body.get("key"))


# The core's own record kind: every notice sent, whatever workflow sent it.
NOTICE_KIND = RecordKind(
    name="notice",
    root="notices",
    id_pattern=r"NTC-[0-9]{8}-[0-9]{6}-[0-9A-F]{6}",
    fields=frozenset(
        {
            "id",
            "key",
            "lists",
            "to",
            "sender",
            "subject",
            "template",
            "sent_at",
            "delivery",
            "message_id",
            "actor",
            "refused",
            "text",
            "people",
        }
    ),  # fmt: skip
    columns=_notice_columns,
)
CORE_KINDS = (NOTICE_KIND,)
