import pytest

from reports.bulletin import DASH, UnitCounts, month_key, rate, sort_units, total_of


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
    assert [u.unit_id for u in sort_units(units)] == ["d1", "d2", "a", "c", "b"]


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
