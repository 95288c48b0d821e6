"""The store on a real (embedded) ClickHouse: a batch written twice changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from hotline.reports.bulletin import build_bulletin
from hotline.schemas.events import parse_event
from hotline.settings import Settings
from hotline.sinks.base import Batch, DeadLetter, WindowRow
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.processing import Source
from tests.factories import event, folded, raw


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    s.migrate()
    s.migrate()  # migrations are idempotent: every worker start runs them
    yield s
    s.close()  # chDB holds one path per process


def _month_batch() -> Batch:
    batch: Batch = folded(
        [
            event("order.dispatched", order_id="O1", due_at="2019-11-08T09:00:00+08:00"),
            event("order.completed", order_id="O1", occurred_at="2019-11-07T09:00:00+08:00"),
            event("order.visited", order_id="O1", occurred_at="2019-11-09T09:00:00+08:00", citizen_replied=False),
        ]
    )
    batch.deadletters.append(DeadLetter("orders", 0, 3, "not JSON", b"{"))
    return batch


def test_a_batch_written_twice_counts_once(store: ClickHouseStore) -> None:
    batch = _month_batch()
    store.write(batch)
    first = build_bulletin(store, "2019-11")
    store.write(batch)  # the crash-and-redeliver case: same events, same counters, same offsets
    second = build_bulletin(store, "2019-11")
    assert second.rows() == first.rows()
    assert store.counts() == {"events": 3, "deadletter": 1}
    (row,) = [r for r in second.rows() if r["unit"] == "雨湖区人民政府"]
    assert (row["dispatched"], row["completed_on_time"], row["visits"], row["not_replied"]) == ("1", "1", "1", "1")
    windows = store.query_rows(
        "SELECT sum(completed_on_time) AS on_time, sum(dispatched) AS dispatched, sum(not_replied) AS not_replied, "
        "sum(visits) AS visits, sum(visits_satisfied) AS satisfied, sum(returned) AS returned "
        "FROM {db}.unit_windows FINAL"
    )
    assert windows == [{"on_time": 1, "dispatched": 1, "not_replied": 1, "visits": 1, "satisfied": 1, "returned": 0}]
    assert [o.version for o in store.order_states(["O1"]).values()] == [3]


def test_offsets_only_move_forward(store: ClickHouseStore) -> None:
    store.record_progress({("orders", 0): 9, ("calls", 1): 4})
    store.record_progress({("orders", 0): 5})  # an older batch redelivered after a restart
    assert store.progress() == {("orders", 0): 9, ("calls", 1): 4}


def test_a_window_keeps_its_latest_version(store: ClickHouseStore) -> None:
    """A window is a partition's absolute contribution: the row with the highest offset wins,
    whatever order the writes arrive in (a batch replayed after a crash writes an older one)."""
    day = date(2019, 11, 4)
    newer = WindowRow("yuhu", day, "orders", 0, 9, {"dispatched": 2, "returned": 1})
    older = WindowRow("yuhu", day, "orders", 0, 5, {"dispatched": 1})
    store.write(Batch(windows=[newer]))
    store.write(Batch(windows=[older]))
    assert store.windows("unit_id = 'yuhu'") == [newer]


def test_personal_data_never_reaches_clickhouse(store: ClickHouseStore) -> None:
    from hotline.streams.processing import event_row

    received = parse_event(raw(event("call.received", caller={"phone": "13800000000", "name": "张三"})))
    store.write(Batch([event_row(received, Source("calls", 0, 0))]))
    dump = store.query("SELECT * FROM {db}.events FINAL")
    assert "13800000000" not in repr(dump) and "张三" not in repr(dump)


def test_stored_returns_content_and_coordinates_by_event_id(store: ClickHouseStore) -> None:
    from hotline.streams.processing import event_row, payload

    completed = parse_event(raw(event("order.completed", order_id="O7")))
    store.write(Batch([event_row(completed, Source("orders", 2, 41))]))
    found = store.stored([completed.event_id, "never-sent"])
    assert list(found) == [completed.event_id]
    stored = found[completed.event_id]
    assert (stored.payload, stored.source_topic, stored.source_partition, stored.source_offset) == (
        payload(completed),
        "orders",
        2,
        41,
    )


def test_a_dead_letter_keeps_a_redacted_copy_its_key_and_its_event_time(store: ClickHouseStore) -> None:
    bad = event("call.received", answered="yes", caller={"phone": "13912345678", "name": "李四"})
    store.write(Batch(deadletters=[DeadLetter("calls", 0, 7, "answered: not a boolean", raw(bad), b"C1")]))
    store.write(Batch(deadletters=[DeadLetter("calls", 0, 8, "not JSON", b'{"caller": {"phone": "13912345678"')]))
    rows = store.query_rows("SELECT raw, key, occurred_at FROM {db}.deadletter FINAL ORDER BY source_offset")
    assert "13912345678" not in repr(rows) and "李四" not in repr(rows)
    assert rows[0]["key"] == "C1" and rows[0]["occurred_at"].year == 2019 and '"answered":"yes"' in rows[0]["raw"]
    assert rows[1]["occurred_at"] is None


def test_the_store_reports_itself_unhealthy_when_a_table_is_missing(store: ClickHouseStore) -> None:
    assert store.healthy()
    store.query("DROP TABLE {db}.unit_counters")
    assert not store.healthy()


def _cached_conditions(store: ClickHouseStore) -> int:
    return int(store.query("SELECT count() FROM system.query_condition_cache")[0][0])


def test_lookups_by_key_leave_nothing_in_the_query_condition_cache(store: ClickHouseStore) -> None:
    """A lookup's condition never repeats: cached, it would only fill memory, more with every month stored."""
    store.write(_month_batch())
    before = _cached_conditions(store)
    for n in range(5):
        store.stored([f"E{n}", "never-sent"])
        store.order_states([f"O{n}", "O1"])
        store.windows("unit_id = %(u)s", {"u": f"unit-{n}"})
    assert _cached_conditions(store) == before


def test_a_report_query_still_uses_the_query_condition_cache(store: ClickHouseStore) -> None:
    """The contrast that shows the cache is seen at all: a plain read's condition is kept."""
    store.write(_month_batch())
    before = _cached_conditions(store)
    store.query_rows("SELECT count() AS n FROM {db}.events WHERE event_id IN %(ids)s", {"ids": ["E1", "E2"]})
    assert _cached_conditions(store) > before
