"""Factory helpers: contract events with sensible defaults, overridable per test."""

from __future__ import annotations

import itertools
import json
from typing import Any

_ids = itertools.count(1)


def event(type_: str, **fields: Any) -> dict[str, Any]:
    """A contract-v1 event as a dict; unspecified fields get valid defaults."""
    base: dict[str, Any] = {
        "event_id": f"ev-{next(_ids)}",
        "type": type_,
        "occurred_at": "2019-11-04T09:31:00+08:00",
        "schema_version": 1,
    }
    defaults: dict[str, dict[str, Any]] = {
        "call.received": {"call_id": "C1", "answered": True},
        "call.handled": {
            "call_id": "C1",
            "valid": True,
            "call_type": "complaint",
            "category": "环境保护",
            "resolved_online": False,
        },
        "order.dispatched": {"order_id": "O1", "unit_id": "yuhu", "order_type": "complaint", "category": "环境保护"},
        "order.returned": {"order_id": "O1", "unit_id": "yuhu", "reason": "非本单位职责"},
        "order.completed": {"order_id": "O1", "unit_id": "yuhu"},
        "order.visited": {"order_id": "O1", "unit_id": "yuhu", "outcome": "satisfied", "citizen_replied": True},
        "order.supervised": {"order_id": "O1", "unit_id": "yuhu", "method": "phone"},
        "order.supervision_replied": {"order_id": "O1", "unit_id": "yuhu", "method": "phone", "satisfied": True},
        "check.spot_visited": {"order_id": "O1", "unit_id": "yuhu", "reached": True, "satisfied": True},
        "check.test_call": {"deductions": [{"item": "服务规范", "points": 1}]},
        "check.upload_flagged": {"indicator": "规范性", "points": 1},
    }
    return {**base, **defaults.get(type_, {}), **fields}


def raw(ev: dict[str, Any]) -> bytes:
    return json.dumps(ev, ensure_ascii=False).encode()


def folded(events: list[dict[str, Any]], topic: str = "hotline.orders", partition: int = 0) -> Any:
    """These events folded by the stream's engine into the batch a worker would write, from an
    empty store: audit rows, order states, returns, day windows (a ``hotline.sinks.base.Batch``)."""
    from hotline.schemas.events import parse_event
    from hotline.streams.deadlines import DEFAULT_LIMITS
    from hotline.streams.folding import Inputs, fold
    from hotline.streams.processing import Identity, Record, Source, Verdict, payload
    from hotline.streams.windows import Windows, rows

    records = [Record(Source(topic, partition, offset), None, raw(ev)) for offset, ev in enumerate(events)]
    decoded = {r.source: parse_event(r.value or b"") for r in records}
    identities = {r.source: Identity(Verdict.NEW) for r in records}
    contents = {s: payload(e) for s, e in decoded.items()}
    result = fold(records, Inputs(decoded, identities, contents, {}, {}), dict(DEFAULT_LIMITS), 0)  # type: ignore[arg-type]
    windows = Windows()
    result.batch.windows = rows(windows.stage(result.steps))
    return result.batch


def month_of_orders(draw: Any, orders: int = 6) -> list[dict[str, Any]]:
    """A month of orders drawn by hypothesis (``draw``), in event-time order: dispatches (some
    in the last days of October), returns and re-dispatches to another unit, completions before,
    at and after their deadlines (given or computed), satisfied and unsatisfied visits,
    supervision. Event ids are the order's id and a sequence number, so a drawn month is
    reproducible."""
    from hypothesis import strategies as st

    events: list[dict[str, Any]] = []
    for n in range(draw(st.integers(1, orders))):
        events += _order_drawn(draw, f"O{n}")
    return sorted(events, key=lambda e: e["occurred_at"])


def _order_drawn(draw: Any, order: str) -> list[dict[str, Any]]:
    """One order's events: each step some time after the one before (0 minutes too: ties happen)."""
    from datetime import datetime, timedelta

    from hypothesis import strategies as st

    units = ["yuhu", "yuetang", "police", "xiangxiang"]
    at = datetime.fromisoformat("2019-10-28T08:00:00+08:00") + timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
    unit = draw(st.sampled_from(units))
    steps: list[tuple[str, datetime, dict[str, Any]]] = []
    for redispatch in range(draw(st.integers(0, 2)) + 1):
        if redispatch:
            at += timedelta(minutes=draw(st.integers(0, 60 * 24 * 6)))
            steps.append(("order.returned", at, {"unit_id": unit}))
            at, unit = at + timedelta(minutes=draw(st.integers(0, 60 * 24 * 3))), draw(st.sampled_from(units))
        dispatch: dict[str, Any] = {"unit_id": unit, "order_type": draw(st.sampled_from(["complaint", "suggestion"]))}
        if draw(st.booleans()):
            dispatch["due_at"] = (at + timedelta(days=draw(st.integers(1, 6)))).isoformat()
        steps.append(("order.dispatched", at, dispatch))
    if draw(st.booleans()):
        at += timedelta(minutes=draw(st.integers(0, 60 * 24 * 10)))
        steps.append(("order.completed", at, {"unit_id": unit}))
        for _ in range(draw(st.integers(0, 3))):
            at += timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))
            outcome = draw(st.sampled_from(["satisfied", "unsatisfied", "unreached"]))
            steps.append(("order.visited", at, {"unit_id": unit, "outcome": outcome}))
        if draw(st.booleans()):
            steps.append(("order.supervised", at + timedelta(hours=draw(st.integers(0, 24))), {"unit_id": unit}))
    undispatched = [step for step in steps if step[0] != "order.dispatched"]
    if undispatched and draw(st.integers(0, 7)) == 0:  # now and then an order whose dispatches never arrive
        steps = undispatched
    return [
        event(type_, event_id=f"{order}-{i}", order_id=order, occurred_at=when.isoformat(), **fields)
        for i, (type_, when, fields) in enumerate(steps)
    ]
