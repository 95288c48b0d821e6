from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.reports import queries
from hotline.reports.bulletin import DASH, UnitCounts, build_bulletin, month_key, rate, sort_units, total_of
from hotline.reports.periods import parse
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore


@pytest.mark.parametrize(
    ("num", "den", "printed"),
    [
        (639, 642, "99.53%"),
        (2, 3, "66.67%"),
        (1, 8, "12.50%"),
        (1, 800, "0.13%"),
        (0, 4, "0.00%"),
        (3, 1, "300.00%"),
        (5, 0, DASH),
    ],
)
def test_rates_round_half_up_on_the_exact_fraction(num: int, den: int, printed: str) -> None:
    assert rate(num, den) == printed


def test_exact_halves_round_up_not_to_even() -> None:
    assert rate(1, 4000) == "0.03%"  # 0.025%: banker's rounding would print 0.02%
    assert rate(1, 1600) == "0.06%"  # 0.0625%: below the half, down


def unit(uid: str, group: str, order: int, dispatched: int, **kw: int) -> UnitCounts:
    return UnitCounts(uid, uid, group, order, dispatched=dispatched, **kw)


def test_districts_first_in_order_then_by_dispatched_then_registry_order() -> None:
    units = [
        unit("b", "市直部门", 20, 10),
        unit("d2", "县市区园区", 2, 1),
        unit("a", "市直部门", 30, 50),
        unit("c", "市直部门", 10, 10),
        unit("d1", "县市区园区", 1, 0),
    ]
    assert [u.unit_id for u in sort_units(units, ("县市区园区",))] == ["d1", "d2", "a", "c", "b"]


def test_a_unit_without_visit_or_supervision_events_prints_dashes() -> None:
    late = unit("late", "市直部门", 1, 19, completed_on_time=19, returned=1)
    row = late.row()
    assert (row["dispatched"], row["on_time_rate"], row["returned"]) == ("19", "100.00%", "1")
    assert all(row[k] == DASH for k in ("visits", "visit_rate", "satisfaction_rate", "not_replied", "phone_supervised"))
    fed = unit("fed", "市直部门", 2, 0, visits=2, visits_satisfied=1, feedback_events=2)
    assert (fed.row()["visit_rate"], fed.row()["satisfaction_rate"]) == (DASH, "50.00%")


def test_total_sums_every_count() -> None:
    total = total_of(
        [unit("a", "x", 1, 3, visits=2, feedback_events=2), unit("b", "x", 2, 4, visits=1, feedback_events=1)]
    )
    assert (total.name, total.dispatched, total.visits) == ("总计", 7, 3)


@pytest.mark.parametrize("bad", ["2019-13", "2019-1", "201911", "Nov 2019"])
def test_month_must_be_yyyy_mm(bad: str) -> None:
    with pytest.raises(ValueError):
        month_key(bad)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    s.migrate()
    # The event's time, when the record parsed far enough to carry one (a migration of the store's).
    s.client.command(
        f"ALTER TABLE {s.db}.deadletter ADD COLUMN IF NOT EXISTS occurred_at Nullable(DateTime64(3, 'Asia/Shanghai'))"
    )
    yield s
    s.close()  # chDB holds one path per process


def _dead_letter(store: ClickHouseStore, offset: int, occurred_at: str | None, received_at: str) -> None:
    """A dead letter with its times in Asia/Shanghai (the columns' zone)."""
    occurred = "NULL" if occurred_at is None else f"'{occurred_at}'"
    store.client.command(
        f"INSERT INTO {store.db}.deadletter (source_topic, source_partition, source_offset, error, raw, "
        f"occurred_at, received_at) VALUES ('orders', 0, {offset}, 'bad', '{{', {occurred}, '{received_at}')"
    )


def test_the_months_dead_letters_count_by_event_time_else_by_receipt(store: ClickHouseStore) -> None:
    # Each time is near a month's edge, where Shanghai's month and UTC's differ.
    _dead_letter(store, 1, "2019-11-01 07:30:00", "2019-12-02 09:00:00")  # November's, received in December
    _dead_letter(store, 2, "2019-12-01 07:30:00", "2019-11-30 23:00:00")  # December's, received in November
    _dead_letter(store, 3, None, "2019-11-01 00:10:00")  # no event time: received in November
    _dead_letter(store, 4, None, "2019-12-01 00:10:00")  # no event time: received in December
    assert store.query(queries.DEADLETTERS, queries.period_parameters(parse("2019-11"))) == [(2,)]


def test_the_bulletin_notes_the_months_dead_letters(store: ClickHouseStore) -> None:
    _dead_letter(store, 1, "2019-11-30 23:30:00", "2019-12-02 09:00:00")
    _dead_letter(store, 2, None, "2019-12-01 00:10:00")
    notes = build_bulletin(store, "2019-11", printed={}).data_quality
    assert notes == ["本月（2019-11）死信队列中有 1 条无法解析或校验失败的记录，未计入本期统计。"]


def test_a_month_without_dead_letters_gets_no_note(store: ClickHouseStore) -> None:
    _dead_letter(store, 1, "2019-12-01 08:00:00", "2019-12-01 08:00:01")
    assert build_bulletin(store, "2019-11", printed={}).data_quality == []
