"""The index contract: every query form, filter and lifecycle rule, run against both engines."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atmpvault.errors import InvalidInput
from atmpvault.indexer.index import (
    SCHEMA_VERSION,
    Index,
    IndexDoc,
    QueryError,
    SearchFilters,
    read_state,
)

ENGINES = ["tantivy", "whoosh"]
TAG_FIELDS = ("app", "sequence")


def doc(
    doc_id: str,
    version: int = 1,
    *,
    text: str = "",
    title: str | None = None,
    program: str = "CART-19",
    type: str = "batch-record",
    lot: str | None = None,
    recorded_at: str = "2026-03-01T10:00:00.000000+00:00",
    status: str = "current",
    meta: dict[str, str] | None = None,
    kind: str = "document",
    tags: tuple[tuple[str, str], ...] = (),
    filename: str = "record.pdf",
) -> IndexDoc:
    return IndexDoc(
        id=doc_id,
        version=version,
        program=program,
        type=type,
        lot=lot,
        title=title,
        text=text,
        filename=filename,
        recorded_at=recorded_at,
        status=status,
        meta=meta or {},
        kind=kind,
        tags=tags,
    )


def in_sequences(app: str, *sequences: str) -> tuple[tuple[str, str], ...]:
    """The tags the regulatory workflow gives a version in these sequences of `app`."""
    tags = [("app", app)]
    for seq in sequences:
        tags += [("sequence", f"{app}/{seq}"), ("sequence", seq)]
    return tuple(tags)


CORPUS = [
    doc(
        "DOC-000042",
        text="Batch record for lot C19-2026-001. Cell viability 93% after thaw. Sterility passed.",
        title="Batch record C19-2026-001",
        lot="C19-2026-001",
        recorded_at="2026-01-15T09:00:00.000000+00:00",
        meta={"site": "Leiden", "operator": "op-17"},
        tags=in_sequences("BLA-125999", "0001"),
        filename="batch-record-C19-2026-001.pdf",
    ),
    doc(
        "DOC-000043",
        text="Deviation: temperature excursion during shipment. Root cause courier delay.",
        title="Deviation report",
        type="deviation",
        lot="C19-2026-002",
        recorded_at="2026-04-20T12:30:00.000000+00:00",
        status="closed",
        filename="deviation-DEV-0007.pdf",
    ),
    doc(
        "DOC-000044",
        text="Certificate of analysis: vector copy number within specification.",
        title="Certificate of analysis",
        program="AAV-HEMO",
        type="certificate",
        lot="H-2026-010",
        recorded_at="2026-07-02T08:00:00.000000+00:00",
        tags=in_sequences("BLA-125999", "0002", "0003"),
        filename="coa.pdf",
    ),
    doc(
        "DOC-000045",
        text="Stability protocol: viability measured monthly; potency assay at release.",
        title="Stability protocol",
        program="AAV-HEMO",
        type="protocol",
        recorded_at="2026-05-05T15:00:00.000000+00:00",
        tags=in_sequences("IND-20001"),
        filename="stability.docx",
    ),
]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def index(tmp_path: Path, engine: str) -> Iterator[Index]:
    with Index.open(tmp_path / "index", engine=engine, tag_fields=TAG_FIELDS) as idx:
        idx.add(CORPUS)
        idx.commit("c0ffee")
        yield idx


def ids(index: Index, query: str, **filters: object) -> set[str]:
    result = index.search(query, SearchFilters(**filters), limit=50)  # type: ignore[arg-type]
    assert result.total == len(result.hits)
    return {hit.id for hit in result.hits}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("viability", {"DOC-000042", "DOC-000045"}),
        ("VIABILITY", {"DOC-000042", "DOC-000045"}),
        ("viability thaw", {"DOC-000042"}),  # default operator is AND
        ("viability AND potency", {"DOC-000045"}),
        ("sterility OR courier", {"DOC-000042", "DOC-000043"}),
        ("viability NOT thaw", {"DOC-000045"}),
        ("NOT viability", {"DOC-000043", "DOC-000044"}),
        ("(sterility OR potency) AND viability", {"DOC-000042", "DOC-000045"}),
        ('"temperature excursion"', {"DOC-000043"}),
        ('"excursion temperature"', set()),
        ('"record for lot"', {"DOC-000042"}),
        ("viab*", {"DOC-000042", "DOC-000045"}),
        ("stabil*", {"DOC-000045"}),
        ("viabilty~", {"DOC-000042", "DOC-000045"}),  # one edit
        ("vyabiliti~2", {"DOC-000042", "DOC-000045"}),  # two edits
        ("vyabiliti~", set()),
        ("id:DOC-000042", {"DOC-000042"}),
        ("id:doc-000042", {"DOC-000042"}),
        ("DOC-000043", {"DOC-000043"}),
        ("program:CART-19", {"DOC-000042", "DOC-000043"}),
        ("program:CART-1", set()),  # keyword fields match whole values
        ("program:CART*", {"DOC-000042", "DOC-000043"}),
        ("type:deviation", {"DOC-000043"}),
        ("lot:C19-2026-001", {"DOC-000042"}),
        ("lot:C19-2026*", {"DOC-000042", "DOC-000043"}),
        ("C19-2026-001", {"DOC-000042"}),
        ("title:certificate", {"DOC-000044"}),
        ('title:"deviation report"', {"DOC-000043"}),
        ("text:certificate", {"DOC-000044"}),
        ("title:stability AND text:potency", {"DOC-000045"}),
        ("filename:docx", {"DOC-000045"}),
        ("filename:DEV-0007", {"DOC-000043"}),
        ("status:closed", {"DOC-000043"}),
        ("meta:leiden", {"DOC-000042"}),
        ("program:(CART-19 OR AAV-HEMO) AND potency", {"DOC-000045"}),
        ("recorded_at:[2026-01-01 TO 2026-04-20]", {"DOC-000042", "DOC-000043"}),
        ("recorded_at:{2026-01-15 TO 2026-05-05}", {"DOC-000043"}),
        ("recorded_at:[2026-05-01 TO *]", {"DOC-000044", "DOC-000045"}),
        ("recorded_at:2026-07-02", {"DOC-000044"}),
        ("viability AND recorded_at:[* TO 2026-02-01]", {"DOC-000042"}),
        ("", {"DOC-000042", "DOC-000043", "DOC-000044", "DOC-000045"}),
        ("and", set()),  # lowercase operators are plain words
        # Tag fields, as named to Index.open: whole values, case-insensitive.
        ("app:BLA-125999", {"DOC-000042", "DOC-000044"}),
        ("APP:bla-125999", {"DOC-000042", "DOC-000044"}),
        ("app:BLA-12599", set()),
        ("app:BLA*", {"DOC-000042", "DOC-000044"}),
        ("app:BLA-125990~", {"DOC-000042", "DOC-000044"}),
        ('app:"IND-20001"', {"DOC-000045"}),
        ("sequence:0003", {"DOC-000044"}),
        ("sequence:BLA-125999/0002", {"DOC-000044"}),
        ("sequence:(0001 OR 0003)", {"DOC-000042", "DOC-000044"}),
        ("app:BLA-125999 NOT sequence:0001", {"DOC-000044"}),
        ("app:BLA-125999 viability", {"DOC-000042"}),
        ("app:0001", set()),  # a value of another tag field
        ("app:0001~", set()),
        ("sequence:0001~", {"DOC-000042", "DOC-000044"}),  # 0002 and 0003 are one edit away
        ("kind:document", {"DOC-000042", "DOC-000043", "DOC-000044", "DOC-000045"}),
        ("kind:DOCUMENT AND type:deviation", {"DOC-000043"}),
        ("kind:event", set()),
    ],
)
def test_query_forms(index: Index, query: str, expected: set[str]) -> None:
    assert ids(index, query) == expected


@pytest.mark.parametrize(
    "query",
    [
        '"unclosed',
        "title:",
        "AND",
        "(a OR",
        "a OR",
        "NOT",
        "a )",
        "()",
        "nosuchfield:x",
        "title:[a TO b]",
        "recorded_at:[2026-13-01 TO 2026-12-31]",
        "recorded_at:[2026-01-01 2026-12-31]",
        "recorded_at:[2026-01-01 TO",
        "via*lity",
        "viability~3",
        '""',
        "sequences:0001",
        "tags:app",
    ],
)
def test_malformed_queries_raise_query_error(index: Index, query: str) -> None:
    with pytest.raises(QueryError):
        index.search(query)


def test_unknown_field_error_names_the_tag_fields(index: Index) -> None:
    with pytest.raises(QueryError) as caught:
        index.search("nosuchfield:x")
    message = str(caught.value)
    assert "'nosuchfield'" in message
    for name in ("app", "sequence", "kind", "program", "title", "recorded_at"):
        assert name in message


def test_tag_fields_are_only_those_named(tmp_path: Path, engine: str) -> None:
    with Index.open(tmp_path / "ix", engine=engine) as idx:
        idx.add(CORPUS)
        idx.commit("c1")
        with pytest.raises(QueryError) as caught:
            idx.search("app:BLA-125999")
        assert "app" not in str(caught.value).partition("fields are:")[2]
        # Tags are still filters whether or not they are query fields.
        assert ids(idx, "", tags=(("app", "BLA-125999"),)) == {"DOC-000042", "DOC-000044"}
    with Index.open(tmp_path / "ix", engine=engine, tag_fields=["App"]) as idx:
        assert ids(idx, "app:IND-20001") == {"DOC-000045"}


@pytest.mark.parametrize("names", [("lot",), ("kind",), ("bad-name",), ("",), ("app", "seq2")])
def test_bad_tag_fields_are_refused(tmp_path: Path, names: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInput):
        Index.open(tmp_path / "ix", tag_fields=names)


def test_a_tag_field_must_be_a_name(tmp_path: Path, engine: str) -> None:
    with Index.open(tmp_path / "ix", engine=engine) as idx:
        with pytest.raises(ValueError, match="DOC-1 v1"):
            idx.add([doc("DOC-1", tags=(("app=x", "y"),))])
        with pytest.raises(QueryError):
            idx.search("", SearchFilters(tags=(("a b", "c"),)))


def test_query_error_is_bad_input() -> None:
    from atmpvault.errors import InvalidInput

    assert issubclass(QueryError, InvalidInput)
    assert QueryError("x").exit_code == 2


def test_filters(index: Index) -> None:
    assert ids(index, "", program="aav-hemo") == {"DOC-000044", "DOC-000045"}
    assert ids(index, "viability", program="AAV-HEMO") == {"DOC-000045"}
    assert ids(index, "", type="deviation") == {"DOC-000043"}
    assert ids(index, "", lot="C19-2026-001") == {"DOC-000042"}
    assert ids(index, "", kinds=("document",)) == {d.id for d in CORPUS}
    assert ids(index, "", kinds=("event",)) == set()
    assert ids(index, "", since="2026-04-20") == {"DOC-000043", "DOC-000044", "DOC-000045"}
    assert ids(index, "", until="2026-04-20") == {"DOC-000042", "DOC-000043"}
    assert ids(index, "", since="2026-02-01", until="2026-06-30") == {"DOC-000043", "DOC-000045"}
    with pytest.raises(QueryError):
        index.search("", SearchFilters(since="yesterday"))


def test_tag_filters(index: Index) -> None:
    def tagged(*tags: tuple[str, str]) -> set[str]:
        return ids(index, "", tags=tags)

    assert tagged(("app", "BLA-125999")) == {"DOC-000042", "DOC-000044"}
    assert tagged(("APP", "bla-125999")) == {"DOC-000042", "DOC-000044"}  # case-insensitive
    assert tagged(("app", "BLA-12599")) == set()  # whole values only
    assert tagged(("sequence", "0003")) == {"DOC-000044"}
    assert tagged(("sequence", "BLA-125999/0001")) == {"DOC-000042"}
    # Several pairs must all match; a field may repeat.
    assert tagged(("app", "BLA-125999"), ("sequence", "0002")) == {"DOC-000044"}
    assert tagged(("sequence", "0002"), ("sequence", "0003")) == {"DOC-000044"}
    assert tagged(("sequence", "0001"), ("sequence", "0003")) == set()
    assert tagged(("app", "IND-20001"), ("sequence", "0001")) == set()
    # A value of one field does not match another field.
    assert tagged(("app", "0001")) == set()
    assert tagged(("lot", "C19-2026-001")) == set()
    assert ids(index, "viability", tags=(("app", "BLA-125999"),)) == {"DOC-000042"}
    result = index.search("", SearchFilters(tags=(("app", "BLA-125999"),)), facets=True)
    assert result.facets is not None
    assert result.facets["program"] == {"CART-19": 1, "AAV-HEMO": 1}


EVENTS = [
    doc(
        "EV-000001",
        1,
        kind="event",
        type="ind-safety-report",
        title="IND safety report due",
        text="Serious adverse event: cytokine release syndrome grade 3; viability unaffected.",
        status="open",
        filename="",
        tags=(("app", "IND-20001"),),
    ),
    doc(
        "EV-000002",
        1,
        kind="milestone",
        type="annual-report",
        program="AAV-HEMO",
        title="Annual report",
        text="Annual report to the IND due within 60 days of the anniversary.",
        status="open",
        filename="",
        tags=(("app", "IND-20001"),),
    ),
]


def test_records_are_hits_of_their_kind(index: Index) -> None:
    index.add(EVENTS)
    index.commit("c1")
    everything = {d.id for d in CORPUS} | {"EV-000001", "EV-000002"}
    assert ids(index, "") == everything
    assert ids(index, "", kinds=("event",)) == {"EV-000001"}
    assert ids(index, "", kinds=("EVENT", "milestone")) == {"EV-000001", "EV-000002"}
    assert ids(index, "", kinds=("document", "event")) == everything - {"EV-000002"}
    assert ids(index, "viability", kinds=("event",)) == {"EV-000001"}
    assert ids(index, "kind:event OR kind:milestone") == {"EV-000001", "EV-000002"}
    assert ids(index, "NOT kind:document") == {"EV-000001", "EV-000002"}
    assert ids(index, "app:IND-20001", kinds=("document",)) == {"DOC-000045"}
    assert ids(index, "", tags=(("app", "IND-20001"),), kinds=("event", "milestone")) == {
        "EV-000001",
        "EV-000002",
    }
    [hit] = index.search("cytokine").hits
    assert (hit.id, hit.kind, hit.type, hit.status) == (
        "EV-000001",
        "event",
        "ind-safety-report",
        "open",
    )
    assert {h.kind for h in index.search("viability").hits} == {"document", "event"}
    # The latest version per id, as for documents.
    index.add([dataclasses.replace(EVENTS[0], version=2, status="closed", text="closed")])
    index.commit("c2")
    assert ids(index, "cytokine") == set()
    assert [(h.id, h.version) for h in index.search("kind:event").hits] == [("EV-000001", 2)]
    assert ids(index, "cytokine", all_versions=True) == {"EV-000001"}
    facets = index.search("", facets=True).facets
    assert facets is not None
    assert facets["program"] == {"CART-19": 3, "AAV-HEMO": 3}
    assert facets["type"]["ind-safety-report"] == 1


def test_fetch_returns_tags_and_kind(index: Index) -> None:
    fetched = index.fetch("DOC-000044", 1)
    assert fetched == CORPUS[2]
    assert fetched is not None and fetched.tags == in_sequences("BLA-125999", "0002", "0003")
    assert index.fetch("DOC-000043", 1) == CORPUS[1]  # no tags
    assert index.fetch("DOC-000044", 2) is None
    index.add(EVENTS[:1])
    assert index.fetch("EV-000001", 1) is None  # not committed yet
    index.commit("c1")
    assert index.fetch("EV-000001", 1) == EVENTS[0]


def test_reput_with_new_tags_replaces_the_old(index: Index) -> None:
    fetched = index.fetch("DOC-000045", 1)
    assert fetched is not None
    index.add([dataclasses.replace(fetched, tags=in_sequences("BLA-125999", "0004"))])
    index.commit("c1")
    assert index.count() == len(CORPUS)
    assert ids(index, "app:IND-20001") == set()
    assert ids(index, "", tags=(("app", "IND-20001"),)) == set()
    assert ids(index, "sequence:0004") == {"DOC-000045"}
    assert ids(index, "", tags=(("app", "BLA-125999"),)) == {
        "DOC-000042",
        "DOC-000044",
        "DOC-000045",
    }
    assert index.fetch("DOC-000045", 1) == dataclasses.replace(
        CORPUS[3], tags=in_sequences("BLA-125999", "0004")
    )
    index.add([dataclasses.replace(CORPUS[3], tags=())])
    index.commit("c2")
    assert ids(index, "sequence:0004") == set()
    assert ids(index, "stability") == {"DOC-000045"}


def test_superseded_versions_keep_their_tags(tmp_path: Path, engine: str) -> None:
    """A new version re-puts the previous one (latest=false) from what fetch returns."""
    path = tmp_path / "ix"
    first = doc("DOC-1", 1, text="draft", tags=in_sequences("IND-1", "0001"))
    with Index.open(path, engine=engine, tag_fields=TAG_FIELDS) as idx:
        idx.add([first])
        idx.commit("c1")
    with Index.open(path, engine=engine, tag_fields=TAG_FIELDS) as idx:
        idx.add([doc("DOC-1", 2, text="final", tags=in_sequences("IND-1", "0002"))])
        idx.commit("c2")
        assert ids(idx, "sequence:0001") == set()
        assert ids(idx, "sequence:0001", all_versions=True) == {"DOC-1"}
        assert ids(idx, "", tags=(("sequence", "0002"),)) == {"DOC-1"}
        assert idx.fetch("DOC-1", 1) == first


def test_latest_only_unless_all_versions(tmp_path: Path, engine: str) -> None:
    with Index.open(tmp_path / "ix", engine=engine) as idx:
        idx.add([doc("DOC-1", 1, text="draft alpha"), doc("DOC-2", 1, text="alpha other")])
        idx.commit("c1")
        idx.add([doc("DOC-1", 2, text="approved alpha", status="current")])
        idx.commit("c2")
        assert ids(idx, "alpha") == {"DOC-1", "DOC-2"}
        result = idx.search("alpha", SearchFilters(all_versions=True))
        assert sorted((h.id, h.version) for h in result.hits) == [
            ("DOC-1", 1),
            ("DOC-1", 2),
            ("DOC-2", 1),
        ]
        assert ids(idx, "draft") == set()
        assert ids(idx, "draft", all_versions=True) == {"DOC-1"}
        [hit] = idx.search("approved").hits
        assert (hit.id, hit.version) == ("DOC-1", 2)

        # Several versions in one batch, out of order, and a late lower version.
        idx.add([doc("DOC-3", 3, text="third"), doc("DOC-3", 1, text="first")])
        idx.add([doc("DOC-3", 2, text="second"), doc("DOC-1", 3, text="newest alpha")])
        idx.commit("c3")
        assert ids(idx, "third") == {"DOC-3"}
        assert ids(idx, "first OR second") == set()
        assert ids(idx, "approved") == set()
        assert [h.version for h in idx.search("id:DOC-1").hits] == [3]
        assert idx.count() == 7
        assert idx.entries() == {
            ("DOC-1", 1),
            ("DOC-1", 2),
            ("DOC-1", 3),
            ("DOC-2", 1),
            ("DOC-3", 1),
            ("DOC-3", 2),
            ("DOC-3", 3),
        }


def test_readding_a_version_replaces_it(tmp_path: Path, engine: str) -> None:
    with Index.open(tmp_path / "ix", engine=engine) as idx:
        idx.add([doc("DOC-1", 1, text="old words"), doc("DOC-1", 2, text="current words")])
        idx.commit("c1")
        idx.add([doc("DOC-1", 2, text="current words"), doc("DOC-1", 1, text="old words")])
        idx.add([doc("DOC-1", 2, text="current words")])
        idx.commit("c1")  # a replay of the same commits
        assert idx.count() == 2
        assert ids(idx, "words") == {"DOC-1"}
        assert len(idx.search("words", SearchFilters(all_versions=True)).hits) == 2


def test_facets_count_all_matches(index: Index) -> None:
    result = index.search("", limit=1, facets=True)
    assert result.total == 4
    assert len(result.hits) == 1
    assert result.facets == {
        "program": {"CART-19": 2, "AAV-HEMO": 2},
        "type": {"batch-record": 1, "deviation": 1, "certificate": 1, "protocol": 1},
    }
    filtered = index.search("viability", facets=True)
    assert filtered.facets == {
        "program": {"CART-19": 1, "AAV-HEMO": 1},
        "type": {"batch-record": 1, "protocol": 1},
    }
    assert index.search("viability").facets is None


def test_hits_and_highlighted_snippets(index: Index) -> None:
    [hit] = index.search("thaw").hits
    assert hit.id == "DOC-000042"
    assert hit.version == 1
    assert hit.title == "Batch record C19-2026-001"
    assert hit.program == "CART-19"
    assert hit.type == "batch-record"
    assert hit.lot == "C19-2026-001"
    assert hit.status == "current"
    assert hit.recorded_at == "2026-01-15T09:00:00.000000+00:00"
    assert hit.kind == "document"
    assert hit.score > 0
    assert "«thaw»" in hit.snippet
    assert "«viab" in index.search("viab*").hits[0].snippet
    fuzzy = index.search("potensy~").hits[0].snippet
    assert "«potency»" in fuzzy
    phrase = index.search('"temperature excursion"').hits[0].snippet
    assert "«temperature» «excursion»" in phrase
    # Words only excluded by NOT are not highlighted; a keyword-only query gets a plain lead.
    assert "«" not in index.search("program:CART-19 NOT courier").hits[0].snippet


def test_snippet_is_short_excerpt_around_match(tmp_path: Path, engine: str) -> None:
    long_text = " ".join(["filler"] * 500) + " the needle is here " + " ".join(["more"] * 500)
    with Index.open(tmp_path / "ix", engine=engine) as idx:
        idx.add([doc("DOC-1", text=long_text)])
        idx.commit("c1")
        snippet = idx.search("needle").hits[0].snippet
    assert "«needle»" in snippet
    assert len(snippet) < 260
    assert snippet.startswith("…") and snippet.endswith("…")


def test_ranking_and_limit(index: Index) -> None:
    result = index.search("viability", limit=1)
    assert result.total == 2
    assert len(result.hits) == 1
    scores = [h.score for h in index.search("viability OR courier").hits]
    assert scores == sorted(scores, reverse=True)


def test_reopen_keeps_documents_and_last_commit(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "ix"
    with Index.open(path, engine=engine) as idx:
        assert idx.last_commit() is None
        idx.add(CORPUS)
        idx.commit("abc123")
        idx.add([doc("DOC-9", text="never committed")])
    with Index.open(path, engine=engine) as idx:
        assert idx.last_commit() == "abc123"
        assert idx.count() == len(CORPUS)
        assert ids(idx, "viability") == {"DOC-000042", "DOC-000045"}
        assert ids(idx, "committed") == set()
        # The latest flags survive reopening: a new version still supersedes.
        idx.add([doc("DOC-000045", 2, text="revised protocol")])
        idx.commit("abc124")
        assert ids(idx, "viability") == {"DOC-000042"}
    state = read_state(path)
    assert state is not None
    assert state["last_commit"] == "abc124"
    assert state["engine"] == engine
    assert state["doc_count"] == len(CORPUS) + 1


def test_switching_engine_starts_empty(tmp_path: Path, engine: str) -> None:
    other = "whoosh" if engine == "tantivy" else "tantivy"
    path = tmp_path / "ix"
    with Index.open(path, engine=other) as idx:
        idx.add(CORPUS)
        idx.commit("c1")
    with Index.open(path, engine=engine) as idx:
        assert idx.last_commit() is None
        assert idx.count() == 0
    state = read_state(path)
    assert state is not None
    assert (state["engine"], state["last_commit"]) == (engine, None)


def test_discarded_says_why(tmp_path: Path, engine: str) -> None:
    other = "whoosh" if engine == "tantivy" else "tantivy"
    path = tmp_path / "ix"
    with Index.open(path, engine=engine) as idx:
        assert idx.discarded is None  # a new index: nothing to discard
        idx.add(CORPUS)
        idx.commit("c1")
    with Index.open(path, engine=engine) as idx:
        assert idx.discarded is None
        assert idx.count() == len(CORPUS)
    with Index.open(path, engine=other) as idx:
        assert idx.discarded == f"index engine {engine} is not {other}"
        assert idx.count() == 0
    with Index.open(path, engine=other) as idx:
        assert idx.discarded is None  # said once, by the open that discarded


@pytest.mark.parametrize("old_schema", [1, None])
def test_data_of_another_schema_is_discarded(
    tmp_path: Path, engine: str, old_schema: int | None
) -> None:
    path = tmp_path / "ix"
    with Index.open(path, engine=engine) as idx:
        idx.add(CORPUS)
        idx.commit("c1")
    state = json.loads((path / "STATE.json").read_text())
    assert state["schema"] == SCHEMA_VERSION == 2
    if old_schema is None:
        del state["schema"]  # schema 1 wrote none
    else:
        state["schema"] = old_schema
    (path / "STATE.json").write_text(json.dumps(state))
    # A stale state does not make the index current: read_state has nothing to offer.
    assert read_state(path) is None
    with Index.open(path, engine=engine) as idx:
        assert idx.discarded == "index schema 1 is not 2"
        assert idx.last_commit() is None
        assert idx.count() == 0
        assert idx.entries() == set()
        assert idx.search("viability").total == 0
        idx.add(CORPUS[:1])
        idx.commit("c2")
    state = read_state(path)
    assert state is not None
    assert (state["schema"], state["last_commit"], state["doc_count"]) == (2, "c2", 1)
    with Index.open(path, engine=engine) as idx:
        assert idx.discarded is None
        assert idx.entries() == {("DOC-000042", 1)}


def test_data_without_state_is_discarded(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "ix"
    with Index.open(path, engine=engine) as idx:
        idx.add(CORPUS)
        idx.commit("c1")
    (path / "STATE.json").unlink()  # as if creation was interrupted before it was written
    with Index.open(path, engine=engine) as idx:
        assert idx.discarded is not None and "STATE.json" in idx.discarded
        assert (idx.count(), idx.last_commit()) == (0, None)


def test_read_state_imports_no_engine(tmp_path: Path, engine: str) -> None:
    path = tmp_path / "ix"
    with Index.open(path, engine=engine) as idx:
        idx.add(CORPUS[:2])
        idx.commit("feed01")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from atmpvault.indexer.index import read_state\n"
        f"state = read_state(Path({str(path)!r}))\n"
        "assert state['last_commit'] == 'feed01', state\n"
        "assert state['doc_count'] == 2, state\n"
        "heavy = {'tantivy', 'whoosh', 'pypdf', 'pypdfium2'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    assert read_state(tmp_path / "missing") is None


def test_reset_and_entries(index: Index) -> None:
    assert index.entries() == {(d.id, d.version) for d in CORPUS}
    assert index.count() == 4
    index.reset()
    assert index.count() == 0
    assert index.entries() == set()
    assert index.last_commit() is None
    assert index.search("viability").total == 0
    index.add(CORPUS[:1])
    index.commit("c9")
    assert index.entries() == {("DOC-000042", 1)}


def test_uncommitted_additions_are_invisible_then_visible(tmp_path: Path, engine: str) -> None:
    with Index.open(tmp_path / "ix", engine=engine) as idx:
        idx.add(CORPUS)
        assert idx.search("viability").total == 0
        idx.commit("c1")
        assert idx.search("viability").total == 2


def test_unknown_engine(tmp_path: Path) -> None:
    from atmpvault.errors import InvalidInput

    with pytest.raises(InvalidInput):
        Index.open(tmp_path / "ix", engine="lucene")


def test_tantivy_lists_entries_past_its_aggregation_limit(tmp_path: Path) -> None:
    """tantivy refuses a terms aggregation of more than 65,000 buckets; verify lists
    every entry of larger indexes in parts. A small limit exercises the same path."""
    with Index.open(tmp_path / "index", "tantivy") as index:
        docs = [
            IndexDoc(
                id=f"DOC-{n:06d}",
                version=v,
                program="CART-19",
                type="batch-record",
                lot=None,
                title=None,
                text=f"record {n}",
                filename="br.pdf",
                recorded_at="2026-03-01T10:00:00.000000+00:00",
                status="active",
                meta={},
            )
            for n in range(1, 121)
            for v in (1, 2)
        ]
        index.add(docs)
        index.commit("c" * 40)
        expected = {(d.id, d.version) for d in docs}
        assert index._engine.entries(bucket_limit=7) == expected
        assert index.entries() == expected
