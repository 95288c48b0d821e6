"""The live monitor's figures (reports/live.py) and push logic (hotline/monitor.py) on a real chDB.

Events go through the stream's own fold (``apply_order_event``) into the store, as the
worker writes them, so the counters and audit rows are the real ones. The seed month
checks the two monthly readings against the bulletin: the monitor's month-to-date on
the last day of the month, and the Grafana dashboard's SQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hotline import seed
from hotline.deploy.grafana import dashboard
from hotline.generate import generate
from hotline.monitor import LiveMonitor, Watcher, figures_key, parse_day, recent_alerts, trend_answer
from hotline.reports import live
from hotline.reports.bulletin import build_bulletin
from hotline.reports.live import Figures, Snapshot, UnitLive, build_live_snapshot, build_snapshot
from hotline.schemas import metrics as mc
from hotline.schemas.events import AlertAcknowledged, dump_event
from hotline.schemas.office import current_office
from hotline.schemas.registry import default_registry, parse_registry
from hotline.settings import Settings
from hotline.sinks.base import Batch, WindowRow
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams import history
from hotline.streams.alerts import AlertFeed
from hotline.streams.deadlines import DEFAULT_LIMITS, TZ
from hotline.streams.gauges import AgentFigures, AwaitingSupervision, OpenOrders
from hotline.streams.history import Tally
from hotline.streams.processing import Record, Source
from tests.factories import event, raw
from tests.unit.schemas.test_registry import REORGANISED

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=TZ)  # a Tuesday, mid-morning in 湘潭


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    s.migrate()
    yield s
    s.close()  # chDB holds one path per process at a time


class Loader:
    """Folds and writes events with the stream's own engine (``streams/history.Loader``), one
    batch per call, and keeps the agents' live figures (day windows, open orders) as a worker does."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store
        self.engine = history.Loader(store, default_registry(), dict(DEFAULT_LIMITS), 0)
        self.open_orders = OpenOrders()
        self.awaiting = AwaitingSupervision()
        self.offset = 0
        self.positions: dict[tuple[str, int], int] = {}

    @property
    def figures(self) -> AgentFigures:
        return AgentFigures(self.engine.windows, self.open_orders, set(), self.awaiting)

    def load(self, records: list[bytes]) -> Batch:
        batch = Batch()
        for start in range(0, len(records), 5000):
            chunk = records[start : start + 5000]
            sources = [Source("hotline.orders", 0, self.offset + i) for i in range(len(chunk))]
            self.offset += len(chunk)
            folded = self.engine.load([Record(s, None, r) for s, r in zip(sources, chunk, strict=True)], Tally())
            assert not folded.batch.deadletters, folded.batch.deadletters
            for order_id, state in folded.orders.items():
                self.open_orders.follow(order_id, state)
                self.awaiting.follow(order_id, state)
            batch.events += folded.batch.events
            batch.windows += folded.batch.windows
            batch.orders += folded.batch.orders
        self.engine.finish()  # stored before the test reads ClickHouse
        self.positions[("hotline.orders", 0)] = self.offset - 1
        return batch

    def write(self, events: list[dict[str, Any]]) -> Batch:
        return self.load([raw(e) for e in events])


def at(day: int, hour: int, minute: int = 0) -> str:
    return datetime(2026, 3, day, hour, minute, tzinfo=TZ).isoformat()


def march(loader: Loader) -> Batch:
    """雨湖区 and 市公安局 in March 2026, as of 10:00 on the 10th (see the expected figures below)."""
    events = [
        event("order.dispatched", order_id="A1", occurred_at=at(10, 9), due_at=at(10, 12)),  # due within 24 h
        event("order.dispatched", order_id="A2", occurred_at=at(9, 9), due_at=at(10, 8)),  # overdue, yesterday's
        event("order.dispatched", order_id="A3", occurred_at=at(10, 8), due_at=at(13, 8)),
        event("order.completed", order_id="A3", occurred_at=at(10, 9, 30)),  # closed
        event("order.dispatched", order_id="A4", occurred_at=at(2, 9), due_at=at(20, 9)),  # open, far off
        event("order.dispatched", order_id="A5", occurred_at=at(10, 8), due_at=at(11, 9)),
        event("order.returned", order_id="A5", occurred_at=at(10, 8, 30)),
        event("order.dispatched", order_id="A5", unit_id="police", occurred_at=at(10, 9), due_at=at(12, 9)),
        event("order.dispatched", order_id="A6", occurred_at=at(10, 7), due_at=at(10, 9)),
        event("order.completed", order_id="A6", occurred_at=at(10, 8)),
        event("order.dispatched", order_id="A6", occurred_at=at(10, 8, 30), due_at=at(10, 9, 30)),  # reopened
        event("order.visited", order_id="A3", occurred_at=at(10, 9, 40), outcome="satisfied"),
        event("order.visited", order_id="A3", occurred_at=at(10, 9, 45), outcome="unsatisfied", citizen_replied=False),
        event("order.visited", order_id="A2", occurred_at=at(5, 10), outcome="satisfied"),
        event("order.visited", order_id="A2", occurred_at=at(5, 11), outcome="unreached"),
        event("order.supervised", order_id="A2", occurred_at=at(10, 9, 50), method="phone"),
        event("order.supervised", order_id="A4", occurred_at=at(4, 9), method="written"),
        event("order.dispatched", order_id="F1", occurred_at="2026-02-27T09:00:00+08:00", due_at=at(6, 9)),
        event("order.completed", order_id="F1", occurred_at=at(5, 9)),
    ]
    return loader.write(events)


def units(snapshot: Snapshot) -> dict[str, UnitLive]:
    return {u.unit_id: u for u in snapshot.units}


def test_counts_today_and_month_to_date_per_unit(store: ClickHouseStore) -> None:
    march(Loader(store))
    snap = build_snapshot(store, default_registry(), None, NOW)
    assert (snap.day, snap.live, snap.as_of) == (date(2026, 3, 10), True, NOW)
    yuhu, police = units(snap)["yuhu"], units(snap)["police"]
    # A5 went back and on to 市公安局: it counts there, in its cohort day.
    assert yuhu.today == Figures(dispatched=3, returned=1, visits=2, visits_satisfied=1, not_replied=1, supervised=1)
    assert yuhu.month == Figures(dispatched=5, returned=1, visits=3, visits_satisfied=2, not_replied=1, supervised=2)
    assert police.today == police.month == Figures(dispatched=1)
    row = yuhu.to_json()
    assert (row["today"]["satisfaction_rate"], row["month"]["satisfaction_rate"]) == ("50.00%", "66.67%")
    assert snap.closed_months == ["2026-02"]


def test_open_orders_follow_the_latest_dispatch_and_the_clock(store: ClickHouseStore) -> None:
    march(Loader(store))
    snap = build_snapshot(store, default_registry(), None, NOW)
    yuhu, police = units(snap)["yuhu"], units(snap)["police"]
    # Open: A1 (due 12:00), A2 (overdue), A4 (due on the 20th), A6 (re-dispatched after its completion).
    assert (yuhu.open, yuhu.due_soon, yuhu.overdue) == (4, 1, 2)
    assert (police.open, police.due_soon, police.overdue) == (1, 0, 0)
    assert yuhu.to_json()["flags"] == {"low_satisfaction": False, "overdue": True}
    # The clock alone next changes a figure when A1 falls due at noon.
    assert snap.next_change_at == datetime(2026, 3, 10, 12, 0, tzinfo=TZ).timestamp()

    later = units(build_snapshot(store, default_registry(), None, NOW + timedelta(hours=2, minutes=30)))
    assert (later["yuhu"].open, later["yuhu"].due_soon, later["yuhu"].overdue) == (4, 0, 3)
    tomorrow = units(build_snapshot(store, default_registry(), None, NOW + timedelta(hours=23, minutes=30)))
    assert tomorrow["police"].due_soon == 1  # A5 due on the 12th at 09:00, within 24 h of 09:30 on the 11th
    assert (tomorrow["yuhu"].today.dispatched, tomorrow["yuhu"].month.dispatched) == (0, 5)


def test_another_day_is_read_as_of_its_end(store: ClickHouseStore) -> None:
    march(Loader(store))
    snap = build_snapshot(store, default_registry(), date(2026, 3, 9), NOW)
    assert (snap.live, snap.as_of, snap.next_change_at) == (False, datetime(2026, 3, 10, tzinfo=TZ), None)
    yuhu = units(snap)["yuhu"]
    assert (yuhu.today.dispatched, yuhu.month.dispatched, yuhu.month.visits, yuhu.month.supervised) == (1, 2, 1, 1)
    # At midnight A2 (due 08:00 on the 10th) was due within 24 h and A4 open; nothing dispatched later exists.
    assert (yuhu.open, yuhu.due_soon, yuhu.overdue) == (2, 1, 0)
    assert units(snap)["police"].open == 0


def test_a_unit_scope_gets_its_own_row_and_totals_only(store: ClickHouseStore) -> None:
    march(Loader(store))
    snap = build_snapshot(store, default_registry(), None, NOW)
    everyone = snap.to_json()
    assert len(everyone["units"]) == 54 and everyone["total"]["today"]["dispatched"] == 4
    assert everyone["total"]["overdue"] == 2
    assert everyone["groups"] == ["县市区园区", "市直部门", "国有企业", "公用事业"]
    police = snap.to_json({"police"})
    assert [u["unit_id"] for u in police["units"]] == ["police"]
    assert police["total"]["today"]["dispatched"] == 1 and police["total"]["overdue"] == 0
    text = json.dumps(police, ensure_ascii=False)
    assert "yuhu" not in text and "雨湖区" not in text
    assert police["bulletins"] == [
        {"month": "2026-02", "docx": "/bulletin/2026-02?format=docx", "csv": "/bulletin/2026-02?format=csv"}
    ]


def test_every_registered_unit_shows_and_an_unknown_one_too(store: ClickHouseStore) -> None:
    store.write(Batch(windows=[WindowRow("ghost", date(2026, 3, 10), "hotline.orders", 0, 1, {"dispatched": 1})]))
    snap = build_snapshot(store, default_registry(), None, NOW)
    assert len(snap.units) == 55 and snap.units[0].unit_id == "yuhu" and snap.units[-1].unit_id == "ghost"
    assert all(u.open == u.today.dispatched == 0 for u in snap.units[:-1])
    assert snap.units[-1].today.dispatched == 1 and snap.closed_months == []


def test_a_replayed_batch_changes_no_figure(store: ClickHouseStore) -> None:
    batch = march(Loader(store))
    before = build_snapshot(store, default_registry(), None, NOW).to_json()
    store.write(batch)
    assert build_snapshot(store, default_registry(), None, NOW).to_json() == before


def supervision(loader: Loader) -> None:
    """Two unsatisfied visits make an order due for supervision (督办) until it is supervised."""
    unsatisfied = {"outcome": "unsatisfied", "citizen_replied": True}
    loader.write(
        [
            event("order.dispatched", order_id="S1", occurred_at=at(3, 9), due_at=at(20, 9)),
            event("order.visited", order_id="S1", occurred_at=at(5, 9), **unsatisfied),
            event("order.visited", order_id="S1", occurred_at=at(9, 9), **unsatisfied),  # due on the 9th
            event("order.dispatched", order_id="S2", occurred_at=at(3, 9), due_at=at(20, 9)),
            event("order.visited", order_id="S2", occurred_at=at(5, 9), **unsatisfied),
            event("order.visited", order_id="S2", occurred_at=at(6, 9), **unsatisfied),
            event("order.supervised", order_id="S2", occurred_at=at(9, 9, 30), method="written"),
            event("order.dispatched", order_id="S3", unit_id="police", occurred_at=at(3, 9), due_at=at(20, 9)),
            event("order.visited", order_id="S3", unit_id="police", occurred_at=at(10, 8), **unsatisfied),
            event("order.visited", order_id="S3", unit_id="police", occurred_at=at(10, 9), **unsatisfied),
            event("order.dispatched", order_id="S4", occurred_at=at(3, 9), due_at=at(20, 9)),
            event("order.visited", order_id="S4", occurred_at=at(5, 9), **unsatisfied),  # one: not due
        ]
    )


def test_orders_awaiting_supervision_are_a_gauge_column_of_the_screen(store: ClickHouseStore) -> None:
    loader = Loader(store)
    supervision(loader)
    registry = default_registry()
    column = next(c for c in live.screen()["columns"] if c["metric"] == mc.AWAITING_SUPERVISION.name)
    assert (column["label"], column["per_period"], column["past_day_as_of_now"]) == ("待督办", False, True)
    agents = build_live_snapshot(loader.figures, registry, NOW)
    stored = build_snapshot(store, registry, None, NOW)
    for snap in (agents, stored):  # the agents' reading and ClickHouse's agree
        rows = units(snap)
        assert (rows["yuhu"].awaiting_supervision, rows["police"].awaiting_supervision) == (1, 1), snap.live
        assert sum(u.awaiting_supervision for u in snap.units) == 2
        assert snap.to_json()["total"]["awaiting_supervision"] == 2
        assert snap.to_json({"police"})["total"]["awaiting_supervision"] == 1
    assert agents.to_json()["units"] == stored.to_json()["units"]
    # A past day shows the orders awaiting supervision now (when S2 was supervised is not stored):
    # on the 8th S1 was not due yet and S2 was awaiting, yet the view shows S1, not S2.
    past = units(build_snapshot(store, registry, date(2026, 3, 8), NOW))
    assert (past["yuhu"].awaiting_supervision, past["police"].awaiting_supervision) == (1, 1)


def test_low_satisfaction_means_below_half_over_the_month() -> None:
    def unit(satisfied: int, visits: int) -> UnitLive:
        return UnitLive("u", "u", "g", 1, month=Figures(visits=visits, visits_satisfied=satisfied))

    assert unit(0, 1).low_satisfaction and unit(49, 100).low_satisfaction
    assert not unit(1, 2).low_satisfaction and not unit(0, 0).low_satisfaction


def test_the_seed_month_to_date_and_the_grafana_sql_equal_the_bulletin(store: ClickHouseStore) -> None:
    loader = Loader(store)
    loader.load(generate(seed.TABLE, seed.HEADLINE))
    registry = default_registry()
    bulletin = build_bulletin(store, "2019-11", registry)
    month_end = units(build_snapshot(store, registry, date(2019, 11, 30), NOW))
    for u in bulletin.units:
        m = month_end[u.unit_id].month
        assert (m.dispatched, m.returned, m.visits, m.visits_satisfied, m.not_replied, m.supervised) == (
            u.dispatched,
            u.returned,
            u.visits,
            u.visits_satisfied,
            u.not_replied,
            u.phone_supervised + u.written_supervised,
        ), u.name

    def grafana(sql: str) -> list[tuple[Any, ...]]:
        return store.query(sql.replace("${database}", store.db).replace("${month}", "2019-11"))

    table = grafana(dashboard.per_unit_sql(registry))
    printed = [r for r in bulletin.rows()[:-1]]
    assert [r[0] for r in table] == [r["unit"] for r in printed]  # the bulletin's row order
    for row, want in zip(table, printed, strict=True):
        got = [str(v) if v is not None else "-" for v in row[1:5]] + [
            "-" if row[6] is None else str(row[6]),
            "-" if row[9] is None else f"{row[9]:.2f}%",
        ]
        expected = [want[k] for k in ("dispatched", "completed_on_time", "overdue", "returned", "visits")]
        assert got == [*expected, want["satisfaction_rate"]], want["unit"]
    ((dispatched, on_time, overdue, returned, visits, on_time_rate, satisfaction),) = grafana(
        dashboard.totals_sql(registry)
    )
    assert (dispatched, on_time, overdue, returned, visits) == (3297, 3265, 32, 301, 2251)
    assert (on_time_rate, satisfaction) == (99.03, 54.11)


def test_the_committed_dashboard_is_the_generated_one() -> None:
    path = REPO / "deploy" / "grafana" / "hotline-monthly.json"
    assert path.read_text(encoding="utf-8") == dashboard.render()
    board = json.loads(path.read_text(encoding="utf-8"))
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "database", "month"}
    for panel in board["panels"]:
        for target in [panel, *panel["targets"]]:
            assert target["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}


# -- hotline/monitor.py: what is pushed, when, and to whom ------------------------------------


class FakePipeline:
    """What the monitor uses of a Pipeline, with a real store and no Kafka."""

    def __init__(self, store: ClickHouseStore, loader: Loader) -> None:
        self.store = store
        self.registry = default_registry()
        self.positions = loader.positions
        self.feed = AlertFeed("alerts", {})
        self.loader = loader

    @property
    def figures(self) -> AgentFigures:
        return self.loader.figures

    async def in_store_thread(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


def _now_iso(**delta: float) -> str:
    return (datetime.now(TZ) + timedelta(**delta)).isoformat()


def _snapshots(watcher: Watcher) -> list[dict[str, Any]]:
    return [payload for kind, payload in watcher.take() if kind == "snapshot"]


def _dispatched(payload: dict[str, Any], unit_id: str) -> int:
    return int(next(u for u in payload["units"] if u["unit_id"] == unit_id)["today"]["dispatched"])


async def test_the_monitor_pushes_a_change_once_and_only_to_whom_it_concerns(store: ClickHouseStore) -> None:
    loader = Loader(store)
    monitor = LiveMonitor(FakePipeline(store, loader), min_interval_s=0.0)  # type: ignore[arg-type]
    board, yuhu = monitor.watch(None, "yuhu")
    same_board, office = monitor.watch(None, "*")
    assert same_board is board
    await monitor.prime(board, yuhu)
    await monitor.prime(board, office)
    (first,) = _snapshots(yuhu)
    assert [u["unit_id"] for u in first["units"]] == ["yuhu"] and _dispatched(first, "yuhu") == 0
    assert len(_snapshots(office)) == 1

    await monitor.tick()  # nothing was sunk: nothing is pushed
    assert _snapshots(yuhu) == [] and _snapshots(office) == []

    far = _now_iso(days=3)
    loader.write([event("order.dispatched", order_id="Q1", unit_id="police", occurred_at=_now_iso(), due_at=far)])
    await monitor.tick()
    assert _snapshots(yuhu) == []  # 市公安局's order changes nothing on 雨湖区's screen
    (pushed,) = _snapshots(office)
    assert _dispatched(pushed, "police") == 1

    loader.write([event("order.dispatched", order_id="Q2", occurred_at=_now_iso(), due_at=far)])
    await monitor.tick()
    (mine,) = _snapshots(yuhu)
    assert _dispatched(mine, "yuhu") == 1 and "police" not in json.dumps(mine)
    assert _dispatched(_snapshots(office)[0], "yuhu") == 1

    monitor.unwatch(board, yuhu)
    monitor.unwatch(board, office)
    assert monitor.boards == {}


async def test_an_acknowledgement_pushes_the_units_alert_counts_to_whom_it_concerns(store: ClickHouseStore) -> None:
    """Counted from the alert feed: pushed at the next tick, with nothing sunk and nothing read."""
    pipeline = FakePipeline(store, Loader(store))
    monitor = LiveMonitor(pipeline, min_interval_s=0.0)  # type: ignore[arg-type]
    pipeline.feed.note({"alert_id": "a1", "unit_id": "yuhu", "type": "alert.overdue"})
    board, yuhu = monitor.watch(None, "yuhu")
    _, police = monitor.watch(None, "police")
    await monitor.prime(board, yuhu)
    await monitor.prime(board, police)
    (first,) = _snapshots(yuhu)
    _snapshots(police)
    assert first["units"][0]["alerts"] == {"sent": 1, "acknowledged": 0, "waiting": 1}
    pipeline.feed._read(
        dump_event(AlertAcknowledged(event_id="k1", occurred_at=datetime.now(TZ), alert_id="a1", unit_id="yuhu"))
    )
    await monitor.tick()
    (pushed,) = _snapshots(yuhu)
    assert pushed["units"][0]["alerts"] == {"sent": 1, "acknowledged": 1, "waiting": 0}
    assert pushed["total"]["alerts"] == pushed["units"][0]["alerts"] and _snapshots(police) == []


async def test_alerts_reach_only_the_screens_that_may_see_them(store: ClickHouseStore) -> None:
    pipeline = FakePipeline(store, Loader(store))
    monitor = LiveMonitor(pipeline, min_interval_s=0.0)  # type: ignore[arg-type]
    old = {"alert_id": "a0", "unit_id": "yuhu", "type": "alert.due_soon"}
    pipeline.feed.note(old)
    _, yuhu = monitor.watch(None, "yuhu")
    _, police = monitor.watch(None, "police")
    assert yuhu.take() == [("alert", old)] and police.take() == []  # the recent ones, on connect
    forward = asyncio.ensure_future(monitor._forward_alerts())
    await asyncio.sleep(0)
    new = {"alert_id": "a1", "unit_id": "police", "type": "alert.overdue"}
    pipeline.feed.note(new)
    await asyncio.sleep(0)
    forward.cancel()
    assert yuhu.take() == [] and police.take() == [("alert", new)]
    assert recent_alerts([old, new], "*") == [new, old] and recent_alerts([old, new], "yuhu") == [old]


def test_a_watcher_keeps_only_the_latest_figures() -> None:
    w = Watcher("*")
    w.offer_snapshot({"units": [1], "as_of": "10:00"})
    w.offer_snapshot({"units": [2], "as_of": "10:01"})
    w.offer_snapshot({"units": [2], "as_of": "10:02"})  # same figures, later instant: not news
    assert w.take() == [("snapshot", {"units": [2], "as_of": "10:01"})]
    assert figures_key({"a": 1, "as_of": "x"}) == figures_key({"a": 1, "as_of": "y"})


def test_the_date_parameter() -> None:
    assert parse_day(None) is None and parse_day("") is None
    assert parse_day("2019-11-04") == date(2019, 11, 4)
    for bad in ("2019-11-4", "2019-13-01", "yesterday", "2019-11-04T00:00"):
        with pytest.raises(ValueError):
            parse_day(bad)


# -- /monitor/trend: a unit's screen counts per day, from the agents' day windows ----------------


def _day(body: dict[str, Any], day: str) -> dict[str, Any]:
    return next(d for d in body["days"] if d["date"] == day)


def test_the_trend_is_the_screens_counts_per_day_from_the_agents(store: ClickHouseStore) -> None:
    loader = Loader(store)
    march(loader)
    pipeline = FakePipeline(store, loader)
    status, body = trend_answer(pipeline, "*", {"unit": "yuhu", "days": "30"}, NOW)  # type: ignore[arg-type]
    assert status == 200 and (body["unit_id"], body["first"], body["last"]) == ("yuhu", "2026-02-09", "2026-03-10")
    assert [d["date"] for d in body["days"]] == [(date(2026, 2, 9) + timedelta(days=i)).isoformat() for i in range(30)]
    snap = build_live_snapshot(loader.figures, default_registry(), NOW).to_json()
    yuhu = next(u for u in snap["units"] if u["unit_id"] == "yuhu")
    assert {k: v for k, v in _day(body, "2026-03-10").items() if k != "date"} == yuhu["today"]
    assert _day(body, "2026-03-10")["satisfaction_rate"] == "50.00%"
    assert _day(body, "2026-02-27")["dispatched"] == 1  # F1, in its cohort day
    assert _day(body, "2026-03-01")["dispatched"] == 0  # a quiet day is zeros, not a gap
    march_days = [d for d in body["days"] if d["date"] >= "2026-03-01"]
    for name in ("dispatched", "returned", "visits", "visits_satisfied", "not_replied", "supervised"):
        assert sum(d[name] for d in march_days) == yuhu["month"][name], name
        assert sum(d[name] for d in body["days"]) == yuhu["days30"][name], name
    # Named and labelled as the table's period columns, from the catalogue.
    assert [c["metric"] for c in body["columns"]] == [c["metric"] for c in snap["screen"]["columns"] if c["per_period"]]
    assert all(c["label"] == mc.metric(c["metric"]).short for c in body["columns"])

    status, city = trend_answer(pipeline, "*", {"days": "7"}, NOW)  # type: ignore[arg-type]
    assert status == 200 and city["unit_id"] is None and len(city["days"]) == 7
    assert _day(city, "2026-03-10")["dispatched"] == 4  # 雨湖区 3 and 市公安局 1


def test_the_trend_follows_the_token_rules(store: ClickHouseStore) -> None:
    pipeline = FakePipeline(store, Loader(store))

    def ask(granted: str, **query: str) -> tuple[int, dict[str, Any]]:
        return trend_answer(pipeline, granted, query, NOW)  # type: ignore[arg-type]

    status, own = ask("yuhu")
    assert status == 200 and own["unit_id"] == "yuhu" and len(own["days"]) == live.TREND_DAYS
    assert ask("yuhu", unit="yuhu", days="3")[0] == 200
    assert ask("yuhu", unit="police") == (403, {"error": "this token may see unit 'yuhu' only"})
    assert ask("yuhu", unit="police", days="7")[0] == 403
    assert ask("*", unit="police")[0] == 200
    for bad in ({"unit": "nowhere"}, {"days": "0"}, {"days": "32"}, {"days": "-1"}, {"days": "7.5"}, {"days": "x"}):
        status, body = ask("*", **bad)
        assert status == 400 and body["error"], bad
    assert ask("yuhu", unit="nowhere")[0] == 400


def test_an_impossible_date_is_refused_without_pythons_words() -> None:
    with pytest.raises(ValueError) as refused:
        parse_day("2019-02-30")
    assert str(refused.value) == "no such day: 2019-02-30 (the month has fewer days)"


def test_the_screen_is_told_the_offices_time_zone_and_low_cut_off() -> None:
    office = current_office()
    told = live.screen()
    assert told["timezone"] == office.timezone
    assert Decimal(str(told["low_satisfaction_percent"])) == office.bulletin.satisfaction_lists.low * 100


def test_a_day_shows_the_units_in_force_that_day(store: ClickHouseStore) -> None:
    registry = parse_registry(REORGANISED)
    now = datetime(2023, 8, 1, 10, 0, tzinfo=TZ)
    june = build_snapshot(store, registry, date(2023, 6, 15), now)
    july = build_snapshot(store, registry, date(2023, 7, 15), now)
    assert [u.name for u in june.units] == ["金融监管分局", "市水务局", "市国土局"]  # renamed 1 June, merged 1 July
    assert [u.name for u in july.units] == ["金融监管分局", "市资源局"]
