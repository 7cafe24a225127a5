"""The aging report of the daily quality stand-up: open deviations and open CAPAs by age
and class, overdue first.

A deviation's age runs from the day it was discovered, a CAPA's from the day it was
opened (calendar days in the vault's time zone); what is due is the investigation for a
deviation and the action for a CAPA, and a CAPA counts under its deviation's class. The
buckets and classes are the vault's quality settings. Open items are found by SQL on the
catalog (status and due are indexed columns), never by reading the repository, so a
vault of thousands of deviations, most of them closed, answers at once.

Ages count from the day an item began: with --today before that day (a report re-run
for a past date, on today's records) an item's age is 0, never negative.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from atmpvault.archive.quality.records import CAPA_KIND, CAPA_OPEN, DEVIATION_KIND, OPEN
from atmpvault.archive.quality.settings import QualitySettings, quality_settings

if TYPE_CHECKING:
    from atmpvault.archive.core.pdf import BarChart
    from atmpvault.archive.core.records import Record
    from atmpvault.archive.core.vault import Vault

DEVIATION = "deviation"
CAPA = "capa"
CSV_COLUMNS = (
    "id", "kind", "deviation", "class", "lots", "title", "owner", "due", "days_to_due",
    "age_days", "bucket",
)  # fmt: skip
TEMPLATE = "quality/aging-report.html.j2"
CHART = "aging"
IN_CLAUSE = 500  # ids per IN (...) of one query: well under every database's limit


@dataclass(frozen=True)
class OpenItem:
    """An open deviation (its investigation) or an open CAPA, as of a day."""

    id: str
    kind: str  # "deviation" or "capa"
    deviation: str  # the deviation itself, or the CAPA's
    deviation_class: str
    program: str
    lots: tuple[str, ...]
    title: str  # a deviation's title, a CAPA's action
    owner: str | None  # a deviation may not be assigned yet
    due: date
    began: date  # discovered (deviation), opened (CAPA)
    days_to_due: int  # negative: overdue by that many days
    age: int
    bucket: str

    @property
    def overdue(self) -> bool:
        return self.days_to_due < 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "deviation": self.deviation,
            "class": self.deviation_class,
            "program": self.program,
            "lots": list(self.lots),
            "title": self.title,
            "owner": self.owner,
            "due": self.due.isoformat(),
            "days_to_due": self.days_to_due,
            "overdue": self.overdue,
            "began": self.began.isoformat(),
            "age_days": self.age,
            "bucket": self.bucket,
        }


def day_in(stamp: str, zone: tzinfo) -> date:
    """The calendar day, in the vault's time zone, of a stored time."""
    return datetime.fromisoformat(stamp).astimezone(zone).date()


def ordered(items: Iterable[OpenItem]) -> list[OpenItem]:
    """Overdue first, most overdue first; then by due date, oldest first, then by id."""
    return sorted(items, key=lambda i: (i.days_to_due, -i.age, i.id))


def _item(
    body: dict[str, Any], kind: str, deviation_class: str, began: date, today: date,
    settings: QualitySettings,
) -> OpenItem:  # fmt: skip
    due = date.fromisoformat(body["due"])
    age = max(0, (today - began).days)
    return OpenItem(
        id=str(body["id"]),
        kind=kind,
        deviation=str(body["id"] if kind == DEVIATION else body["deviation"]),
        deviation_class=deviation_class,
        program=str(body.get("program") or ""),
        lots=tuple(str(lot) for lot in body.get("lots") or ()),
        title=str(body["title"] if kind == DEVIATION else body["action_text"]),
        owner=body.get("owner") or None,
        due=due,
        began=began,
        days_to_due=(due - today).days,
        age=age,
        bucket=settings.bucket(age),
    )


def open_items(
    vault: Vault, today: date, due_by: date | None = None, settings: QualitySettings | None = None
) -> list[OpenItem]:
    """Every open deviation and open CAPA (those due by `due_by`, if given), in report order.

    Two indexed queries for the open items, one more for the classes of the CAPAs'
    deviations that are not open themselves.
    """
    from atmpvault.archive.core.record_tables import records

    settings = settings or quality_settings(vault)
    zone = vault.config.zone
    where = [records.c.status == OPEN]
    capa_where = [records.c.status == CAPA_OPEN]
    if due_by is not None:
        where.append(records.c.due <= due_by.isoformat())
        capa_where.append(records.c.due <= due_by.isoformat())
    deviations = vault.catalog.records(DEVIATION_KIND.name, where=where)
    capas = vault.catalog.records(CAPA_KIND.name, where=capa_where)
    classes = {r.id: str(r.body["class"]) for r in deviations}
    missing = sorted({str(c.body["deviation"]) for c in capas} - set(classes))
    for start in range(0, len(missing), IN_CLAUSE):
        chunk = missing[start : start + IN_CLAUSE]
        for r in vault.catalog.records(DEVIATION_KIND.name, where=[records.c.id.in_(chunk)]):
            classes[r.id] = str(r.body["class"])
    items = [
        _item(r.body, DEVIATION, classes[r.id], day_in(r.body["discovered"], zone), today, settings)
        for r in deviations
    ]
    items += [_capa(r, classes, zone, today, settings) for r in capas]
    return ordered(items)


def _capa(
    r: Record, classes: dict[str, str], zone: tzinfo, today: date, settings: QualitySettings
) -> OpenItem:
    deviation_class = classes.get(str(r.body["deviation"]), "unknown")
    return _item(r.body, CAPA, deviation_class, day_in(r.body["opened"], zone), today, settings)


@dataclass(frozen=True)
class AgingReport:
    """Open items as of a day, with their counts by age bucket and class."""

    today: date
    buckets: tuple[str, ...]
    classes: tuple[str, ...]
    items: tuple[OpenItem, ...]
    warning_days: int

    def count(self, bucket: str | None = None, deviation_class: str | None = None) -> int:
        return sum(
            1
            for i in self.items
            if (bucket is None or i.bucket == bucket)
            and (deviation_class is None or i.deviation_class == deviation_class)
        )

    def counts(self) -> list[dict[str, Any]]:
        """One entry per bucket and class (zeros included), buckets then classes in order."""
        return [
            {"bucket": b, "class": c, "count": self.count(b, c)}
            for b in self.buckets
            for c in self.classes
        ]

    @property
    def overdue(self) -> int:
        return sum(1 for i in self.items if i.overdue)

    @property
    def due_soon(self) -> int:
        """Not overdue, but due within the warning window."""
        return sum(1 for i in self.items if 0 <= i.days_to_due <= self.warning_days)

    def title(self) -> str:
        return f"Deviation and CAPA aging, as of {self.today.isoformat()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "buckets": list(self.buckets),
            "classes": list(self.classes),
            "total": len(self.items),
            "overdue": self.overdue,
            "due_soon": self.due_soon,
            "warning_days": self.warning_days,
            "counts": self.counts(),
            "rows": [i.to_json() for i in self.items],
        }

    def csv(self) -> str:
        """One row per item under a header of CSV_COLUMNS; lots separated by spaces."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for i in self.items:
            writer.writerow(
                (
                    i.id,
                    i.kind,
                    i.deviation,
                    i.deviation_class,
                    " ".join(i.lots),
                    i.title,
                    i.owner or "",
                    i.due.isoformat(),
                    i.days_to_due,
                    i.age,
                    i.bucket,
                )  # fmt: skip
            )
        return out.getvalue()

    def chart(self) -> BarChart:
        """Open items by age bucket (the categories) and class (the series)."""
        from atmpvault.archive.core.pdf import BarChart

        return BarChart(
            title="Open deviations and CAPAs by age (days) and class",
            categories=self.buckets,
            series=tuple((c, tuple(self.count(b, c) for b in self.buckets)) for c in self.classes),
        )


def aging(vault: Vault, today: date) -> AgingReport:
    """The aging report of open deviations and CAPAs as of `today`."""
    settings = quality_settings(vault)
    items = open_items(vault, today, settings=settings)
    return AgingReport(
        today=today,
        buckets=tuple(settings.bucket_names()),
        classes=_classes(settings, items),
        items=tuple(items),
        warning_days=settings.warning_days,
    )


def _classes(settings: QualitySettings, items: Sequence[OpenItem]) -> tuple[str, ...]:
    """The configured classes in their order, then any an item still has that the settings
    no longer name (a class removed while deviations of it are open)."""
    extra = sorted({i.deviation_class for i in items} - set(settings.classes))
    return (*settings.classes, *extra)


def aging_pdf(report: AgingReport, created: datetime, generated_by: str) -> bytes:
    """The report as a landscape A4 PDF: a chart, the counts, then every row."""
    from atmpvault.archive.core import values
    from atmpvault.archive.core.pdf import html_pdf
    from atmpvault.archive.core.render import render

    context = {
        "r": report,
        "title": report.title(),
        "rows": report.items,
        "counts": {(b, c): report.count(b, c) for b in report.buckets for c in report.classes},
        "generated_at": values.iso(created)[:19].replace("T", " ") + " UTC",
        "generated_by": generated_by,
    }
    html = render(TEMPLATE, context)
    return html_pdf(
        html, title=report.title(), created=created, charts={CHART: report.chart()}, landscape=True
    )
