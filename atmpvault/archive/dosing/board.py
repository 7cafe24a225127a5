"""The coordination board: every active lot's timeline as a compact Gantt (pure).

Schedulers go through it on the daily call with manufacturing, the site's oncology
team, the apheresis center and logistics. `rows` computes what each lot shows in the
window [today - 3 days, today + days): its phases as spans, its day markers and the
days its conflicts name; `text_board` draws it for a terminal (one character a day)
and `html_board` as a self-contained page for a projector. Patients appear only as the
lot and its chain-of-identity id, never by name.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from atmpvault.archive.core.render import render
from atmpvault.archive.dosing.model import Conflict, Schedule
from atmpvault.errors import InvalidInput

DAYS_BEFORE = 3  # the board shows the last few days too: what just happened
TEXT_WIDTH = 120
LOT_WIDTH = 16  # the text board's lot and COI columns, at most (an ellipsis cuts the rest)
COI_WIDTH = 20

# phase, its first and last field, whether the last field's own day belongs to it (the
# completion day starts release testing; the delivery window's last day is in transit),
# the lane it is drawn in, its label on the page and the one shorter for a narrow bar.
PHASES = (
    ("manufacturing", "manufacturing_start", "expected_completion", False, "product",
     "manufacturing", "mfg"),
    ("release_testing", "expected_completion", "expected_release", False, "product",
     "release testing", "testing"),
    ("shipping", "ship", "delivery_to", True, "product", "in transit", "transit"),
    ("ld", "ld_start", "ld_end", True, "patient", "lymphodepletion", "LD"),
)  # fmt: skip
# The fields each phase is drawn from: a conflict naming one outlines the bar.
PHASE_FIELDS = {
    "manufacturing": ("manufacturing_start", "expected_completion"),
    "release_testing": ("expected_completion", "expected_release"),
    "shipping": ("ship", "delivery_from", "delivery_to"),
    "ld": ("ld_start", "ld_end"),
}
# marker, its field, its letter on the board, its lane, its name in the legend
MARKERS = (
    ("apheresis", "apheresis", "A", "patient", "apheresis"),
    ("release", "expected_release", "R", "product", "release"),
    ("ship", "ship", "S", "product", "ship"),
    ("infusion", "infusion", "0", "patient", "infusion (day 0)"),
)
PHASE_CHARS = {"manufacturing": "=", "release_testing": "r", "shipping": "~", "ld": "L"}
MARKER_CHARS = {kind: letter for kind, _, letter, _, _ in MARKERS}
# One character a day: the first of these that applies (a conflict's day shows "!").
PRECEDENCE = "!0SRAL~r="
LEGEND = (
    ("A", "apheresis"), ("=", "manufacturing"), ("r", "release testing"), ("R", "release"),
    ("S", "ship"), ("~", "in transit / delivery window"), ("L", "lymphodepletion"),
    ("0", "infusion (day 0)"), ("!", "a day a conflict names"), (".", "nothing"),
)  # fmt: skip
ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class Span:
    """One phase of a lot, clipped to the board's window: days `first`..`last`."""

    phase: str  # "manufacturing", "release_testing", "shipping", "ld"
    first: date
    last: date  # inclusive
    clipped_before: bool  # the phase began before the window
    clipped_after: bool  # the phase goes on after it
    conflict: bool  # a conflict names one of the dates it is drawn from

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "clipped_before": self.clipped_before,
            "clipped_after": self.clipped_after,
            "conflict": self.conflict,
        }


@dataclass(frozen=True)
class Marker:
    """One day of a lot: apheresis, release, ship or infusion (inside the window)."""

    kind: str
    day: date
    actual: bool  # the date custody recorded, not the planned one
    conflict: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "marker": self.kind,
            "day": self.day.isoformat(),
            "actual": self.actual,
            "conflict": self.conflict,
        }


@dataclass(frozen=True)
class BoardRow:
    """One lot on the board: who it is (coded), its spans, markers and conflicts."""

    lot: str
    coi: str | None
    profile: str
    site: str | None
    facility: str
    dates: dict[str, date]
    actual: dict[str, date]
    conflicts: tuple[Conflict, ...]
    spans: tuple[Span, ...]
    markers: tuple[Marker, ...]
    conflict_days: frozenset[date]  # every date its conflicts name (in the window or not)

    def to_json(self) -> dict[str, Any]:
        return {
            "lot": self.lot,
            "coi": self.coi,
            "profile": self.profile,
            "site": self.site,
            "facility": self.facility,
            "dates": {k: v.isoformat() for k, v in self.dates.items()},
            "actual": {k: v.isoformat() for k, v in self.actual.items()},
            "conflicts": [c.to_json() for c in self.conflicts],
            "spans": [s.to_json() for s in self.spans],
            "markers": [m.to_json() for m in self.markers],
        }


def window(today: date, days: int) -> tuple[date, date]:
    """The board's first day and the day after its last: [today - 3 days, today + days)."""
    if days < 1:
        raise InvalidInput(f"the board shows at least 1 day ahead, not {days}")
    return today - timedelta(days=DAYS_BEFORE), today + timedelta(days=days)


def rows(
    schedules: Sequence[Schedule], conflicts: Sequence[Conflict], today: date, days: int
) -> list[BoardRow]:
    """Each lot's board row, by infusion date (actual dates where custody recorded them)."""
    start, end = window(today, days)
    last_shown = end - timedelta(days=1)
    found: list[BoardRow] = []
    for s in sorted(schedules, key=lambda s: (s.day("infusion"), s.lot)):
        mine = tuple(c for c in conflicts if c.lot == s.lot)
        named = {f for c in mine for f in c.dates}
        spans = []
        for phase, begins, ends, inclusive, *_ in PHASES:
            first = s.day(begins)
            last = s.day(ends) if inclusive else s.day(ends) - timedelta(days=1)
            shown_first, shown_last = max(first, start), min(last, last_shown)
            if shown_first > shown_last:
                continue  # empty, or wholly outside the window
            spans.append(
                Span(phase, shown_first, shown_last, first < start, last > last_shown,
                     bool(named & set(PHASE_FIELDS[phase])))
            )  # fmt: skip
        markers = [
            Marker(kind, s.day(name), name in s.actual, name in named)
            for kind, name, *_ in MARKERS
            if start <= s.day(name) < end
        ]
        found.append(
            BoardRow(
                lot=s.lot, coi=s.coi, profile=s.profile, site=s.site, facility=s.facility,
                dates=dict(s.dates), actual=dict(s.actual), conflicts=mine,
                spans=tuple(spans), markers=tuple(markers),
                conflict_days=frozenset(d for c in mine for d in c.dates.values()),
            )
        )  # fmt: skip
    return found


def _days(today: date, days: int) -> list[date]:
    start, end = window(today, days)
    return [start + timedelta(days=i) for i in range((end - start).days)]


def day_chars(row: BoardRow, shown: Sequence[date]) -> str:
    """The lot's line on the text board: one character a day (see PRECEDENCE)."""
    marks: dict[date, set[str]] = {d: set() for d in shown}
    for span in row.spans:
        for i in range((span.last - span.first).days + 1):
            marks[span.first + timedelta(days=i)].add(PHASE_CHARS[span.phase])
    for marker in row.markers:
        marks[marker.day].add(MARKER_CHARS[marker.kind])
    for day in row.conflict_days & marks.keys():
        marks[day].add("!")
    return "".join(next((c for c in PRECEDENCE if c in marks[d]), ".") for d in shown)


def _printable(text: str) -> str:
    # A terminal must not be steered by a stored value (escape sequences, new lines).
    return "".join(c if c.isprintable() else "?" for c in text)


def _fit(text: str, width: int) -> str:
    text = _printable(text)
    return text if len(text) <= width else text[: width - 1] + ELLIPSIS


def _weekly(cells: Sequence[str], shown: Sequence[date], separator: str) -> str:
    """The day cells with a separator before each Monday (but the first day)."""
    return "".join(
        (separator if d.weekday() == 0 and i else "") + c
        for i, (d, c) in enumerate(zip(shown, cells, strict=True))
    )


def _months(shown: Sequence[date]) -> str:
    """The month over its first day (and over the board's first, room permitting)."""
    at, offset = [], 0  # each day's offset on the line, past the week separators
    for i, d in enumerate(shown):
        offset += 1 if d.weekday() == 0 and i else 0
        at.append(i + offset)
    line = [" "] * (at[-1] + 1)
    starts = [i for i, d in enumerate(shown) if i == 0 or d.day == 1]
    for n, i in enumerate(starts):
        label = shown[i].strftime("%b")
        room = (at[starts[n + 1]] if n + 1 < len(starts) else len(line) + 1) - at[i] - 1
        if len(label) <= room:
            line[at[i] : at[i] + len(label)] = label
    return "".join(line)


def text_board(board: Sequence[BoardRow], today: date, days: int) -> str:
    """The board for a terminal: a date header, one line a lot, the legend, the conflicts."""
    shown = _days(today, days)
    lot_w = min(LOT_WIDTH, max([3, *(len(r.lot) for r in board)]))
    coi_w = min(COI_WIDTH, max([3, *(len(r.coi or "-") for r in board)]))
    blank = " " * (lot_w + 2 + coi_w + 2)
    head = [
        blank + _weekly(["v" if d == today else " " for d in shown], shown, " "),
        blank + _months(shown),
        blank + _weekly([str(d.day // 10 or " ") for d in shown], shown, "|"),
        "LOT".ljust(lot_w) + "  " + "COI".ljust(coi_w) + "  "
        + _weekly([str(d.day % 10) for d in shown], shown, "|"),
    ]  # fmt: skip
    lines = [
        f"Dosing board {shown[0].isoformat()} to {shown[-1].isoformat()}, today "
        f"{today.isoformat()}: {len(board)} lot{'' if len(board) == 1 else 's'}",
        "",
        *(line.rstrip() for line in head),
    ]
    for r in board:
        lines.append(
            _fit(r.lot, lot_w).ljust(lot_w) + "  " + _fit(r.coi or "-", coi_w).ljust(coi_w)
            + "  " + _weekly(day_chars(r, shown), shown, "|")
        )  # fmt: skip
    if not board:
        lines.append("(no active lots)")
    lines.append("")
    legend = "Legend:"
    for char, what in LEGEND:
        item = f"{char} {what}"
        if len(legend) + 2 + len(item) > TEXT_WIDTH:
            lines.append(legend)
            legend = "  " + item
        else:
            legend += (" " if legend == "Legend:" else "  ") + item
    lines.append(legend)
    lines.append(f"  A day shows the first of {' '.join(PRECEDENCE)} that applies to it.")
    found = [(r.lot, c) for r in board for c in r.conflicts]
    lines += ["", f"Conflicts: {len(found)}" if found else "Conflicts: none"]
    for lot, c in found:
        lines += textwrap.wrap(
            _printable(f"{lot}: {c.message} [{c.rule}; {c.act} acts]"),
            TEXT_WIDTH,
            initial_indent="  ",
            subsequent_indent="      ",
            break_on_hyphens=False,
        )
    return "\n".join(lines) + "\n"


def html_board(board: Sequence[BoardRow], today: date, days: int, title: str) -> str:
    """The board as one self-contained HTML page (inline CSS, no scripts) for a projector."""
    return render("dosing/board.html.j2", _page(board, today, days, title))


LANES = ("product", "patient")  # each lot takes two grid rows: its product, its patient
HEADER_ROWS = 3  # months, weekdays, days of the month
# A bar shows its label, else the shorter one, where it fits (a CSS container query: the
# browser measures, whatever the screen); a bold character is about this wide.
CHAR_EM = 0.64
FIELD_NAMES = {
    "apheresis": "apheresis", "manufacturing_start": "manufacturing start",
    "expected_completion": "expected completion", "expected_release": "expected release",
    "ship": "ship", "delivery_from": "delivery from", "delivery_to": "delivery to",
    "ld_start": "LD start", "ld_end": "LD end", "infusion": "infusion",
}  # fmt: skip
MARKER_LANE = {kind: lane for kind, _, _, lane, _ in MARKERS}
MARKER_FIELD = {kind: name for kind, name, *_ in MARKERS}
MARKER_NAME = {kind: name for kind, _, _, _, name in MARKERS}


def _page(board: Sequence[BoardRow], today: date, days: int, title: str) -> dict[str, Any]:
    """The template's values: grid positions (day i is grid column i + 2) and labels."""
    shown = _days(today, days)
    column = {d: i + 2 for i, d in enumerate(shown)}
    lots = [_lot(r, HEADER_ROWS + 1 + n * len(LANES), n, column) for n, r in enumerate(board)]
    months: list[dict[str, Any]] = []
    for i, d in enumerate(shown):
        if i == 0 or d.day == 1:
            months.append({"label": d.strftime("%B %Y"), "column": i + 2, "span": 1})
        else:
            months[-1]["span"] += 1
    conflicts = [
        {
            "lot": r.lot, "coi": r.coi or "-", "rule": c.rule, "act": c.act,
            "message": c.message,
            "dates": [f"{FIELD_NAMES.get(f, f)} {d.isoformat()}" for f, d in sorted(c.dates.items(), key=lambda x: x[1])],
        }
        for r in board for c in r.conflicts
    ]  # fmt: skip
    return {
        "title": title,
        "today": today.isoformat(),
        "first": shown[0].isoformat(),
        "last": shown[-1].isoformat(),
        "columns": len(shown),
        "dense": len(shown) > 40,
        "days": [
            {
                "column": column[d],
                "day": d.day,
                "weekday": d.strftime("%a")[0],
                "weekend": d.weekday() >= 5,
                "today": d == today,
                "monday": d.weekday() == 0,
            }
            for d in shown
        ],
        "months": months,
        "today_column": column[today],
        "body_first_row": HEADER_ROWS + 1,
        "last_row": HEADER_ROWS + max(1, len(board)) * len(LANES) + 1,
        "lots": lots,
        "conflicts": conflicts,
        "legend_phases": [(p[0], p[5]) for p in PHASES],
        "bar_labels": [
            (phase, round(len(label) * CHAR_EM, 1), round(len(short) * CHAR_EM, 1))
            for phase, *_, label, short in PHASES
        ],
        "legend_markers": [(kind, letter, name) for kind, _, letter, _, name in MARKERS],
    }


def _lot(r: BoardRow, top: int, n: int, column: dict[date, int]) -> dict[str, Any]:
    """One lot's label, bars and markers, placed on the grid from row `top`."""
    lane_row = {lane: top + i for i, lane in enumerate(LANES)}
    # Markers on the same day in the same lane (release and ship, mostly) share one badge.
    cells: dict[tuple[str, date], list[Marker]] = {}
    for m in r.markers:
        cells.setdefault((MARKER_LANE[m.kind], m.day), []).append(m)
    markers = [
        {
            "kinds": [m.kind for m in here],
            "letters": "".join(MARKER_CHARS[m.kind] for m in here),
            "column": column[day], "row": lane_row[lane],
            "conflict": any(m.conflict for m in here),
            "title": ", ".join(f"{MARKER_NAME[m.kind]} {_dated(r, MARKER_FIELD[m.kind])}" for m in here),
        }
        for (lane, day), here in cells.items()
    ]  # fmt: skip
    bars = []
    for phase, begins, ends, _, lane, label, short in PHASES:
        for s in (s for s in r.spans if s.phase == phase):
            length = (s.last - s.first).days + 1
            inset = (lane, s.first) in cells  # the label starts after the day's badge
            bars.append({
                "phase": phase, "column": column[s.first], "span": length,
                "row": lane_row[lane], "inset": inset,
                "label": label, "short": short,
                "clipped_before": s.clipped_before, "clipped_after": s.clipped_after,
                "conflict": s.conflict,
                "title": f"{label}: {_dated(r, begins)} to {_dated(r, ends)}",
            })  # fmt: skip
    return {
        "lot": r.lot, "coi": r.coi or "-",
        "about": f"site {r.site or 'not set'}, {r.profile}, made at {r.facility}", "row": top, "rows": len(LANES), "stripe": n % 2,
        "bars": bars, "markers": markers,
        "conflict_cells": _runs(sorted(column[d] for d in r.conflict_days if d in column)),
        "conflicts": len(r.conflicts),
    }  # fmt: skip


def _runs(columns: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted grid columns as (first column, span) runs: next days share one outline."""
    runs: list[tuple[int, int]] = []
    for c in columns:
        if runs and runs[-1][0] + runs[-1][1] == c:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((c, 1))
    return runs


def _dated(r: BoardRow, field: str) -> str:
    if field in r.actual:
        return f"{r.actual[field].isoformat()} (actual)"
    return r.dates[field].isoformat() if field in r.dates else "not planned"
