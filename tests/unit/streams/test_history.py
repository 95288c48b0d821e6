"""Imports and restatements (streams/history.py) on a real chDB: as if the events had been streamed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.reports.bulletin import build_bulletin
from hotline.schemas.metrics import WINDOWED
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.tables import CHECK_COLUMNS, EVENTS
from hotline.streams import history
from hotline.streams.deadlines import DEFAULT_LIMITS
from tests.factories import event, folded, month_of_orders, raw
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
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    yield s
    s.close()  # chDB holds one path per process


def _other(store: ClickHouseStore, database: str) -> ClickHouseStore:
    """Another database of the same engine (chDB opens one path per process)."""
    return ClickHouseStore(store.settings.model_copy(update={"clickhouse_database": database}), store.client)


def _figures(store: ClickHouseStore, months: tuple[str, ...] = ("2019-11",)) -> dict[str, Any]:
    """What the readers see: the bulletin, and every table the windows and states live in."""
    return {
        "bulletin": [build_bulletin(store, month, printed={}).to_json() for month in months],
        "windows": store.query(
            f"SELECT unit_id, day, {', '.join(f'sum({m.name})' for m in WINDOWED)} FROM {{db}}.unit_windows FINAL "
            f"GROUP BY unit_id, day HAVING {' OR '.join(f'sum({m.name}) != 0' for m in WINDOWED)} ORDER BY unit_id, day"
        ),
        "orders": store.query(
            "SELECT order_id, unit_id, cohort_day, completed_at, returns, unsatisfied_visits, supervision_due "
            "FROM {db}.order_states FINAL WHERE unit_id != '' ORDER BY order_id"
        ),
        "returns": store.query("SELECT month, order_id, times FROM {db}.order_returns FINAL ORDER BY order_id"),
    }


def _file(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_an_import_equals_the_stream(store: ClickHouseStore, tmp_path: Path) -> None:
    events = _month()
    store.migrate()
    history.import_file(store, _file(tmp_path / "m.jsonl", [raw(e) for e in events]), default_registry(), LIMITS)
    imported = _figures(store)
    streamed = _other(store, "streamed")
    streamed.migrate()
    streamed.write(folded(events))
    assert imported == _figures(streamed)
    assert imported["bulletin"][0]["headline"]["returns"]["orders_by_times_returned"] == {"1": 1}


_databases = iter(range(10**6))


@given(st.data())
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_an_import_in_any_line_order_gives_the_bulletin_of_event_time(
    store: ClickHouseStore, tmp_path: Path, data: st.DataObject
) -> None:
    """A file exported in any order (lines shuffled, some twice), imported in small chunks, and
    then restated, gives the bulletins, windows and states of the same file in event-time order."""
    month = [raw(e) for e in month_of_orders(data.draw, orders=8)]
    shuffled = data.draw(st.permutations(month))
    shuffled += data.draw(st.lists(st.sampled_from(month), max_size=3))
    n = next(_databases)
    ordered, mixed = _other(store, f"ordered{n}"), _other(store, f"shuffled{n}")
    for each, lines in ((ordered, month), (mixed, shuffled)):
        each.migrate()
        history.import_file(each, _file(tmp_path / f"{each.db}.jsonl", lines), default_registry(), LIMITS, chunk=5)
    months = ("2019-10", "2019-11")
    expected = _figures(ordered, months)
    assert _figures(mixed, months) == expected
    history.restate(mixed, LIMITS)
    assert _figures(mixed, months) == expected


def test_an_interrupted_import_resumes_where_it_stopped(store: ClickHouseStore, tmp_path: Path) -> None:
    path = _file(tmp_path / "m.jsonl", [raw(e) for e in _month()])
    store.migrate()

    def stop_after_first_chunk(done: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        history.import_file(store, path, default_registry(), LIMITS, stop_after_first_chunk, chunk=4)
    assert store.counts()["events"] == 4
    tally = history.import_file(store, path, default_registry(), LIMITS, chunk=4)
    assert (tally.records, tally.events) == (7, 7)  # lines 5 to 11 only
    once = _other(store, "once")
    once.migrate()
    history.import_file(once, path, default_registry(), LIMITS)
    assert _figures(store) == _figures(once)


def test_a_bad_line_is_a_dead_letter_and_a_resent_event_counts_once(store: ClickHouseStore, tmp_path: Path) -> None:
    events = _month()
    lines = [raw(e) for e in events]
    path = _file(tmp_path / "m.jsonl", [*lines[:3], b"{not json", raw({**events[0], "unit_id": "nowhere"}), *lines[3:]])
    store.migrate()
    tally = history.import_file(store, path, default_registry(), LIMITS)
    assert [d.source_offset for d in tally.deadletters] == [4, 5]
    assert tally.deadletters[0].error.startswith("not JSON")
    assert "unknown unit_id 'nowhere'" in tally.deadletters[1].error
    again = _file(tmp_path / "again.jsonl", [lines[6], lines[7]])  # O2's completion and visit re-sent
    before = _figures(store)
    assert history.import_file(store, again, default_registry(), LIMITS).duplicates == 2
    assert _figures(store) == before


def test_restate_builds_the_windows_of_a_store_from_before_them(store: ClickHouseStore, tmp_path: Path) -> None:
    """A directory of the release before windows: its events are restated into windows and states."""
    for statement in BEFORE_DEADLETTER_COLUMNS:
        store.client.command(statement.replace("{db}", store.db))
    batch = folded(_month())
    v1 = [(n, t) for n, t in EVENTS.columns if n not in CHECK_COLUMNS]  # the old release's columns
    store.client.insert(
        f"{store.db}.events",
        [[row.get(c) for row in batch.events] for c, _ in v1],
        column_names=[n for n, _ in v1],
        column_type_names=[t for _, t in v1],
        column_oriented=True,
    )
    store.migrate()
    assert store.partition_key("events") == "toYYYYMM(occurred_at)"
    assert store.generation().restate_pending
    assert history.restate(store, LIMITS) == [201911]
    assert not store.generation().restate_pending
    streamed = _other(store, "streamed")
    streamed.migrate()
    streamed.write(batch)
    assert _figures(store) == _figures(streamed)
    first = _figures(store)
    history.restate(store, LIMITS, 201911, 201911)
    assert _figures(store) == first  # idempotent


# -- reading a file: bounded lines, bounded dead letters, a file that cannot be read ---------------


def _gzip(path: Path, lines: list[bytes]) -> Path:
    import gzip

    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    return path


def test_a_line_over_the_record_limit_is_read_cut_and_is_one_dead_letter_with_its_length(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    from hotline.schemas.events import MAX_RECORD_BYTES

    events = _month()
    huge = b'{"event_id": "' + b"x" * 5_000_000 + b'"}'
    path = _gzip(tmp_path / "m.jsonl.gz", [raw(events[0]), huge, *(raw(e) for e in events[1:])])
    read = list(history._lines(path, 1))
    assert [n for n, *_ in read] == list(range(1, len(events) + 2))
    assert max(len(line) for _, line, *_ in read) <= MAX_RECORD_BYTES  # never held whole
    store.migrate()
    tally = history.import_file(store, path, default_registry(), LIMITS)
    assert [(d.source_offset, d.error) for d in tally.deadletters] == [
        (2, f"line of {len(huge):,} bytes exceeds the limit of {MAX_RECORD_BYTES:,}")
    ]
    assert (tally.records, tally.events, tally.deadletter_count) == (len(events) + 1, len(events), 1)
    assert [d["error"] for d in store.deadletters()] == [tally.deadletters[0].error]


def test_a_tally_keeps_the_first_dead_letters_without_their_bytes_and_counts_them_all(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    bad = [b'{"not": "an event", "padding": "' + b"p" * 1000 + b'"}'] * 5_000
    path = _file(tmp_path / "bad.jsonl", [*bad, raw(_month()[0])])
    store.migrate()
    tally = history.import_file(store, path, default_registry(), LIMITS, chunk=1_000)
    assert tally.deadletter_count == 5_000 and tally.events == 1
    assert [d.source_offset for d in tally.deadletters] == list(range(1, history.SHOWN_DEADLETTERS + 1))
    assert all(d.raw == b"" for d in tally.deadletters)  # the bytes are in ClickHouse, not in memory
    assert store.counts()["deadletter"] == 5_000


def test_a_gz_file_that_is_not_gzip_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(b"\n".join(raw(e) for e in _month()))
    with pytest.raises(history.UnreadableFile) as refused:
        history.fingerprint(path)
    message = str(refused.value)
    assert str(path) in message and "not a gzip file" in message and "\n" not in message


def test_a_truncated_gzip_imports_the_lines_before_the_break_and_then_says_where(
    store: ClickHouseStore, tmp_path: Path
) -> None:
    import gzip

    lines = [raw(event("call.received", call_id=f"C{i}", occurred_at=at(4))) for i in range(3_000)]
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    store.migrate()
    history.fingerprint(path)  # what could be read is its identity: no error before the import
    with pytest.raises(history.UnreadableFile) as broken:
        history.import_file(store, path, default_registry(), LIMITS, chunk=500)
    message = str(broken.value)
    assert str(path) in message and "truncated" in message and "\n" not in message
    stored = store.counts()["events"]
    assert 0 < stored < len(lines)
    assert f"after line {stored}" in message
    with pytest.raises(history.UnreadableFile):  # a rerun resumes: nothing is read twice into the store
        history.import_file(store, path, default_registry(), LIMITS, chunk=500)
    assert store.counts()["events"] == stored


def test_a_chunk_holds_at_most_its_bytes_of_the_file() -> None:
    lines = [(n, b"x" * 1000, 1000) for n in range(1, 101)]
    chunks = list(history._chunks(lines, size=20_000, max_bytes=10_000))
    assert [len(c) for c in chunks] == [10] * 10
