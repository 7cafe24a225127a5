"""A wrong leaf never locks a sequence: leaves are checked when added, `package rm` takes
one out before finalising, and what may be a mistake is added with a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.domains import domains
from atmpvault.archive.regulatory.kinds import PACKAGE_KIND
from atmpvault.config import Settings
from tests.conftest import run
from tests.test_packages import (
    IND,
    add,
    archive,
    files_of,
    force_leaf,
    new_sequence,
    ok,
    ok_json,
    pdf,
    pypdf_variant,
    refused,
)


@pytest.fixture
def vp(vault_path: Path) -> Path:
    """A CLI vault with an IND of program CART-19."""
    ok(run(vault_path, "app", "new", "ind", "012345", "--program", "CART-19"))
    return vault_path


def leaf_ids(vault: Path, seq: str) -> list[tuple[str, str]]:
    shown = ok_json(run(vault, "package", "show", IND, seq, "--json"))
    return [(leaf["id"], leaf["doc"]) for leaf in shown["leaves"]]


def package_versions(settings: Settings, seq: str) -> list[list[str]]:
    """The leaf ids of every recorded version of a sequence, oldest first."""
    with Vault.open(settings, domains()) as vault:
        return [
            [leaf["id"] for leaf in r.body["leaves"]]
            for r in vault.catalog.record_versions(PACKAGE_KIND.name, f"{IND}/{seq}")
        ]


# -- checked when added -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (pypdf_variant(pdf("Secret"), encrypt=True), "encrypted"),
        (pdf("Old", version="1.3"), "PDF version 1.3 (FDA accepts 1.4 to 1.7)"),
        (pypdf_variant(pdf("Script"), javascript=True), "contains JavaScript"),
        (b"plain text, not a PDF", "not a PDF"),
    ],
    ids=["encrypted", "pdf-1.3", "javascript", "not-a-pdf"],
)
def test_a_leaf_that_could_never_be_built_is_refused_when_added(
    vp: Path, tmp_path: Path, settings: Settings, data: bytes, problem: str
) -> None:
    good = archive(vp, tmp_path, "good.pdf", pdf("Good"))
    bad = archive(vp, tmp_path, "Bad File.pdf", data)
    new_sequence(vp, "0000")
    add(vp, "0000", good, "m3/32p")
    before = package_versions(settings, "0000")
    refused(
        run(vp, "package", "add", IND, "0000", bad, "--section", "m3/32s"),
        1,
        f"{bad} v1 does not meet FDA's PDF specification",
        "could never be built",
        "nothing was added",
        "m3/32s/bad-file.pdf",
        problem,
    )
    assert package_versions(settings, "0000") == before
    assert leaf_ids(vp, "0000") == [("leaf-0001", good)]
    ok(run(vp, "package", "build", IND, "0000", "-o", str(tmp_path / "out.zip")))


def test_the_generated_regional_backbone_cannot_be_added(vp: Path, tmp_path: Path) -> None:
    doc = archive(vp, tmp_path, "us-regional.xml", b"<fda-regional/>\n")
    new_sequence(vp, "0000")
    refused(
        run(vp, "package", "add", IND, "0000", doc, "--section", "m1/us"),
        1,
        "m1/us/us-regional.xml is generated",
    )
    assert leaf_ids(vp, "0000") == []


def test_adding_the_same_version_twice_says_so(vp: Path, tmp_path: Path) -> None:
    spec = archive(vp, tmp_path, "spec.pdf", pdf("Spec"))
    new_sequence(vp, "0000")
    add(vp, "0000", spec, "m3/32p/32p5")
    refused(
        run(vp, "package", "add", IND, "0000", f"{spec}@1", "--section", "m3/32p/32p5"),
        1,
        f"{spec} v1 is already leaf-0001 of {IND}/0000 (m3/32p/32p5/spec.pdf)",
        "nothing was added",
    )
    # In another section it may be meant (one document under two headings): a warning.
    result = ok(run(vp, "package", "add", IND, "0000", spec, "--section", "m3/32s/32s4"))
    assert result.stderr == (
        f"atmpvault: warning: {spec} v1 is also leaf-0001 of {IND}/0000 (m3/32p/32p5/spec.pdf)\n"
    )
    assert [leaf for leaf, _doc in leaf_ids(vp, "0000")] == ["leaf-0001", "leaf-0002"]


# -- warnings -----------------------------------------------------------------------------


def test_two_versions_of_one_document_both_new_are_added_with_a_warning(
    vp: Path, tmp_path: Path
) -> None:
    spec = archive(vp, tmp_path, "spec.pdf", pdf("Spec v1"))
    revised = tmp_path / "incoming" / "spec.pdf"
    revised.write_bytes(pdf("Spec v2"))
    ok(run(vp, "add", str(revised), "--id", spec, "--reason", "rev 2"))
    new_sequence(vp, "0000")
    first = ok(run(vp, "package", "add", IND, "0000", f"{spec}@1", "--section", "m3/32p", "--json"))
    assert first.stderr == "" and json.loads(first.stdout)["warnings"] == []
    result = ok(
        run(vp, "package", "add", IND, "0000", f"{spec}@2", "--section", "m3/32s", "--json")
    )
    added = json.loads(result.stdout)
    assert added["id"] == "leaf-0002" and added["version"] == 2
    [warning] = added["warnings"]
    assert f"{spec} v1 is already a new leaf of {IND}/0000 (leaf-0001)" in warning
    assert "two versions of one document are both new" in warning
    assert f"'package rm {IND} 0000 LEAF --reason R'" in warning
    assert result.stderr == f"atmpvault: warning: {warning}\n"


def test_a_document_of_another_program_is_added_with_a_warning(vp: Path, tmp_path: Path) -> None:
    path = tmp_path / "other.pdf"
    path.write_bytes(pdf("Other program"))
    doc = ok_json(
        run(vp, "add", str(path), "--program", "AAV-02", "--type", "batch-record", "--json")
    )["id"]
    new_sequence(vp, "0000")
    result = ok(run(vp, "package", "add", IND, "0000", doc, "--section", "m3/32p"))
    assert result.stderr == (
        f"atmpvault: warning: {doc} belongs to program AAV-02; {IND} is an application of CART-19\n"
    )
    assert "leaf-0001" in result.stdout


@pytest.mark.parametrize(
    ("section", "warned"),
    [("m3/32p/32p5", True), ("m5/53/535", True), ("m1/us", False), ("m5/datasets/study-1", False)],
)
def test_a_non_pdf_where_pdfs_are_expected_is_added_with_a_warning(
    vp: Path, tmp_path: Path, section: str, warned: bool
) -> None:
    doc = archive(vp, tmp_path, "Results.xpt", b"HEADER RECORD*******LIBRARY HEADER\n")
    new_sequence(vp, "0000")
    added = ok_json(run(vp, "package", "add", IND, "0000", doc, "--section", section, "--json"))
    expected = (
        [
            f"leaf-0001 {section}/results.xpt ({doc} v1) is not a PDF; "
            f"{section[:2]} documents are expected as PDF (study data belongs under a "
            "datasets folder)"
        ]
        if warned
        else []
    )
    assert added["warnings"] == expected


# -- package rm ---------------------------------------------------------------------------


def test_a_wrong_leaf_is_removed_and_the_sequence_builds(
    vp: Path, tmp_path: Path, settings: Settings
) -> None:
    """The issue: an encrypted PDF in a sequence (recorded before add checked leaves)."""
    spec = archive(vp, tmp_path, "spec.pdf", pdf("Spec"))
    locked = archive(vp, tmp_path, "locked.pdf", pypdf_variant(pdf("Secret"), encrypt=True))
    ba = archive(vp, tmp_path, "ba.pdf", pdf("Batch analysis"))
    new_sequence(vp, "0000")
    add(vp, "0000", spec, "m3/32p")
    assert force_leaf(settings, "0000", locked, "m3/32s") == "leaf-0002"
    add(vp, "0000", ba, "m3/32p")
    out = tmp_path / "pkg.zip"
    refused(run(vp, "package", "build", IND, "0000", "-o", str(out)), 1, "encrypted")

    removed = ok_json(
        run(vp, "package", "rm", IND, "0000", "leaf-0002", "--reason", "encrypted by the CRO",
            "--json")
    )  # fmt: skip
    assert (removed["id"], removed["doc"], removed["href"]) == (
        "leaf-0002",
        locked,
        "m3/32s/locked.pdf",
    )
    assert removed["warnings"] == []
    # The remaining leaves keep their ids; the next leaf takes a new one.
    assert leaf_ids(vp, "0000") == [("leaf-0001", spec), ("leaf-0003", ba)]
    ok(run(vp, "package", "build", IND, "0000", "-o", str(out)))
    assert "0000/m3/32s/locked.pdf" not in files_of(out)
    # The record's history keeps the sequence as it was; the commit says who and why.
    assert package_versions(settings, "0000")[-2:] == [
        ["leaf-0001", "leaf-0002", "leaf-0003"],
        ["leaf-0001", "leaf-0003"],
    ]
    with Vault.open(settings, domains()) as vault:
        last = list(vault.store.history())[-1]
    assert last.trailers["Action"] == "package-rm"
    assert last.trailers["Reason"] == "encrypted by the CRO"
    assert last.trailers["Package"] == f"{IND}/0000"
    ok(run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05"))


def test_a_removed_leaf_id_is_never_reused(vp: Path, tmp_path: Path) -> None:
    docs = [archive(vp, tmp_path, f"doc-{n}.pdf", pdf(f"Doc {n}")) for n in range(3)]
    new_sequence(vp, "0000")
    add(vp, "0000", docs[0], "m3/32p")
    add(vp, "0000", docs[1], "m3/32p")
    shown = ok(
        run(vp, "package", "rm", IND, "0000", "m3/32p/doc-1.pdf", "--reason", "not ready")
    ).stdout
    assert (
        shown == f"{IND}/0000 leaf-0002 removed  {docs[1]} v1  m3/32p/doc-1.pdf  (1 leaves left)\n"
    )
    assert add(vp, "0000", docs[2], "m3/32p")["id"] == "leaf-0003"
    # Put back, the removed document is a leaf again, under a new id.
    assert add(vp, "0000", docs[1], "m3/32p")["id"] == "leaf-0004"


def test_package_rm_is_refused_where_it_cannot_apply(vp: Path, tmp_path: Path) -> None:
    spec = archive(vp, tmp_path, "spec.pdf", pdf("Spec"))
    new_sequence(vp, "0000")
    add(vp, "0000", spec, "m3/32p")
    refused(
        run(vp, "package", "rm", IND, "0000", "leaf-0009", "--reason", "x"),
        1,
        f"{IND}/0000 has no leaf 'leaf-0009'",
    )
    refused(run(vp, "package", "rm", IND, "0000", "leaf-0001"), 2, "--reason")
    refused(run(vp, "package", "rm", IND, "0000", "leaf-0001", "--reason", " "), 2, "--reason")
    refused(run(vp, "package", "rm", IND, "0001", "leaf-0001", "--reason", "x"), 1, "0001")
    ok(run(vp, "package", "finalise", IND, "0000", "--submitted", "2026-01-05"))
    refused(
        run(vp, "package", "rm", IND, "0000", "leaf-0001", "--reason", "too late"),
        1,
        "sequence is finalised",
        "replace or delete leaf in a later sequence",
    )
    assert leaf_ids(vp, "0000") == [("leaf-0001", spec)]
