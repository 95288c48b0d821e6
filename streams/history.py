"""Events that do not arrive through Kafka: a file of history imported, the events table restated.

Both go through the stream's own fold (``streams/folding.py``), chunk by chunk, so what they
leave is what streaming the same events would have left: the same audit rows, order states,
returns and day windows, counted by the same catalogue rules.

* ``hotline import FILE`` reads a JSON-lines file (``.gz`` too) as one more source partition,
  ``("import", generation)``, whose offsets are line numbers: each chunk is written with its
  progress (the ledger's ``sink_offsets``), so an interrupted import resumes where it stopped
  and a file imported twice adds nothing (its events are duplicates of stored ones). A bad
  line becomes a dead letter with its line number and reason; the rest loads.
* ``hotline restate`` rebuilds the windows, order states and returns of a range of months from
  the events table (after a rule or registry change, or for a store written before windows
  existed): it folds every stored event in time order, each under the source it was read
  from, and rewrites the range's partitions.

Each run is a new *generation* (table ``generations``): a worker holding an order's state from
an older generation reads it again from ClickHouse. Run them with the worker stopped (with
embedded chDB the store can only be opened by one process anyway).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO

from hotline.schemas.events import SOURCE_PREFIXES, Event, parse_event
from hotline.schemas.registry import Registry
from hotline.sinks.clickhouse import (
    ORDER_RETURNS,
    ORDER_STATES,
    RESTATE_PENDING,
    UNIT_WINDOWS,
    Batch,
    ClickHouseSink,
    DeadLetter,
    Generation,
)
from hotline.sinks.store import Store
from hotline.streams.deadlines import TZ
from hotline.streams.folding import Inputs, fold, order_ids
from hotline.streams.known import id_filter
from hotline.streams.processing import (
    NEW,
    Folded,
    OrderState,
    Record,
    Source,
    decode_batch,
    identify,
    payload,
    state_from_events,
)
from hotline.streams.timeline import MAX_ORDER_EVENTS
from hotline.streams.windows import Windows, rows

log = logging.getLogger(__name__)

IMPORT_TOPIC = "import"
IMPORT = "import"  # the kind of generation an import writes under
CHUNK = 20_000  # records per write: big enough for fast inserts, small enough to resume cheaply
KEEP_STATES = 400_000  # orders whose state stays in memory between chunks (others are read back)
EVERY_TYPE = SOURCE_PREFIXES

Advance = Callable[[int], None]  # how many more records are done (a progress bar)


def today() -> date:
    return datetime.now(TZ).date()


@dataclass
class Tally:
    """What a run did, record by record."""

    records: int = 0
    events: int = 0
    duplicates: int = 0
    deadletters: list[DeadLetter] = field(default_factory=list)


def read_back(sink: Store, ids: Iterable[str], limits: dict[str, int], gen: int) -> dict[str, OrderState]:
    """The stored orders among ``ids``, each with its timeline, to fold on: the order states table
    says which orders and which events (``seen``), the events table what each event was."""
    rows = sink.order_states(ids)
    if not rows:
        return {}
    stored = sink.stored([event_id for row in rows.values() for event_id in row.seen])
    out: dict[str, OrderState] = {}
    for order_id, row in rows.items():
        events = [parse_event(stored[i].payload) for i in row.seen if i in stored]
        if len(events) < len(row.seen):
            log.warning("order %s: %d of its events are not stored", order_id, len(row.seen) - len(events))
        out[order_id] = state_from_events(events, limits, gen)
    return out


class States:
    """Order states between chunks: the most recent in memory, the rest read back from ClickHouse.

    An order not dispatched yet (its events arrived before its dispatch) has no row to read
    back: it stays in memory until its dispatch comes."""

    def __init__(self, sink: Store | None, limits: dict[str, int], gen: int, keep: int = KEEP_STATES) -> None:
        self.sink, self.limits, self.gen, self.keep = sink, limits, gen, keep
        self._held: dict[str, OrderState] = {}
        self._pending: dict[str, OrderState] = {}

    def get(self, ids: set[str]) -> dict[str, OrderState | None]:
        out: dict[str, OrderState | None] = {i: self._held.get(i) or self._pending.get(i) for i in ids}
        missing = [i for i in ids if out[i] is None]
        if missing and self.sink is not None:
            out.update(read_back(self.sink, missing, self.limits, self.gen))
        return out

    def put(self, states: dict[str, OrderState]) -> None:
        for order_id, state in states.items():
            self._held.pop(order_id, None)
            self._pending.pop(order_id, None)
            if state.get("unit"):
                self._held[order_id] = state  # most recently changed last
            else:
                self._pending[order_id] = state
        while len(self._held) > self.keep:
            self._held.pop(next(iter(self._held)))


# -- import -----------------------------------------------------------------------------------


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]  # a GzipFile reads bytes
    return path.open("rb")


def fingerprint(path: Path) -> tuple[str, int]:
    """The file's identity (an interrupted import of the same content resumes) and its line count."""
    digest = hashlib.sha256()
    lines = 0
    with _open(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            lines += block.count(b"\n")
    return digest.hexdigest(), lines


ENVELOPE = b'{"topic"'  # a replay line (``hotline generate``): the event is its "event" member


def unwrap(line: bytes) -> bytes:
    """The event of a line: the line itself, or the event of a replay envelope."""
    if not line.startswith(ENVELOPE):
        return line
    try:
        envelope = json.loads(line)
    except ValueError:
        return line  # not JSON after all: its dead letter says so
    event = envelope.get("event") if isinstance(envelope, dict) else None
    return json.dumps(event, ensure_ascii=False).encode() if isinstance(event, dict) else line


def _lines(path: Path, start: int) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers, from line ``start`` on."""
    with _open(path) as fh:
        for number, line in enumerate(fh, 1):
            if number >= start and line.strip():
                yield number, unwrap(line.rstrip(b"\r\n"))


def _chunks(items: Iterable[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _generation_for(sink: Store, description: str) -> tuple[int, int]:
    """The generation to import under and the line to start at: an unfinished import of the
    same file (the latest generation) resumes; anything else starts a new generation."""
    latest = sink.generation()
    if latest.gen and latest.kind == IMPORT:
        rows = sink.query_rows(
            "SELECT description FROM {db}.generations FINAL WHERE gen = %(gen)s", {"gen": latest.gen}
        )
        if rows and rows[0]["description"] == description:
            done = sink.sunk_offsets().get((IMPORT_TOPIC, latest.gen), 0)
            return latest.gen, done + 1
    return sink.record_generation(IMPORT, description), 1


def import_file(
    sink: Store,
    path: Path,
    registry: Registry,
    limits: dict[str, int],
    advance: Advance = lambda n: None,
    chunk: int = CHUNK,
    digest: str | None = None,
    max_events: int = MAX_ORDER_EVENTS,
) -> Tally:
    """Load a file of contract events straight into ClickHouse, as if streamed."""
    description = f"{path.name} sha256={digest or fingerprint(path)[0]}"
    gen, start = _generation_for(sink, description)
    if start > 1:
        log.info("resuming the import of %s at line %d (generation %d)", path.name, start, gen)
        advance(start - 1)
    loader = Loader(sink, registry, limits, gen, max_events)
    loader.windows.load(
        sink.windows("source_topic = %(t)s AND source_partition = %(g)s", {"t": IMPORT_TOPIC, "g": gen})
    )
    tally = Tally()
    for lines in _chunks(_lines(path, start), chunk):
        records = [Record(Source(IMPORT_TOPIC, gen, number), None, line) for number, line in lines]
        loader.load(records, tally)
        advance(lines[-1][0] - lines[0][0] + 1)
    loader.finish()
    return tally


class Loader:
    """Folds chunks of records with the stream's engine and writes what comes out."""

    def __init__(
        self, sink: Store, registry: Registry, limits: dict[str, int], gen: int, max_events: int = MAX_ORDER_EVENTS
    ) -> None:
        self.sink, self.registry, self.limits, self.gen = sink, registry, limits, gen
        self.max_events = max_events
        self.windows = Windows()
        self.states = States(sink, limits, gen)
        self.known = id_filter(sink)
        # One chunk is written while the next is decoded; at most one is in flight.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self._writing: Future[None] | None = None

    def load(self, records: list[Record], tally: Tally) -> Folded:
        ready = decode_batch(records, self.registry, EVERY_TYPE)  # while the chunk before is written
        self.finish()  # the chunk before is stored: identities below see it
        decoded, contents = ready.events, ready.contents
        events = [(s, d) for s, d in decoded.items() if not isinstance(d, DeadLetter)]
        stored = self.sink.stored(self.known.maybe(e.event_id for _, e in events))
        identities = identify(events, stored, contents)
        states = self.states.get(order_ids(records, decoded))
        inputs = Inputs(decoded, identities, contents, states, {})
        folded = fold(records, inputs, self.limits, self.gen, self.max_events)
        self._write(folded, records)
        tally.records += len(records)
        tally.events += len(folded.batch.events)
        tally.duplicates += folded.duplicates
        tally.deadletters += folded.batch.deadletters
        return folded

    def _write(self, folded: Folded, records: list[Record]) -> None:
        missing = self.windows.missing(folded.steps)
        self.windows.load((), missing)  # this source's windows are all loaded: the rest are new
        staged = self.windows.stage(folded.steps)
        folded.batch.windows = rows(staged)
        last = records[-1].source
        self._writing = self._writer.submit(self._store, folded.batch, {(last.topic, last.partition): last.offset})
        self.known.add(row["event_id"] for row in folded.batch.events)
        self.windows.commit(staged)
        self.states.put(folded.orders)

    def _store(self, batch: Batch, progress: dict[tuple[str, int], int]) -> None:
        """A chunk's rows, then its progress (the writer thread: ClickHouse works without the GIL)."""
        self.sink.write(batch)
        self.sink.record_progress(progress)

    def finish(self) -> None:
        """Wait until the last chunk is stored; its error, if any, is raised here."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()


# -- restate ----------------------------------------------------------------------------------


def event_months(sink: Store) -> list[int]:
    """The months (YYYYMM) the events table holds, from its partitions: no scan."""
    rows = sink.query_rows(
        "SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s AND table = 'events' AND active "
        "ORDER BY partition",
        {"db": sink.db},
    )
    return [int(r["partition"]) for r in rows if str(r["partition"]).isdigit()]


def _stored_events(sink: ClickHouseSink, month: int) -> list[tuple[Source, Event]]:
    """A month of stored events in time order, each under the source it was read from."""
    found = sink.query_rows(
        "SELECT payload, source_topic, source_partition, source_offset FROM {db}.events FINAL "
        "WHERE toYYYYMM(occurred_at) = %(month)s ORDER BY occurred_at, source_topic, source_partition, source_offset",
        {"month": month},
    )
    return [
        (Source(str(r["source_topic"]), int(r["source_partition"]), int(r["source_offset"])), parse_event(r["payload"]))
        for r in found
    ]


class Restater:
    """Folds stored events again and writes the rows of the months in range only."""

    def __init__(self, sink: ClickHouseSink, limits: dict[str, int], gen: int, months: set[int]) -> None:
        self.sink, self.limits, self.gen, self.months = sink, limits, gen, months
        self.windows = Windows()
        # Every order folded from its first event on, in memory: a state read back from
        # ClickHouse would already hold the events still to come.
        self.states = States(None, limits, gen, keep=2**62)

    def fold_month(self, month: int) -> int:
        events = _stored_events(self.sink, month)
        for start in range(0, len(events), CHUNK):
            self._fold_chunk(events[start : start + CHUNK])
        return len(events)

    def _fold_chunk(self, events: list[tuple[Source, Event]]) -> None:
        records = [Record(source, None, None) for source, _ in events]
        decoded: dict[Source, Event | DeadLetter] = dict(events)
        identities = dict.fromkeys((source for source, _ in events), NEW)  # the store's own events
        contents = {source: payload(event) for source, event in events}
        states = self.states.get(order_ids(records, decoded))
        inputs = Inputs(decoded, identities, contents, states, {})
        folded = fold(records, inputs, self.limits, self.gen, max_events=None)  # stored events were accepted
        folded.batch.events = []  # the audit record stays as it is
        folded.batch.deadletters = []
        steps = [s for s in folded.steps if month_of_day(s.delta.day) in self.months]
        staged = self.windows.stage(steps, versions=False)
        folded.batch.windows = rows(staged)
        folded.batch.orders = [o for o in folded.batch.orders if month_of_day(o.cohort_day) in self.months]
        folded.batch.returns = [r for r in folded.batch.returns if r.month in self.months]
        self.sink.write(folded.batch)
        self.windows.commit(staged)
        self.states.put(folded.orders)


def month_of_day(day: date) -> int:
    return day.year * 100 + day.month


def restate_if_pending(sink: ClickHouseSink, limits: dict[str, int]) -> Generation:
    """The store's generation, after restating it first if a migration asks (what opening a store
    this process owns does: a lone worker, or ``hotline store``)."""
    generation = sink.generation()
    if generation.restate_pending:
        log.warning("this store holds events from before the day windows: restating them (hotline restate)")
        restate(sink, limits)
        generation = sink.generation()
    return generation


def restate(
    sink: ClickHouseSink,
    limits: dict[str, int],
    first: int | None = None,
    last: int | None = None,
    advance: Advance = lambda n: None,
) -> list[int]:
    """Rebuild the windows, order states and returns of months ``first``..``last`` (all by
    default) from the events table; returns the months rewritten. Idempotent."""
    months = event_months(sink)
    chosen = {m for m in months if (first is None or m >= first) and (last is None or m <= last)}
    span = f"{min(chosen)}..{max(chosen)}" if chosen else "none"
    gen = sink.record_generation(RESTATE_PENDING, f"restating months {span}")
    for month in sorted(chosen):
        for table in (UNIT_WINDOWS, ORDER_STATES, ORDER_RETURNS):
            sink.command(f"ALTER TABLE {{db}}.{table.name} DROP PARTITION {month}")
    restater = Restater(sink, limits, gen, chosen)
    for month in months:  # all of them: later events still move the chosen months' cohorts
        advance(restater.fold_month(month))
    sink.record_generation("restate", f"restated months {span}")
    log.info("restated %d month(s): %s", len(chosen), span)
    return sorted(chosen)
