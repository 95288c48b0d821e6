"""Synthetic history for period tests: every day of a span, orders and calls that cross days, weeks,
months and years (a completion up to ten days later, returns and re-dispatches, visits, supervision).

Plain contract events, nothing planned to meet a figure: the figures are computed from them
independently (``tests/reference.py``) and compared with what the pipeline reports.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hotline.schemas.registry import default_registry
from hotline.streams.deadlines import TZ

TYPES = ("complaint", "help", "suggestion", "consultation", "other")
CATEGORIES = ("环境保护", "住建房管", "交通运输", "市场监管", "社会保障")


def _at(day: date, minutes: int) -> str:
    return (datetime(day.year, day.month, day.day, tzinfo=TZ) + timedelta(minutes=minutes)).isoformat()


def _order(rng: random.Random, n: str, day: date, units: list[str]) -> Iterator[dict[str, Any]]:
    """One order's events: dispatched in the day's last hours too, so its later events cross midnight."""
    minute = rng.randint(8 * 60, 23 * 60 + 50)
    unit, kind, category = rng.choice(units), rng.choice(TYPES), rng.choice(CATEGORIES)
    order: dict[str, Any] = {"order_id": f"O{n}"}
    yield {"type": "order.dispatched", "at": minute, **order, "unit_id": unit, "order_type": kind, "category": category}
    if rng.random() < 0.1:  # returned, re-dispatched to another unit later that day or the next
        minute += rng.randint(30, 900)
        yield {"type": "order.returned", "at": minute, **order, "unit_id": unit, "reason": "非本单位职责"}
        unit = rng.choice(units)
        minute += 30
        yield {"type": "order.dispatched", "at": minute, **order, "unit_id": unit, "order_type": kind,
               "category": category}  # fmt: skip
    if rng.random() < 0.05:
        return  # never completed: overdue once its deadline passed
    minute += rng.randint(60, 10 * 24 * 60)  # on time or late, weeks and months later
    yield {"type": "order.completed", "at": minute, **order, "unit_id": unit}
    if rng.random() < 0.75:
        minute += rng.randint(60, 3 * 24 * 60)
        outcome = rng.choice(("satisfied", "satisfied", "satisfied", "unsatisfied", "unreached"))
        yield {"type": "order.visited", "at": minute, **order, "unit_id": unit, "outcome": outcome,
               "citizen_replied": rng.random() < 0.9}  # fmt: skip
    if rng.random() < 0.04:
        method = rng.choice(("phone", "written"))
        minute += rng.randint(60, 2 * 24 * 60)
        yield {"type": "order.supervised", "at": minute, **order, "unit_id": unit, "method": method}
        minute += rng.randint(60, 2 * 24 * 60)
        yield {"type": "order.supervision_replied", "at": minute, **order, "unit_id": unit, "method": method,
               "satisfied": rng.random() < 0.5}  # fmt: skip


def _call(rng: random.Random, n: str) -> Iterator[dict[str, Any]]:
    minute = rng.randint(0, 24 * 60 - 10)
    answered = rng.random() < 0.97
    yield {"type": "call.received", "at": minute, "call_id": f"C{n}", "answered": answered}
    if answered:
        yield {"type": "call.handled", "at": minute + 5, "call_id": f"C{n}", "valid": rng.random() < 0.9,
               "call_type": rng.choice(TYPES), "category": rng.choice(CATEGORIES),
               "resolved_online": rng.random() < 0.6}  # fmt: skip


def history(first: date, last: date, orders: int = 4, calls: int = 3, seed: int = 7) -> list[bytes]:
    """Contract events of every day from ``first`` to ``last``: about ``orders`` orders and ``calls`` calls a day
    (units: a random third of the registry each month, so units appear and vanish between periods)."""
    rng = random.Random(seed)
    registry = [u.id for u in default_registry()]
    out: list[bytes] = []
    day, units = first, registry
    while day <= last:
        if day == first or day.day == 1:
            units = rng.sample(registry, len(registry) // 3)
        for i in range(rng.randint(orders - 2, orders + 2)):
            stem = f"{day:%Y%m%d}-{i}"
            out += [_record(e, day, f"{stem}-{k}") for k, e in enumerate(_order(rng, stem, day, units))]
        for i in range(rng.randint(max(calls - 2, 0), calls + 2)):
            stem = f"{day:%Y%m%d}-c{i}"
            out += [_record(e, day, f"{stem}-{k}") for k, e in enumerate(_call(rng, stem))]
        day += timedelta(days=1)
    return out


def _record(event: dict[str, Any], day: date, event_id: str) -> bytes:
    body = {k: v for k, v in event.items() if k != "at"}
    body |= {"event_id": f"E{event_id}", "occurred_at": _at(day, event["at"]), "schema_version": 1}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def write(records: list[bytes], path: Path) -> Path:
    path.write_bytes(b"\n".join(records) + b"\n")
    return path
