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
import io
import json
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

from hotline.schemas.events import MAX_RECORD_BYTES, SOURCE_PREFIXES, Event, InvalidEvent, parse_event
from hotline.schemas.registry import Registry
from hotline.sinks.base import RESTATE_PENDING, Batch, DeadLetter, Generation, Store
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.tables import ORDER_RETURNS, ORDER_STATES, UNIT_WINDOWS
from hotline.streams.deadlines import TZ
from hotline.streams.folding import Inputs, fold, order_ids
from hotline.streams.known import id_filter
from hotline.streams.processing import (
    NEW,
    Decoded,
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
CHUNK_BYTES = 64 << 20  # and at most this much of the file held per chunk
KEEP_STATES = 400_000  # orders whose state stays in memory between chunks (others are read back)
EVERY_TYPE = SOURCE_PREFIXES
SHOWN_DEADLETTERS = 20  # dead letters a tally keeps, to show; every one is stored with its chunk
SKIP = 1 << 20  # bytes read at a time while skipping the rest of a line over the record limit

Advance = Callable[[int], None]  # how many more records are done (a progress bar)


def today() -> date:
    return datetime.now(TZ).date()


@dataclass
class Tally:
    """What a run did, record by record.

    Every dead letter is counted, but only the first :data:`SHOWN_DEADLETTERS` are kept, without
    their bytes: all of them are already in ClickHouse (written with their chunk), and a file of
    bad lines must not grow the importer's memory with its size.
    """

    records: int = 0
    events: int = 0
    duplicates: int = 0
    deadletter_count: int = 0
    deadletters: list[DeadLetter] = field(default_factory=list)  # the first few, to show

    def add_deadletters(self, found: Sequence[DeadLetter]) -> None:
        """Count ``found``; keep the first of them while there is room, their bytes dropped."""
        self.deadletter_count += len(found)
        room = max(SHOWN_DEADLETTERS - len(self.deadletters), 0)
        self.deadletters += [replace(d, raw=b"", key=None) for d in found[:room]]


def read_back(store: Store, ids: Iterable[str], limits: dict[str, int], gen: int) -> dict[str, OrderState]:
    """The stored orders among ``ids``, each with its timeline, to fold on: the order states table
    says which orders and which events (``seen``), the events table what each event was."""
    rows = store.order_states(ids)
    if not rows:
        return {}
    stored = store.stored([event_id for row in rows.values() for event_id in row.seen])
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

    def __init__(self, store: Store | None, limits: dict[str, int], gen: int, keep: int = KEEP_STATES) -> None:
        self.store, self.limits, self.gen, self.keep = store, limits, gen, keep
        self._held: dict[str, OrderState] = {}
        self._pending: dict[str, OrderState] = {}

    def get(self, ids: set[str]) -> dict[str, OrderState | None]:
        out: dict[str, OrderState | None] = {i: self._held.get(i) or self._pending.get(i) for i in ids}
        missing = [i for i in ids if out[i] is None]
        if missing and self.store is not None:
            out.update(read_back(self.store, missing, self.limits, self.gen))
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


class UnreadableFile(Exception):
    """A file to import that cannot be read (on): missing, not gzip, truncated. The message is one
    line for the user: the file, what is wrong with it, and what to do."""


READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError; EOFError: a truncated gzip


def _unreadable(path: Path, exc: BaseException, after: int) -> UnreadableFile:
    """What ``exc`` met while reading ``path`` (after line ``after``, 0: before any) means to the user."""
    if isinstance(exc, FileNotFoundError):
        return UnreadableFile(f"{path} does not exist: check the path")
    if isinstance(exc, IsADirectoryError):
        return UnreadableFile(f"{path} is a directory: give a .jsonl file or a gzip of one")
    if isinstance(exc, PermissionError):
        return UnreadableFile(f"{path} cannot be read (permission denied): make it readable for this user")
    done = f"after line {after} (the lines before it are imported)" if after else "before its first line"
    if isinstance(exc, EOFError):
        return UnreadableFile(
            f"{path} is truncated: its gzip stream ends {done}: give the whole file and import it again"
        )
    if isinstance(exc, gzip.BadGzipFile | zlib.error) and not after:
        return UnreadableFile(f"{path} is not a gzip file ({exc}): give a .jsonl file or a gzip of one")
    if isinstance(exc, gzip.BadGzipFile | zlib.error):
        return UnreadableFile(f"{path} is damaged: its gzip data breaks {done} ({exc}): repair or replace it")
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return UnreadableFile(f"{path} cannot be read {done}: {reason}")


def _open(path: Path) -> io.BufferedIOBase:
    """The file's bytes, decompressed when it is named ``.gz``."""
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")
        return path.open("rb")
    except READ_ERRORS as exc:
        raise _unreadable(path, exc, 0) from exc


def fingerprint(path: Path) -> tuple[str, int]:
    """The file's identity (an interrupted import of the same content resumes) and its line count.

    A file that breaks off midway (a truncated gzip) is identified by the part that can be read:
    the import loads that part, then says where it broke. A file that cannot be read at all
    (missing, not gzip) fails here, before anything is opened or stored.
    """
    digest = hashlib.sha256()
    lines = size = 0
    with _open(path) as fh:
        try:
            # read1: what was decompressed before a break is returned, not lost with the exception
            for block in iter(lambda: fh.read1(1 << 20), b""):
                digest.update(block)
                lines += block.count(b"\n")
                size += len(block)
        except READ_ERRORS as exc:
            if not size:
                raise _unreadable(path, exc, 0) from exc
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


Line = tuple[int, bytes, int]  # its 1-based number, its bytes (at most MAX_RECORD_BYTES), its true length


def _read_line(fh: io.BufferedIOBase, limit: int) -> tuple[bytes, int] | None:
    """The next line without its end, cut at ``limit`` bytes, and its true length; None at the end.

    The rest of a longer line is read in pieces and dropped: a line of a gigabyte costs ``limit``
    bytes of memory, not a gigabyte (it can only become a dead letter anyway).
    """
    head = fh.readline(limit + 1)
    if not head:
        return None
    size, tail = len(head), head[-2:]
    if len(head) > limit and not head.endswith(b"\n"):
        while piece := fh.readline(SKIP):
            size, tail = size + len(piece), (tail + piece)[-2:]
            if piece.endswith(b"\n"):
                break
    length = size - (len(tail) - len(tail.rstrip(b"\r\n")))  # without its \n or \r\n
    return head[: min(length, limit)], length


def _lines(path: Path, start: int) -> Iterator[Line]:
    """Non-blank lines with their 1-based numbers, from line ``start`` on, each cut at the record
    limit (with its true length); :class:`UnreadableFile` where the file breaks off."""
    number = 0
    with _open(path) as fh:
        try:
            while (read := _read_line(fh, MAX_RECORD_BYTES)) is not None:
                number += 1
                line, length = read
                if number >= start and line.strip():
                    yield number, unwrap(line) if length <= MAX_RECORD_BYTES else line, length
        except READ_ERRORS as exc:
            raise _unreadable(path, exc, number) from exc


def _until_broken(lines: Iterator[Line], broken: list[UnreadableFile]) -> Iterator[Line]:
    """``lines`` up to where the file breaks off; the break goes to ``broken``, to be raised once
    the lines before it are stored (with their progress: a rerun resumes after them)."""
    try:
        yield from lines
    except UnreadableFile as exc:
        broken.append(exc)


def _too_long(records: list[Record], lines: list[Line]) -> Decoded | None:
    """The dead letters of the lines over the record limit (what decoding them would have found,
    with their true length), or None when there are none."""
    dead: dict[Source, Event | DeadLetter] = {}
    for record, (_, line, length) in zip(records, lines, strict=True):
        if length > MAX_RECORD_BYTES:
            reason = InvalidEvent(f"line of {length:,} bytes exceeds the limit of {MAX_RECORD_BYTES:,}").reason
            source = record.source
            dead[source] = DeadLetter(source.topic, source.partition, source.offset, reason, line)
    return Decoded(dead, {}) if dead else None


def _chunks(items: Iterable[Line], size: int, max_bytes: int = CHUNK_BYTES) -> Iterator[list[Line]]:
    """Lines ``size`` at a time, or fewer when they reach ``max_bytes``: 20,000 lines of 64 KiB
    (bad ones, say) would otherwise hold over a gigabyte at once."""
    chunk: list[Line] = []
    held = 0
    for item in items:
        chunk.append(item)
        held += len(item[1])
        if len(chunk) >= size or held >= max_bytes:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _generation_for(store: Store, description: str) -> tuple[int, int]:
    """The generation to import under and the line to start at: an unfinished import of the
    same file (the latest generation) resumes; anything else starts a new generation."""
    latest = store.generation()
    if latest.gen and latest.kind == IMPORT:
        rows = store.query_rows(
            "SELECT description FROM {db}.generations FINAL WHERE gen = %(gen)s", {"gen": latest.gen}
        )
        if rows and rows[0]["description"] == description:
            done = store.progress().get((IMPORT_TOPIC, latest.gen), 0)
            return latest.gen, done + 1
    return store.record_generation(IMPORT, description), 1


def import_file(
    store: Store,
    path: Path,
    registry: Registry,
    limits: dict[str, int],
    advance: Advance = lambda n: None,
    chunk: int = CHUNK,
    digest: str | None = None,
    max_events: int = MAX_ORDER_EVENTS,
) -> Tally:
    """Load a file of contract events straight into ClickHouse, as if streamed.

    A file that breaks off midway (a truncated gzip) raises :class:`UnreadableFile` once the
    lines before the break are stored with their progress: a rerun resumes after them."""
    description = f"{path.name} sha256={digest or fingerprint(path)[0]}"
    gen, start = _generation_for(store, description)
    if start > 1:
        log.info("resuming the import of %s at line %d (generation %d)", path.name, start, gen)
        advance(start - 1)
    loader = Loader(store, registry, limits, gen, max_events)
    loader.windows.load(
        store.windows("source_topic = %(t)s AND source_partition = %(g)s", {"t": IMPORT_TOPIC, "g": gen})
    )
    tally = Tally()
    broken: list[UnreadableFile] = []
    for lines in _chunks(_until_broken(_lines(path, start), broken), chunk):
        records = [Record(Source(IMPORT_TOPIC, gen, number), None, line) for number, line, _ in lines]
        loader.load(records, tally, _too_long(records, lines))
        advance(lines[-1][0] - lines[0][0] + 1)
    loader.finish()
    if broken:
        raise broken[0]
    return tally


class Loader:
    """Folds chunks of records with the stream's engine and writes what comes out."""

    def __init__(
        self, store: Store, registry: Registry, limits: dict[str, int], gen: int, max_events: int = MAX_ORDER_EVENTS
    ) -> None:
        self.store, self.registry, self.limits, self.gen = store, registry, limits, gen
        self.max_events = max_events
        self.windows = Windows()
        self.states = States(store, limits, gen)
        self.known = id_filter(store)
        # One chunk is written while the next is decoded; at most one is in flight.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self._writing: Future[None] | None = None

    def load(self, records: list[Record], tally: Tally, done: Decoded | None = None) -> Folded:
        """Fold and write a chunk; ``done``: records already decoded (dead letters the reader made)."""
        ready = decode_batch(records, self.registry, EVERY_TYPE, done)  # while the chunk before is written
        self.finish()  # the chunk before is stored: identities below see it
        decoded, contents = ready.events, ready.contents
        events = [(s, d) for s, d in decoded.items() if not isinstance(d, DeadLetter)]
        stored = self.store.stored(self.known.maybe(e.event_id for _, e in events))
        identities = identify(events, stored, contents)
        states = self.states.get(order_ids(records, decoded))
        inputs = Inputs(decoded, identities, contents, states, {})
        folded = fold(records, inputs, self.limits, self.gen, self.max_events)
        self._write(folded, records)
        tally.records += len(records)
        tally.events += len(folded.batch.events)
        tally.duplicates += folded.duplicates
        tally.add_deadletters(folded.batch.deadletters)
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
        self.store.write(batch)
        self.store.record_progress(progress)

    def finish(self) -> None:
        """Wait until the last chunk is stored; its error, if any, is raised here."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()


# -- restate ----------------------------------------------------------------------------------


def event_months(store: Store) -> list[int]:
    """The months (YYYYMM) the events table holds, from its partitions: no scan."""
    rows = store.query_rows(
        "SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s AND table = 'events' AND active "
        "ORDER BY partition",
        {"db": store.db},
    )
    return [int(r["partition"]) for r in rows if str(r["partition"]).isdigit()]


def _stored_events(store: ClickHouseStore, month: int) -> list[tuple[Source, Event]]:
    """A month of stored events in time order, each under the source it was read from."""
    found = store.query_rows(
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

    def __init__(self, store: ClickHouseStore, limits: dict[str, int], gen: int, months: set[int]) -> None:
        self.store, self.limits, self.gen, self.months = store, limits, gen, months
        self.windows = Windows()
        # Every order folded from its first event on, in memory: a state read back from
        # ClickHouse would already hold the events still to come.
        self.states = States(None, limits, gen, keep=2**62)

    def fold_month(self, month: int) -> int:
        events = _stored_events(self.store, month)
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
        self.store.write(folded.batch)
        self.windows.commit(staged)
        self.states.put(folded.orders)


def month_of_day(day: date) -> int:
    return day.year * 100 + day.month


def restate_if_pending(store: ClickHouseStore, limits: dict[str, int]) -> Generation:
    """The store's generation, after restating it first if a migration asks (what opening a store
    this process owns does: a lone worker, or ``hotline store``)."""
    generation = store.generation()
    if generation.restate_pending:
        log.warning("this store holds events from before the day windows: restating them (hotline restate)")
        restate(store, limits)
        generation = store.generation()
    return generation


def restate(
    store: ClickHouseStore,
    limits: dict[str, int],
    first: int | None = None,
    last: int | None = None,
    advance: Advance = lambda n: None,
) -> list[int]:
    """Rebuild the windows, order states and returns of months ``first``..``last`` (all by
    default) from the events table; returns the months rewritten. Idempotent."""
    months = event_months(store)
    chosen = {m for m in months if (first is None or m >= first) and (last is None or m <= last)}
    span = f"{min(chosen)}..{max(chosen)}" if chosen else "none"
    gen = store.record_generation(RESTATE_PENDING, f"restating months {span}")
    for month in sorted(chosen):
        for table in (UNIT_WINDOWS, ORDER_STATES, ORDER_RETURNS):
            store.command(f"ALTER TABLE {{db}}.{table.name} DROP PARTITION {month}")
    restater = Restater(store, limits, gen, chosen)
    for month in months:  # all of them: later events still move the chosen months' cohorts
        advance(restater.fold_month(month))
    store.record_generation("restate", f"restated months {span}")
    log.info("restated %d month(s): %s", len(chosen), span)
    return sorted(chosen)
