"""Shipper data-logger files: the exports accepted, the refusals (each naming its line),
and the time-weighted minutes out of range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from atmpvault.archive.custody import logger
from atmpvault.archive.custody.logger import Reading, Summary, parse, summarise
from atmpvault.errors import InvalidInput

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def pairs(readings: list[Reading]) -> list[tuple[str, float]]:
    return [(r.at.strftime("%Y-%m-%d %H:%M:%S"), r.celsius) for r in readings]


@pytest.mark.parametrize(
    ("name", "data", "order", "expected"),
    [
        (
            "comma, ISO with offsets, no header",
            b"2026-11-28T14:05:00+01:00,-151.3\n2026-11-28T13:10:00Z,-150\n"
            b"2026-11-28T08:15:30.5-05:00,-149.5\n",
            "DMY",
            [("2026-11-28 13:05:00", -151.3), ("2026-11-28 13:10:00", -150.0),
             ("2026-11-28 13:15:30", -149.5)],
        ),
        (
            "semicolon, decimal comma, DMY, header picked by names",
            "Timestamp;Temp (°C)\n28/11/2026 14:05;−151,3\n28/11/2026 14:10;-150,0\n"
            "01/12/2026 09:00:30;+3,25\n".encode(),
            "DMY",
            [("2026-11-28 13:05:00", -151.3), ("2026-11-28 13:10:00", -150.0),
             ("2026-12-01 08:00:30", 3.25)],
        ),
        (
            "MDY with AM/PM",
            b"Date/Time,Value\n11/28/2026 2:05 PM,-151.3\n11/28/2026 12:10 AM,-152\n"
            b"11/28/2026 12:15 pm,-153\n11/29/2026 11:59:59 a.m.,-154\n",
            "MDY",
            [("2026-11-27 23:10:00", -152.0), ("2026-11-28 11:15:00", -153.0),
             ("2026-11-28 13:05:00", -151.3), ("2026-11-29 10:59:59", -154.0)],
        ),
        (
            "time,temperature_c",
            b"time,temperature_c\n2026-11-28T14:05:00,-151.3\n",
            "DMY",
            [("2026-11-28 13:05:00", -151.3)],
        ),
        (
            "columns picked by name in any order, others ignored",
            "No.;Humidity value (%RH);Serial;Temp (°C);Date/Time\n"
            "1;45;SN-7;-151,3;28.11.2026 14:05\n2;44;SN-7;-150,9;28.11.2026 14:10\n".encode(),
            "DMY",
            [("2026-11-28 13:05:00", -151.3), ("2026-11-28 13:10:00", -150.9)],
        ),
        (
            "Value is the temperature only when nothing says temperature",
            b"Elapsed time (min),Timestamp,Value,Temperature\n"
            b"0,2026-11-28T14:05:00Z,99,-151.3\n",
            "DMY",
            [("2026-11-28 14:05:00", -151.3)],
        ),
        (
            "BOM and CRLF",
            "\ufeffTime;Temp (°C)\r\n28/11/2026 14:05;-151,3\r\n28/11/2026 14:10;-150,1\r\n"
            .encode(),
            "DMY",
            [("2026-11-28 13:05:00", -151.3), ("2026-11-28 13:10:00", -150.1)],
        ),
        (
            "extra columns, no header",
            b"2026-11-28T14:05:00Z,-151.3,45%,door closed\n2026-11-28T14:10:00Z,-150.5,,\n",
            "DMY",
            [("2026-11-28 14:05:00", -151.3), ("2026-11-28 14:10:00", -150.5)],
        ),
        (
            "no header, site time, blank lines and an Excel trailer of separators",
            b"\n28/11/2026 14:05;-151\n\n28/11/2026 14:10;-150\n;;\n",
            "DMY",
            [("2026-11-28 13:05:00", -151.0), ("2026-11-28 13:10:00", -150.0)],
        ),
        (
            "a header that names UTC",
            b"Date/Time (UTC),Temp\n2026-11-28 14:05,-151\n",
            "DMY",
            [("2026-11-28 14:05:00", -151.0)],
        ),
        (
            "a header that names a UTC offset",
            b"Time (UTC-05:00);Temp\n28/11/2026 09:05;-151\n",
            "DMY",
            [("2026-11-28 14:05:00", -151.0)],
        ),
        (
            "date and time in separate columns",
            b"Date;Time;Temperature\n28.11.2026;14:05:00;-151,3\n",
            "DMY",
            [("2026-11-28 13:05:00", -151.3)],
        ),
        (
            "Excel sep= line, quoted fields",
            b'sep=,\n"Time","Temp"\n"2026-11-28T14:05:00Z","-151,3"\n',
            "DMY",
            [("2026-11-28 14:05:00", -151.3)],
        ),
        (
            "tab separated, Windows-1252 header, CR line ends",
            "Zeit\tTemperatur (°C)\r2026-11-28 14:05\t-151,3\r".encode("cp1252"),
            "DMY",
            [("2026-11-28 13:05:00", -151.3)],
        ),
        (
            "year/month/day and two-digit years",
            b"2026/11/28 14:05,-151\n28/11/26 14:10,-150\n",
            "DMY",
            [("2026-11-28 13:05:00", -151.0), ("2026-11-28 13:10:00", -150.0)],
        ),
        (
            "newest first, sorted",
            b"2026-11-28T14:10:00Z,-150\n2026-11-28T14:05:00Z,-151\n",
            "DMY",
            [("2026-11-28 14:05:00", -151.0), ("2026-11-28 14:10:00", -150.0)],
        ),
    ],
)  # fmt: skip
def test_accepted(name: str, data: bytes, order: str, expected: list[tuple[str, float]]) -> None:
    readings = parse(data, zone=BERLIN, date_order=order)
    assert pairs(readings) == expected, name
    assert all(r.at.tzinfo is UTC for r in readings)


def test_date_order_decides_ambiguous_dates() -> None:
    data = b"05/11/2026 14:05,-151\n"
    assert pairs(parse(data, zone=UTC, date_order="DMY")) == [("2026-11-05 14:05:00", -151.0)]
    assert pairs(parse(data, zone=UTC, date_order="MDY")) == [("2026-05-11 14:05:00", -151.0)]


def test_offsets_win_over_the_site_zone() -> None:
    data = b"2026-11-28T14:05:00+09:00,-151\n2026-11-28T14:05:00,-150\n"
    assert pairs(parse(data, zone=NEW_YORK)) == [
        ("2026-11-28 05:05:00", -151.0),
        ("2026-11-28 19:05:00", -150.0),
    ]


WALL = ["00:30", "01:00", "01:30", "01:00", "01:30", "02:00"]
IN_UTC = ["2026-11-01 04:30:00", "2026-11-01 05:00:00", "2026-11-01 05:30:00",
          "2026-11-01 06:00:00", "2026-11-01 06:30:00", "2026-11-01 07:00:00"]  # fmt: skip


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_repeated_hour_when_clocks_go_back(newest_first: bool) -> None:
    # New York, 1 November 2026: 01:00-01:59 happens twice, first EDT (-4) then EST (-5).
    rows = [f"2026-11-01 {t},{i}" for i, t in enumerate(WALL)]
    if newest_first:
        rows.reverse()
    readings = parse("\n".join(rows).encode(), zone=NEW_YORK)
    assert pairs(readings) == [(at, float(i)) for i, at in enumerate(IN_UTC)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"2026-11-28T14:05,-151\n2026-11-28T14:10,-151\n\n28/11/2026 14:xx,-150\n",
         "logger file line 4: '28/11/2026 14:xx' is not a time"),
        (b"Time,Temp\n2026-11-28T14:05,-151\n2026-11-28,-151\n",
         "logger file line 3: '2026-11-28' is not a time"),
        (b"2026-11-28T14:05,-151\n2026-11-28T25:05,-151\n",
         "logger file line 2: '2026-11-28T25:05' is not a time"),
        (b"28/11/2026 14:05,-151\n11/28/2026 14:10,-151\n",
         "logger file line 2: '11/28/2026 14:10' is not a time (read as day/month/year, DMY)"),
        (b"28/11/2026 2:05 PM,-151\n28/11/2026 14:10 PM,-151\n",
         "logger file line 2: '28/11/2026 14:10 PM' is not a time (hour 14 with PM)"),
        (b"28/11/2026 24:10,-151\n", "logger file line 1: '28/11/2026 24:10' is not a time"),
        (b"9999-12-31T23:59:59-05:00,-151\n",
         "line 1: '9999-12-31T23:59:59-05:00' is not a time (the year is not from 1970 to 2199)"),
        (b"0001-01-01T00:00,-151\n", "line 1: '0001-01-01T00:00' is not a time (the year"),
        (b"31/12/1969 23:59,-151\n", "line 1: '31/12/1969 23:59' is not a time (the year"),
        (b"Time,Temp\n2026-11-28T14:05,-151\n2026-11-28T14:10,---\n",
         "logger file line 3: '---' is not a temperature in °C"),
        (b"2026-11-28T14:05,\n", "logger file line 1: '' is not a temperature in °C"),
        (b"2026-11-28T14:05,nan\n", "logger file line 1: 'nan' is not a temperature in °C"),
        (b"2026-11-28T14:05,inf\n", "logger file line 1: 'inf' is not a temperature in °C"),
        (b"2026-11-28T14:05,1e3\n", "logger file line 1: '1e3' is not a temperature in °C"),
        (b"2026-11-28T14:05,-151.3 C\n", "line 1: '-151.3 C' is not a temperature in °C"),
        (b"2026-11-28T14:05,1" + b"0" * 400 + b"\n", "line 1: '1000000000"),
        (b"2026-11-28T14:05,-999.9\n",
         "logger file line 1: '-999.9' °C is below absolute zero (a sensor error code?)"),
        (b"2026-11-28T14:05,-151\n2026-11-28T14:10\n",
         "logger file line 2: 1 field(s); expected at least 2 (the time in column 1, °C in "
         "column 2, separated by ',')"),
        (b"2026-11-28T14:05;-151\n2026-11-28T14:10,-150\n", "logger file line 2: 1 field(s)"),
        (b'2026-11-28T14:05,-151\n"2026-11-28T14:10,-150\n',
         "logger file line 2: unbalanced quotes"),
        (b"2026-03-29 01:30,-151\n2026-03-29 02:30,-151\n",
         "logger file line 2: '2026-03-29 02:30' does not exist in Europe/Berlin (the clocks "
         "went forward): is the logger's clock on standard time or UTC?"),
        (b"2026-11-28T14:05,-151\n2026-11-28T14:10,-151,3\n",
         "logger file line 2: '-151,3' is ambiguous: a decimal comma in a comma-separated "
         "file?"),
        (b"Time,Temp\n2026-11-28T14:10,-1,5\n",
         "logger file line 2: 3 fields where the header names 2 (a decimal comma in a "
         "comma-separated file?)"),
        (b"Time,Temp (F)\n2026-11-28T14:05,-238\n",
         "logger file line 1: column 'Temp (F)' is in Fahrenheit; export the readings in °C"),
        ("Time;Serial;Temperature °F\n".encode(),
         "logger file line 1: column 'Temperature °F' is in Fahrenheit"),
        (b"Time (UTC+25:00),Temp\n", "logger file line 1: column 'Time (UTC+25:00)' names an "
         "offset of 24 hours or more"),
        (b"2026-11-28T14:05,-151\n2026-11-28T14:10,-151\x01\n",
         "logger file line 2: control character U+0001; this is not a text file of readings"),
        (b"", "logger file is empty"),
        (b" \r\n\n\t", "logger file is empty"),
        (b"sep=;\n", "logger file is empty"),
        (b"Timestamp;Temp (\xc2\xb0C)\r\n\r\n", "logger file has a header but no readings"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "logger file is not text: it holds NUL bytes"),
        ("Time,Temp\n2026-11-28T14:05,-151\n".encode("utf-16"),
         "logger file is not text: it holds NUL bytes (binary data, or UTF-16: export the CSV "
         "as UTF-8)"),
        (b"PK\x03\x04\x14\x00\x06\x00", "logger file is a spreadsheet or ZIP archive"),
        (b"%PDF-1.7\n", "logger file is a PDF report"),
        (b"Time,Temp\n\x81\x8d,-151\n", "logger file is not text (neither UTF-8 nor "
         "Windows-1252)"),
    ],
)  # fmt: skip
def test_refused(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(data, zone=BERLIN)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_bad_date_order_is_refused() -> None:
    with pytest.raises(InvalidInput, match="date order 'YMD' must be DMY or MDY"):
        parse(b"2026-11-28T14:05,-151\n", zone=UTC, date_order="YMD")


def test_a_first_line_with_a_time_is_a_reading_even_with_a_bad_temperature() -> None:
    # Not taken for a header: the first reading would be dropped without a word.
    with pytest.raises(InvalidInput, match="line 1: 'ERR' is not a temperature"):
        parse(b"2026-11-28T14:05,ERR\n2026-11-28T14:10,-151\n", zone=UTC)


def test_row_and_size_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logger, "MAX_ROWS", 2)
    assert len(parse(b"Time,Temp\n2026-11-28T14:05,-1\n2026-11-28T14:10,-1\n", zone=UTC)) == 2
    with pytest.raises(InvalidInput, match="logger file line 4: more than 2 readings"):
        parse(
            b"Time,Temp\n2026-11-28T14:05,-1\n2026-11-28T14:10,-1\n2026-11-28T14:15,-1\n", zone=UTC
        )
    monkeypatch.setattr(logger, "MAX_BYTES", 10)
    with pytest.raises(InvalidInput, match="logger file is 22 bytes; the limit is 10"):
        parse(b"2026-11-28T14:05,-151\n", zone=UTC)


def at(minute: float) -> datetime:
    return datetime(2026, 11, 28, 10, tzinfo=UTC) + timedelta(minutes=minute)


# By hand, with the range [-190, -150] °C:
#   10:00    -160   in
#   10:05    -148   out until 10:15       10 min
#   10:15    -149   out until 10:17:30     2.5 min
#   10:17:30 -150   in (a limit is in range)
#   10:20    -195   out until 10:30       10 min
#   10:30    -190   in
#   10:40    -140   out, the last reading: no interval
# 22.5 minutes out of range, 4 readings out of range.
EXAMPLE = [
    Reading(at(0), -160.0),
    Reading(at(5), -148.0),
    Reading(at(15), -149.0),
    Reading(at(17.5), -150.0),
    Reading(at(20), -195.0),
    Reading(at(30), -190.0),
    Reading(at(40), -140.0),
]


def test_minutes_out_of_range_by_hand() -> None:
    summary = summarise(list(reversed(EXAMPLE)), low=-190.0, high=-150.0)
    assert summary == Summary(
        first=at(0),
        last=at(40),
        count=7,
        min_celsius=-195.0,
        max_celsius=-140.0,
        low=-190.0,
        high=-150.0,
        minutes_out_of_range=22.5,
        readings_out_of_range=4,
    )
    assert summary.to_json() == {
        "first": "2026-11-28T10:00:00.000000+00:00",
        "last": "2026-11-28T10:40:00.000000+00:00",
        "count": 7,
        "min_celsius": -195.0,
        "max_celsius": -140.0,
        "low_celsius": -190.0,
        "high_celsius": -150.0,
        "minutes_out_of_range": 22.5,
        "readings_out_of_range": 4,
    }


@pytest.mark.parametrize(
    ("low", "high", "minutes", "count"),
    [
        (None, None, 0.0, 0),
        (None, -150.0, 12.5, 3),  # -148 for 10, -149 for 2.5; -140 last, no interval
        (-190.0, None, 10.0, 1),  # -195 for 10
        (-150.0, -150.0, 37.5, 6),  # all 40 minutes but the -150 reading's 2.5
    ],
)
def test_one_sided_and_open_ranges(
    low: float | None, high: float | None, minutes: float, count: int
) -> None:
    summary = summarise(EXAMPLE, low=low, high=high)
    assert summary.minutes_out_of_range == minutes
    assert summary.readings_out_of_range == count


def test_summary_of_a_parsed_file() -> None:
    data = b"Time (UTC);Temp\n28/11/2026 10:00;-160\n28/11/2026 10:05:30;-148,5\n28/11/2026 10:06;-151\n"
    summary = summarise(parse(data, zone=BERLIN), low=None, high=-150.0)
    assert summary.minutes_out_of_range == 0.5
    assert (summary.first, summary.last, summary.count) == (
        utc("2026-11-28 10:00"),
        utc("2026-11-28 10:06"),
        3,
    )


@pytest.mark.parametrize(
    ("readings", "low", "high", "message"),
    [
        ([], None, None, "no logger readings to summarise"),
        (EXAMPLE, -150.0, -190.0, "the low temperature limit -150.0 °C is above the high one"),
        (EXAMPLE, float("nan"), None, "the low temperature limit nan is not a number"),
        (EXAMPLE, None, float("inf"), "the high temperature limit inf is not a number"),
    ],
)
def test_summarise_refuses(
    readings: list[Reading], low: float | None, high: float | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        summarise(readings, low=low, high=high)


def test_fixed_offset_zone() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert pairs(parse(b"2026-11-28 14:05,-151\n", zone=plus_two)) == [
        ("2026-11-28 12:05:00", -151.0)
    ]


def test_a_title_line_is_taken_for_a_header() -> None:
    data = b"Shipment 42\n2026-11-28T14:05:00Z,-151.3\n2026-11-28T14:10:00Z,-151,3\n"
    with pytest.raises(InvalidInput, match="line 3: '-151,3' is ambiguous"):
        parse(data, zone=UTC)
    assert pairs(parse(data.rsplit(b"\n", 2)[0] + b"\n", zone=UTC)) == [
        ("2026-11-28 14:05:00", -151.3)
    ]
