"""A team's shared PostgreSQL catalog is never rebuilt under colleagues: a workstation of
another release refuses it, plain `rebuild` is refused, `rebuild --shared` is deliberate."""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL, postgres_database, run


def shared_workstation(tmp_path: Path, name: str) -> tuple[Path, Path, Path]:
    """A new shared upstream, a workstation cloned from it, and a document to add."""
    upstream = tmp_path / "shared.git"
    assert run(None, "init-shared", str(upstream)).exit_code == 0
    vault = tmp_path / name
    assert run(None, "clone", str(upstream), str(vault)).exit_code == 0
    doc = tmp_path / "br.txt"
    doc.write_text("batch record L-0042")
    return upstream, vault, doc


def on_shared_catalog(vault: Path, catalog: str, upstream: Path) -> None:
    (vault / "settings.json").write_text(
        json.dumps({"catalog_url": catalog, "upstream": str(upstream)})
    )


def test_a_shared_catalog_of_another_schema_is_refused_not_rebuilt(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("ATMPVAULT_TEST_PG_URL is not set")
    upstream, vault, doc = shared_workstation(tmp_path, "ws")
    with postgres_database() as catalog:
        on_shared_catalog(vault, catalog, upstream)
        added = run(vault, "add", str(doc), "--program", "CART-19", "--type", "batch-record")
        assert added.exit_code == 0, added.stderr

        refused = run(vault, "rebuild")
        assert refused.exit_code == 1
        assert "'atmpvault rebuild --shared' rebuilds it for everyone" in refused.stderr
        assert run(vault, "rebuild", "--index").exit_code == 0

        engine = sa.create_engine(catalog)
        try:
            with engine.begin() as conn:  # a colleague's newer release made it
                conn.execute(sa.text("UPDATE catalog_state SET value = 'core:99' "
                                     "WHERE key = 'schema'"))  # fmt: skip
            opened = run(vault, "ls", "--json")
            assert opened.exit_code == 1
            assert "the shared catalog at" in opened.stderr
            assert "was made for schema core:99" in opened.stderr
            assert "upgrade atmpvault here" in opened.stderr
            with engine.connect() as conn:  # left as the colleague made it
                assert conn.execute(sa.text("SELECT count(*) FROM versions")).scalar_one() == 1
                kept = conn.execute(
                    sa.text("SELECT value FROM catalog_state WHERE key = 'schema'")
                ).scalar_one()
                assert kept == "core:99"

            rebuilt = run(vault, "rebuild", "--shared")
            assert rebuilt.exit_code == 0, rebuilt.stderr
            assert len(json.loads(run(vault, "ls", "--json").stdout)) == 1
        finally:
            engine.dispose()


def test_a_workstation_cloned_onto_the_shared_catalog_does_not_rebuild_it(
    tmp_path: Path,
) -> None:
    if not PG_URL:
        pytest.skip("ATMPVAULT_TEST_PG_URL is not set")
    upstream, first, doc = shared_workstation(tmp_path, "ws1")
    with postgres_database() as catalog:
        on_shared_catalog(first, catalog, upstream)
        assert run(first, "rebuild", "--shared").exit_code == 0
        assert run(first, "add", str(doc), "--program", "CART-19", "--type", "sop").exit_code == 0
        engine = sa.create_engine(catalog)
        try:
            with engine.connect() as conn:
                audit_before = conn.execute(sa.text("SELECT count(*) FROM audit")).scalar_one()
            second = tmp_path / "ws2"
            cloned = run(None, "clone", str(upstream), str(second),
                         env={"ATMPVAULT_CATALOG_URL": catalog})  # fmt: skip
            assert cloned.exit_code == 0, cloned.stderr
            with engine.connect() as conn:  # caught up, not emptied and made again
                assert conn.execute(sa.text("SELECT count(*) FROM audit")).scalar_one() == (
                    audit_before
                )
            listed = run(
                second, "search", "batch", "--json", env={"ATMPVAULT_CATALOG_URL": catalog}
            )
            assert json.loads(listed.stdout)["total"] == 1  # its own index, built
        finally:
            engine.dispose()


def first_write(url: str, head: str, start: Any, failures: Any, delay: float) -> None:
    """One workstation's first write onto a new shared catalog (in its own process)."""
    from atmpvault.archive.core.catalog import Catalog

    start.wait()
    time.sleep(delay)  # some find the tables made and their state not yet recorded
    try:
        catalog = Catalog(url, shared=True)
        try:
            catalog.apply([], head, expected=None)
        finally:
            catalog.close()
    except Exception as exc:  # noqa: BLE001 - reported to the test
        failures.put(f"{head}: {exc}")


def test_workstations_opening_a_new_shared_catalog_at_once_all_open_it(tmp_path: Path) -> None:
    """The first writes of a team race to create the catalog and move it to their commit:
    every one opens it, one first commit is applied, none sees a duplicate key."""
    if not PG_URL:
        pytest.skip("ATMPVAULT_TEST_PG_URL is not set")
    from atmpvault.archive.core.catalog import Catalog

    processes = multiprocessing.get_context("fork")
    heads = [f"commit-{i}" for i in range(6)]
    for _round in range(5):
        with postgres_database() as url:
            start, failures = processes.Barrier(len(heads)), processes.Queue()
            writers = [
                processes.Process(target=first_write, args=(url, head, start, failures, i * 0.01))
                for i, head in enumerate(heads)
            ]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join(60)
            assert [w.exitcode for w in writers] == [0] * len(heads)
            found = []
            while not failures.empty():
                found.append(failures.get())
            assert found == []
            catalog = Catalog(url, shared=True)
            try:
                assert catalog.last_commit() in heads
            finally:
                catalog.close()


def test_a_catalog_made_before_the_seeded_state_row_gets_it_on_open(tmp_path: Path) -> None:
    """A new catalog made by the release before had no last_commit row until its first
    apply, so two first writes could both insert it; opening it now adds the row."""
    from atmpvault.archive.core.catalog import Catalog

    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    Catalog(url).close()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM catalog_state WHERE key = 'last_commit'"))
        catalog = Catalog(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT key, value FROM catalog_state")).all()
            assert dict(rows) == {"schema": catalog.schema, "last_commit": ""}
            assert catalog.last_commit() is None
            catalog.apply([], "commit-1", expected=None)
            assert catalog.last_commit() == "commit-1"
        finally:
            catalog.close()
    finally:
        engine.dispose()
