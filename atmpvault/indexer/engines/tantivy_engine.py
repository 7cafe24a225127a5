"""The tantivy search engine (tantivy-py): the only module that imports tantivy.

Keyword fields (id, program, type, lot, status, kind) use a raw, lowercasing tokenizer
so codes like CART-19 and DOC-000042 match whole; program and type are also fast fields
(kept in their original case) for facet counts. Tags are one multi-valued keyword field,
`tags`, holding a lowercased `field=value` token per tag (indexed only), with the pairs
as given stored as JSON in `tags_json` for fetch. Each version is one document keyed
`id@version`; the latest version of each id carries latest=true, and a superseded
version is deleted by key and re-added with latest=false.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import tantivy

from atmpvault.heap import bound_heap
from atmpvault.indexer import query as q
from atmpvault.indexer.engines import EngineHit, EngineResult, filter_terms
from atmpvault.indexer.index import DOCUMENT, IndexDoc, SearchFilters

KW = "kw"  # raw + lowercase, registered on every open (tokenizers are not persisted)
STORED_KEYWORDS = ("id", "program", "type", "lot", "status", "kind", "recorded_at")
FACETS = ("program", "type")
BUCKET_LIMIT = 60_000  # tantivy aborts a terms aggregation past 65,000 buckets
_ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"  # what document ids are made of
HEAP_BYTES = 64_000_000  # the writer's indexing budget; import peak memory is a target (<= 400 MB)


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("key", stored=False, tokenizer_name="raw", fast=True)
    sb.add_text_field("uid", stored=False, tokenizer_name="raw")
    for name in STORED_KEYWORDS:
        sb.add_text_field(name, stored=True, tokenizer_name=KW, fast=name in FACETS)
    sb.add_text_field(q.TAGS, stored=False, tokenizer_name=KW)
    sb.add_bytes_field("tags_json", stored=True)
    sb.add_integer_field("version", stored=True, indexed=True, fast=True)
    sb.add_boolean_field("latest", indexed=True, fast=True)
    sb.add_integer_field("recorded_ts", indexed=True, fast=True)
    sb.add_text_field("title", stored=True)
    sb.add_text_field("text", stored=True)
    sb.add_text_field("filename", stored=True)
    sb.add_text_field("meta", stored=False)
    sb.add_bytes_field("meta_json", stored=True)
    return sb.build()


def open_engine(directory: Path, *, create: bool) -> TantivyEngine:
    """Open the tantivy index in `directory`, creating it when `create`."""
    return TantivyEngine(directory, create=create)


class TantivyEngine:
    """Document versions in a tantivy index; see the module docstring for the layout."""

    def __init__(self, directory: Path, *, create: bool) -> None:
        if create or not tantivy.Index.exists(str(directory)):
            self.index = tantivy.Index(_schema(), path=str(directory), reuse=False)
        else:
            self.index = tantivy.Index.open(str(directory))
        self.index.register_tokenizer(
            KW,
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
            .filter(tantivy.Filter.lowercase())
            .build(),
        )
        # Fast (columnar) values keep their case so facets read "CART-19", not "cart-19".
        self.index.register_fast_field_tokenizer(
            KW, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).build()
        )
        self.schema = self.index.schema
        self.analyzer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(q.MAX_TOKEN_CHARS))
            .filter(tantivy.Filter.lowercase())
            .build()
        )
        self._writer: tantivy.IndexWriter | None = None
        self._dirty = False
        self.index.reload()
        self.searcher = self.index.searcher()

    # --- writing -------------------------------------------------------------------------

    def _w(self) -> tantivy.IndexWriter:
        if self._writer is None:
            bound_heap()  # before the writer's threads start allocating
            self._writer = self.index.writer(heap_size=HEAP_BYTES)
        return self._writer

    def latest_version(self, doc_id: str) -> int | None:
        if self.searcher.doc_freq("uid", doc_id) == 0:
            return None
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "uid", doc_id)),
                (tantivy.Occur.Must, tantivy.Query.term_query(self.schema, "latest", True)),
            ]
        )
        hits = self.searcher.search(query, 1, count=False).hits
        if not hits:
            return None
        version = self.searcher.fast_field_values("version", [hits[0][1]])[0]
        return None if version is None else int(version)

    def has(self, doc_id: str, version: int) -> bool:
        return bool(self.searcher.doc_freq("key", f"{doc_id}@{version}"))

    def fetch(self, doc_id: str, version: int) -> IndexDoc | None:
        query = tantivy.Query.term_query(self.schema, "key", f"{doc_id}@{version}")
        hits = self.searcher.search(query, 1, count=False).hits
        return _to_index_doc(self.searcher.doc(hits[0][1]), tags=True) if hits else None

    def put(self, doc: IndexDoc, *, latest: bool, replace: bool) -> None:
        writer = self._w()
        key = f"{doc.id}@{doc.version}"
        if replace:
            writer.delete_documents_by_term("key", key)
        fields: dict[str, Any] = {
            "key": key,
            "uid": doc.id,
            "id": doc.id,
            "version": doc.version,
            "latest": latest,
            "program": doc.program,
            "type": doc.type,
            "status": doc.status,
            "kind": doc.kind,
            "recorded_at": doc.recorded_at,
            "recorded_ts": q.to_micros(datetime.fromisoformat(doc.recorded_at)),
            "text": doc.text,
            "filename": doc.filename,
            "meta": "\n".join(f"{k} {v}" for k, v in doc.meta.items()),
            "meta_json": json.dumps(doc.meta, sort_keys=True).encode(),
        }
        if doc.lot is not None:
            fields["lot"] = doc.lot
        if doc.title is not None:
            fields["title"] = doc.title
        if doc.tags:
            fields[q.TAGS] = sorted({q.tag_token(name, value) for name, value in doc.tags})
            fields["tags_json"] = json.dumps([list(tag) for tag in doc.tags]).encode()
        writer.add_document(tantivy.Document(**fields))
        self._dirty = True

    def commit(self) -> None:
        if self._writer is not None and self._dirty:
            self._writer.commit()
            self._dirty = False
        self._refresh()

    def rollback(self) -> None:
        if self._writer is not None and self._dirty:
            self._writer.rollback()
            self._dirty = False

    def _refresh(self) -> None:
        self.index.reload()
        self.searcher = self.index.searcher()

    def reset(self) -> None:
        writer = self._w()
        writer.delete_all_documents()
        writer.commit()
        self._dirty = False
        self._refresh()

    def release(self) -> None:
        """Let another process write: drop the writer (and its lock) once committed."""
        if self._writer is not None:
            self.rollback()
            self._writer.wait_merging_threads()  # releases the writer's lock
            self._writer = None

    def close(self) -> None:
        self.release()

    # --- reading -------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.searcher.num_docs)

    def entries(self, bucket_limit: int = BUCKET_LIMIT) -> set[tuple[str, int]]:
        """Every (id, version) indexed.

        A terms aggregation lists the keys, but tantivy refuses more than 65,000 buckets
        at once, so larger indexes are listed in parts: by the last characters of the
        document id (the character before '@'), split further while a part is too big.
        """
        n = self.searcher.num_docs
        return self._entries(tantivy.Query.all_query(), n, "", bucket_limit) if n else set()

    def _entries(
        self, query: tantivy.Query, n: int, suffix: str, limit: int
    ) -> set[tuple[str, int]]:
        out: set[tuple[str, int]] = set()
        if n <= limit:
            agg = self.searcher.aggregate(query, {"k": {"terms": {"field": "key", "size": n + 1}}})
            for bucket in agg["k"]["buckets"]:
                doc_id, _, version = str(bucket["key"]).rpartition("@")
                out.add((doc_id, int(version)))
            return out
        # Regexes match whole terms: ids ending in each character, and the id that is
        # exactly the suffix (it has no character left to split on).
        parts = [(c + suffix, f".*{re.escape(c + suffix)}@[0-9]+") for c in _ID_CHARS]
        parts.append((suffix, f"{re.escape(suffix)}@[0-9]+"))
        for part, pattern in parts:
            sub = tantivy.Query.regex_query(self.schema, "key", pattern)
            count = getattr(self.searcher.search(sub, 1, count=True), "count", None) or 0
            if count:
                out |= self._entries(sub, count, part, limit if part != suffix else count)
        return out

    def search(
        self, node: q.Node, filters: SearchFilters, limit: int, facets: bool
    ) -> EngineResult:
        clauses = [(tantivy.Occur.Must, self._query(node))]
        for flt in self._filters(filters):
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(flt, 0.0)))
        query = tantivy.Query.boolean_query(clauses)
        result = self.searcher.search(query, max(limit, 1), count=True)
        hits = [
            EngineHit(_to_index_doc(self.searcher.doc(address), tags=False), float(score))
            for score, address in result.hits[:limit]
        ]
        counts: dict[str, dict[str, int]] | None = None
        if facets:
            aggs = {f: {"terms": {"field": f, "size": 10_000}} for f in FACETS}
            raw = self.searcher.aggregate(query, aggs)
            counts = {
                f: {str(b["key"]): int(b["doc_count"]) for b in raw[f]["buckets"]} for f in FACETS
            }
        return EngineResult(
            total=int(getattr(result, "count", None) or 0), hits=hits, facets=counts
        )

    def _filters(self, filters: SearchFilters) -> list[tantivy.Query]:
        out: list[tantivy.Query] = []
        if not filters.all_versions:
            out.append(tantivy.Query.term_query(self.schema, "latest", True))
        for name, values in filter_terms(filters):
            if len(values) == 1:
                out.append(tantivy.Query.term_query(self.schema, name, values[0]))
            else:
                out.append(tantivy.Query.term_set_query(self.schema, name, list(values)))
        span = q.filter_range(filters.since, filters.until)
        if span is not None:
            out.append(self._range(span))
        return out

    def _range(self, span: q.DateRange) -> tantivy.Query:
        return tantivy.Query.range_query(
            self.schema,
            "recorded_ts",
            tantivy.FieldType.Integer,
            span.start,
            span.end,
            include_lower=True,
            include_upper=span.end is None,
        )

    def _query(self, node: q.Node) -> tantivy.Query:
        Q, Occur = tantivy.Query, tantivy.Occur
        if isinstance(node, q.MatchAll):
            return Q.all_query()
        if isinstance(node, q.And):
            positive = [c for c in node.children if not isinstance(c, q.Not)]
            negative = [c for c in node.children if isinstance(c, q.Not)]
            clauses = [(Occur.Must, self._query(c)) for c in positive] or [
                (Occur.Must, Q.all_query())
            ]
            clauses += [(Occur.MustNot, self._query(c.child)) for c in negative]
            return Q.boolean_query(clauses)
        if isinstance(node, q.Or):
            return Q.boolean_query([(Occur.Should, self._query(c)) for c in node.children])
        if isinstance(node, q.Not):
            return Q.boolean_query(
                [(Occur.Must, Q.all_query()), (Occur.MustNot, self._query(node.child))]
            )
        if isinstance(node, q.DateRange):
            return self._range(node)
        return self._leaf(node)

    def _prefix(self, name: str, prefix: str) -> tantivy.Query:
        """Terms starting with `prefix`, expanded from the term dictionary.

        Much faster than a regex query, whose automaton tantivy compiles on every search.
        """
        terms = [t for t, _ in self.searcher.terms_with_prefix(name, prefix)]
        if not terms:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, name, terms)

    def _fuzzy_tag(self, token: str, distance: int) -> tantivy.Query:
        """Tags of the token's field whose value is within `distance` edits of its value.

        Expanded from the term dictionary so an edit never crosses into another field's
        tokens (a fuzzy query on the whole `field=value` token could).
        """
        field, sep, value = token.partition(q.TAG_SEPARATOR)
        head = field + sep
        terms = [
            t
            for t, _ in self.searcher.terms_with_prefix(q.TAGS, head)
            if q.within(t[len(head) :], value, distance)
        ]
        if not terms:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, q.TAGS, terms)

    def _leaf(self, node: q.Term | q.Phrase | q.Prefix | q.Fuzzy) -> tantivy.Query:
        Q, Occur = tantivy.Query, tantivy.Occur
        name = node.field
        if name in q.KEYWORD_FIELDS or name == q.TAGS:
            value = q.keyword(node.text)
            if isinstance(node, q.Prefix):
                return self._prefix(name, value)
            if isinstance(node, q.Fuzzy):
                if name == q.TAGS:
                    return self._fuzzy_tag(value, node.distance)
                return Q.fuzzy_term_query(self.schema, name, value, node.distance, False)
            return Q.term_query(self.schema, name, value)
        words = self.analyzer.analyze(node.text)
        if not words:
            return Q.empty_query()
        if isinstance(node, q.Prefix):
            last = self._prefix(name, words[-1])
            if len(words) == 1:
                return last
            rest = [(Occur.Must, Q.term_query(self.schema, name, w)) for w in words[:-1]]
            return Q.boolean_query([*rest, (Occur.Must, last)])
        if isinstance(node, q.Fuzzy):
            fuzzy = [
                (Occur.Must, Q.fuzzy_term_query(self.schema, name, w, node.distance, False))
                for w in words
            ]
            return fuzzy[0][1] if len(fuzzy) == 1 else Q.boolean_query(fuzzy)
        if len(words) == 1:
            return Q.term_query(self.schema, name, words[0])
        slop = node.slop if isinstance(node, q.Phrase) else 0
        terms: list[str | tuple[int, str]] = list(words)
        return Q.phrase_query(self.schema, name, terms, slop)


def _to_index_doc(doc: tantivy.Document, *, tags: bool) -> IndexDoc:
    d = doc.to_dict()

    def first(name: str) -> Any:
        values = d.get(name)
        return values[0] if values else None

    meta_raw = first("meta_json")
    tags_raw = first("tags_json") if tags else None
    return IndexDoc(
        id=first("id"),
        version=int(first("version")),
        program=first("program") or "",
        type=first("type") or "",
        lot=first("lot"),
        title=first("title"),
        text=first("text") or "",
        filename=first("filename") or "",
        recorded_at=first("recorded_at") or "",
        status=first("status") or "",
        meta=json.loads(bytes(meta_raw)) if meta_raw else {},
        kind=first("kind") or DOCUMENT,
        tags=tuple((str(k), str(v)) for k, v in json.loads(bytes(tags_raw))) if tags_raw else (),
    )
