"""The CLI on a PostgreSQL catalog, found the ways a team finds it: the vault's settings file
and ATMPVAULT_CATALOG_URL. Import's duplicate lookup, the listing and log filters, and a
whole regulatory flow (records, audit trail, milestones) answer there as on SQLite.

Every test runs on both catalogs (the `catalog_url` fixture); `catalog_vault` is a vault
made through the CLI whose settings file names its catalog.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from atmpvault.archive.core.pdf import make_pdf
from tests.conftest import postgres_database, run

ARGS = ("--program", "CART-19", "--type", "batch-record")
IND, BLA = "IND-012345", "BLA-125123"


def ok(vault: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = run(vault, *args, env=env)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return json.loads(result.stdout) if "--json" in args else result.stdout


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def catalog_of(vault: Path, url: str | None) -> str:
    return url or f"sqlite:///{vault / 'catalog.sqlite'}"


def dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every catalog table, sorted, nothing excluded."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            return {
                t: sorted(conn.execute(sa.text(f'SELECT * FROM "{t}"')).all(), key=repr)
                for t in tables
            }
    finally:
        engine.dispose()


def assert_catalog_is_where_the_settings_say(vault: Path, url: str | None) -> None:
    """A PostgreSQL vault keeps no SQLite catalog of its own, and its database is filled."""
    assert (vault / "catalog.sqlite").exists() is (url is None)
    assert dump(catalog_of(vault, url))["versions"]


# -- where the catalog is ------------------------------------------------------------------


def test_settings_file_and_environment_name_the_catalog(
    catalog_vault: Path, catalog_url: str | None, tmp_path: Path
) -> None:
    """A vault's settings file names its catalog; ATMPVAULT_CATALOG_URL overrides it."""
    ok(catalog_vault, "add", str(write(tmp_path / "br.txt", "batch record L-0042")), *ARGS)
    assert_catalog_is_where_the_settings_say(catalog_vault, catalog_url)
    listed = ok(catalog_vault, "ls", "--json")
    assert [(d["id"], d["filename"]) for d in listed] == [("DOC-000001", "br.txt")]

    if catalog_url is None:
        return
    # Another catalog by environment: it catches up from the repository, and only it is
    # written; the one the settings file names is left as it was.
    before = dump(catalog_url)
    with postgres_database() as other:
        env = {"ATMPVAULT_CATALOG_URL": other}
        assert ok(catalog_vault, "ls", "--json", env=env) == listed
        ok(catalog_vault, "add", str(write(tmp_path / "sop.txt", "thaw SOP")), *ARGS, env=env)
        assert [d["id"] for d in ok(catalog_vault, "ls", "--json", env=env)] == [
            "DOC-000001",
            "DOC-000002",
        ]
        assert len(dump(other)["versions"]) == 2
        assert dump(catalog_url) == before
    # Back on the settings file's catalog, the write made elsewhere is caught up.
    assert [d["id"] for d in ok(catalog_vault, "ls", "--json")] == ["DOC-000001", "DOC-000002"]
    assert not (catalog_vault / "catalog.sqlite").exists()
    assert run(catalog_vault, "verify").exit_code == 0


# -- import's duplicate lookup -------------------------------------------------------------


def test_import_duplicate_lookup(
    catalog_vault: Path, catalog_url: str | None, tmp_path: Path
) -> None:
    root = tmp_path / "scans"
    write(root / "BR-0042.txt", "executed batch record L-0042")
    copy = write(root / "sub" / "BR-0042 (1).txt", "executed batch record L-0042")
    write(root / "BR-0043.txt", "executed batch record L-0043")

    first = run(catalog_vault, "import", str(root), *ARGS, "--json")
    assert first.exit_code == 1, first.stderr
    summary = json.loads(first.stdout)
    assert summary["imported"] == 2
    ids = {Path(d["path"]).name: d["id"] for d in summary["documents"]}
    assert [r["path"] for r in summary["refused"]] == [str(copy)]
    assert (
        f"identical bytes are already archived as {ids['BR-0042.txt']} v1"
        in (summary["refused"][0]["error"])
    )

    # Run again: the files archived are found by their bytes and name, and skipped.
    again = json.loads(run(catalog_vault, "import", str(root), *ARGS, "--json").stdout)
    assert (again["imported"], again["skipped"]) == (0, 2)
    allowed = ok(catalog_vault, "import", str(root), *ARGS, "--allow-duplicate", "--json")
    assert (allowed["imported"], allowed["skipped"]) == (1, 2)
    (doc,) = allowed["documents"]
    shown = ok(catalog_vault, "show", doc["id"], "--json")
    assert (shown["duplicate_of"], shown["source_path"]) == (
        ids["BR-0042.txt"],
        "sub/BR-0042 (1).txt",
    )
    # A file archived by `add` is found by import as well.
    single = write(tmp_path / "single" / "BR-0044.txt", "executed batch record L-0044")
    ok(catalog_vault, "add", str(single), *ARGS)
    resumed = ok(catalog_vault, "import", str(single.parent), *ARGS, "--json")
    assert (resumed["imported"], resumed["skipped"]) == (0, 1)
    assert len(ok(catalog_vault, "ls", "--json")) == 4
    assert_catalog_is_where_the_settings_say(catalog_vault, catalog_url)


# -- filters -------------------------------------------------------------------------------


def test_listing_and_log_filters(
    catalog_vault: Path, catalog_url: str | None, tmp_path: Path
) -> None:
    v = catalog_vault

    def add(name: str, program: str, kind: str, *extra: str) -> str:
        path = write(tmp_path / "in" / name, f"{name} contents")
        added = ok(v, "add", str(path), "--program", program, "--type", kind, *extra, "--json")
        return str(added["id"])

    br = add("br.txt", "CART-19", "batch-record", "--lot", "L-0042")
    dev = add("dev.txt", "CART-19", "deviation-package", "--lot", "L-0042")
    sop = add("sop.txt", "AAV9-SMA", "sop")
    first = ok(v, "show", br, "--json")["recorded_at"]
    ok(v, "add", str(write(tmp_path / "br2.txt", "br v2")), "--id", br, "--reason", "QA review")
    ok(v, "withdraw", sop, "--reason", "superseded")

    def ids(*args: str) -> list[str]:
        return [d["id"] for d in ok(v, "ls", *args, "--json")]

    assert ids() == [br, dev, sop]
    assert ids("--program", "CART-19") == [br, dev]
    assert ids("--type", "sop") == [sop]
    assert ids("--lot", "L-0042") == [br, dev]
    assert ids("--program", "AAV9-SMA", "--lot", "L-0042") == []
    as_of = ok(v, "ls", "--as-of", first, "--json")
    assert [(d["id"], d["version"]) for d in as_of] == [(br, 1)]
    assert ok(v, "ls", "--as-of", "2000-01-01", "--json") == []
    assert {d["id"]: d["status"] for d in ok(v, "ls", "--json")}[sop] == "withdrawn"

    log = ok(v, "log", "--json")
    assert [e["action"] for e in log] == ["init", "add", "add", "add", "revise", "withdraw"]
    assert [e["version"] for e in ok(v, "log", "--id", br, "--json")] == [1, 2]
    assert [e["action"] for e in ok(v, "log", "--doc", sop, "--json")] == ["add", "withdraw"]
    assert len(ok(v, "log", "--kind", "document", "--json")) == 5
    assert ok(v, "log", "--user", "someone.else", "--json") == []
    assert len(ok(v, "log", "--user", "qa.tester", "--json")) == 6
    # --since and --until at the exact time of a write include it.
    assert [e["doc"] for e in ok(v, "log", "--since", first, "--json")][0] == br
    assert [e["action"] for e in ok(v, "log", "--until", first, "--json")] == ["init", "add"]
    later = (datetime.fromisoformat(log[-1]["time"]) + timedelta(days=2)).date().isoformat()
    assert ok(v, "log", "--since", later, "--json") == []
    assert_catalog_is_where_the_settings_say(v, catalog_url)


# -- a whole regulatory flow ---------------------------------------------------------------


def test_regulatory_flow_records_audit_and_milestones(
    catalog_vault: Path, catalog_url: str | None, tmp_path: Path
) -> None:
    v = catalog_vault
    spec = write(tmp_path / "spec.pdf", make_pdf([["Drug product specification"]], title="Spec"))
    ok(v, "add", str(spec), "--program", "CART-19", "--type", "report", "--json")
    ok(v, "app", "new", "ind", "012345", "--program", "CART-19", "--json")
    ok(v, "event", "add", IND, "ind-received", "--on", "2026-01-05", "--json")
    ok(v, "app", "new", "bla", "125123", "--program", "CART-19", "--json")
    ok(v, "event", "correct", "EV-000001", "--on", "2026-01-06", "--reason", "FDA date")
    ok(v, "event", "add", BLA, "bla-received", "--on", "2026-02-01", "--review", "standard",
       "--json")  # fmt: skip
    ok(v, "package", "new", BLA, "--sequence", "0001", "--type", "pas", "--json")
    ok(v, "package", "add", BLA, "0001", "DOC-000001", "--section", "m3/32p", "--json")
    done = ok(v, "package", "finalise", BLA, "0001", "--submitted", "2026-03-02", "--json")
    assert done["calendar_event"] == "EV-000003"
    ok(v, "lists", "set", "regulatory-leadership", "ra@example.com", "--reason", "RA")
    ok(v, "alerts", "--send", "--today", "2026-01-10")

    calendar = ok(v, "calendar", "--json", "--app", IND, "--today", "2026-01-10")
    effective = [m for m in calendar if m["rule"] == "IND_EFFECTIVE"]
    assert [(m["due"], m["days_left"], m["event"]) for m in effective] == [
        ("2026-02-05", 26, "EV-000001")
    ]
    shown = ok(v, "app", "show", IND, "--json", "--today", "2026-01-10")
    assert [(e["id"], e["on"], e["version"]) for e in shown["events"]] == [
        ("EV-000001", "2026-01-06", 2)
    ]
    package = ok(v, "package", "show", BLA, "0001", "--json")
    assert (package["status"], package["calendar_event"]) == ("submitted", "EV-000003")
    events = ok(v, "log", "--kind", "event", "--json")
    assert [(e["action"], e["id"], e["version"]) for e in events] == [
        ("event-add", "EV-000001", 1),
        ("event-correct", "EV-000001", 2),
        ("event-add", "EV-000002", 1),
        ("package-finalise", f"{BLA}/0001", 3),  # the commit names the package first
    ]
    assert ok(v, "log", "--id", "EV-000003", "--json")[-1]["action"] == "package-finalise"
    assert [e["id"] for e in ok(v, "log", "--kind", "application", "--json")] == [IND, BLA]
    assert [e["action"] for e in ok(v, "log", "--kind", "notice", "--json")] == ["notice"]
    assert run(v, "verify").exit_code == 0

    incremental = dump(catalog_of(v, catalog_url))
    for table in ("records", "audit", "audit_items", "milestones"):
        assert incremental[table], table
    ok(v, "rebuild")
    assert dump(catalog_of(v, catalog_url)) == incremental
    assert run(v, "verify").exit_code == 0
    if catalog_url is None:
        return
    # A fresh PostgreSQL database catches up from nothing to the same rows.
    with postgres_database() as fresh:
        ok(v, "ls", env={"ATMPVAULT_CATALOG_URL": fresh})
        assert dump(fresh) == incremental
    assert ok(v, "calendar", "--json", "--app", IND, "--today", "2026-01-10") == calendar


@pytest.mark.parametrize("catalog_url", ["postgresql"], indirect=True)
def test_verify_names_a_changed_milestone_row_on_postgresql(
    catalog_vault: Path, catalog_url: str
) -> None:
    ok(catalog_vault, "app", "new", "ind", "012345", "--program", "CART-19", "--json")
    ok(catalog_vault, "event", "add", IND, "ind-received", "--on", "2026-01-05", "--json")
    engine = sa.create_engine(catalog_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(
                sa.text("UPDATE milestones SET due = '2027-01-01' WHERE rule = 'IND_EFFECTIVE'")
            )
            assert changed.rowcount == 1
            conn.execute(sa.text("UPDATE audit SET actor = 'mallory' WHERE action = 'event-add'"))
    finally:
        engine.dispose()
    result = run(catalog_vault, "verify", "--json")
    assert result.exit_code == 3
    problems = json.loads(result.stdout)["problems"]
    assert any(f"catalog milestones row {IND} IND_EFFECTIVE EV-000001" in p for p in problems)
    assert any("actor is 'mallory'" in p for p in problems), problems
    ok(catalog_vault, "rebuild")
    assert run(catalog_vault, "verify").exit_code == 0
