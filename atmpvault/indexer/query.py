"""The search query language, shared by every engine: parser, syntax tree, analysis, snippets.

Both engines translate the same tree, so a query means the same thing whichever engine
answers it. The grammar::

    query   := or
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*          juxtaposition means AND
    unary   := "NOT" unary | primary
    primary := "(" query ")" | [field ":"] (word | "phrase"[~N] | range | "(" query ")")
    word    := term | prefix* | fuzzy~ | fuzzy~1 | fuzzy~2
    range   := recorded_at:[FROM TO UNTIL]  ([ ] inclusive, { } exclusive, * open)

Operators are uppercase; lowercase and/or/not are ordinary words. Keyword fields (ids,
program codes, lots, statuses, kinds) match their whole value, case-insensitively; text
fields match words. Matched words are highlighted in snippets as «word» (snippets.py).

Tag fields are the names workflows tag documents and records with (app, sequence ...);
the index tells the parser which exist. `app:IND-012345` becomes a keyword leaf on the
one TAGS field with the token `app=ind-012345`, which is how both engines index a tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from atmpvault.errors import QueryError

KEYWORD_FIELDS = frozenset({"id", "program", "type", "lot", "status", "kind"})
TEXT_FIELDS = frozenset({"title", "text", "filename", "meta"})
DATE_FIELDS = frozenset({"recorded_at"})
FIELDS = KEYWORD_FIELDS | TEXT_FIELDS | DATE_FIELDS
# A bare word is looked for in these fields; ids, programs and lots match exactly.
DEFAULT_FIELDS = ("title", "text", "filename", "id", "program", "lot")
# The engines' one multi-valued keyword field holding every tag as a `field=value` token;
# query leaves on a tag field name it (see tag_token).
TAGS = "tags"
TAG_SEPARATOR = "="

MAX_TOKEN_CHARS = 40  # tantivy's default tokenizer drops longer tokens; both engines do

WORD = re.compile(r"[^\W_]+")  # a word as both engines and the snippets read it
_FIELD_NAME = re.compile(r"[A-Za-z_]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Term:
    field: str
    text: str


@dataclass(frozen=True)
class Phrase:
    field: str
    text: str
    slop: int = 0


@dataclass(frozen=True)
class Prefix:
    field: str
    text: str


@dataclass(frozen=True)
class Fuzzy:
    field: str
    text: str
    distance: int = 1


@dataclass(frozen=True)
class DateRange:
    """recorded_at from `start` (inclusive) to `end` (exclusive), in microseconds since 1970."""

    start: int | None
    end: int | None


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class MatchAll:
    pass


Node = Term | Phrase | Prefix | Fuzzy | DateRange | And | Or | Not | MatchAll


def analyze(text: str) -> list[str]:
    """The words of `text` as both engines index them: runs of letters and digits, lowercased."""
    return [w for w in WORD.findall(text.lower()) if len(w.encode()) < MAX_TOKEN_CHARS]


def keyword(value: str) -> str:
    """The indexed form of a keyword value (an id, a program code, a lot): lowercased."""
    return value.strip().lower()


def tag_field(name: str) -> str:
    """A tag field's name as indexed (lowercased); raises ValueError unless letters and _."""
    if not _FIELD_NAME.fullmatch(name):
        # The lexer reads a field name as letters and _, and '=' ends the field in a token.
        raise ValueError(f"a tag field is a name of letters and _, not {name!r}")
    return name.lower()


def tag_token(name: str, value: str) -> str:
    """The indexed form of the tag (name, value): `name=value`, lowercased."""
    return f"{tag_field(name)}{TAG_SEPARATOR}{keyword(value)}"


def within(a: str, b: str, limit: int) -> bool:
    """Whether the Levenshtein distance between a and b is at most `limit` (small limits)."""
    if a == b:
        return True
    if limit <= 0 or abs(len(a) - len(b)) > limit:
        return False
    i, n = 0, min(len(a), len(b))
    while i < n and a[i] == b[i]:
        i += 1
    # An optimal alignment edits at the first difference: substitute, delete or insert.
    a, b = a[i:], b[i:]
    return (
        within(a[1:], b[1:], limit - 1)
        or within(a[1:], b, limit - 1)
        or within(a, b[1:], limit - 1)
    )


def to_micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC, the indexed form of recorded_at."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_moment(text: str, *, end: bool, zone: tzinfo = UTC) -> int:
    """A date or ISO datetime as microseconds; a bare date at `end` means the end of that day.

    A date, or a time without an offset, is in `zone` (the vault's time zone).
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=zone)
            if end:
                following = day + timedelta(days=1)
                return to_micros(
                    datetime(following.year, following.month, following.day, tzinfo=zone)
                )
            return to_micros(start)
        moment = datetime.fromisoformat(text)
        micros = to_micros(moment if moment.tzinfo else moment.replace(tzinfo=zone))
        return micros + 1 if end else micros
    except (ValueError, OverflowError) as exc:
        raise QueryError(f"not a date: {text!r} (use YYYY-MM-DD or an ISO datetime)") from exc


# --- lexer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tok:
    kind: str  # WORD PHRASE FIELD RANGE LPAREN RPAREN AND OR NOT
    text: str
    pos: int
    extra: str = ""  # a phrase's ~N suffix


_STOP = set(' \t\r\n()"')


def _lex(query: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(query)
    while i < n:
        c = query[i]
        if c.isspace():
            i += 1
        elif c in "()":
            toks.append(_Tok("LPAREN" if c == "(" else "RPAREN", c, i))
            i += 1
        elif c == '"':
            j = i + 1
            chars: list[str] = []
            while j < n and query[j] != '"':
                if query[j] == "\\" and j + 1 < n:
                    j += 1
                chars.append(query[j])
                j += 1
            if j >= n:
                raise QueryError(f"unclosed quote at position {i + 1}: {query[i:]!r}")
            j += 1
            suffix = ""
            if j < n and query[j] == "~":
                k = j + 1
                while k < n and query[k].isdigit():
                    k += 1
                suffix, j = query[j:k], k
            toks.append(_Tok("PHRASE", "".join(chars), i, suffix))
            i = j
        elif c in "[{":
            close = query.find("]" if c == "[" else "}", i)
            other = query.find("}" if c == "[" else "]", i)
            ends = [p for p in (close, other) if p != -1]
            if not ends:
                raise QueryError(f"unclosed range at position {i + 1}: {query[i:]!r}")
            j = min(ends)
            toks.append(_Tok("RANGE", query[i : j + 1], i))
            i = j + 1
        else:
            j = i
            while j < n and query[j] not in _STOP:
                if query[j] == ":" and _FIELD_NAME.fullmatch(query[i:j]):
                    break
                j += 1
            if j < n and query[j] == ":":
                toks.append(_Tok("FIELD", query[i:j], i))
                i = j + 1
                continue
            word = query[i:j]
            kind = word if word in ("AND", "OR", "NOT") else "WORD"
            toks.append(_Tok(kind, word, i))
            i = j
    return toks


# --- parser ------------------------------------------------------------------------------


# Parentheses, NOTs and fields nest at most this deep: the parser, the engines' query
# builders and the highlighter all recurse, and no real query needs more.
MAX_DEPTH = 32


class _Parser:
    def __init__(self, query: str, tag_fields: frozenset[str], zone: Callable[[], tzinfo]) -> None:
        self.toks = _lex(query)
        self._zone = zone
        self._zone_found: tzinfo | None = None
        self.i = 0
        self.depth = 0
        self.tag_fields = tag_fields - FIELDS

    def zone(self) -> tzinfo:
        """The zone of the dates in the query, asked for at the first one."""
        if self._zone_found is None:
            self._zone_found = self._zone()
        return self._zone_found

    def deeper(self, tok: _Tok) -> None:
        """One more level of nesting; a QueryError past MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryError(
                f"the query nests deeper than {MAX_DEPTH} levels (parentheses, NOT, fields) "
                f"at position {tok.pos + 1}"
            )

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            return MatchAll()
        node = self.parse_or(None)
        tok = self.peek()
        if tok is not None:
            if tok.kind == "RPAREN":
                raise QueryError(f"unmatched ')' at position {tok.pos + 1}")
            raise QueryError(f"unexpected {tok.text!r} at position {tok.pos + 1}")
        return node

    def parse_or(self, field: str | None) -> Node:
        parts = [self.parse_and(field)]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            if not self._starts_operand():
                raise QueryError(f"OR at position {tok.pos + 1} needs a term on both sides")
            parts.append(self.parse_and(field))
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _starts_operand(self) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind in ("WORD", "PHRASE", "FIELD", "LPAREN", "NOT", "RANGE")

    def parse_and(self, field: str | None) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("the query ends where a term was expected")
        if tok.kind in ("AND", "OR"):
            raise QueryError(f"{tok.kind} at position {tok.pos + 1} needs a term on both sides")
        parts = [self.parse_unary(field)]
        while (tok := self.peek()) is not None:
            if tok.kind == "AND":
                self.take()
                if not self._starts_operand():
                    raise QueryError(f"AND at position {tok.pos + 1} needs a term on both sides")
            elif not self._starts_operand():
                break
            parts.append(self.parse_unary(field))
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def parse_unary(self, field: str | None) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind == "NOT":
            self.take()
            if not self._starts_operand():
                raise QueryError(f"NOT at position {tok.pos + 1} needs a term after it")
            self.deeper(tok)
            node: Node = Not(self.parse_unary(field))
            self.depth -= 1
            return node
        return self.parse_primary(field)

    def parse_primary(self, field: str | None) -> Node:
        tok = self.take()
        if tok.kind == "FIELD":
            name = tok.text.lower()
            if name not in FIELDS and name not in self.tag_fields:
                known = ", ".join(sorted(FIELDS | self.tag_fields))
                raise QueryError(f"unknown field {tok.text!r}; fields are: {known}")
            nxt = self.peek()
            if nxt is None or nxt.kind not in ("WORD", "PHRASE", "LPAREN", "RANGE"):
                raise QueryError(f"field '{tok.text}:' at position {tok.pos + 1} needs a value")
            self.deeper(tok)
            node = self.parse_primary(name)
            self.depth -= 1
            return node
        if tok.kind == "LPAREN":
            first = self.peek()
            if first is None:
                raise QueryError(f"'(' at position {tok.pos + 1} is never closed")
            if first.kind == "RPAREN":
                raise QueryError(f"empty parentheses at position {tok.pos + 1}")
            self.deeper(tok)
            node = self.parse_or(field)
            self.depth -= 1
            close = self.peek()
            if close is None or close.kind != "RPAREN":
                raise QueryError(f"'(' at position {tok.pos + 1} is never closed")
            self.take()
            return node
        if tok.kind == "RANGE":
            if field not in DATE_FIELDS:
                raise QueryError(f"ranges are only supported on recorded_at: {tok.text!r}")
            return _range(tok.text, self.zone())
        if tok.kind == "PHRASE":
            return _tagged(_phrase(field, tok, self.zone), self.tag_fields)
        if tok.kind == "WORD":
            return _tagged(_word(field, tok.text, self.zone), self.tag_fields)
        raise QueryError(f"unexpected {tok.text!r} at position {tok.pos + 1}")


def _range(text: str, zone: tzinfo) -> DateRange:
    inner = text[1:-1].strip()
    parts = re.split(r"\s+TO\s+", inner)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise QueryError(f"a range reads [FROM TO UNTIL]: {text!r}")
    lo_text, hi_text = parts
    start = None if lo_text == "*" else parse_moment(lo_text, end=text[0] == "{", zone=zone)
    end = None if hi_text == "*" else parse_moment(hi_text, end=text[-1] == "]", zone=zone)
    return DateRange(start, end)


def _phrase(field: str | None, tok: _Tok, zone: Callable[[], tzinfo]) -> Node:
    if not tok.text.strip():
        raise QueryError(f"empty phrase at position {tok.pos + 1}")
    slop = 0
    if tok.extra:
        digits = tok.extra[1:]
        slop = int(digits) if digits else 1
    if field in DATE_FIELDS:
        return _day(tok.text, zone())
    return _expand(field, lambda f: Phrase(f, tok.text, slop))


def _word(field: str | None, word: str, zone: Callable[[], tzinfo]) -> Node:
    if field in DATE_FIELDS:
        if word.endswith(("*", "~")) or "~" in word:
            raise QueryError(f"recorded_at takes a date or a range, not {word!r}")
        return _day(word, zone())
    fuzzy = re.fullmatch(r"(.+?)~(\d*)", word)
    if fuzzy:
        text, digits = fuzzy.group(1), fuzzy.group(2)
        distance = int(digits) if digits else 1
        if distance not in (1, 2):
            raise QueryError(f"fuzzy distance must be 1 or 2: {word!r}")
        if "*" in text:
            raise QueryError(f"a term cannot be both a prefix and fuzzy: {word!r}")
        return _expand(field, lambda f: Fuzzy(f, text, distance))
    if "*" in word:
        text = word[:-1]
        if "*" in text or not word.endswith("*"):
            raise QueryError(f"the wildcard * is only supported at the end of a word: {word!r}")
        if not text:
            return MatchAll()
        return _expand(field, lambda f: Prefix(f, text))
    if "~" in word:
        raise QueryError(f"misplaced ~ in {word!r} (fuzzy terms read word~ or word~2)")
    return _expand(field, lambda f: Term(f, word))


def _day(text: str, zone: tzinfo) -> DateRange:
    if text.strip() in ("", "*"):
        raise QueryError("recorded_at needs a date")
    return DateRange(
        parse_moment(text, end=False, zone=zone), parse_moment(text, end=True, zone=zone)
    )


def _expand(field: str | None, make: Callable[[str], Node]) -> Node:
    if field is not None:
        return make(field)
    return Or(tuple(make(f) for f in DEFAULT_FIELDS))


def _tagged(node: Node, tag_fields: frozenset[str]) -> Node:
    """A leaf on a tag field rewritten onto TAGS, its text the `field=value` token."""
    if isinstance(node, (Term, Phrase, Prefix, Fuzzy)) and node.field in tag_fields:
        token = tag_token(node.field, node.text)
        if isinstance(node, Prefix):
            return Prefix(TAGS, token)
        if isinstance(node, Fuzzy):
            return Fuzzy(TAGS, token, node.distance)
        return Term(TAGS, token)  # a keyword value is one token: a phrase is a term
    return node


def utc() -> tzinfo:
    return UTC


def parse(
    query: str, tag_fields: frozenset[str] = frozenset(), zone: Callable[[], tzinfo] = utc
) -> Node:
    """The syntax tree of `query`, every leaf naming its field; raises QueryError.

    Names in `tag_fields` (lowercase) are accepted as fields; their leaves name TAGS. Dates
    and times typed without an offset (recorded_at:2026-03-01) are in the zone `zone()`
    returns, asked for only if the query has one (finding it may cost a repository read).
    """
    if bad := [i for i, c in enumerate(query) if "\ud800" <= c <= "\udfff"]:
        raise QueryError(f"position {bad[0] + 1} is not text (a byte that is not UTF-8?)")
    return _Parser(query, tag_fields, zone).parse()


def filter_range(since: str | None, until: str | None) -> DateRange | None:
    """recorded_at bounds from filter strings: `since` inclusive, `until` inclusive."""
    if since is None and until is None:
        return None
    start = None if since is None else parse_moment(since, end=False)
    end = None if until is None else parse_moment(until, end=True)
    return DateRange(start, end)
