"""Changes: one commit to write (`Change`), one commit read back (`CommitChanges`), the record
versions each holds (`RecordChange`), and the unit of work that gathers every record and
document a user action touches into one commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.records import RecordKind
from atmpvault.repository.fastimport import NewCommit
from atmpvault.repository.git import parse_trailers

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault

RECORDS_TRAILER = "Records"


@dataclass(frozen=True)
class RecordChange:
    """A record version written by one commit (read back from history or just written)."""

    kind: RecordKind
    id: str
    path: str
    body: dict[str, Any]
    raw: bytes


@dataclass(frozen=True)
class Change:
    """One commit to write: files, a subject line, the audit trailers, and tags to set on it."""

    files: dict[str, bytes | None]
    subject: str
    trailers: dict[str, str]
    actor: str
    reason: str | None
    when: datetime
    tags: tuple[tuple[str, str], ...] = ()  # (name, message) of annotated tags

    def as_commit(self) -> NewCommit:
        lines = dict(self.trailers)
        lines["Actor"] = self.actor
        if self.reason:
            lines["Reason"] = self.reason
        lines["Recorded-At"] = values.iso(self.when)
        body = "\n".join(f"{k}: {v}" for k, v in lines.items())
        return NewCommit(
            self.files, f"{self.subject}\n\n{body}\n", self.actor, self.when, self.tags
        )


@dataclass(frozen=True)
class CommitChanges:
    """One commit of history with the records it wrote, as every projection receives it."""

    sha: str
    time: int  # commit time, seconds since the epoch
    message: str
    trailers: dict[str, str]
    paths: tuple[str, ...]
    records: tuple[RecordChange, ...] = ()
    # Text already extracted for documents in this commit (import), so the index need
    # not read it back from the repository.
    texts: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def recorded_at(self) -> str:
        """When the write happened: its Recorded-At trailer, else the commit time."""
        stamp = self.trailers.get("Recorded-At")
        return stamp or values.iso(datetime.fromtimestamp(self.time, UTC))

    @property
    def actor(self) -> str:
        return self.trailers.get("Actor", "")

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0]


class UnitOfWork:
    """Record and document changes gathered for one commit: one user action, one commit.

    Taken with `vault.unit(action, subject=...)` under the write lock. Nothing is written
    until the block ends without an error; then everything is one commit, and the catalog
    is brought to it. A crash before the commit leaves nothing; after it, everything
    (the next open replays what the catalog missed).
    """

    def __init__(self, vault: Vault, action: str, actor: str, reason: str | None) -> None:
        self.vault = vault
        self.action = action
        self.actor = actor
        self.reason = reason
        self.subject: str = action
        self.when = values.now()
        self.trailers: dict[str, str] = {}
        self.files: dict[str, bytes | None] = {}
        self.records: dict[tuple[str, str], RecordChange] = {}
        self.touched: list[tuple[str, str, int]] = []  # (kind, id, version), in order
        self.tags: list[tuple[str, str]] = []
        self.texts: dict[str, str] = {}
        self.commit: str | None = None
        self.parent: str | None = None

    def put(
        self, kind: RecordKind, record_id: str, body: dict[str, Any], path: str | None = None
    ) -> int:
        """Write a record's next version (or its first); returns the version number.

        A record keeps the path it was first written at; a new one goes where `path`
        says, else where its kind shards it.
        """
        key = (kind.name, record_id)
        earlier = self.records.get(key)
        if earlier is not None:
            where, version = earlier.path, self._version_of(key)
        else:
            current = self.vault.catalog.record_head(kind.name, record_id)
            where = current[1] if current else (path or kind.path_for(record_id))
            version = (current[0] if current else 0) + 1
            self.touched.append((kind.name, record_id, version))
        raw = kind.encode(body)
        self.files[where] = raw
        self.records[key] = RecordChange(kind, record_id, where, kind.decode(raw, where), raw)
        return version

    def _version_of(self, key: tuple[str, str]) -> int:
        return next(v for k, i, v in self.touched if (k, i) == key)

    def write(self, files: dict[str, bytes | None], record: RecordChange, version: int) -> None:
        """Files of a record its workflow lays out itself (a document: bytes, text, record)."""
        self.files.update(files)
        self.files[record.path] = record.raw
        self.records[(record.kind.name, record.id)] = record
        self.touched.append((record.kind.name, record.id, version))

    def tag(self, name: str, message: str) -> None:
        """An annotated tag on this unit's commit, written in the same stream."""
        self.tags.append((name, message))

    def change(self) -> Change:
        """The commit this unit writes."""
        trailers = {"Action": self.action, **self.trailers}
        listed = ", ".join(f"{kind} {rid} v{version}" for kind, rid, version in self.touched)
        if listed and len(self.touched) > 1:
            trailers[RECORDS_TRAILER] = listed
        return Change(
            self.files, self.subject, trailers, self.actor, self.reason, self.when,
            tuple(self.tags),
        )  # fmt: skip

    def committed(self, sha: str, records: tuple[RecordChange, ...]) -> CommitChanges:
        """The unit as the projections receive it, once its commit is `sha`."""
        message = self.change().as_commit().message
        return CommitChanges(
            sha=sha,
            time=int(self.when.timestamp()),
            message=message,
            trailers=parse_trailers(message),
            paths=tuple(self.files),
            records=records,
            texts=dict(self.texts),
        )
