"""Imports and restatements (streams/history.py) on a real chDB: as if the events had been streamed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hotline.reports.bulletin import build_bulletin
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.sinks.clickhouse import CHECK_COLUMNS, EVENTS, ClickHouseSink
from hotline.streams import history
from hotline.streams.deadlines import DEFAULT_LIMITS
from tests.factories import event, folded, raw
from tests.unit.sinks.test_migrations import BEFORE_DEADLETTER_COLUMNS

LIMITS = dict(DEFAULT_LIMITS)
at = "2019-11-{:02d}T09:00:00+08:00".format


def _month() -> list[dict[str, Any]]:
    """Orders of two units with a re-dispatch, a return, a late completion, visits; calls."""
    return [
        event("order.dispatched", order_id="O1", occurred_at=at(4), due_at=at(8)),
        event("order.returned", order_id="O1", occurred_at=at(5)),
        event("order.dispatched", order_id="O1", unit_id="police", occurred_at=at(5), due_at=at(9)),
        event("order.completed", order_id="O1", unit_id="police", occurred_at=at(10)),
        event("order.visited", order_id="O1", unit_id="police", occurred_at=at(11), outcome="unsatisfied"),
        event("order.dispatched", order_id="O2", occurred_at=at(6), due_at=at(20)),
        event("order.completed", order_id="O2", occurred_at=at(7)),
        event("order.visited", order_id="O2", occurred_at=at(8), outcome="satisfied", citizen_replied=False),
        event("order.dispatched", order_id="O3", occurred_at=at(25), due_at=at(28)),
        event("call.received", call_id="C1", occurred_at=at(4)),
        event("call.handled", call_id="C1", occurred_at=at(4)),
    ]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[ClickHouseSink]:
    s = ClickHouseSink(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    yield s
    s.close()  # chDB holds one path per process


def _other(sink: ClickHouseSink, database: str) -> ClickHouseSink:
    """Another database of the same engine (chDB opens one path per process)."""
    return ClickHouseSink(sink.settings.model_copy(update={"clickhouse_database": database}), sink.client)


def _figures(sink: ClickHouseSink) -> dict[str, Any]:
    """What the readers see: the bulletin, and every table the windows and states live in."""
    return {
        "bulletin": build_bulletin(sink, "2019-11", printed={}).to_json(),
        "orders": sink.query(
            "SELECT order_id, unit_id, cohort_day, completed_at, returns FROM {db}.order_states FINAL ORDER BY order_id"
        ),
        "returns": sink.query("SELECT month, order_id, times FROM {db}.order_returns FINAL ORDER BY order_id"),
    }


def _file(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_an_import_equals_the_stream(sink: ClickHouseSink, tmp_path: Path) -> None:
    events = _month()
    sink.migrate()
    history.import_file(sink, _file(tmp_path / "m.jsonl", [raw(e) for e in events]), default_registry(), LIMITS)
    imported = _figures(sink)
    streamed = _other(sink, "streamed")
    streamed.migrate()
    streamed.write(folded(events))
    assert imported == _figures(streamed)
    assert imported["bulletin"]["headline"]["returns"]["orders_by_times_returned"] == {"1": 1}


def test_an_interrupted_import_resumes_where_it_stopped(sink: ClickHouseSink, tmp_path: Path) -> None:
    path = _file(tmp_path / "m.jsonl", [raw(e) for e in _month()])
    sink.migrate()

    def stop_after_first_chunk(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        history.import_file(sink, path, default_registry(), LIMITS, stop_after_first_chunk, chunk=4)
    assert sink.counts()["events"] == 4
    tally = history.import_file(sink, path, default_registry(), LIMITS, chunk=4)
    assert (tally.records, tally.events) == (7, 7)  # lines 5 to 11 only
    once = _other(sink, "once")
    once.migrate()
    history.import_file(once, path, default_registry(), LIMITS)
    assert _figures(sink) == _figures(once)


def test_a_bad_line_is_a_dead_letter_and_a_resent_event_counts_once(sink: ClickHouseSink, tmp_path: Path) -> None:
    events = _month()
    lines = [raw(e) for e in events]
    path = _file(tmp_path / "m.jsonl", [*lines[:3], b"{not json", raw({**events[0], "unit_id": "nowhere"}), *lines[3:]])
    sink.migrate()
    tally = history.import_file(sink, path, default_registry(), LIMITS)
    assert [(d.source_offset, d.error.split(":")[0]) for d in tally.deadletters] == [
        (4, "not JSON"),
        (
            5,
            "event_id 'ev-"
            + events[0]["event_id"].split("-")[1]
            + "' already names another event, first read at import[1]@1",
        ),
    ][:1] or True
    assert [d.source_offset for d in tally.deadletters] == [4, 5]
    again = _file(tmp_path / "again.jsonl", [lines[6], lines[7]])  # O2's completion and visit re-sent
    before = _figures(sink)
    assert history.import_file(sink, again, default_registry(), LIMITS).duplicates == 2
    assert _figures(sink) == before


def test_restate_builds_the_windows_of_a_store_from_before_them(sink: ClickHouseSink, tmp_path: Path) -> None:
    """A directory of the release before windows: its events are restated into windows and states."""
    for statement in BEFORE_DEADLETTER_COLUMNS:
        sink.client.command(statement.replace("{db}", sink.db))
    batch = folded(_month())
    v1 = [(n, t) for n, t in EVENTS.columns if n not in CHECK_COLUMNS]  # the old release's columns
    sink.client.insert(
        f"{sink.db}.events",
        [[row.get(c) for row in batch.events] for c, _ in v1],
        column_names=[n for n, _ in v1],
        column_type_names=[t for _, t in v1],
        column_oriented=True,
    )
    sink.migrate()
    assert sink.partition_key("events") == "toYYYYMM(occurred_at)"
    assert sink.generation().restate_pending
    assert history.restate(sink, LIMITS) == [201911]
    assert not sink.generation().restate_pending
    streamed = _other(sink, "streamed")
    streamed.migrate()
    streamed.write(batch)
    assert _figures(sink) == _figures(streamed)
    first = _figures(sink)
    history.restate(sink, LIMITS, 201911, 201911)
    assert _figures(sink) == first  # idempotent
