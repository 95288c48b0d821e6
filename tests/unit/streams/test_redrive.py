"""Dead letters selected, counted, shown and marked redriven, on a real (embedded) ClickHouse;
the original for a redrive from its sealed copy, within its retention."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from hotline.settings import Settings
from hotline.sinks import originals
from hotline.sinks.base import Batch, DeadLetter
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.deadlines import TZ
from hotline.streams.redrive import (
    REDRIVE_HEADER,
    BadSelection,
    LetterId,
    Selection,
    counts,
    from_seal,
    header,
    purge,
    reason_counts,
    reason_kind,
    record_redrive,
    redrive,
    select,
    show,
)
from tests.factories import event, raw

KEY_TEXT = originals.new_key()
KEY = originals.parse_key(KEY_TEXT)


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}", deadletter_key=SecretStr(KEY_TEXT)))
    s.migrate()
    yield s
    s.close()


def _unknown_unit(offset: int, unit: str) -> DeadLetter:
    record = raw(event("order.dispatched", unit_id=unit, caller={"phone": "13912345678", "name": "李四"}))
    return DeadLetter("t.orders", 1, offset, f"unknown unit_id {unit!r}: not in the unit registry", record, b"O1")


def _fill(sink: ClickHouseStore) -> None:
    sink.write(
        Batch(
            deadletters=[
                _unknown_unit(10, "new-unit"),
                _unknown_unit(11, "new-unit"),
                _unknown_unit(12, "other-unit"),
                DeadLetter("t.calls", 0, 3, "not JSON", b'{"type":'),
            ]
        )
    )


def test_a_letter_id_round_trips_and_a_malformed_one_is_refused() -> None:
    assert str(LetterId.parse("hotline.orders:3:1200")) == "hotline.orders:3:1200"
    with pytest.raises(BadSelection, match="not a dead letter id"):
        LetterId.parse("hotline.orders@3")


@given(st.text(alphabet="abc' 0123456789", max_size=30), st.text(alphabet="xyz", max_size=5))
def test_reasons_that_differ_only_in_quoted_values_and_numbers_are_one_kind(text: str, value: str) -> None:
    assert reason_kind(f"unknown unit_id '{value}': {text}") == reason_kind(f"unknown unit_id 'q{value}': {text}")


def test_counts_add_up_per_kind_most_first() -> None:
    assert counts([("unknown unit_id 'a'", 2), ("not JSON", 1), ("unknown unit_id 'b'", 3)]) == {
        "unknown unit_id …": 5,
        "not JSON": 1,
    }


def test_a_redriven_record_names_its_dead_letter_in_a_header() -> None:
    assert header(LetterId("t.orders", 1, 10)) == [(REDRIVE_HEADER, b"t.orders:1:10")]


def test_an_empty_selection_selects_everything_and_a_redrive_refuses_it(sink: ClickHouseStore) -> None:
    with pytest.raises(BadSelection, match="not all at once"):
        asyncio.run(redrive(sink, Selection(), sink.settings))


def test_select_by_reason_is_case_blind(sink: ClickHouseStore) -> None:
    _fill(sink)
    assert [str(x.id) for x in select(sink, Selection(reason="UNKNOWN UNIT"))] == [
        "t.orders:1:10",
        "t.orders:1:11",
        "t.orders:1:12",
    ]


def test_select_by_unit_reads_the_redacted_record(sink: ClickHouseStore) -> None:
    _fill(sink)
    assert [str(x.id) for x in select(sink, Selection(unit="other-unit"))] == ["t.orders:1:12"]


def test_select_by_source_topic_and_ids(sink: ClickHouseStore) -> None:
    _fill(sink)
    assert [str(x.id) for x in select(sink, Selection(source="t.calls"))] == ["t.calls:0:3"]
    chosen = select(sink, Selection(ids=("t.orders:1:11", "t.calls:0:3")))
    assert sorted(str(x.id) for x in chosen) == ["t.calls:0:3", "t.orders:1:11"]


def test_select_by_time_range_of_dead_lettering(sink: ClickHouseStore) -> None:
    _fill(sink)
    now = datetime.now(TZ)
    assert len(select(sink, Selection(since=now - timedelta(hours=1)))) == 4
    assert select(sink, Selection(until=now - timedelta(hours=1))) == []


def test_reason_counts_of_a_selection(sink: ClickHouseStore) -> None:
    _fill(sink)
    assert reason_counts(sink, Selection()) == {"unknown unit_id …: not in the unit registry": 3, "not JSON": 1}


def test_show_is_redacted_and_says_not_redriven(sink: ClickHouseStore) -> None:
    _fill(sink)
    shown = show(sink, "t.orders:1:10")
    assert shown is not None
    assert "13912345678" not in repr(shown) and "李四" not in repr(shown)
    assert shown["status"] == "not redriven" and shown["original"] == f"sealed with key {originals.key_id_of(KEY)}"


def test_a_recorded_redrive_keeps_the_row_and_says_where_it_went(sink: ClickHouseStore) -> None:
    _fill(sink)
    before = select(sink, Selection(ids=("t.orders:1:10",)))[0]
    record_redrive(sink, LetterId("t.orders", 1, 10), datetime.now(TZ), "sent to t.orders[1]@99")
    after = select(sink, Selection(ids=("t.orders:1:10",)))[0]
    assert after.redriven_at is not None and after.sent_to == LetterId("t.orders", 1, 99)
    assert (after.error, after.copy, after.sealed, after.received_at) == (
        before.error,
        before.copy,
        before.sealed,
        before.received_at,
    )
    assert [str(x.id) for x in select(sink, Selection(reason="unknown", redriven=False))] == [
        "t.orders:1:11",
        "t.orders:1:12",
    ]


def test_a_redrive_dead_lettered_again_says_so_with_the_new_reason(sink: ClickHouseStore) -> None:
    _fill(sink)
    record_redrive(sink, LetterId("t.orders", 1, 10), datetime.now(TZ), "sent to t.orders[1]@99")
    sink.write(Batch(deadletters=[DeadLetter("t.orders", 1, 99, "still unknown", b"{}")]))
    shown = show(sink, "t.orders:1:10")
    assert shown is not None and shown["status"] == "dead-lettered again as t.orders:1:99: still unknown"


def test_a_redrive_past_the_ledger_says_processed(sink: ClickHouseStore) -> None:
    _fill(sink)
    record_redrive(sink, LetterId("t.orders", 1, 10), datetime.now(TZ), "sent to t.orders[1]@99")
    shown = show(sink, "t.orders:1:10")
    assert shown is not None and shown["status"].startswith("sent (")
    sink.record_progress({("t.orders", 1): 99})
    shown = show(sink, "t.orders:1:10")
    assert shown is not None and shown["status"].startswith("processed")


def test_the_sealed_original_is_the_record_with_the_caller(sink: ClickHouseStore) -> None:
    _fill(sink)
    letter = select(sink, Selection(ids=("t.orders:1:10",)))[0]
    original = from_seal(letter, KEY, 90, datetime.now(TZ))
    assert original.key == b"O1" and b"13912345678" in original.value


def test_a_sealed_original_past_its_retention_is_not_opened(sink: ClickHouseStore) -> None:
    _fill(sink)
    letter = select(sink, Selection(ids=("t.orders:1:10",)))[0]
    with pytest.raises(originals.Unreadable, match="past the 90-day retention"):
        from_seal(letter, KEY, 90, datetime.now(TZ) + timedelta(days=91))


def test_purge_drops_only_originals_past_the_retention_and_keeps_the_rows(sink: ClickHouseStore) -> None:
    _fill(sink)
    assert purge(sink, 1) == 0
    two_days = "ALTER TABLE {db}.deadletter UPDATE received_at = received_at - INTERVAL 2 DAY WHERE source_offset = 10"
    sink.command(two_days)
    assert purge(sink, 1) == 1
    letters = {str(x.id): x for x in select(sink, Selection())}
    assert len(letters) == 4
    assert letters["t.orders:1:10"].sealed.ciphertext == "" and letters["t.orders:1:11"].sealed.ciphertext


def test_a_selection_survives_its_query_parameters() -> None:
    chosen = Selection(
        ids=("t.orders:1:10",),
        reason="unit",
        source="t.orders",
        since=datetime(2019, 11, 1, tzinfo=TZ),
        until=datetime(2019, 12, 1, tzinfo=TZ),
        unit="u1",
        redriven=False,
        limit=5,
    )
    assert Selection.from_params(chosen.params()) == chosen


@pytest.mark.parametrize(
    ("pairs", "why"),
    [
        ([("id", "nope")], "not a dead letter id"),
        ([("since", "yesterday")], "not an ISO 8601 time"),
        ([("redriven", "maybe")], "yes or no"),
        ([("limit", "0")], "whole number"),
    ],
)
def test_a_malformed_parameter_is_refused_with_its_reason(pairs: list[tuple[str, str]], why: str) -> None:
    with pytest.raises(BadSelection, match=why):
        Selection.from_params(pairs)


def test_a_time_without_a_zone_is_the_offices() -> None:
    selection = Selection.from_params([("since", "2019-11-05")])
    assert selection.since == datetime(2019, 11, 5, tzinfo=TZ)
