"""The day windows' per-day series (streams/windows.py, ``Windows.series``): a trend's points."""

from __future__ import annotations

from datetime import date

from hotline.schemas.metrics import CITY
from hotline.sinks.base import WindowRow
from hotline.streams.windows import CounterDelta, Step, Windows

D = date(2026, 3, 10)


def _windows() -> Windows:
    """雨湖区 on the 8th and 10th from two source partitions, 市公安局 on the 10th, the city's calls on the 9th."""
    w = Windows()
    w.load(
        [
            WindowRow("yuhu", date(2026, 3, 8), "hotline.orders", 0, 5, {"dispatched": 2, "visits": 1}),
            WindowRow("yuhu", D, "hotline.orders", 0, 7, {"dispatched": 1}),
            WindowRow("yuhu", D, "hotline.orders", 1, 3, {"dispatched": 4, "returned": 1}),
            WindowRow("police", D, "hotline.orders", 0, 8, {"dispatched": 3}),
            WindowRow(CITY, date(2026, 3, 9), "hotline.calls", 0, 2, {"calls_received": 9}),
        ]
    )
    return w


def test_a_units_series_is_every_day_in_order_summed_over_sources() -> None:
    series = _windows().series("yuhu", date(2026, 3, 7), D)
    assert series == [
        (date(2026, 3, 7), {}),
        (date(2026, 3, 8), {"dispatched": 2, "visits": 1}),
        (date(2026, 3, 9), {}),
        (D, {"dispatched": 5, "returned": 1}),
    ]


def test_without_a_unit_the_series_sums_every_unit() -> None:
    series = dict(_windows().series(None, date(2026, 3, 8), D))
    assert series[D] == {"dispatched": 8, "returned": 1}
    assert series[date(2026, 3, 9)] == {"calls_received": 9}  # the city's calls, under their own name


def test_the_series_follows_committed_windows_and_forgotten_partitions() -> None:
    w = _windows()
    staged = w.stage([Step(("hotline.orders", 0), 8, CounterDelta("yuhu", D, "dispatched", "e1", 2))])
    assert w.series("yuhu", D, D) == [(D, {"dispatched": 5, "returned": 1})]  # staged, not stored yet
    w.commit(staged)
    assert w.series("yuhu", D, D) == [(D, {"dispatched": 7, "returned": 1})]
    w.forget([("hotline.orders", 1)])  # another worker reads partition 1 now
    assert w.series("yuhu", D, D) == [(D, {"dispatched": 3})]
    assert w.series("ghost", D, D) == [(D, {})] and w.series("yuhu", D, date(2026, 3, 9)) == []


def test_the_series_is_a_copy() -> None:
    w = _windows()
    ((_, counts),) = w.series("police", D, D)
    counts["dispatched"] = 100
    assert w.series("police", D, D) == [(D, {"dispatched": 3})]
    assert w.totals(D, D)["police"] == {"dispatched": 3}


def test_windows_before_a_day_are_forgotten_and_a_late_step_finds_them_missing() -> None:
    windows = _windows()
    old = (("hotline.orders", 0), ("yuhu", date(2026, 3, 8)))
    assert windows.forget_before(date(2026, 3, 9)) == 1
    assert old not in windows and (("hotline.orders", 0), ("yuhu", D)) in windows
    assert windows.totals(date(2026, 3, 8), date(2026, 3, 8)) == {}
    assert windows.totals(D, D)["yuhu"] == {"dispatched": 5, "returned": 1}
    late = Step(("hotline.orders", 0), 99, CounterDelta("yuhu", date(2026, 3, 8), "dispatched", "ev-late", 1))
    assert windows.missing([late]) == {old}, "read back from the store before it is staged"
