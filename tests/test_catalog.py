"""The catalog, through the library, on SQLite and on PostgreSQL (the `catalog_url` fixture)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from atmpvault.archive.core.vault import Vault
from atmpvault.archive.documents.records import DocumentVersion
from atmpvault.archive.documents.tables import Filters
from atmpvault.archive.documents.versions import Documents
from atmpvault.archive.domains import domains
from atmpvault.config import Settings
from atmpvault.errors import NotFound, NothingChanged, VaultError


def settings_for(path: Path, url: str | None) -> Settings:
    return Settings(vault=path, user="qa.tester", catalog_url=url, lock_timeout=10)


@pytest.fixture
def vault(tmp_path: Path, catalog_url: str | None) -> Iterator[Vault]:
    with Vault.create(settings_for(tmp_path / "vault", catalog_url), domains()) as v:
        yield v


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def populate(vault: Vault, tmp_path: Path) -> None:
    """Four documents in two programs; DOC-000001 revised twice, DOC-000003 withdrawn."""
    docs = Documents(vault)
    docs.add(
        write(tmp_path, "br.pdf", b"batch record v1"),
        "CART-19",
        "batch-record",
        title="Batch record L-0042",
        lot="L-0042",
        meta={"site": "PHL"},
    )
    docs.add(
        write(tmp_path, "dev.pdf", b"deviation package"),
        "CART-19",
        "deviation-package",
        lot="L-0042",
    )
    docs.add(write(tmp_path, "sop.pdf", b"thaw SOP"), "AAV9-SMA", "sop", title="Thaw SOP")
    docs.add(
        write(tmp_path, "coa.pdf", b"certificate"),
        "AAV9-SMA",
        "certificate-of-analysis",
        lot="L-0100",
    )
    docs.revise(
        "DOC-000001",
        write(tmp_path, "br2.pdf", b"batch record v2"),
        "QA review",
        meta={"reviewed": "yes"},
    )
    docs.revise(
        "DOC-000001",
        write(tmp_path, "br3.pdf", b"batch record v3"),
        "signature added",
        title="Batch record L-0042 (signed)",
    )
    docs.withdraw("DOC-000003", "superseded by rev 4")


def everything(vault: Vault) -> dict[str, object]:
    """Every query answer the catalog gives for a populated vault."""
    docs = Documents(vault)
    listed = docs.ls(Filters())
    answers: dict[str, object] = {
        "ls": listed,
        "program": docs.ls(Filters(program="CART-19")),
        "type": docs.ls(Filters(type="sop")),
        "lot": docs.ls(Filters(lot="L-0042")),
        "combined": docs.ls(Filters(program="AAV9-SMA", lot="L-0100")),
        "next": Documents(vault).catalog.next_seq(),
        "latest": Documents(vault).catalog.latest_map(),
        "dump": list(Documents(vault).catalog.dump()),
    }
    for doc in listed:
        history = docs.history(doc.id)
        answers[f"history {doc.id}"] = history
        for v in history:
            answers[f"as-of {doc.id} {v.version}"] = docs.show(doc.id, as_of=v.recorded_at)
            answers[f"ls as-of {v.recorded_at}"] = docs.ls(Filters(), as_of=v.recorded_at)
    return answers


def test_add_revise_withdraw_show_history(vault: Vault, tmp_path: Path) -> None:
    populate(vault, tmp_path)
    docs = Documents(vault)

    latest = docs.show("DOC-000001")
    assert (latest.version, latest.action, latest.reason) == (3, "revise", "signature added")
    assert latest.title == "Batch record L-0042 (signed)"
    assert latest.meta == {"site": "PHL", "reviewed": "yes"}
    assert latest.lot == "L-0042" and latest.program == "CART-19"
    assert docs.show("DOC-000001", version=1).title == "Batch record L-0042"
    history = docs.history("DOC-000001")
    assert [(v.version, v.action, v.user) for v in history] == [
        (1, "add", "qa.tester"),
        (2, "revise", "qa.tester"),
        (3, "revise", "qa.tester"),
    ]
    assert len({v.commit for v in history}) == 3
    assert [v.recorded_at for v in history] == sorted(v.recorded_at for v in history)

    withdrawn = docs.show("DOC-000003")
    assert (withdrawn.version, withdrawn.status, withdrawn.reason) == (
        2,
        "withdrawn",
        "superseded by rev 4",
    )
    assert withdrawn.sha256 == docs.show("DOC-000003", version=1).sha256
    with pytest.raises(VaultError, match="withdrawn"):
        docs.revise("DOC-000003", write(tmp_path, "x.pdf", b"new"), "try again")
    with pytest.raises(NothingChanged):
        docs.revise("DOC-000002", tmp_path / "dev.pdf", "same bytes")
    with pytest.raises(NotFound, match="no version 4"):
        docs.show("DOC-000001", version=4)
    with pytest.raises(NotFound, match="DOC-000099"):
        docs.show("DOC-000099")


def test_as_of_answers_from_history(vault: Vault, tmp_path: Path) -> None:
    populate(vault, tmp_path)
    docs = Documents(vault)
    v1, v2, v3 = docs.history("DOC-000001")

    assert docs.show("DOC-000001", as_of=v1.recorded_at).version == 1
    assert docs.show("DOC-000001", as_of=v2.recorded_at).version == 2
    assert docs.show("DOC-000001", as_of=v3.recorded_at).version == 3
    with pytest.raises(NotFound, match="did not exist yet"):
        docs.show("DOC-000001", as_of="2000-01-01T00:00:00.000000+00:00")

    then = docs.ls(Filters(), as_of=v1.recorded_at)
    assert [(d.id, d.version) for d in then] == [("DOC-000001", 1)]
    before_withdrawal = docs.ls(Filters(), as_of=v3.recorded_at)
    assert {d.id: d.status for d in before_withdrawal}["DOC-000003"] == "active"


def test_ls_filters(vault: Vault, tmp_path: Path) -> None:
    populate(vault, tmp_path)
    docs = Documents(vault)

    def ids(filters: Filters) -> list[str]:
        return [d.id for d in docs.ls(filters)]

    assert ids(Filters()) == ["DOC-000001", "DOC-000002", "DOC-000003", "DOC-000004"]
    assert [d.version for d in docs.ls(Filters())] == [3, 1, 2, 1]
    assert ids(Filters(program="CART-19")) == ["DOC-000001", "DOC-000002"]
    assert ids(Filters(program="AAV9-SMA")) == ["DOC-000003", "DOC-000004"]
    assert ids(Filters(type="sop")) == ["DOC-000003"]
    assert ids(Filters(lot="L-0042")) == ["DOC-000001", "DOC-000002"]
    assert ids(Filters(program="CART-19", type="batch-record", lot="L-0042")) == ["DOC-000001"]
    assert ids(Filters(program="CART-19", lot="L-0100")) == []


def test_next_ids_are_sequential_and_never_reused(vault: Vault, tmp_path: Path) -> None:
    docs = Documents(vault)
    assert Documents(vault).catalog.next_seq() == 1
    added = [
        docs.add(write(tmp_path, f"{n}.txt", f"doc {n}".encode()), "CART-19", "sop").id
        for n in range(3)
    ]
    assert added == ["DOC-000001", "DOC-000002", "DOC-000003"]
    docs.withdraw("DOC-000003", "obsolete")
    docs.revise("DOC-000001", write(tmp_path, "r.txt", b"revised"), "fix")
    assert Documents(vault).catalog.next_seq() == 4
    assert docs.add(write(tmp_path, "4.txt", b"doc 4"), "CART-19", "sop").id == "DOC-000004"


def test_rebuild_gives_the_same_catalog_and_verify_is_clean(vault: Vault, tmp_path: Path) -> None:
    populate(vault, tmp_path)
    assert vault.verify() == []
    before = everything(vault)

    assert vault.rebuild() == 7
    assert everything(vault) == before
    assert vault.rebuild() == 7
    assert everything(vault) == before
    assert vault.verify() == []


def test_catalog_catches_up_with_commits_it_did_not_see(
    vault: Vault, tmp_path: Path, catalog_url: str | None
) -> None:
    populate(vault, tmp_path)
    seen = vault.store.head()
    vault.close()

    # Another writer on the same repository, whose catalog is elsewhere.
    side = settings_for(vault.path, f"sqlite:///{tmp_path / 'side.sqlite'}")
    with Vault.open(side, domains()) as other:
        Documents(other).add(write(tmp_path, "new.pdf", b"new document"), "CART-19", "sop")
        Documents(other).revise("DOC-000002", write(tmp_path, "dev2.pdf", b"dev v2"), "CAPA")
        Documents(other).withdraw("DOC-000004", "recalled")
        head = other.store.head()
    assert head != seen

    with Vault.open(settings_for(vault.path, catalog_url), domains()) as reopened:
        assert reopened.catalog.last_commit() == head
        listed = {d.id: (d.version, d.status) for d in Documents(reopened).ls(Filters())}
        assert listed == {
            "DOC-000001": (3, "active"),
            "DOC-000002": (2, "active"),
            "DOC-000003": (2, "withdrawn"),
            "DOC-000004": (2, "withdrawn"),
            "DOC-000005": (1, "active"),
        }
        assert Documents(reopened).show("DOC-000002").reason == "CAPA"
        assert Documents(reopened).catalog.next_seq() == 6
        assert reopened.verify() == []


def test_a_long_lived_vault_catches_up_before_it_writes(
    vault: Vault, tmp_path: Path, catalog_url: str | None
) -> None:
    populate(vault, tmp_path)
    with Vault.open(settings_for(vault.path, catalog_url), domains()) as other:
        Documents(other).add(write(tmp_path, "o.pdf", b"from the other"), "CART-19", "sop")
    # `vault` has its catalog open and has not seen DOC-000005 being written.
    added = Documents(vault).add(write(tmp_path, "m.pdf", b"from this one"), "CART-19", "sop")
    assert added.id == "DOC-000006"
    assert [d.id for d in Documents(vault).ls(Filters(type="sop"))] == [
        "DOC-000003",
        "DOC-000005",
        "DOC-000006",
    ]
    assert vault.verify() == []


def test_the_same_repository_answers_the_same_on_sqlite(
    vault: Vault, tmp_path: Path, catalog_url: str | None
) -> None:
    populate(vault, tmp_path)
    here = everything(vault)
    vault.close()

    sqlite = settings_for(vault.path, f"sqlite:///{tmp_path / 'reference.sqlite'}")
    with Vault.open(sqlite, domains()) as reference:
        there = everything(reference)

    assert there.keys() == here.keys()
    for key in here:
        assert there[key] == here[key], key


def test_separate_vaults_on_each_catalog_answer_alike(
    vault: Vault, tmp_path: Path, catalog_url: str | None
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    populate(vault, files)
    with Vault.create(settings_for(tmp_path / "reference", None), domains()) as reference:
        populate(reference, files)
        mine, theirs = everything(vault), everything(reference)

    def comparable(value: object) -> object:
        """Drop what differs between two vaults by nature: commits and times."""
        if isinstance(value, DocumentVersion):
            return dataclasses.replace(value, commit="", recorded_at="")
        if isinstance(value, list):
            return [comparable(v) for v in value]
        return value

    stable = [k for k in mine if not k.startswith(("ls as-of", "as-of"))]
    assert sorted(stable) == sorted(k for k in theirs if not k.startswith(("ls as-of", "as-of")))
    for key in stable:
        assert comparable(mine[key]) == comparable(theirs[key]), key


def test_a_catalog_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    """A PostgreSQL URL naming no database is refused in one line, password hidden."""
    import sqlalchemy as sa

    from tests.conftest import PG_URL, run

    if not PG_URL:
        pytest.skip("ATMPVAULT_TEST_PG_URL is not set")

    url = sa.engine.make_url(PG_URL).set(database="atmpvault_no_such_db", password="s3cret")
    vault = tmp_path / "vault"
    assert run(vault, "init").exit_code == 0
    result = run(vault, "ls", env={"ATMPVAULT_CATALOG_URL": url.render_as_string(False)})
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr
    assert result.stderr.startswith("atmpvault: cannot open the catalog at postgresql+psycopg://")
    assert "atmpvault_no_such_db" in result.stderr and len(result.stderr.splitlines()) == 1


def test_ls_on_a_current_catalog_imports_no_other_workflows_tables(tmp_path: Path) -> None:
    """Opening a catalog made for this schema reads each workflow's schema version from
    its descriptor: `ls` imports the document tables it queries, and no others (neither
    a workflow's nor the core's record and audit tables)."""
    import subprocess
    import sys

    from tests.conftest import cli_env

    path = tmp_path / "vault"
    with Vault.create(settings_for(path, None), domains()) as v:
        populate(v, tmp_path)
    code = (
        "import sys; from atmpvault.cli import main\n"
        f"sys.argv = ['atmpvault', '--vault', {str(path)!r}, 'ls']\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.endswith('tables')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=cli_env(), check=True)  # fmt: skip
    assert "DOC-000001" in done.stdout
    loaded = done.stdout.splitlines()[-1]
    assert "'atmpvault.archive.documents.tables'" in loaded
    assert "regulatory" not in loaded and "record_tables" not in loaded, loaded


def test_a_workflow_with_tables_must_declare_their_schema() -> None:
    from atmpvault.archive.core.domain import Domain, check

    with pytest.raises(ValueError, match="has tables but no schema version"):
        check((Domain(name="probe", tables="atmpvault.archive.documents.tables"),))
