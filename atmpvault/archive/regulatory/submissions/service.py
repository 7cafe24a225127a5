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

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.core.signatures import Signatures
from atmpvault.archive.documents.records import WITHDRAWN, DocumentVersion, parse_doc_ref
from atmpvault.archive.documents.versions import Documents
from atmpvault.archive.regulatory.applications import Application, Regulatory, app_id
from atmpvault.archive.regulatory.kinds import PACKAGE_KIND
from atmpvault.archive.regulatory.submissions.ectd import (
    INDEX_MD5,
    PdfCheck,
    lay_out,
    write_folder,
    write_zip,
)
from atmpvault.archive.regulatory.submissions.leaves import (
    LeafChange,
    check_leaf,
    leaf_warnings,
    make_leaf,
)
from atmpvault.archive.regulatory.submissions.model import (
    ACKNOWLEDGED,
    CALENDAR_TRIGGERS,
    IN_PREPARATION,
    PLANNED,
    SUBMITTED,
    TYPE_KINDS,
    Leaf,
    Package,
    Submission,
    calendar_date,
    operation,
    record_path,
    section,
    sequence,
    submission_type,
    tag_name,
)
from atmpvault.errors import IntegrityError, InvalidInput, NotFound, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import UnitOfWork
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.applications import Application


def read_packages(vault: Vault, as_of: str | None = None) -> list[Package]:
    """Every package recorded (as of `as_of`), in application and sequence order."""
    return [
        Package.from_json(r.body) for r in vault.catalog.records(PACKAGE_KIND.name, as_of=as_of)
    ]


def memberships(packages: Iterable[Package]) -> dict[tuple[str, int], list[Submission]]:
    """(document, version) -> the sequences it is in."""
    result: dict[tuple[str, int], list[Submission]] = {}
    for package in packages:
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


def search_tags(submissions: Iterable[Submission]) -> set[tuple[str, str]]:
    """The index tags of a version in these sequences: app:APP, sequence:APP/NNNN and NNNN."""
    tags = set()
    for sub in submissions:
        tags.update(
            {
                ("app", sub.app),
                ("sequence", f"{sub.app}/{sub.sequence}"),
                ("sequence", sub.sequence),
            }
        )
    return tags


def search_filter(app: str | None, seq: str | None) -> tuple[tuple[str, str], ...]:
    """The index tags --app and/or --sequence stand for (see search_tags)."""
    app = app_id(app) if app is not None else None
    seq = sequence(seq) if seq is not None else None
    if app and seq:
        return (("sequence", f"{app}/{seq}"),)
    if app:
        return (("app", app),)
    return (("sequence", seq),) if seq else ()


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
        """A package as recorded now, or as the commit `at` recorded it (one path read)."""
        if at is not None:
            raw = self.vault.read_file(record_path(app, seq), at)
            return None if raw is None else Package.from_record(raw, record_path(app, seq))
        found = self.vault.catalog.record(PACKAGE_KIND.name, f"{app}/{seq}")
        return None if found is None else Package.from_json(found.body)

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
        return [p for p in read_packages(self.vault) if p.app == app]

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
        found = memberships(read_packages(self.vault))
        return found.get((doc, version), [])

    def members(self, app: str | None, seq: str | None) -> dict[tuple[str, int], list[Submission]]:
        """(document, version) pairs in the sequences named (any of an app, or NNNN)."""
        app = app_id(app) if app is not None else None
        seq = sequence(seq) if seq is not None else None
        if app is not None:
            self._require_application(app)
        result = {}
        for key, subs in memberships(read_packages(self.vault)).items():
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
            Documents(self.vault).show(doc, version)
            for doc, version in sorted(self.members(app, seq))
            if doc in listed and version <= listed[doc].version
        ]

    def _require_application(self, app: str) -> Application:
        return Regulatory(self.vault).app(app)

    # -- writing ---------------------------------------------------------------------

    @staticmethod
    def _put(unit: UnitOfWork, package: Package) -> None:
        unit.put(
            PACKAGE_KIND,
            package.name,
            package.to_json(),
            record_path(package.app, package.sequence),
        )
        unit.trailers["Package"] = package.name

    def _commit(self, package: Package, action: str, subject: str) -> None:
        with self.vault.unit(action, subject) as unit:
            self._put(unit, package)

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
            self._commit(package, "package-new", f"package new {package.name} ({type})")
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
    ) -> LeafChange:
        """Pin a document version to a section of a sequence in preparation, checked as a
        build would check it; what may be a mistake is added with a warning."""
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
            leaf = make_leaf(vault, package, version, where, op, title, target, target_leaf)
            check_leaf(vault, package, leaf)
            warnings = leaf_warnings(package, leaf, version, self._require_application(app))
            updated = replace(package, status=IN_PREPARATION, leaves=(*package.leaves, leaf))
            self._commit(
                updated,
                "package-add",
                f"package add {doc} v{version.version} to {package.name} as {leaf.id} ({op})",
            )
        return LeafChange(updated, leaf, tuple(warnings))

    def rm(self, app: str, seq: str, leaf_ref: str, reason: str) -> LeafChange:
        """Take a leaf out of a sequence in preparation; the other leaves keep their ids.

        The record's earlier version, with the leaf, stays in the history. A finalised
        sequence is changed only by a later sequence's replace or delete leaves.
        """
        app, seq = app_id(app), sequence(seq)
        why = values.reason(reason)
        vault = self.vault
        with vault.unit("package-rm", f"package rm {leaf_ref} from {app}/{seq}", why) as unit:
            package = self.get(app, seq)
            if package.finalised:
                raise VaultError(
                    f"sequence is finalised: {package.name} was submitted on "
                    f"{package.submitted}; change it with a replace or delete leaf in a "
                    "later sequence"
                )
            found = [leaf for leaf in package.leaves if leaf_ref in (leaf.id, leaf.href)]
            if not found:
                raise NotFound(
                    f"{package.name} has no leaf {leaf_ref[:80]!r}; see 'package show {app} {seq}'"
                )
            leaf = found[0]
            updated = replace(package, leaves=tuple(x for x in package.leaves if x != leaf))
            unit.subject = f"package rm {leaf.id} ({leaf.doc} v{leaf.version}) from {package.name}"
            self._put(unit, updated)
        return LeafChange(updated, leaf)

    def _version(self, doc: str, number: int | None) -> DocumentVersion:
        found = Documents(self.vault).show(doc, number)
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

    def build(self, app: str, seq: str, output: Path, force: bool = False) -> BuildResult:
        """Lay out the sequence, check it, and write it to a folder or a .zip.

        An existing .zip is replaced only with `force`; a name with another extension is
        refused unless it is an existing folder (`-o out.txt` is a typo, not a folder)."""
        zipped = output.suffix.lower() == ".zip" and not output.is_dir()
        if not zipped and output.suffix and not output.is_dir():
            raise InvalidInput(
                f"{output}: give a folder or a file name ending in .zip, not {output.suffix}"
            )
        if zipped and output.exists() and not force:
            raise VaultError(f"{output} already exists; use --force to replace it")
        package = self.get(app, seq)
        if package.finalised:
            package = self.frozen(package)
        layout = lay_out(self.vault, package)
        if zipped:
            if not output.parent.is_dir():
                raise NotFound(f"no such folder: {output.parent}")
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

    def finalise(self, app: str, seq: str, submitted: str, key_file: Path | None = None) -> Package:
        """Freeze a sequence as submitted: one commit records it (and the calendar event a
        supplement starts), its regulatory approval signature (a vault with users) and
        tags itself seq/APP/NNNN.

        Run again on a finalised sequence whose tag was lost, it restores the tag.
        """
        app, seq = app_id(app), sequence(seq)
        day = calendar_date(submitted, "--submitted", self.vault.config.dates)
        vault = self.vault
        tag = tag_name(app, seq)
        subject = f"package finalise {app}/{seq}: submitted {day.isoformat()}"
        with vault.unit("package-finalise", subject) as unit:
            package = self.get(app, seq)
            if package.finalised:
                if tag not in vault.store.tags(tag):
                    self._retag(package)
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
            final = replace(
                package,
                status=SUBMITTED,
                submitted=day.isoformat(),
                finalised_at=values.iso(unit.when),
                finalised_by=unit.actor,
                tag=tag,
            )
            self._put(unit, final)  # first: the write is about the package
            trigger = CALENDAR_TRIGGERS.get(package.type)
            if trigger is not None:
                event = Regulatory(vault).stage_event(
                    unit, app, trigger, day,
                    note=f"submission package {final.name} ({final.type}) finalised",
                )  # fmt: skip
                final = replace(final, calendar_event=event.id)
                self._put(unit, final)
            # Signed last, over the version this commit writes: no valid signature, no commit.
            Signatures(vault).gate(
                unit, "package finalise", PACKAGE_KIND.name, final.name, key_file
            )
            unit.tag(tag, f"{final.name} submitted {day.isoformat()}")
        return final

    def _retag(self, package: Package) -> None:
        """Restore the tag of a finalisation whose tag was lost (a tag is set after the
        branch moves, in the same git process; a crash between the two can drop it)."""
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

    def acknowledge(self, app: str, seq: str, on: str) -> Package:
        """Record FDA's acknowledgement of a submitted sequence."""
        app, seq = app_id(app), sequence(seq)
        day = calendar_date(on, "--on", self.vault.config.dates)
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
            updated = replace(package, status=ACKNOWLEDGED, acknowledged=day.isoformat())
            self._commit(
                updated,
                "package-acknowledge",
                f"package acknowledge {updated.name}: {day.isoformat()}",
            )
        return updated


def _guard(write: Any, target: Path) -> Any:
    """Run a write, turning an OS error into one line naming the target."""
    try:
        return write()
    except OSError as exc:
        raise VaultError(f"cannot write {target}: {exc.strerror or exc}") from None
