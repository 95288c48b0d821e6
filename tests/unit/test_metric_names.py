"""The bulletin, the live screen and the Grafana dashboard name each figure from the metric
catalogue (hotline.schemas.metrics): no metric name or label appears there that the
catalogue does not define, and each one they show is spelled and labelled as it says."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from hotline.deploy.grafana import dashboard
from hotline.reports import live
from hotline.reports.bulletin import COLUMNS, TABLE, Bulletin, build_bulletin
from hotline.reports.render import render
from hotline.schemas import metrics as m
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.deadlines import TZ
from tests.factories import event, folded

REPO = Path(__file__).resolve().parents[2]
NAMES = set(m.BY_NAME)
LABELS = {x.label for x in m.CATALOGUE}
SHORTS = {x.short for x in m.CATALOGUE}
NOW = datetime(2019, 11, 20, 10, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    """A few days of November 2019: orders of two units, visits, supervision, calls."""
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path_factory.mktemp('names') / 'ch'}"))
    s.migrate()
    at = "2019-11-{:02d}T09:00:00+08:00".format
    events = [
        event("order.dispatched", order_id="O1", occurred_at=at(4), due_at=at(8)),
        event("order.completed", order_id="O1", occurred_at=at(6)),
        event("order.visited", order_id="O1", occurred_at=at(7), outcome="unsatisfied", citizen_replied=False),
        event("order.supervised", order_id="O1", occurred_at=at(8), method="phone"),
        event("order.supervision_replied", order_id="O1", occurred_at=at(9), method="phone", satisfied=True),
        event("order.dispatched", order_id="O2", occurred_at=at(19), due_at=at(21)),
        event("order.dispatched", order_id="O3", unit_id="police", occurred_at=at(5), due_at=at(10)),
        event("order.returned", order_id="O3", unit_id="police", occurred_at=at(6)),
        event("call.received", occurred_at=at(4)),
        event("call.handled", occurred_at=at(4)),
    ]
    s.write(folded(events, topic="t"))
    yield s
    s.close()  # chDB holds one path per process


@pytest.fixture(scope="module")
def bulletin(store: ClickHouseStore) -> Bulletin:
    return build_bulletin(store, "2019-11", printed={})


def test_the_bulletins_columns_are_catalogue_metrics_with_their_labels(bulletin: Bulletin) -> None:
    data = bulletin.to_json()
    assert data["columns"] == {"unit": m.UNIT_LABEL, **{x.name: x.label for x in TABLE}}
    assert all(m.metric(key).label == label for key, label in COLUMNS[1:])
    for row in [*data["units"], data["total"]]:
        assert set(row) - {"unit", "unit_id"} == {x.name for x in TABLE}
    for counts in data["counts"]:
        assert set(counts) - {"unit_id", "name", "group", "order"} == {x.name for x in m.UNIT_COUNTS}
    header = next(csv.reader(io.StringIO(render(bulletin, "csv").decode())))
    assert header == [key for key, _ in COLUMNS]
    md = render(bulletin, "md").decode()
    assert "| " + " | ".join([m.UNIT_LABEL, *(x.label for x in TABLE)]) + " |" in md


def test_the_bulletins_figures_read_the_catalogues_rules(bulletin: Bulletin) -> None:
    (yuhu,) = [u for u in bulletin.units if u.unit_id == "yuhu"]
    assert (yuhu.dispatched, yuhu.completed_on_time, yuhu.not_replied, yuhu.phone_supervision_satisfied) == (2, 1, 1, 1)
    assert bulletin.headline["supervision"]["phone"] == {"issued": 1, "satisfied_after": 1}
    assert bulletin.headline["calls"]["connection_rate"] == m.CONNECTION_RATE.of(
        {"calls_answered": 1, "calls_received": 1}
    )


def _snapshot(store: ClickHouseStore) -> dict[str, Any]:
    return live.build_snapshot(store, default_registry(), date(2019, 11, 20), NOW).to_json()


def test_the_screens_figures_are_catalogue_metrics(store: ClickHouseStore) -> None:
    snap = _snapshot(store)
    identity = {"unit_id", "name", "group", "order", "flags"}
    periods = [p["key"] for p in (*snap["screen"]["periods"], *snap["screen"]["rolling"])]
    for unit in [*snap["units"], snap["total"]]:
        assert set(unit) - identity - set(periods) == {g.name for g in live.NOW_GAUGES} <= NAMES
        for period in periods:
            assert set(unit[period]) == {x.name for x in (*live.PERIOD_COUNTS, *live.PERIOD_RATES)} <= NAMES
    yuhu = next(u for u in snap["units"] if u["unit_id"] == "yuhu")
    assert (yuhu["month"]["dispatched"], yuhu["month"]["supervised"], yuhu["open"], yuhu["overdue"]) == (2, 1, 1, 0)
    assert yuhu[m.AWAITING_SUPERVISION.name] == 0  # O1's one unsatisfied visit: not due for supervision


def test_the_screens_columns_carry_the_catalogues_labels(store: ClickHouseStore) -> None:
    screen = _snapshot(store)["screen"]
    assert screen["unit_label"] == m.UNIT_LABEL
    shown = set()
    for column in screen["columns"]:
        x = m.metric(column["metric"])
        assert (column["label"], column["bulletin_label"]) == (x.short, x.label)
        assert column["per_period"] is (x not in live.NOW_GAUGES)
        if not column["per_period"]:  # a past day's view shows it as of that day's end, or says it does not
            assert column["past_day_as_of_now"] is (x in live.AS_OF_NOW)
        if isinstance(x, m.Rate):
            assert column["numerator"] == [p.name for p in x.numerator]
            assert column["denominator"] == x.denominator.name
        shown.add(x.name)
    # Every figure the snapshot sends has its column, or is a rate's term.
    terms = set(m.stored_names(m.metric(c["metric"]) for c in screen["columns"]))
    assert {x.name for x in (*live.PERIOD_COUNTS, *live.NOW_GAUGES)} <= shown | terms
    assert m.AWAITING_SUPERVISION.name in shown


def test_the_monitor_page_names_no_figure_itself() -> None:
    """Its columns, cards, notes and ticker take their labels from the snapshot's columns."""
    page = (REPO / "hotline" / "static" / "monitor.html").read_text(encoding="utf-8")
    page = page.replace("市级督办账号", "")  # the office's account, not the 督办 figure
    assert [label for label in sorted(LABELS | SHORTS) if label in page] == []
    for period in ("今日", "本月"):
        assert period not in page


# Columns of the dashboard's SQL that are not figures: the unit's dimensions, an order's row,
# the two joined tables.
STRUCTURAL = {"unit", "unit_id", "name", "unit_group", "unit_order", "order_id", "first_dispatch", "o", "e"}
STRUCTURAL |= {"last_dispatch", "final_unit", "due", "completions", "done", "completed_at", "status"}


def test_the_grafana_dashboard_names_figures_from_the_catalogue() -> None:
    board = json.loads((REPO / "deploy" / "grafana" / "hotline-monthly.json").read_text(encoding="utf-8"))
    titles = {m.UNIT_LABEL} | {dashboard.column(x) for x in m.CATALOGUE}
    shown: list[list[str]] = []
    for panel in board["panels"]:
        for target in panel["targets"]:
            sql = target["rawSql"]
            quoted = re.findall(r'AS "([^"]+)"', sql)
            assert set(quoted) <= titles, set(quoted) - titles
            shown.append(quoted)
            plain = set(re.findall(r"\bAS ([A-Za-z_]\w*)", sql))
            assert plain <= NAMES | STRUCTURAL, plain - NAMES - STRUCTURAL
        for override in panel["fieldConfig"]["overrides"]:
            assert override["matcher"]["options"] in titles
    assert shown == [
        [dashboard.column(x) for x in dashboard.TOTALS],
        [m.UNIT_LABEL, *(dashboard.column(x) for x in dashboard.TABLE)],
    ]
