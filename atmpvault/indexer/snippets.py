"""Snippets: an excerpt of a hit's text with the words the query matched in «».

Best effort: the hit stands whatever the snippet shows. Only the start of a long text is
scanned, and fuzzy terms (checked word by word in Python) only in its first few
thousand characters; a match further in gives the start of the text as its snippet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from atmpvault.indexer.query import (
    WORD,
    And,
    Fuzzy,
    Node,
    Or,
    Phrase,
    Prefix,
    Term,
    analyze,
    within,
)

HIGHLIGHT_OPEN = "«"
HIGHLIGHT_CLOSE = "»"
SNIPPET_CHARS = 180
_SNIPPET_SCAN_CHARS = 200_000
_FUZZY_SCAN_CHARS = 4_000
_MAX_SPANS = 40


@dataclass
class _Wanted:
    words: set[str]
    prefixes: list[str]
    fuzzy: list[tuple[str, int]]

    def __bool__(self) -> bool:
        return bool(self.words or self.prefixes or self.fuzzy)


def _wanted(node: Node, into: _Wanted, fields: frozenset[str]) -> None:
    if isinstance(node, (And, Or)):
        for child in node.children:
            _wanted(child, into, fields)
    elif isinstance(node, (Term, Phrase)) and node.field in fields:
        into.words.update(analyze(node.text))
    elif isinstance(node, Prefix) and node.field in fields:
        words = analyze(node.text)
        if words:
            into.words.update(words[:-1])
            into.prefixes.append(words[-1])
    elif isinstance(node, Fuzzy) and node.field in fields:
        into.fuzzy.extend((w, node.distance) for w in analyze(node.text))
    # NOT subtrees and ranges highlight nothing


class Highlighter:
    """Makes snippets for one query: an excerpt of the text with matched words in «»."""

    def __init__(self, node: Node, width: int = SNIPPET_CHARS) -> None:
        self.wanted = _Wanted(set(), [], [])
        _wanted(node, self.wanted, frozenset({"text"}))
        self.width = width
        alternatives = [re.escape(w) for w in self.wanted.words]
        alternatives += [re.escape(p) + r"[^\W_]*" for p in self.wanted.prefixes]
        alternatives.sort(key=len, reverse=True)
        # Exact words and prefixes are found by one regex over the lowercased text (fast,
        # in C); fuzzy terms need each word compared, memoised because words repeat.
        self._regex = (
            re.compile("|".join(alternatives)) if alternatives and not self.wanted.fuzzy else None
        )
        self._seen: dict[str, bool] = {}

    def _matches(self, word: str) -> bool:
        known = self._seen.get(word)
        if known is None:
            w = self.wanted
            known = (
                word in w.words
                or any(word.startswith(p) for p in w.prefixes)
                or any(within(word, t, d) for t, d in w.fuzzy)
            )
            if len(self._seen) < 100_000:
                self._seen[word] = known
        return known

    def _spans(self, scan: str) -> list[tuple[int, int]]:
        lowered = scan.lower()
        if len(lowered) != len(scan):  # rare letters whose lowercase is longer
            lowered = "".join(c.lower()[:1] or c for c in scan)
        regex = self._regex
        if self.wanted.fuzzy:
            # Compare each distinct word once (in Python), then find them all with one
            # regex (in C): far fewer comparisons than walking every word of the text.
            distinct = set(WORD.findall(lowered, 0, _FUZZY_SCAN_CHARS))
            found = sorted((w for w in distinct if self._matches(w)), key=len, reverse=True)
            regex = re.compile("|".join(re.escape(w) for w in found)) if found else None
        if regex is None:
            return []
        spans: list[tuple[int, int]] = []
        for m in regex.finditer(lowered):
            start, end = m.span()
            if (start and lowered[start - 1].isalnum()) or (
                end < len(lowered) and lowered[end].isalnum()
            ):
                continue  # inside a longer word
            spans.append((start, end))
            if len(spans) >= _MAX_SPANS:
                break
        return spans

    def snippet(self, text: str) -> str:
        """The best excerpt of `text` (the densest window of matches), highlighted."""
        scan = text[:_SNIPPET_SCAN_CHARS]
        spans = self._spans(scan)
        if not spans:
            return _squash(_cut(scan, 0, self.width))
        best, best_count = 0, 0
        right = 0
        for left in range(len(spans)):
            while right < len(spans) and spans[right][1] - spans[left][0] <= self.width:
                right += 1
            if right - left > best_count:
                best, best_count = left, right - left
        start = spans[best][0]
        # Lead in with a little context before the first match, from a word boundary.
        lead = max(0, start - self.width // 4)
        while lead > 0 and not scan[lead - 1].isspace() and start - lead < self.width // 2:
            lead -= 1
        stop = min(len(scan), lead + self.width)
        while stop < len(scan) and not scan[stop].isspace() and stop - lead < self.width + 30:
            stop += 1
        out: list[str] = ["…" if lead > 0 else ""]
        cursor = lead
        for s, e in spans:
            if s < lead or e > stop:
                continue
            out.append(scan[cursor:s])
            out.append(f"{HIGHLIGHT_OPEN}{scan[s:e]}{HIGHLIGHT_CLOSE}")
            cursor = e
        out.append(scan[cursor:stop])
        if stop < len(text):
            out.append("…")
        return _squash("".join(out))


def _cut(text: str, start: int, width: int) -> str:
    if len(text) - start <= width:
        return text[start:]
    stop = start + width
    while stop > start + width // 2 and not text[stop].isspace():
        stop -= 1
    return text[start:stop] + "…"


def _squash(text: str) -> str:
    return " ".join(text.split())
