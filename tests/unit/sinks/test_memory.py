"""The memory store answers as ClickHouse does for the same writes: one contract, two stores.

Each contract test runs against both :class:`MemoryStore` and a :class:`ClickHouseStore` over a
fresh embedded chDB; the equivalence test writes one folded month to each and compares every
answer of the protocol the memory store gives.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.schemas.events import TZ
from hotline.settings import Settings
from hotline.sinks.base import RETRACTED, Batch, DeadLetter, OrderRow, Store, WindowRow
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.memory import MemoryStore, UnsupportedQuery, window_filter
from tests.factories import event, folded, raw

DAY = date(2019, 11, 4)
DUE = datetime(2019, 11, 8, 9, tzinfo=TZ)


@pytest.fixture(params=["memory", "clickhouse"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
        return
    clickhouse = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    clickhouse.migrate()
    try:
        yield clickhouse
    finally:
        clickhouse.close()  # chDB holds one path per process


def _order(order_id: str, version: int, **fields: Any) -> OrderRow:
    return dataclasses.replace(OrderRow(order_id, DAY, "yuhu", "complaint", DUE, None, 0, (), version), **fields)


def test_stored_answers_each_event_with_the_source_it_was_stored_from(store: Store) -> None:
    dispatched = event("order.dispatched", order_id="O1")
    batch = folded([event("call.received"), dispatched], partition=3)
    store.write(batch)
    store.write(batch)  # written again after a lost answer: still one event, from there
    found = store.stored([dispatched["event_id"], "never-sent"])
    assert list(found) == [dispatched["event_id"]]
    stored = found[dispatched["event_id"]]
    assert (stored.payload, stored.source_partition, stored.source_offset) == (batch.events[1]["payload"], 3, 1)


def test_the_ledger_only_moves_forward(store: Store) -> None:
    store.record_progress({("orders", 0): 9, ("calls", 1): 4})
    store.record_progress({("orders", 0): 5})  # an older batch redelivered after a restart
    assert store.progress() == {("orders", 0): 9, ("calls", 1): 4}


def test_a_batch_written_twice_changes_no_answer(store: Store) -> None:
    batch = folded([event("order.dispatched", order_id="O1"), event("call.received", call_id="C1")])
    batch.deadletters.append(DeadLetter("hotline.orders", 0, 2, "not JSON", b"{"))
    store.write(batch)
    first = (store.counts(), store.order_states(["O1"]), store.windows("1"), store.deadletters())
    store.write(batch)
    assert (store.counts(), store.order_states(["O1"]), store.windows("1"), store.deadletters()) == first
    assert store.counts() == {"events": 2, "deadletter": 1}


def test_an_order_answers_its_latest_version_whatever_the_order_written(store: Store) -> None:
    newer, older = _order("O1", 3, returns=1), _order("O1", 2)
    store.write(Batch(orders=[newer]))
    store.write(Batch(orders=[older]))  # a replayed batch's older state, written late
    assert store.order_states(["O1", "O2"]) == {"O1": newer}


def test_an_order_moved_to_an_earlier_cohort_month_is_read_from_there_only(store: Store) -> None:
    """A late earlier dispatch moves the order's row to October and retracts the November one."""
    november = _order("O1", 1)
    october = OrderRow("O1", date(2019, 10, 30), "yuhu", "complaint", DUE, None, 0, (), 2)
    retracted = OrderRow("O1", DAY, RETRACTED, "complaint", DUE, None, 0, (), 2)
    store.write(Batch(orders=[november]))
    store.write(Batch(orders=[october, retracted]))
    assert store.order_states(["O1"]) == {"O1": october}
    assert store.open_orders() == [october]


def test_open_orders_leave_out_the_completed_ones(store: Store) -> None:
    store.write(Batch(orders=[_order("O1", 1), _order("O2", 2, completed_at=DUE - timedelta(days=1))]))
    assert [o.order_id for o in store.open_orders()] == ["O1"]


def test_orders_awaiting_supervision_are_due_for_it_and_not_supervised(store: Store) -> None:
    due = _order("O1", 3, unsatisfied_visits=2, supervision_due=DUE)
    done = _order("O2", 4, unsatisfied_visits=2, supervision_due=DUE, supervised=True)
    store.write(Batch(orders=[due, done, _order("O3", 1)]))
    assert store.awaiting_supervision() == [due]


def test_a_window_keeps_its_latest_version_whatever_the_order_written(store: Store) -> None:
    newer = WindowRow("yuhu", DAY, "orders", 0, 9, {"dispatched": 2, "returned": 1})
    older = WindowRow("yuhu", DAY, "orders", 0, 5, {"dispatched": 1})
    store.write(Batch(windows=[newer]))
    store.write(Batch(windows=[older]))
    assert store.windows("1") == [newer]


@pytest.mark.parametrize(
    ("where", "parameters", "units"),
    [
        ("day >= %(since)s", {"since": DAY}, ["yuhu"]),
        (
            "(source_topic, source_partition) IN %(tps)s AND day IN %(days)s",
            {"tps": [("orders", 0)], "days": [DAY]},
            ["yuhu"],
        ),
        ("source_topic = %(t)s AND source_partition = %(g)s", {"t": "orders", "g": 0}, ["city", "yuhu"]),
    ],
)
def test_windows_are_selected_by_the_conditions_the_worker_uses(
    store: Store, where: str, parameters: dict[str, Any], units: list[str]
) -> None:
    store.write(
        Batch(
            windows=[
                WindowRow("yuhu", DAY, "orders", 0, 1, {"dispatched": 1}),
                WindowRow("city", DAY - timedelta(days=1), "orders", 0, 1, {"calls_received": 1}),
            ]
        )
    )
    assert sorted(w.unit_id for w in store.windows(where, parameters)) == units


def test_each_generation_recorded_is_the_next(store: Store) -> None:
    assert store.generation().gen == 0
    assert store.record_generation("import", "a month") == 1
    assert store.record_generation("restate", "that month") == 2
    assert (store.generation().gen, store.generation().kind) == (2, "restate")


def test_dead_letters_are_listed_newest_write_first_with_personal_data_masked(store: Store) -> None:
    store.write(Batch(deadletters=[DeadLetter("calls", 0, 7, "first", b"{")]))
    leaked = raw(event("call.received", answered="yes", caller={"phone": "13912345678", "name": "李四"}))
    store.write(Batch(deadletters=[DeadLetter("calls", 0, 9, "李四: not a boolean", leaked)]))
    listed = store.deadletters()
    assert [d["offset"] for d in listed] == [9, 7]
    assert "李四" not in repr(listed)


def test_event_ids_come_a_month_of_event_time_at_a_time(store: Store) -> None:
    october = event("call.received", call_id="C1", occurred_at="2019-10-31T23:30:00+08:00")
    november = event("call.received", call_id="C2", occurred_at="2019-10-31T16:30:00+00:00")  # 00:30 in the office
    store.write(folded([october, november]))
    assert list(store.event_ids()) == [[october["event_id"]], [november["event_id"]]]


def test_the_memory_store_answers_as_clickhouse_for_the_same_writes(tmp_path: Path) -> None:
    """A month folded by the stream's engine, written to each store: every answer is the same."""
    month = [
        event("order.dispatched", order_id="O1", due_at="2019-11-08T09:00:00+08:00"),
        event("order.returned", order_id="O1", occurred_at="2019-11-04T12:00:00+08:00"),
        event("order.dispatched", order_id="O2", unit_id="yuetang", occurred_at="2019-11-05T09:00:00+08:00"),
        event("order.completed", order_id="O2", occurred_at="2019-11-06T09:00:00+08:00"),
        event("order.visited", order_id="O2", occurred_at="2019-11-07T09:00:00+08:00", outcome="unsatisfied"),
        event("order.visited", order_id="O2", occurred_at="2019-11-08T09:00:00+08:00", outcome="unsatisfied"),
        event("call.received", call_id="C1"),
    ]
    batch = folded(month)
    batch.deadletters.append(DeadLetter("hotline.orders", 0, 7, "not JSON", b"{"))
    clickhouse = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    clickhouse.migrate()
    try:
        expected = _answers(clickhouse, batch)
    finally:
        clickhouse.close()
    assert expected["awaiting_supervision"] and expected["open_orders"] and expected["windows"]  # all compared
    assert _answers(MemoryStore(), batch) == expected


def _answers(store: Store, batch: Batch) -> dict[str, Any]:
    store.write(batch)
    store.record_progress({("hotline.orders", 0): len(batch.events) - 1})
    ids = [row["event_id"] for row in batch.events]
    return {
        "stored": store.stored(ids),
        "progress": store.progress(),
        "order_states": store.order_states(["O1", "O2", "O3"]),
        "open_orders": sorted(store.open_orders(), key=lambda o: o.order_id),
        "awaiting_supervision": store.awaiting_supervision(),
        "windows": sorted(store.windows("1"), key=lambda w: (w.unit_id, w.day)),
        "counts": store.counts(),
        "deadletters": store.deadletters(),
        "event_ids": [sorted(month) for month in store.event_ids()],
        "generation": store.generation(),
    }


@given(st.permutations([("orders", 0, 3), ("orders", 0, 8), ("orders", 1, 2), ("orders", 0, 5), ("orders", 1, 7)]))
def test_the_memory_ledger_is_the_highest_offset_whatever_the_order_recorded(
    records: list[tuple[str, int, int]],
) -> None:
    store = MemoryStore()
    for topic, partition, offset in records:
        store.record_progress({(topic, partition): offset})
    assert store.progress() == {("orders", 0): 8, ("orders", 1): 7}


@given(st.permutations([1, 4, 2, 9, 3]))
def test_the_memory_window_is_the_highest_version_whatever_the_order_written(versions: list[int]) -> None:
    store = MemoryStore()
    for version in versions:
        store.write(Batch(windows=[WindowRow("yuhu", DAY, "orders", 0, version, {"dispatched": version})]))
    assert [(w.version, w.counts) for w in store.windows("1")] == [(9, {"dispatched": 9})]


def test_the_memory_store_refuses_sql() -> None:
    with pytest.raises(UnsupportedQuery):
        MemoryStore().query_rows("SELECT count() FROM {db}.events")


@pytest.mark.parametrize("where", ["unit_id LIKE 'yu%'", "day >= %(missing)s", "payload = %(p)s"])
def test_a_window_condition_the_memory_store_cannot_read_is_refused_not_guessed(where: str) -> None:
    with pytest.raises(UnsupportedQuery):
        window_filter(where, {"p": "x"})
