"""A leaf on its way into a sequence: its id, the checks a build would make, and warnings.

A leaf is checked when it is added exactly as a build checks it, so a sequence in
preparation never holds a leaf that could never be built. What might be intended
(two versions of one document, a document of another program, a non-PDF among PDFs)
is added with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.regulatory.kinds import PACKAGE_KIND
from atmpvault.archive.regulatory.submissions.ectd import check_collisions, leaf_file, pdf_failures
from atmpvault.archive.regulatory.submissions.model import Leaf, Package, normalise_name
from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.documents.records import DocumentVersion
    from atmpvault.archive.regulatory.applications import Application

LEAF_ID_RE = re.compile(r"leaf-([0-9]{1,9})")

# Modules whose documents FDA expects as PDF; study data (SAS transport, define.xml)
# goes under a datasets folder of m4 or m5, and m1 carries regional formats (SPL XML).
PDF_MODULES = ("m2", "m3", "m4", "m5")
DATASETS = "datasets"


def next_leaf_id(vault: Vault, package: Package) -> str:
    """The next leaf id of a sequence: never one it used before, even for a removed leaf,
    so an id in the record's history always means the same leaf."""
    numbers = [_number(leaf.id) for leaf in package.leaves]
    for earlier in vault.catalog.record_versions(PACKAGE_KIND.name, package.name):
        numbers += [_number(str(leaf.get("id", ""))) for leaf in earlier.body.get("leaves", [])]
    return f"leaf-{max(numbers, default=0) + 1:04d}"


def _number(leaf_id: str) -> int:
    match = LEAF_ID_RE.fullmatch(leaf_id)
    return int(match[1]) if match else 0


def make_leaf(
    vault: Vault,
    package: Package,
    version: DocumentVersion,
    where: str,
    op: str,
    title: str | None,
    modifies: str | None,
    target: Leaf | None,
) -> Leaf:
    """A leaf pinning `version` to section `where` of `package` (not yet checked)."""
    href = None if op == "delete" else f"{where}/{normalise_name(version.filename)}"
    return Leaf(
        id=next_leaf_id(vault, package),
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
        added_by=vault.actor,
    )


def check_leaf(vault: Vault, package: Package, leaf: Leaf) -> None:
    """Refuse a leaf the sequence could never be built with, as a build would."""
    for other in package.leaves:
        if (other.doc, other.version, other.href) == (leaf.doc, leaf.version, leaf.href):
            raise VaultError(
                f"{leaf.doc} v{leaf.version} is already {other.id} of {package.name} "
                f"({other.href or 'delete: no file'}); nothing was added"
            )
    check_collisions([*package.leaves, leaf])
    if leaf.href is None:
        return
    _data, pdf = leaf_file(vault, package, leaf)
    if pdf is not None and not pdf.ok:
        raise VaultError(
            f"{leaf.doc} v{leaf.version} does not meet FDA's PDF specification, so "
            f"{package.name} could never be built with it; nothing was added: "
            f"{pdf_failures([pdf])}"
        )


def leaf_warnings(
    package: Package, leaf: Leaf, version: DocumentVersion, application: Application
) -> list[str]:
    """What may be a mistake in adding `leaf` to `package`, each as one sentence."""
    found = []
    for other in package.leaves:
        if other.doc != leaf.doc:
            continue
        if other.version == leaf.version:
            found.append(
                f"{leaf.doc} v{leaf.version} is also {other.id} of {package.name} "
                f"({other.href or 'delete: no file'})"
            )
        elif other.operation == "new" and leaf.operation == "new":
            found.append(
                f"{leaf.doc} v{other.version} is already a new leaf of {package.name} "
                f"({other.id}), and v{leaf.version} is now {leaf.id}: two versions of one "
                f"document are both new; keep one with 'package rm {package.app} "
                f"{package.sequence} LEAF --reason R'"
            )
    if version.program != application.program:
        found.append(
            f"{leaf.doc} belongs to program {version.program}; {application.id} is an "
            f"application of {application.program}"
        )
    if leaf.href is not None and expects_pdf(leaf.section) and not leaf.href.endswith(".pdf"):
        found.append(
            f"{leaf.id} {leaf.href} ({leaf.doc} v{leaf.version}) is not a PDF; "
            f"{leaf.section.split('/', 1)[0]} documents are expected as PDF "
            "(study data belongs under a datasets folder)"
        )
    return found


def expects_pdf(section: str) -> bool:
    """Whether documents in this section are expected as PDF (m2-m5, but datasets)."""
    parts = section.split("/")
    return parts[0] in PDF_MODULES and DATASETS not in parts


@dataclass(frozen=True)
class LeafChange:
    """A leaf added to or removed from a sequence, the sequence after, and any warnings."""

    package: Package
    leaf: Leaf
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.package.app,
            "sequence": self.package.sequence,
            **self.leaf.to_json(),
            "warnings": list(self.warnings),
        }
