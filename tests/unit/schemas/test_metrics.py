"""The metric catalogue (schemas/metrics.py): each metric named once, with a label, and its
two readings (Python over the pydantic event or the order's state, SQL in ClickHouse) agree."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from hotline.schemas import metrics as m
from hotline.schemas.events import Event, parse_event
from hotline.settings import Settings
from hotline.sinks.base import Batch
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.tables import EVENTS
from hotline.streams.deadlines import TZ
from hotline.streams.processing import Source, event_row
from tests.factories import event, raw

CJK = re.compile(r"[\u4e00-\u9fff]")


def _models() -> dict[str, type[Any]]:
    """Every contract event model by its type."""
    union = get_args(get_args(Event)[0])
    return {model.model_fields["type"].default: model for model in union}


def test_names_are_unique_and_every_metric_has_its_labels() -> None:
    names = [x.name for x in m.CATALOGUE]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z_]*", n) for n in names), names
    for x in m.CATALOGUE:
        assert CJK.search(x.label) and CJK.search(x.short), x.name
        assert m.metric(x.name) is x
    for attr in ("label", "short"):
        values = [getattr(x, attr) for x in m.CATALOGUE]
        assert len(values) == len(set(values)), f"{attr}s repeat"
    assert m.UNIT_LABEL not in {x.label for x in m.CATALOGUE} | {x.short for x in m.CATALOGUE}
    with pytest.raises(KeyError, match="no metric"):
        m.metric("phone_satisfied")


def test_every_kind_and_aggregation_is_declared() -> None:
    kinds = {x.kind for x in m.CATALOGUE}
    assert kinds == set(m.Kind)
    assert {x.aggregation for x in m.CATALOGUE} == set(m.Aggregation)
    assert all(x.aggregation is m.Aggregation.RATIO for x in m.CATALOGUE if isinstance(x, m.Rate))
    # What day windows can hold, and what needs the clock.
    assert [x.name for x in m.COHORT_COUNTERS] == ["dispatched", "completed_on_time", "completed_late"]
    assert {x.name for x in m.ORDER_COUNTS if x.clocked} == {"overdue", "open_not_due", "due_soon"}
    assert [x.name for x in m.GAUGES] == ["overdue", "open", "due_soon"]


def test_rules_name_contract_types_and_fields_the_events_table_stores() -> None:
    models = _models()
    for x in m.CATALOGUE:
        if not isinstance(x, m.EventCount):
            continue
        for t in x.rule.types:
            assert t in models, (x.name, t)
            for f in x.rule.fields:
                assert f in models[t].model_fields, (x.name, t, f)
                assert f in EVENTS.names, (x.name, f)
        assert x.per_unit == all("unit_id" in models[t].model_fields for t in x.rule.types), x.name


def test_rates_are_ratios_of_catalogue_counts_printed_by_the_bulletins_rule() -> None:
    assert m.ON_TIME_RATE.of({"completed_on_time": 639, "dispatched": 642}) == "99.53%"
    assert m.VISIT_RATE.of({"visits": 2, "visits_unreached": 1, "dispatched": 4}) == "75.00%"
    assert m.SATISFACTION_RATE.of({"visits_satisfied": 3, "visits": 0}) == m.DASH
    assert m.VISIT_RATE.sql() == "if(dispatched = 0, NULL, round(100 * (visits + visits_unreached) / dispatched, 2))"
    for x in m.CATALOGUE:
        if isinstance(x, m.Rate):
            assert all(m.BY_NAME[p.name] is p for p in (*x.numerator, x.denominator))


def test_feedback_columns_are_those_moved_by_visits_and_supervision_only() -> None:
    feedback = {x.name for x in m.CATALOGUE if m.needs_feedback(x)}
    assert {"visits", "visit_rate", "satisfaction_rate", "not_replied", "written_supervised_replied"} <= feedback
    assert not feedback & {"dispatched", "on_time_rate", "returned", "feedback_events", "calls_received"}


# -- Python predicate and SQL condition agree, in chDB -----------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    s.migrate()
    yield s
    s.close()  # chDB holds one path per process


def sample_events() -> list[Event]:
    """Every combination of the values the rules test, for every contract type they read."""
    out: list[dict[str, Any]] = [
        event("order.dispatched"),
        event("order.completed"),
        event("order.returned"),
        event("alert.overdue", alert_id="A1", order_id="O1", unit_id="yuhu", due_at="2019-11-04T09:00:00+08:00")
        | {"emitted_at": "2019-11-04T09:00:00+08:00"},
    ]
    for outcome, replied in itertools.product(("satisfied", "unsatisfied", "unreached"), (True, False)):
        out.append(event("order.visited", outcome=outcome, citizen_replied=replied))
    for method in ("phone", "written"):
        out.append(event("order.supervised", method=method))
        for satisfied in (True, False, None):
            fields: dict[str, Any] = {"method": method}
            if satisfied is not None:
                fields["satisfied"] = satisfied
            out.append(event("order.supervision_replied", **fields))
    for answered in (True, False):
        out.append(event("call.received", answered=answered))
    out.append(event("check.spot_visited", reached=False) | {"satisfied": None})
    for satisfied in (True, False):
        out.append(event("check.spot_visited", satisfied=satisfied))
    out += [event("check.test_call"), event("check.upload_flagged")]
    for valid, online, order in itertools.product((True, False), (True, False), (None, "O9")):
        fields = {"valid": valid, "resolved_online": online} | ({"order_id": order} if order else {})
        out.append(event("call.handled", **fields))
    return [parse_event(raw(e)) for e in out]


def test_each_rule_reads_the_same_in_python_and_in_sql(store: ClickHouseStore) -> None:
    events = sample_events()
    store.write(Batch([event_row(e, Source("t", 0, i)) for i, e in enumerate(events)]))
    counts = [x for x in m.CATALOGUE if isinstance(x, m.EventCount)]
    select = ", ".join(f"countIf({x.rule.sql()}) AS {x.name}" for x in counts)
    rows = store.query_rows(f"SELECT event_id, {select} FROM {{db}}.events FINAL GROUP BY event_id")
    assert len(rows) == len(events)
    by_id = {r["event_id"]: r for r in rows}
    for e in events:
        for x in counts:
            assert bool(by_id[e.event_id][x.name]) is x.moved_by(e), (x.name, e)
    # Every rule holds for some sample and fails for another: the table exercises each.
    for x in counts:
        assert {x.moved_by(e) for e in events} == {True, False}, x.name


NOW = datetime(2019, 11, 20, 12, 0, tzinfo=TZ)


def sample_orders() -> list[tuple[datetime | None, datetime]]:
    """(completed_at, due): completed on time, at the deadline, late; open and overdue, due soon, later."""
    h = timedelta(hours=1)
    dues = [NOW - 30 * h, NOW - h, NOW, NOW + h, NOW + 23 * h, NOW + 24 * h, NOW + 25 * h, NOW + 200 * h]
    completions: list[datetime | None] = [None, NOW - 48 * h, NOW - h, NOW]
    return [(done, due) for due in dues for done in completions]


def test_the_order_status_reads_the_same_in_python_and_in_sql(store: ClickHouseStore) -> None:
    orders = sample_orders()
    values = ", ".join(
        f"({i}, {int(done is not None)}, {_ms(done or NOW)}, {_ms(due)})" for i, (done, due) in enumerate(orders)
    )
    now_sql = f"fromUnixTimestamp64Milli(toInt64({_ms(NOW)}), 'Asia/Shanghai')"
    conditions = ", ".join(f"{x.sql()} AS {x.name}" for x in m.ORDER_COUNTS)
    rows = store.query_rows(
        f"""SELECT i, status, {conditions} FROM (
            SELECT i, done = 1 AS done,
                   fromUnixTimestamp64Milli(toInt64(completed_ms), 'Asia/Shanghai') AS completed_at,
                   fromUnixTimestamp64Milli(toInt64(due_ms), 'Asia/Shanghai') AS due,
                   {m.status_sql(now_sql)} AS status
            FROM values('i UInt32, done UInt8, completed_ms Int64, due_ms Int64', {values})
        ) ORDER BY i"""
    )
    seen = set()
    for row, (done, due) in zip(rows, orders, strict=True):
        view = m.OrderView(None if done is None else done <= due, due, NOW)
        status = m.order_status(view)
        seen.add(status)
        assert row["status"] == status.value, (done, due)
        for x in m.ORDER_COUNTS:
            assert bool(row[x.name]) is x.holds(status), (x.name, done, due)
            if not x.clocked:
                assert x.holds_unclocked(view.completed_on_time) is x.holds(status), (x.name, done, due)
    assert seen == set(m.OrderStatus)


def test_a_clocked_count_has_no_clock_free_reading() -> None:
    with pytest.raises(ValueError, match="moves with the clock"):
        m.OVERDUE.holds_unclocked(None)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


# -- Tally: counts by catalogue name ------------------------------------------------------------


class Pair(m.Tally):
    counted = (m.VISITS, m.SUPERVISED)


def test_a_tally_holds_its_metrics_by_name_and_refuses_others() -> None:
    t = Pair(visits=2)
    t.add("phone_supervised", 1)  # a part of 督办
    t.add(m.WRITTEN_SUPERVISED, 2)
    assert (t.visits, t["supervised"], t[m.VISITS]) == (2, 3, 2)
    t.visits += 1
    assert t.counts() == {"visits": 3, "supervised": 3}
    assert t == Pair(visits=3, supervised=3) and t != Pair(visits=3)
    with pytest.raises(TypeError, match="phone_satisfied"):
        Pair(phone_satisfied=1)
    with pytest.raises(KeyError):
        t.add("returned", 1)
    with pytest.raises(AttributeError):
        _ = t.returned


def test_the_matcher_names_exactly_the_counts_each_rule_moves() -> None:
    """The stream's fast reading equals the rule-by-rule one, event for event."""
    from hotline.schemas.events import parse_event
    from tests.factories import event, raw

    samples = [
        event("order.visited", outcome=o, citizen_replied=r)
        for o in ("satisfied", "unsatisfied", "unreached")
        for r in (True, False)
    ] + [
        event("order.supervised", method="phone"),
        event("order.supervision_replied", method="written", satisfied=False),
        event("order.returned"),
        event("call.received", answered=False),
        event("call.handled", valid=True, order_id="O9"),
        event("call.handled", valid=True),
    ]
    for counted in (m.EVENT_COUNTERS, m.CALL_COUNTS):
        matcher = m.Matcher(counted)
        for sample in samples:
            ev = parse_event(raw(sample))
            assert matcher.names(ev) == [x.name for x in counted if x.moved_by(ev)], sample
