"""The coordination board: its rows, the text board (golden), the HTML page escaped, and
the page drawn by a real headless browser (Debian's chromium) with its bars visible."""

from __future__ import annotations

import struct
import subprocess
import zlib
from datetime import date, timedelta
from pathlib import Path

import pytest

from atmpvault.archive.dosing import board
from atmpvault.archive.dosing.model import Conflict, Schedule
from atmpvault.archive.dosing.planning import plan
from atmpvault.archive.dosing.settings import DEFAULTS, parse
from atmpvault.errors import InvalidInput

GOLDEN = Path(__file__).parent / "golden" / "dosing-board.txt"
PROFILE = parse(DEFAULTS).profiles["autologous-cart"]
TODAY = date(2026, 3, 9)  # a Monday
DAYS = 28
CHROMIUM = "/usr/bin/chromium"
# The page's colours (board.html.j2): the bars, the conflict outline, today's line.
BARS = {
    "manufacturing": (0x1F, 0x6F, 0xD1),
    "release testing": (0xF2, 0xA9, 0x00),
    "in transit": (0x12, 0xA4, 0xA4),
    "lymphodepletion": (0x8A, 0x3F, 0xC7),
}
CONFLICT_RED = (0xE0, 0x00, 0x00)
TODAY_INK = (0x1B, 0x1F, 0x24)


def weekdays(day: date) -> bool:
    return day.weekday() < 5


def schedule(
    lot: str,
    coi: str,
    apheresis: date,
    actual: dict[str, date] | None = None,
    infusion: date | None = None,
) -> Schedule:
    return Schedule(
        lot=lot, program="CART-19", coi=coi, profile=PROFILE.name, facility="MFG-01",
        site="SITE-BOS", dates=plan(PROFILE, apheresis, weekdays, infusion=infusion),
        actual=actual or {},
    )  # fmt: skip


def three_lots() -> tuple[list[Schedule], list[Conflict]]:
    """In transit with LD under way; its infusion moved two days earlier by the site, so LD
    now starts before release (the one conflict); collected in two days."""
    schedules = [
        schedule("L-2026-0031", "COI-7F3K-31", date(2026, 3, 11)),
        schedule("L-2026-0017", "COI-2QX9-17", date(2026, 2, 9)),
        schedule("L-2026-0024", "COI-8HDM-24", date(2026, 2, 19), infusion=date(2026, 3, 18)),
    ]
    conflict = Conflict(
        lot="L-2026-0024",
        rule="ld-before-release",
        dates={"ld_start": date(2026, 3, 14), "expected_release": date(2026, 3, 16)},
        message="LD starts 2026-03-14, before the planned release on 2026-03-16; LD may not "
        "start before release: move LD to 2026-03-16 or later",
        act="scheduler",
    )
    return schedules, [conflict]


def test_the_text_board_is_the_golden_one() -> None:
    schedules, conflicts = three_lots()
    text = board.text_board(board.rows(schedules, conflicts, TODAY, DAYS), TODAY, DAYS)
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_rows_by_infusion_with_spans_clipped_to_the_window() -> None:
    schedules, conflicts = three_lots()
    rows = board.rows(schedules, conflicts, TODAY, DAYS)
    assert [r.lot for r in rows] == ["L-2026-0017", "L-2026-0024", "L-2026-0031"]
    first, end = board.window(TODAY, DAYS)
    assert (first, end) == (date(2026, 3, 6), date(2026, 4, 6))
    in_transit, conflicted, collected = rows
    # L-2026-0017 released and shipped on the window's first day: its release testing is
    # over (not shown); its shipping runs to the end of the delivery window.
    assert [(s.phase, s.first, s.last, s.clipped_before) for s in in_transit.spans] == [
        ("shipping", date(2026, 3, 6), date(2026, 3, 10), False),
        ("ld", date(2026, 3, 7), date(2026, 3, 9), False),
    ]
    assert [(m.kind, m.day) for m in in_transit.markers] == [
        ("release", date(2026, 3, 6)), ("ship", date(2026, 3, 6)),
        ("infusion", date(2026, 3, 11)),
    ]  # fmt: skip
    manufacturing = conflicted.spans[0]
    assert (manufacturing.phase, manufacturing.first, manufacturing.last) == (
        "manufacturing", first, date(2026, 3, 8),
    )  # fmt: skip
    assert manufacturing.clipped_before and not manufacturing.clipped_after
    assert {s.phase: s.conflict for s in conflicted.spans} == {
        "manufacturing": False, "release_testing": True, "shipping": False, "ld": True,
    }  # fmt: skip
    assert conflicted.conflict_days == {date(2026, 3, 14), date(2026, 3, 16)}
    assert [c.rule for c in conflicted.conflicts] == ["ld-before-release"]
    assert collected.conflicts == () and not collected.conflict_days
    ld = collected.spans[-1]  # LD starts on the window's last day and goes on after it
    assert (ld.phase, ld.first, ld.last, ld.clipped_after) == ("ld", date(2026, 4, 5),
                                                               date(2026, 4, 5), True)  # fmt: skip


def test_actual_dates_from_custody_move_the_board() -> None:
    shipped_late = date(2026, 3, 9)
    s = schedule("L-1", "COI-AAA-1", date(2026, 2, 9), actual={"ship": shipped_late})
    (row,) = board.rows([s], [], TODAY, DAYS)
    assert row.spans[0].phase == "shipping" and row.spans[0].first == shipped_late
    ship = next(m for m in row.markers if m.kind == "ship")
    assert ship.day == shipped_late and ship.actual
    assert not next(m for m in row.markers if m.kind == "release").actual
    assert row.to_json()["actual"] == {"ship": "2026-03-09"}


def test_json_keys_are_stable() -> None:
    schedules, conflicts = three_lots()
    row = board.rows(schedules, conflicts, TODAY, DAYS)[1]
    shown = row.to_json()
    assert list(shown) == [
        "lot", "coi", "profile", "site", "facility", "dates", "actual", "conflicts", "spans",
        "markers",
    ]  # fmt: skip
    assert shown["lot"] == "L-2026-0024" and shown["coi"] == "COI-8HDM-24"
    assert shown["dates"]["infusion"] == "2026-03-18" and shown["actual"] == {}
    assert shown["conflicts"] == [conflicts[0].to_json()]
    assert shown["spans"][0] == {
        "phase": "manufacturing", "first": "2026-03-06", "last": "2026-03-08",
        "clipped_before": True, "clipped_after": False, "conflict": False,
    }  # fmt: skip
    assert shown["markers"][0] == {
        "marker": "release", "day": "2026-03-16", "actual": False, "conflict": True,
    }  # fmt: skip


def test_a_conflict_of_a_lot_not_on_the_board_is_left_out() -> None:
    schedules, conflicts = three_lots()
    other = Conflict("L-9", "infusion-window", {"infusion": TODAY}, "elsewhere", "site")
    rows = board.rows(schedules, [*conflicts, other], TODAY, DAYS)
    assert [c.lot for r in rows for c in r.conflicts] == ["L-2026-0024"]


@pytest.mark.parametrize("days", [0, -3])
def test_the_board_shows_at_least_one_day_ahead(days: int) -> None:
    with pytest.raises(InvalidInput, match="at least 1 day"):
        board.rows([], [], TODAY, days)


@pytest.mark.parametrize("today", [date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 15)])
def test_sixty_days_with_long_ids_fit_120_columns(today: date) -> None:
    schedules, conflicts = three_lots()
    long = schedule("L-2026-THE-LONGEST-LOT-ID", "COI-" + "X" * 36, date(2026, 3, 2))
    rows = board.rows([*schedules, long], conflicts, today, 60)
    text = board.text_board(rows, today, 60)
    assert max(len(line) for line in text.splitlines()) <= 120
    line = next(line for line in text.splitlines() if line.startswith("L-2026-THE"))
    assert line.startswith("L-2026-THE-LONG\u2026  COI-XXXXXXXXXXXXXXX\u2026  ")
    # one character a day, a separator before each Monday but the first day
    first, _ = board.window(today, 60)
    mondays = sum(1 for i in range(1, 63) if (first + timedelta(days=i)).weekday() == 0)
    assert len(line) == 16 + 2 + 20 + 2 + 63 + mondays
    head, months, tens, units = text.splitlines()[2:6]
    assert months.split() == ["Mar", "Apr", "May"]
    for month in ("Apr", "May"):  # over the month's first day
        assert tens[months.index(month)] == " "
        assert units[months.index(month)] == "1"
    assert head.rstrip().endswith("v") and head.count("v") == 1
    assert line[head.index("v")] in board.PRECEDENCE + "."


def test_the_text_board_never_passes_control_characters_to_the_terminal() -> None:
    s = schedule("L-1", "COI-\x1b[2J", date(2026, 2, 9))
    c = Conflict("L-1", "x", {"ship": TODAY}, "bad\x1b]0;title\x07 news\nline", "site")
    text = board.text_board(board.rows([s], [c], TODAY, 7), TODAY, 7)
    assert "\x1b" not in text and "\x07" not in text and "news\nline" not in text


def hostile() -> tuple[list[board.BoardRow], str]:
    schedules, conflicts = three_lots()
    evil = Schedule(
        lot="<script>alert('lot')</script>", program="CART-19",
        coi='<script>alert("coi")</script>', profile=PROFILE.name, facility="MFG-01",
        site="<b>SITE</b>", dates=plan(PROFILE, date(2026, 2, 16), weekdays),
    )  # fmt: skip
    bad = Conflict(
        evil.lot, "<i>rule</i>", {"infusion": date(2026, 3, 18)},
        "<img src=x onerror=alert(1)> infusion", "<u>site</u>",
    )  # fmt: skip
    rows = board.rows([*schedules, evil], [*conflicts, bad], TODAY, DAYS)
    return rows, board.html_board(rows, TODAY, DAYS, "Board <script>alert('title')</script>")


def test_the_html_board_escapes_what_it_shows() -> None:
    _, page = hostile()
    assert "<script" not in page.lower()
    assert "<img" not in page and "<b>SITE" not in page and "<i>rule" not in page
    assert "&lt;script&gt;alert(&#34;coi&#34;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#39;lot&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt; infusion" in page
    assert "<title>Board &lt;script&gt;" in page


def test_the_html_board_is_self_contained() -> None:
    schedules, conflicts = three_lots()
    page = board.html_board(
        board.rows(schedules, conflicts, TODAY, DAYS), TODAY, DAYS, "Dosing board"
    )
    assert page.startswith("<!DOCTYPE html>")
    for outside in ("http:", "https:", "src=", "url(", "@import", "<link", "<script"):
        assert outside not in page
    assert page.count('class="label"') == 3 and "L-2026-0024" in page
    assert "LD starts 2026-03-14, before the planned release on 2026-03-16" in page


def test_an_empty_board_says_so() -> None:
    assert "(no active lots)" in board.text_board([], TODAY, 7)
    assert "no active lots" in board.html_board([], TODAY, 7, "Dosing board")


# The page in a real browser. Chromium missing is a failure (FileNotFoundError), never a
# skip: .ci/run installs Debian's chromium where /usr/bin/chromium is missing.


def screenshot(page: Path, png: Path, profile: Path, size: tuple[int, int]) -> None:
    done = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", f"--screenshot={png}",
            f"--window-size={size[0]},{size[1]}", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB or RGBA, non-interlaced PNG (stdlib)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, [], b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = zlib.decompress(b"".join(idat))
    rows: list[bytes] = []
    prior = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prior, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prior[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prior[i], prior[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                near = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + near) & 0xFF
        prior = line
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
    return width, height, rows


def test_the_html_board_in_a_real_browser_shows_its_bars(tmp_path: Path) -> None:
    schedules, conflicts = three_lots()
    page = tmp_path / "board.html"
    page.write_text(
        board.html_board(board.rows(schedules, conflicts, TODAY, DAYS), TODAY, DAYS, "Board"),
        encoding="utf-8",
    )
    png = tmp_path / "board.png"
    screenshot(page, png, tmp_path / "chromium-profile", (1600, 900))
    assert png.is_file()
    width, height, rows = read_png(png.read_bytes())
    assert (width, height) == (1600, 900)

    counts: dict[tuple[int, int, int], int] = {}
    for line in rows:
        for x in range(0, len(line), 3):
            rgb = (line[x], line[x + 1], line[x + 2])
            counts[rgb] = counts.get(rgb, 0) + 1
    # A legend swatch is under 1,000 pixels: more than that of a colour is a drawn bar.
    for name, rgb in BARS.items():
        assert counts.get(rgb, 0) > 1500, f"no {name} bar on the page ({counts.get(rgb, 0)} px)"
    assert counts.get(CONFLICT_RED, 0) > 1500, "the conflict's days are not outlined"

    # Today is a line down the chart: one column of pixels in its colour through every lot.
    tallest = 0
    for x in range(0, width * 3, 3):
        run = 0
        for line in rows:
            run = run + 1 if (line[x], line[x + 1], line[x + 2]) == TODAY_INK else 0
            tallest = max(tallest, run)
    assert tallest >= 150, f"no line for today (longest run {tallest} px)"
