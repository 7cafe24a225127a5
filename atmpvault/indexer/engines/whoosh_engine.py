"""The Whoosh search engine (whoosh-reloaded): the only module that imports whoosh.

Same layout as the tantivy engine: one document per version keyed `id@version`, keyword
fields lowercased whole, a `latest` flag on the newest version of each id, tags as
lowercased `field=value` tokens in one `tags` field (indexed only; the pairs as given are
stored as JSON in `tags_json`). Whoosh cannot
delete a document added by the writer that is still open, so versions put since the
last commit are buffered and written in one writer session at commit.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import whoosh.index
from whoosh import fields, query, sorting
from whoosh.analysis import (
    IDAnalyzer,
    LowercaseFilter,
    RegexTokenizer,
    StopFilter,
)

from atmpvault.indexer import query as q
from atmpvault.indexer.engines import EngineHit, EngineResult, filter_terms
from atmpvault.indexer.index import DOCUMENT, IndexDoc, SearchFilters

FACETS = ("program", "type")
_WORDS = (
    RegexTokenizer(r"[^\W_]+")
    | LowercaseFilter()
    | StopFilter(stoplist=frozenset(), minsize=1, maxsize=q.MAX_TOKEN_CHARS - 1, renumber=False)
)
# Tag tokens are joined with a unit separator and split on it again: one term each.
_TAGS = RegexTokenizer(r"[^\x1f]+") | LowercaseFilter()


def _schema() -> fields.Schema:
    keyword = IDAnalyzer(lowercase=True)
    return fields.Schema(
        key=fields.ID(stored=True, unique=True),
        uid=fields.ID(stored=True),
        id=fields.ID(analyzer=keyword),
        version=fields.NUMERIC(numtype=int, bits=64, stored=True),
        latest=fields.ID(),
        program=fields.ID(stored=True, analyzer=keyword),
        type=fields.ID(stored=True, analyzer=keyword),
        program_f=fields.ID(sortable=True),
        type_f=fields.ID(sortable=True),
        lot=fields.ID(stored=True, analyzer=keyword),
        status=fields.ID(stored=True, analyzer=keyword),
        kind=fields.ID(stored=True, analyzer=keyword),
        tags=fields.TEXT(analyzer=_TAGS, phrase=False),
        tags_json=fields.STORED(),
        recorded_at=fields.STORED(),
        recorded_ts=fields.NUMERIC(numtype=int, bits=64, signed=True),
        title=fields.TEXT(stored=True, analyzer=_WORDS),
        text=fields.TEXT(stored=True, analyzer=_WORDS),
        filename=fields.TEXT(stored=True, analyzer=_WORDS),
        meta=fields.TEXT(analyzer=_WORDS),
        meta_json=fields.STORED(),
    )


def open_engine(directory: Path, *, create: bool) -> WhooshEngine:
    """Open the Whoosh index in `directory`, creating it when `create`."""
    return WhooshEngine(directory, create=create)


class WhooshEngine:
    """Document versions in a Whoosh index; see the module docstring for the layout."""

    def __init__(self, directory: Path, *, create: bool) -> None:
        self.directory = directory
        if create or not whoosh.index.exists_in(str(directory)):
            self.index = whoosh.index.create_in(str(directory), _schema())
        else:
            self.index = whoosh.index.open_dir(str(directory))
        self.searcher = self.index.searcher()
        self._pending: dict[str, dict[str, Any]] = {}
        self._replace: set[str] = set()

    # --- writing -------------------------------------------------------------------------

    def latest_version(self, doc_id: str) -> int | None:
        found = self.searcher.search(
            query.And([query.Term("uid", doc_id), query.Term("latest", "t")]), limit=1
        )
        return int(found[0]["version"]) if len(found) else None

    def has(self, doc_id: str, version: int) -> bool:
        return self.searcher.document_number(key=f"{doc_id}@{version}") is not None

    def fetch(self, doc_id: str, version: int) -> IndexDoc | None:
        stored = self.searcher.document(key=f"{doc_id}@{version}")
        return None if stored is None else _to_index_doc(stored, tags=True)

    def put(self, doc: IndexDoc, *, latest: bool, replace: bool) -> None:
        key = f"{doc.id}@{doc.version}"
        if replace:
            self._replace.add(key)
        record: dict[str, Any] = {
            "key": key,
            "uid": doc.id,
            "id": doc.id,
            "version": doc.version,
            "latest": "t" if latest else "f",
            "program": doc.program,
            "type": doc.type,
            "program_f": doc.program,
            "type_f": doc.type,
            "status": doc.status,
            "kind": doc.kind,
            "recorded_at": doc.recorded_at,
            "recorded_ts": q.to_micros(datetime.fromisoformat(doc.recorded_at)),
            "text": doc.text,
            "filename": doc.filename,
            "meta": "\n".join(f"{k} {v}" for k, v in doc.meta.items()),
            "meta_json": json.dumps(doc.meta, sort_keys=True),
        }
        for name, value in (("lot", doc.lot), ("title", doc.title)):
            if value is not None:
                record[name] = value
        if doc.tags:
            tokens = sorted({q.tag_token(name, value) for name, value in doc.tags})
            record[q.TAGS] = "\x1f".join(tokens)
            record["tags_json"] = json.dumps([list(tag) for tag in doc.tags])
        self._pending.pop(key, None)  # keep insertion order = order of the last put
        self._pending[key] = record

    def commit(self) -> None:
        if self._pending or self._replace:
            writer = self.index.writer()
            try:
                for key in self._replace:
                    writer.delete_by_term("key", key)
                for record in self._pending.values():
                    writer.add_document(**record)
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
        self._pending.clear()
        self._replace.clear()
        self._refresh()

    def rollback(self) -> None:
        self._pending.clear()
        self._replace.clear()

    def _refresh(self) -> None:
        self.searcher.close()
        self.searcher = self.index.searcher()

    def reset(self) -> None:
        self.rollback()
        self.searcher.close()
        self.index = whoosh.index.create_in(str(self.directory), _schema())
        self.searcher = self.index.searcher()

    def release(self) -> None:
        """Nothing to let go: a writer (and its lock) lives only inside `commit`."""
        self.rollback()

    def close(self) -> None:
        self.rollback()
        self.searcher.close()

    # --- reading -------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.searcher.doc_count())

    def entries(self) -> set[tuple[str, int]]:
        out: set[tuple[str, int]] = set()
        for stored in self.searcher.all_stored_fields():
            out.add((stored["uid"], int(stored["version"])))
        return out

    def search(
        self, node: q.Node, filters: SearchFilters, limit: int, facets: bool
    ) -> EngineResult:
        main = self._query(node)
        flt = self._filters(filters)
        kwargs: dict[str, Any] = {"limit": max(limit, 1)}
        if flt:
            kwargs["filter"] = query.And(flt) if len(flt) > 1 else flt[0]
        if facets:
            kwargs["groupedby"] = {
                f: sorting.FieldFacet(f"{f}_f", maptype=sorting.Count) for f in FACETS
            }
        results = self.searcher.search(main, **kwargs)
        hits = [
            EngineHit(_to_index_doc(r.fields(), tags=False), float(r.score or 0.0)) for r in results
        ]
        counts: dict[str, dict[str, int]] | None = None
        if facets:
            counts = {
                f: {str(k): int(v) for k, v in results.groups(f).items() if k is not None}
                for f in FACETS
            }
        return EngineResult(total=len(results), hits=hits[:limit], facets=counts)

    def _filters(self, filters: SearchFilters) -> list[query.Query]:
        out: list[query.Query] = []
        if not filters.all_versions:
            out.append(query.Term("latest", "t"))
        for name, values in filter_terms(filters):
            terms = [query.Term(name, value) for value in values]
            out.append(terms[0] if len(terms) == 1 else query.Or(terms))
        span = q.filter_range(filters.since, filters.until)
        if span is not None:
            out.append(_range(span))
        return out

    def _query(self, node: q.Node) -> query.Query:
        if isinstance(node, q.MatchAll):
            return query.Every()
        if isinstance(node, q.And):
            positive = [self._query(c) for c in node.children if not isinstance(c, q.Not)]
            negative = [self._query(c.child) for c in node.children if isinstance(c, q.Not)]
            base = query.And(positive) if len(positive) > 1 else (positive or [query.Every()])[0]
            if not negative:
                return base
            excluded = query.Or(negative) if len(negative) > 1 else negative[0]
            return query.AndNot(base, excluded)
        if isinstance(node, q.Or):
            return query.Or([self._query(c) for c in node.children])
        if isinstance(node, q.Not):
            return query.AndNot(query.Every(), self._query(node.child))
        if isinstance(node, q.DateRange):
            return _range(node)
        return self._leaf(node)

    def _leaf(self, node: q.Term | q.Phrase | q.Prefix | q.Fuzzy) -> query.Query:
        name = node.field
        if name in q.KEYWORD_FIELDS or name == q.TAGS:
            value = q.keyword(node.text)
            if isinstance(node, q.Prefix):
                return query.Prefix(name, value)
            if isinstance(node, q.Fuzzy):
                # A tag's `field=` stays fixed so an edit never reaches another field's tags.
                fixed = value.index(q.TAG_SEPARATOR) + 1 if name == q.TAGS else 0
                return query.FuzzyTerm(name, value, maxdist=node.distance, prefixlength=fixed)
            return query.Term(name, value)
        words = [t.text for t in _WORDS(node.text)]
        if not words:
            return query.NullQuery
        if isinstance(node, q.Prefix):
            parts: list[query.Query] = [query.Term(name, w) for w in words[:-1]]
            parts.append(query.Prefix(name, words[-1]))
            return parts[0] if len(parts) == 1 else query.And(parts)
        if isinstance(node, q.Fuzzy):
            fuzzy = [query.FuzzyTerm(name, w, maxdist=node.distance, prefixlength=0) for w in words]
            return fuzzy[0] if len(fuzzy) == 1 else query.And(fuzzy)
        if len(words) == 1:
            return query.Term(name, words[0])
        slop = node.slop if isinstance(node, q.Phrase) else 0
        return query.Phrase(name, words, slop=slop + 1)  # Whoosh's slop 1 = adjacent


def _range(span: q.DateRange) -> query.Query:
    return query.NumericRange("recorded_ts", span.start, span.end, endexcl=span.end is not None)


def _to_index_doc(stored: dict[str, Any], *, tags: bool) -> IndexDoc:
    return IndexDoc(
        id=stored["uid"],
        version=int(stored["version"]),
        program=stored.get("program", ""),
        type=stored.get("type", ""),
        lot=stored.get("lot"),
        title=stored.get("title"),
        text=stored.get("text", ""),
        filename=stored.get("filename", ""),
        recorded_at=stored.get("recorded_at", ""),
        status=stored.get("status", ""),
        meta=json.loads(stored.get("meta_json") or "{}"),
        kind=stored.get("kind") or DOCUMENT,
        tags=tuple((str(k), str(v)) for k, v in json.loads(stored.get("tags_json") or "[]"))
        if tags
        else (),
    )
