"""The store's codec on a write batch: version 2 (orjson) against version 1 (stdlib json), same run.

    python -m bench.codec [--events 5000] [--rounds 15] [--json out.json]

The batch is what a worker sends ``hotline store`` in one ``write`` call: the seed month's first
``--events`` records (``hotline.generate``, as ``bench.group`` produces them), folded by the
stream's own engine from an empty store (``hotline.streams.folding``): event rows, order
states, returns and day windows. Each codec encodes it (``dumps``, the worker's cost) and
decodes it (``loads``, the store's); the figure is the best of ``--rounds`` runs, per event.
No Kafka, no chDB: seconds.

The baseline is version 1's path, kept here only (``hotline.sinks.codec`` no longer has it):
``json.dumps(default=…)`` tagging every datetime, ``json.loads(object_hook=…)`` rebuilding
every tag, with version 1's checks on the batch's rows and dataclasses.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from hotline.generate import generate
from hotline.schemas.events import parse_event
from hotline.seed import HEADLINE, TABLE
from hotline.sinks import codec
from hotline.sinks.base import Batch, DeadLetter, OrderRow, ReturnRow, WindowRow
from hotline.streams.deadlines import DEFAULT_LIMITS
from hotline.streams.folding import Inputs, fold
from hotline.streams.processing import Identity, Record, Source, Verdict, payload
from hotline.streams.windows import Windows, rows


def write_batch(n: int) -> Batch:
    """The seed month's first ``n`` records folded into the batch a worker writes (all new)."""
    records = [Record(Source("hotline.orders", 0, i), None, v) for i, v in enumerate(generate(TABLE, HEADLINE)[:n])]
    decoded = {r.source: parse_event(r.value or b"") for r in records}
    inputs = Inputs(
        decoded,  # type: ignore[arg-type]
        {r.source: Identity(Verdict.NEW) for r in records},
        {s: payload(e) for s, e in decoded.items()},  # type: ignore[arg-type]
        {},
        {},
    )
    result = fold(records, inputs, dict(DEFAULT_LIMITS), 0)
    result.batch.windows = rows(Windows().stage(result.steps))
    return result.batch


# -- version 1, the baseline ------------------------------------------------------------------------


def v1_dumps(value: Any) -> bytes:
    return json.dumps(value, default=_v1_default, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def v1_loads(data: bytes) -> Any:
    return json.loads(data, object_hook=_v1_object)


def _v1_default(value: Any) -> Any:
    if isinstance(value, datetime):
        tagged: dict[str, Any] = {"$t": "datetime", "v": value.isoformat()}
        if isinstance(value.tzinfo, ZoneInfo):
            tagged["z"] = value.tzinfo.key
        return tagged
    if isinstance(value, date):
        return {"$t": "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$t": "decimal", "v": str(value)}
    if isinstance(value, bytes):
        return {"$t": "bytes", "v": base64.b64encode(value).decode("ascii")}
    if type(value) in (Batch, DeadLetter, OrderRow, WindowRow, ReturnRow):
        return {"$t": type(value).__name__, "v": {f.name: getattr(value, f.name) for f in fields(value)}}
    raise TypeError(type(value).__name__)


def _v1_object(obj: dict[str, Any]) -> Any:
    tag = obj.get("$t")
    if tag is None:
        return obj
    return _V1[tag](obj)


def _v1_datetime(obj: dict[str, Any]) -> datetime:
    value = datetime.fromisoformat(_is(obj["v"], str))
    zone = obj.get("z")
    return value if zone is None else value.astimezone(ZoneInfo(_is(zone, str)))


def _is(value: Any, kind: type) -> Any:
    if not isinstance(value, kind):
        raise ValueError(kind.__name__)
    return value


def _v1_checked(cls: type) -> Callable[[dict[str, Any]], Any]:
    """Version 1's dataclass decoders: every field's type checked, the dataclass built."""

    def decode(obj: dict[str, Any]) -> Any:
        values = obj["v"]
        if set(values) - {f.name for f in fields(cls)}:
            raise ValueError(cls.__name__)
        for value in values.values():  # one check call per field, as version 1's decoders made
            _is(value, object)
        return cls(**{k: tuple(v) if k in ("seen", "headers") else v for k, v in values.items()})

    return decode


def _v1_batch(obj: dict[str, Any]) -> Batch:
    v = obj["v"]
    return Batch(
        [_is(r, dict) for r in v["events"]],
        [_is(d, DeadLetter) for d in v["deadletters"]],
        [_is(w, WindowRow) for w in v["windows"]],
        [_is(o, OrderRow) for o in v["orders"]],
        [_is(r, ReturnRow) for r in v["returns"]],
    )


_V1: dict[str, Callable[[dict[str, Any]], Any]] = {
    "datetime": _v1_datetime,
    "date": lambda o: date.fromisoformat(_is(o["v"], str)),
    "decimal": lambda o: Decimal(_is(o["v"], str)),
    "bytes": lambda o: base64.b64decode(_is(o["v"], str), validate=True),
    "Batch": _v1_batch,
    **{cls.__name__: _v1_checked(cls) for cls in (DeadLetter, OrderRow, WindowRow, ReturnRow)},
}


# -- measuring --------------------------------------------------------------------------------------


def best_s(call: Callable[[], Any], rounds: int) -> float:
    """The fastest of ``rounds`` calls: the machine is shared, and noise only ever adds time."""
    times = []
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(batch: Batch, rounds: int) -> dict[str, Any]:
    """Both codecs on ``batch``: µs per event for each direction, wire sizes, and ratios v1 / v2."""
    old, new = v1_dumps(batch), codec.dumps(batch)
    assert v1_loads(old) == batch and codec.loads(new) == batch, "a codec did not round-trip the batch"
    n = len(batch.events)
    figures: dict[str, Any] = {"events": n, "orders": len(batch.orders), "windows": len(batch.windows)}
    for name, dumps, loads, wire in (("v1", v1_dumps, v1_loads, old), ("v2", codec.dumps, codec.loads, new)):
        figures[name] = {
            "bytes": len(wire),
            "dumps_us_per_event": best_s(lambda d=dumps: d(batch), rounds) / n * 1e6,  # type: ignore[misc]
            "loads_us_per_event": best_s(lambda ld=loads, w=wire: ld(w), rounds) / n * 1e6,  # type: ignore[misc]
        }
    # The parse alone (no tag, no typed column rebuilt): what each library's C costs, the rest is Python.
    figures["v1"]["parse_us_per_event"] = best_s(lambda: json.loads(old), rounds) / n * 1e6
    figures["v2"]["parse_us_per_event"] = best_s(lambda: orjson.loads(new), rounds) / n * 1e6
    for op in ("dumps", "loads"):
        key = f"{op}_us_per_event"
        figures[f"{op}_ratio"] = figures["v1"][key] / figures["v2"][key]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.codec", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="records of the seed month folded into the batch")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from bench.common import machine, say

    say(f"folding the seed month's first {args.events} records")
    batch = write_batch(args.events)
    say(f"{len(batch.events)} event rows, {len(batch.orders)} order rows, {len(batch.windows)} windows; measuring")
    figures = measure(batch, args.rounds)
    print(machine())
    print(f"write batch: {figures['events']} events, {figures['orders']} orders, {figures['windows']} windows")
    print(f"{'':4} {'bytes':>10} {'dumps µs/event':>15} {'loads µs/event':>15} {'(parse alone)':>14}")
    for name in ("v1", "v2"):
        f = figures[name]
        print(
            f"{name:4} {f['bytes']:>10,} {f['dumps_us_per_event']:>15.2f} {f['loads_us_per_event']:>15.2f}"
            f" {f['parse_us_per_event']:>14.2f}"
        )
    print(f"v1 / v2: dumps {figures['dumps_ratio']:.2f}x, loads {figures['loads_ratio']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
