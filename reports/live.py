"""Live figures of every unit for one day: what the supervisors' monitor shows.

Two readings of the same figures:

* today, live (:func:`build_live_snapshot`): from the agents' tables in the worker's memory
  (:class:`LiveFigures`): what *happened* (dispatched, returned, visits, not replied,
  supervision) as sums of day windows over today, the month to date and rolling 7 and 30
  days; the orders open *now* (open, due within 24 h, overdue) counted at the instant of
  reading over each unit's sorted deadlines; the orders awaiting supervision (待督办) as the
  agents follow them. No ClickHouse query, no store lock.
* any day from ClickHouse (:func:`build_snapshot`: a past day's view, or where no agent runs):
  the same sums over ``unit_windows``, and the orders open at the end of that day read off
  ``order_states`` (first dispatched by then, not completed before it), at their current unit
  and deadline, by the catalogue's status at that instant; the orders awaiting supervision
  as ``order_states`` holds them *now* (see :data:`AS_OF_NOW`).

Every figure, its name and its label are the metric catalogue's (``hotline.schemas.metrics``);
the snapshot tells the page its columns (``screen``), so the page names no metric itself.

Viewing another day (``day`` not today) shows that day's counts and the month up to
it, and the orders open at the end of it; "now" for the deadlines is the end of the day.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol

from hotline.reports.bulletin import Queryable
from hotline.reports.queries import CITY, order_rows, select_counts, select_sums
from hotline.schemas import metrics as mc
from hotline.schemas.metrics import Metric, OrderCount, Rate, Tally
from hotline.schemas.office import current_office
from hotline.schemas.registry import Registry
from hotline.streams.deadlines import TZ
from hotline.streams.gauges import Reading

DUE_SOON_S = mc.DUE_SOON_S  # "即将到期": due within 24 hours

# What the screen shows, all from the metric catalogue: per period (the day, the month to
# date) counts the stream keeps, and rates over them; for the open orders, gauges now.
PERIOD_COUNTS: tuple[Metric, ...] = (
    mc.DISPATCHED,
    mc.RETURNED,
    mc.VISITS,
    mc.VISITS_SATISFIED,
    mc.NOT_REPLIED,
    mc.SUPERVISED,  # phone and written together
)
PERIOD_RATES: tuple[Rate, ...] = (mc.SATISFACTION_RATE,)
GAUGES: tuple[OrderCount, ...] = (mc.OPEN_ORDERS, mc.DUE_SOON, mc.OVERDUE)
# Orders due for supervision (督办) and not supervised yet: events move it, not the clock.
SUPERVISION_GAUGES: tuple[Metric, ...] = (mc.AWAITING_SUPERVISION,)
# Every figure of a unit's row read at an instant rather than summed over a period.
NOW_GAUGES: tuple[Metric, ...] = (*GAUGES, *SUPERVISION_GAUGES)
# The gauges a past day's view shows as of now, not as of that day's end: ``order_states`` keeps
# whether an order has been supervised, not when, so an order supervised after that day cannot
# be told from one never awaiting; the page says so in its history note.
AS_OF_NOW: tuple[Metric, ...] = SUPERVISION_GAUGES
PERIODS: tuple[tuple[str, str], ...] = (("today", "今日"), ("month", "本月"))
# Also in the snapshot (for scripts and charts), not columns of the page: rolling 7 and 30 days.
ROLLING: tuple[tuple[str, str], ...] = (("days7", "近7日"), ("days30", "近30日"))
# The windowed counts behind the period columns (a total's parts), as the windows hold them.
PERIOD_STORED = tuple(m for m in mc.WINDOWED if m.name in mc.stored_names(PERIOD_COUNTS))


@dataclass(frozen=True)
class Column:
    """A column of the screen's table: a catalogue metric, labelled by it; ``col`` is the
    page's cell and sort key where it is not the metric's name."""

    metric: Metric
    col: str | None = None

    def to_json(self) -> dict[str, Any]:
        m = self.metric
        out: dict[str, Any] = {"col": self.col or m.name, "metric": m.name, "label": m.short, "bulletin_label": m.label}
        out["per_period"] = m not in NOW_GAUGES
        if not out["per_period"]:
            out["past_day_as_of_now"] = m in AS_OF_NOW
        if isinstance(m, Rate):
            out["numerator"] = [p.name for p in m.numerator]
            out["denominator"] = m.denominator.name
        return out


# Left to right. The satisfaction rate's cells have been ``satisfaction`` since the page shipped.
COLUMNS: tuple[Column, ...] = (
    Column(mc.DISPATCHED),
    *(Column(g) for g in GAUGES),
    Column(mc.RETURNED),
    Column(mc.VISITS),
    Column(mc.SATISFACTION_RATE, col="satisfaction"),
    Column(mc.NOT_REPLIED),
    Column(mc.SUPERVISED),
    *(Column(g) for g in SUPERVISION_GAUGES),
)

COUNTS = f"""
SELECT unit_id, {select_sums(PERIOD_STORED)}
FROM {{db}}.unit_windows FINAL
WHERE day >= %(first)s AND day <= %(last)s AND unit_id != {CITY}
GROUP BY unit_id
"""

# The orders open at ``cutoff`` (first dispatched by then, not completed before it), each at
# its current unit and deadline, by status at ``now``; next_due / next_due_soon: when the
# clock alone will next move a figure.
_AS_OF = f"fromUnixTimestamp64Milli(toInt64(%(cutoff_ms)s), '{TZ.key}')"  # the office's time zone
_NOW = f"fromUnixTimestamp64Milli(toInt64(%(now_ms)s), '{TZ.key}')"
OPEN_ORDERS = f"""
SELECT unit_id,
       {select_counts(GAUGES)},
       minIfOrNull(toUnixTimestamp64Milli(due), due >= {_NOW}) AS next_due_ms,
       minIfOrNull(toUnixTimestamp64Milli(due) - %(soon_s)s * 1000,
                   due >= {_NOW} + toIntervalSecond(%(soon_s)s)) AS next_due_soon_ms
FROM (
    {
    order_rows(
        now=_NOW,
        soon="%(soon_s)s",
        done="false",
        where=f"cohort_day <= %(day)s AND (completed_at IS NULL OR completed_at >= {_AS_OF})",
    )
}
)
GROUP BY unit_id
"""

# Months with data, before the current one: their bulletins are final. Read off the
# partitions of the day windows, not their rows.
# The orders awaiting supervision per unit, as the order states hold them now (AS_OF_NOW).
AWAITING = f"""
SELECT unit_id, count() AS {mc.AWAITING_SUPERVISION.name}
FROM {{db}}.order_states FINAL
WHERE supervision_due IS NOT NULL AND NOT supervised AND unit_id != ''
GROUP BY unit_id
"""

MONTHS = """
SELECT DISTINCT partition
FROM system.parts
WHERE database = '{db}' AND table = 'unit_windows' AND active
"""


class LiveFigures(Protocol):
    """What the agents hold for the screen: day windows summed, open orders by deadline."""

    def totals(self, first: date, last: date) -> dict[str, dict[str, int]]: ...

    def gauges(self, now: float) -> Reading: ...

    def months(self) -> set[int]: ...

    def awaiting_supervision(self) -> dict[str, list[dict[str, str]]]: ...

    def series(self, unit: str | None, first: date, last: date) -> list[tuple[date, dict[str, int]]]: ...


class Figures(Tally):
    """Counts over one period (a day, or the month to date) for one unit."""

    counted = PERIOD_COUNTS

    def to_json(self) -> dict[str, Any]:
        return {**self.counts(), **{r.name: r.of(self) for r in PERIOD_RATES}}


class UnitLive(Tally):
    """One row of the screen: a unit's counts today and this month, and its orders now (the gauges)."""

    counted = NOW_GAUGES
    unit_id: str
    name: str
    group: str
    order: int
    today: Figures
    month: Figures
    days7: Figures
    days30: Figures

    def __init__(
        self,
        unit_id: str,
        name: str,
        group: str,
        order: int,
        today: Figures | None = None,
        month: Figures | None = None,
        **gauges: int,
    ) -> None:
        super().__init__(**gauges)
        self.unit_id, self.name, self.group, self.order = unit_id, name, group, order
        self.today = today if today is not None else Figures()
        self.month = month if month is not None else Figures()
        self.days7, self.days30 = Figures(), Figures()

    @property
    def low_satisfaction(self) -> bool:
        """Below the office's low cut-off over the month to date, as the bulletin's list counts it
        (exactly; no visits: no verdict)."""
        satisfied, visits = mc.SATISFACTION_RATE.terms(self.month)
        return visits > 0 and satisfied < current_office().bulletin.satisfaction_lists.low * visits

    def to_json(self) -> dict[str, Any]:
        return {
            "unit_id": self.unit_id,
            "name": self.name,
            "group": self.group,
            "order": self.order,
            "today": self.today.to_json(),
            "month": self.month.to_json(),
            **{period: getattr(self, period).to_json() for period, _ in ROLLING},
            **self.counts(),
            "flags": {"low_satisfaction": self.low_satisfaction, "overdue": self[mc.OVERDUE] > 0},
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnitLive) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


def _number(value: Decimal) -> int | float:
    """A JSON number: whole where whole (``50``, not ``50.0``)."""
    return int(value) if value == value.to_integral_value() else float(value)


def screen() -> dict[str, Any]:
    """What the page is told about its columns: the catalogue's names and labels, and the thresholds."""
    return {
        "unit_label": mc.UNIT_LABEL,
        "columns": [c.to_json() for c in COLUMNS],
        "periods": [{"key": key, "label": label} for key, label in PERIODS],
        "rolling": [{"key": key, "label": label} for key, label in ROLLING],
        "low_satisfaction_percent": _number(current_office().bulletin.satisfaction_lists.low * 100),
        "due_soon_s": DUE_SOON_S,
        "timezone": TZ.key,  # the office's: the page shows times as the office reads them
    }


@dataclass
class Snapshot:
    """Every unit's figures for one day, as of one instant."""

    day: date
    as_of: datetime
    live: bool
    units: list[UnitLive]
    groups: list[str]
    closed_months: list[str]
    next_change_at: float | None = None  # epoch seconds when the clock alone changes due-soon/overdue

    def to_json(self, only: Collection[str] | None = None) -> dict[str, Any]:
        """The snapshot as sent; ``only`` limits it to those units, totals included."""
        units = [u for u in self.units if only is None or u.unit_id in only]
        total = UnitLive("total", "合计", "", 0)
        for u in units:
            total.today += u.today
            total.month += u.month
            total.days7 += u.days7
            total.days30 += u.days30
            total += u
        return {
            "date": self.day.isoformat(),
            "as_of": self.as_of.isoformat(timespec="seconds"),
            "live": self.live,
            "groups": self.groups,
            "units": [u.to_json() for u in units],
            "total": total.to_json(),
            "closed_months": self.closed_months,
            "bulletins": [
                {"month": m, "docx": f"/bulletin/{m}?format=docx", "csv": f"/bulletin/{m}?format=csv"}
                for m in self.closed_months
            ],
            "screen": screen(),
        }


def today(now: datetime) -> date:
    """The hotline's day: the office's local date of ``now``."""
    return now.astimezone(TZ).date()


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), TZ)


def as_of(day: date, now: datetime) -> datetime:
    """The instant a view of ``day`` shows: now for today, the end of the day otherwise."""
    return now.astimezone(TZ) if day == today(now) else end_of_day(day)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _rows(registry: Registry) -> dict[str, UnitLive]:
    """Every registered unit, activity or not: the screen shows all of them."""
    return {u.id: UnitLive(u.id, u.name, u.group, u.order) for u in registry}


def _unit(rows: dict[str, UnitLive], unit_id: str) -> UnitLive:
    """A unit the registry does not know (renamed, retired) still shows, at the end."""
    if unit_id not in rows:
        rows[unit_id] = UnitLive(unit_id, unit_id, "", 10_000)
    return rows[unit_id]


def _add_counts(rows: dict[str, UnitLive], period: str, totals: dict[str, dict[str, int]]) -> None:
    names = [m.name for m in PERIOD_STORED]
    for unit_id, counts in totals.items():
        figures: Figures = getattr(_unit(rows, unit_id), period)
        for name in names:
            if counts.get(name):
                figures.add(name, counts[name])


def periods(day: date) -> dict[str, tuple[date, date]]:
    """Each period of the screen as a span of days ending on ``day``."""
    return {
        "today": (day, day),
        "month": (day.replace(day=1), day),
        "days7": (day - timedelta(days=6), day),
        "days30": (day - timedelta(days=29), day),
    }


def read_counts(db: Queryable, day: date, rows: dict[str, UnitLive]) -> None:
    """Each period's counts per unit from the day windows in ClickHouse (a past day's view)."""
    for period, (first, last) in periods(day).items():
        found = db.query_rows(COUNTS, {"first": first, "last": last})
        _add_counts(
            rows, period, {str(r["unit_id"]): {k: int(v) for k, v in r.items() if k != "unit_id"} for r in found}
        )


def read_open_orders(db: Queryable, now: datetime, cutoff: datetime, rows: dict[str, UnitLive]) -> float | None:
    """Fill open/due-soon/overdue from the order states; return when the clock alone next changes one."""
    day = (cutoff - timedelta(microseconds=1)).astimezone(TZ).date()
    params = {"now_ms": _ms(now), "cutoff_ms": _ms(cutoff), "soon_s": DUE_SOON_S, "day": day}
    changes: list[int] = []
    for r in db.query_rows(OPEN_ORDERS, params):
        u = _unit(rows, str(r["unit_id"]))
        for g in GAUGES:
            u[g] = int(r[g.name])
        changes += [int(r[t]) for t in ("next_due_ms", "next_due_soon_ms") if r[t] is not None]
    return min(changes) / 1000 if changes else None


def read_awaiting(db: Queryable, rows: dict[str, UnitLive]) -> None:
    """Fill the orders awaiting supervision from the order states: as of now, whatever day is
    viewed (:data:`AS_OF_NOW`: when an order was supervised is not stored)."""
    for r in db.query_rows(AWAITING):
        _unit(rows, str(r["unit_id"]))[mc.AWAITING_SUPERVISION] = int(r[mc.AWAITING_SUPERVISION.name])


def _add_awaiting(rows: dict[str, UnitLive], awaiting: dict[str, list[dict[str, str]]]) -> None:
    for unit_id, orders in awaiting.items():
        _unit(rows, unit_id)[mc.AWAITING_SUPERVISION] = len(orders)


def closed(months: set[int], now: datetime) -> list[str]:
    current = today(now)
    key = current.year * 100 + current.month
    return [f"{m // 100:04d}-{m % 100:02d}" for m in sorted(months, reverse=True) if m < key]


def closed_months(db: Queryable, now: datetime) -> list[str]:
    return closed({int(r["partition"]) for r in db.query_rows(MONTHS) if str(r["partition"]).isdigit()}, now)


def groups_of(registry: Registry) -> list[str]:
    """The registry's unit groups, in the order their first unit appears."""
    return list(dict.fromkeys(u.group for u in registry))


def build_snapshot(db: Queryable, registry: Registry, day: date | None, now: datetime) -> Snapshot:
    """Every unit's figures for ``day`` (today when None) as of ``now`` or the end of that day,
    read from ClickHouse's day windows and order states (past days, and where no agent runs).

    The orders awaiting supervision are those of now even for a past day: ``order_states`` records
    that an order was supervised but not when (:data:`AS_OF_NOW`), so that day's figure cannot be
    answered exactly; the column says so (``past_day_as_of_now``) and so does the page."""
    live = day is None or day == today(now)
    shown = today(now) if day is None else day
    instant = as_of(shown, now)
    registry = registry.at(shown)  # the units in force that day
    rows = _rows(registry)
    read_counts(db, shown, rows)
    next_change = read_open_orders(db, instant, end_of_day(shown) if not live else instant, rows)
    read_awaiting(db, rows)
    units = sorted(rows.values(), key=lambda u: (u.order, u.unit_id))
    # Another day's view is fixed at its end: the clock moves nothing there.
    clock_change = next_change if live else None
    return Snapshot(shown, instant, live, units, groups_of(registry), closed_months(db, now), clock_change)


def build_live_snapshot(figures: LiveFigures, registry: Registry, now: datetime) -> Snapshot:
    """Today's figures from the agents' tables: day windows and open orders, no ClickHouse read."""
    shown = today(now)
    registry = registry.at(shown)  # the units in force today
    rows = _rows(registry)
    for period, (first, last) in periods(shown).items():
        _add_counts(rows, period, {u: c for u, c in figures.totals(first, last).items() if u != mc.CITY})
    reading = figures.gauges(now.timestamp())
    for unit_id, gauges in reading.gauges.items():
        u = _unit(rows, unit_id)
        for g in GAUGES:
            u[g] = gauges[g.name]
    _add_awaiting(rows, figures.awaiting_supervision())
    units = sorted(rows.values(), key=lambda u: (u.order, u.unit_id))
    return Snapshot(
        shown, now.astimezone(TZ), True, units, groups_of(registry), closed(figures.months(), now), reading.next_change
    )


TREND_DAYS = 30  # the screen's trend: the last 30 days, as the rolling 30-day figures
# The longest trend asked for: within the days the agents hold (``streams.state.LIVE_DAYS``, 40).
TREND_MAX_DAYS = 31


def trend_columns() -> list[dict[str, Any]]:
    """The screen's per-period columns: what a day of the trend carries, named and labelled as the table is."""
    return [c.to_json() for c in COLUMNS if c.metric not in NOW_GAUGES]


def build_trend(figures: LiveFigures, unit: str | None, days: int, now: datetime) -> dict[str, Any]:
    """Per day of the last ``days`` (today included), the counts and rates of the screen's period
    columns for ``unit`` (every unit summed when None), from the agents' day windows: the same sums
    the table's today column shows, one per day, so a chart of them agrees with the table; no
    ClickHouse read. A day without activity is a day of zeros, not a gap."""
    last = today(now)
    first = last - timedelta(days=days - 1)
    out = []
    for day, counts in figures.series(unit, first, last):
        f = Figures()
        for m in PERIOD_STORED:
            if counts.get(m.name):
                f.add(m.name, counts[m.name])
        out.append({"date": day.isoformat(), **f.to_json()})
    return {
        "unit_id": unit,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "days": out,
        "columns": trend_columns(),
    }
