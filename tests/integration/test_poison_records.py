"""Poison records among the seed month: the worker dead-letters each and carries on.

One run for the module: the seed month with the hand-made poison records of
``tests/poison.py`` and its malformed corpus (180 mutated events) interleaved, then,
once the month is sunk, two event-id conflicts. Each test checks one behaviour of
that run: the worker never exited and sank everything, every bad record is in the
dead-letter topic and table with its reason, the bulletin still equals the seed, no
table (and no log line) holds a caller's phone or name, a forged log line stays
escaped, the conflicts name the first event.

A worker that stops making progress is not waited for until the timeout: after two
minutes without a batch stored the run goes on to its checks, which then say what is
missing (the first check names the stall).
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import random
import re
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hotline.client import worker_get
from hotline.replay import read_records, wait_until_sunk
from hotline.schemas.events import MAX_RECORD_BYTES
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from tests.integration.conftest import Worker, isolated_settings
from tests.integration.seed import assert_headline_matches_seed, assert_table_matches_seed
from tests.poison import (
    FORGED,
    Bad,
    callers,
    conflict_records,
    dumps,
    malformed_corpus,
    poison_records,
    valid_with_phones,
)

pytestmark = pytest.mark.integration

Coordinates = tuple[str, int, int]  # topic, partition, offset


@dataclass(frozen=True)
class Sent:
    """A bad record as produced, and where Kafka put it."""

    bad: Bad
    topic: str
    partition: int
    offset: int

    @property
    def source(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class Letter:
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


@dataclass
class Run:
    """What the module's one run produced and observed."""

    settings: Settings
    sent: dict[bytes, Sent]  # every bad record, the conflicts included, by key
    conflicts: list[Sent]
    first_read_at: dict[str, str]  # a month event id -> where it was produced, as topic[partition]@offset
    phones: set[str]
    names: set[str]
    pid_at_start: int = 0
    pid_at_end: int | None = None
    log: str = ""
    bulletin: dict[str, Any] = field(default_factory=dict)
    csv_text: str = ""
    metrics: str = ""
    letters: dict[bytes, list[Letter]] = field(default_factory=dict)
    deadletter_rows: list[dict[str, Any]] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    string_columns: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (table, column) -> values
    stalled: str | None = None  # why the worker did not store everything sent, if it did not


# -- the run -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def poison_settings(broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Like conftest's ``isolated``, for the module: fresh topics, group, chDB directory and port."""
    return isolated_settings(broker, tmp_path_factory.mktemp("poison"))


async def _produce(records: list[tuple[str, bytes | None, bytes | None]], settings: Settings) -> list[Coordinates]:
    """Send (topic, key, value) records in order; where each landed."""
    producer = AIOKafkaProducer(
        linger_ms=5, max_batch_size=256 * 1024, **settings.producer_options(), **settings.kafka_client_options()
    )
    await producer.start()
    placed: list[Coordinates] = []
    try:
        for start in range(0, len(records), 2000):
            chunk = records[start : start + 2000]
            futures = [await producer.send(topic, value, key=key) for topic, key, value in chunk]
            placed += [(m.topic, m.partition, m.offset) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()
    return placed


def _last_offsets(placed: list[Coordinates]) -> dict[tuple[str, int], int]:
    last: dict[tuple[str, int], int] = {}
    for topic, partition, offset in placed:
        last[topic, partition] = max(last.get((topic, partition), -1), offset)
    return last


async def _read_letters(settings: Settings, keys: set[bytes], timeout: float = 120) -> dict[bytes, list[Letter]]:
    """The dead-letter topic from its beginning, until every key in ``keys`` is there (or the timeout)."""
    consumer = AIOKafkaConsumer(
        settings.deadletter_topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.kafka_client_options(),  # type: ignore[arg-type]
    )
    await consumer.start()
    found: dict[bytes, list[Letter]] = {}
    deadline = time.monotonic() + timeout
    try:
        while not keys <= set(found) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    letter = Letter(r.key, r.value, {k: bytes(v) for k, v in r.headers})
                    found.setdefault(r.key or b"", []).append(letter)
    finally:
        await consumer.stop()
    return found


def _read_clickhouse(run: Run) -> None:
    """Every dead-letter row, and every value of every String-typed column of every table (worker stopped)."""
    store = ClickHouseStore(run.settings)
    db = run.settings.clickhouse_database
    try:
        run.deadletter_rows = store.query_rows(
            "SELECT source_topic, source_partition, source_offset, error, raw, key FROM {db}.deadletter FINAL"
        )
        run.tables = [
            r["name"] for r in store.query_rows("SELECT name FROM system.tables WHERE database = %(db)s", {"db": db})
        ]
        columns = store.query_rows(
            "SELECT table, name, type FROM system.columns WHERE database = %(db)s AND position(type, 'String') > 0",
            {"db": db},
        )
        by_table: dict[str, list[str]] = {}
        for c in columns:
            by_table.setdefault(c["table"], []).append(c["name"])
        for table, names in by_table.items():
            # Not FINAL: every row stored, replaced versions included, is scanned.
            rows = store.query(f"SELECT {', '.join(f'`{n}`' for n in names)} FROM {{db}}.`{table}`")
            for i, name in enumerate(names):
                run.string_columns[table, name] = [
                    v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in (r[i] for r in rows) if v
                ]
    finally:
        store.close()



@pytest.fixture(scope="module")
def run(poison_settings: Settings, month_file: Path) -> Iterator[Run]:
    settings = poison_settings
    month = list(read_records(month_file, settings))
    events = [json.loads(r.value) for r in month]
    phones, names = callers(events)
    topics = {"calls": settings.calls_topic, "orders": settings.orders_topic}
    bad = [*poison_records(events), *malformed_corpus(events)]
    conflicts = conflict_records(events)

    # The bad records at seeded places among the month's records, the month's order kept.
    slots = set(random.Random(2019).sample(range(len(month) + len(bad)), len(bad)))
    mixed: list[tuple[str, bytes | None, bytes | None, Bad | None]] = []
    month_left, bad_left = iter(month), iter(bad)
    for i in range(len(month) + len(bad)):
        if i in slots:
            b = next(bad_left)
            mixed.append((topics[b.topic], b.key, b.value, b))
        else:
            r = next(month_left)
            mixed.append((r.topic, r.key, r.value, None))

    worker = Worker(settings)
    worker.start()
    try:
        result = Run(settings, {}, [], {}, phones, names, pid_at_start=worker.pid)
        placed = asyncio.run(_produce([(t, k, v) for t, k, v, _ in mixed], settings))
        for (_, _, value, poison), (topic, partition, offset) in zip(mixed, placed, strict=True):
            if poison is None:
                result.first_read_at[json.loads(value or b"")["event_id"]] = f"{topic}[{partition}]@{offset}"
            else:
                result.sent[poison.key] = Sent(poison, topic, partition, offset)
        result.stalled = _why_not_stored(_last_offsets(placed), settings, worker)

        if result.stalled is None:  # the identity conflicts, once every event whose id they reuse is stored
            placed = asyncio.run(_produce([(topics[c.topic], c.key, c.value) for c in conflicts], settings))
            for c, (topic, partition, offset) in zip(conflicts, placed, strict=True):
                result.sent[c.key] = Sent(c, topic, partition, offset)
                result.conflicts.append(result.sent[c.key])
            result.stalled = _why_not_stored(_last_offsets(placed), settings, worker)

        result.bulletin, result.csv_text, result.metrics = _observe(settings)
        if result.stalled is None:  # valid events with a phone in their free text, once the figures are read
            valid = valid_with_phones(events)
            records = [(topics["orders"], e["order_id"].encode(), dumps(e)) for e in valid]
            placed = asyncio.run(_produce(records, settings))
            result.stalled = _why_not_stored(_last_offsets(placed), settings, worker)
        result.letters = asyncio.run(_read_letters(settings, set(result.sent), 30 if result.stalled else 120))
        result.pid_at_end = worker.pid if worker.proc is not None and worker.proc.poll() is None else None
        result.log = worker.log.read_text(encoding="utf-8", errors="replace")
        worker.stop()
        _read_clickhouse(result)
        yield result
    finally:
        worker.stop()


class Stalled(Exception):
    pass


def _why_not_stored(
    last: dict[tuple[str, int], int], settings: Settings, worker: Worker, stall_s: float = 120
) -> str | None:
    """Wait until the worker has stored every offset in ``last``; what went wrong if it stops making progress."""
    best = [-1.0, time.monotonic()]  # records stored, when that number last grew

    def check(done: int | None = None) -> None:
        now = time.monotonic()
        if done is not None and done > best[0]:
            best[:] = [done, now]
        if worker.proc is None or worker.proc.poll() is not None:
            raise Stalled(f"the worker exited ({worker.proc and worker.proc.returncode})")
        if now - best[1] > stall_s:
            raise Stalled(f"the worker made no progress for {stall_s:.0f}s ({best[0]:.0f} records sunk)")

    try:
        wait_until_sunk(last, settings, timeout=900, progress=lambda done, _: check(done), waiting=lambda _: check())
    except (Stalled, TimeoutError) as exc:
        return f"{exc}\nworker log:\n{worker.tail(30)}"
    return None


def _observe(settings: Settings) -> tuple[dict[str, Any], str, str]:
    """The bulletin (JSON and CSV) and the metrics, or what the worker answered instead."""
    try:
        bulletin = worker_get(settings, "/bulletin/2019-11?format=json", timeout=60)
        csv_text = worker_get(settings, "/bulletin/2019-11?format=csv", timeout=60).decode()
        metrics = worker_get(settings, "/metrics", timeout=60).decode()
    except (OSError, http.client.HTTPException) as exc:
        return {"unanswered": repr(exc)}, "", ""
    return bulletin, csv_text, metrics


# -- the checks ----------------------------------------------------------------------------


def _stalled(run: Run) -> str:
    """Why a check cannot pass, when the worker did not store everything (the first line of the reason)."""
    return f" (the worker did not store everything: {run.stalled.splitlines()[0]})" if run.stalled else ""


def test_the_worker_never_exited(run: Run) -> None:
    assert run.pid_at_end == run.pid_at_start, "the worker process is not the one started"
    lines = run.log.splitlines()
    tracebacks = ["\n".join(lines[max(0, i - 1) : i + 12]) for i, line in enumerate(lines) if "Traceback" in line]
    assert not tracebacks, f"{len(tracebacks)} tracebacks in the worker log; the first:\n{tracebacks[0]}"
    assert not [line for line in lines if "exiting" in line]


def test_the_worker_sinks_everything_sent_past_every_bad_record(run: Run) -> None:
    assert run.stalled is None, run.stalled
    assert len(run.conflicts) == 2, "the conflicts were not sent"


def test_every_bad_record_is_in_the_deadletter_topic_with_its_key_and_reason(run: Run) -> None:
    problems = []
    for key, sent in run.sent.items():
        letters = run.letters.get(key)
        if not letters:
            problems.append(f"{sent.bad.name} ({key!r}, {sent.source}): not in the dead-letter topic")
            continue
        for letter in letters:
            h = letter.headers
            coordinates = (
                h.get("hotline.source.topic"),
                h.get("hotline.source.partition"),
                h.get("hotline.source.offset"),
            )
            if coordinates != (sent.topic.encode(), str(sent.partition).encode(), str(sent.offset).encode()):
                problems.append(f"{sent.bad.name} ({key!r}): source headers {coordinates} != {sent.source}")
            if not h.get("hotline.error", b"").strip():
                problems.append(f"{sent.bad.name} ({key!r}): no hotline.error reason")
            original = sent.bad.value or b""
            if len(original) <= MAX_RECORD_BYTES and (letter.value or b"") != original:
                problems.append(f"{sent.bad.name} ({key!r}): value is not the original bytes")
    assert not problems, f"{len(problems)} problems{_stalled(run)}:\n" + "\n".join(problems)


def test_an_oversized_record_is_dead_lettered_truncated_with_its_size_and_digest(run: Run) -> None:
    oversized = [s for s in run.sent.values() if len(s.bad.value or b"") > MAX_RECORD_BYTES]
    assert any(len(s.bad.value or b"") == 1_000_100 for s in oversized)
    missing = [s.bad.name for s in oversized if s.bad.key not in run.letters]
    assert not missing, f"not in the dead-letter topic: {missing}{_stalled(run)}"
    for sent in oversized:
        original = sent.bad.value or b""
        for letter in run.letters[sent.bad.key]:
            assert letter.value == original[:MAX_RECORD_BYTES], sent.bad.name
            assert letter.headers["hotline.truncated.size"] == str(len(original)).encode()
            assert letter.headers["hotline.truncated.sha256"] == hashlib.sha256(original).hexdigest().encode()
    for sent in run.sent.values():
        if len(sent.bad.value or b"") <= MAX_RECORD_BYTES:
            assert all("hotline.truncated.size" not in x.headers for x in run.letters.get(sent.bad.key, []))


def test_each_poison_record_is_refused_for_its_own_reason(run: Run) -> None:
    wrong = []
    for key, sent in run.sent.items():
        for letter in run.letters.get(key, []):
            reason = letter.headers.get("hotline.error", b"").decode(errors="replace")
            if sent.bad.reason not in reason:
                wrong.append(f"{sent.bad.name} ({key!r}): {reason!r} does not say {sent.bad.reason!r}")
    assert not wrong, "\n".join(wrong)


def test_every_bad_record_is_in_the_clickhouse_deadletter_table_with_a_reason(run: Run) -> None:
    rows = {(r["source_topic"], r["source_partition"], r["source_offset"]): r for r in run.deadletter_rows}
    problems = []
    for key, sent in run.sent.items():
        row = rows.get((sent.topic, sent.partition, sent.offset))
        if row is None:
            problems.append(f"{sent.bad.name} ({key!r}, {sent.source}): no dead-letter row")
        elif not row["error"].strip() or row["key"] != key.decode():
            problems.append(f"{sent.bad.name} ({key!r}): error {row['error']!r}, key {row['key']!r}")
    assert not problems, f"{len(problems)} problems{_stalled(run)}:\n" + "\n".join(problems)
    assert len(rows) == len(run.sent), "a good record of the month was dead-lettered"


def test_the_bulletin_equals_the_seed(run: Run) -> None:
    assert run.csv_text, f"no bulletin: {run.bulletin}"
    assert run.stalled is None, f"the bulletin cannot equal the seed{_stalled(run)}"
    assert_table_matches_seed(run.csv_text)
    assert_headline_matches_seed(run.bulletin["headline"])


_DIGIT_RUN = re.compile(r"\d{11,}")
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[\s.\-–—()（）]+(?=\d)")
_ESCAPED_DIGIT = re.compile(r"\\u00(3[0-9])")


def _plain(text: str) -> str:
    """Digits as a phone scanner reads them: full-width folded, JSON escapes decoded, separators
    between digits dropped (``139.1234.5680``, ``1391-23-456830`` and ``１３９…`` are phones too)."""
    text = _ESCAPED_DIGIT.sub(lambda m: chr(int(m.group(1), 16)), unicodedata.normalize("NFKC", text))
    return _BETWEEN_DIGITS.sub("", text)


def _personal(text: str, phones: set[str], names: set[str]) -> list[str]:
    """The callers' phones (in any written form) and names that ``text`` holds (a name also as
    JSON's \\u escapes)."""
    found = [
        digits[i : i + 11]
        for digits in _DIGIT_RUN.findall(_plain(text))
        for i in range(len(digits) - 10)
        if digits[i : i + 11] in phones
    ]
    found += [n for n in names if n in text or json.dumps(n)[1:-1] in text]
    return found


def test_no_string_column_of_any_table_holds_a_callers_phone_or_name(run: Run) -> None:
    assert len(run.phones) > 1000 and run.names
    carrying = [s.bad.name for s in run.sent.values() if any(p.encode() in (s.bad.value or b"") for p in run.phones)]
    assert len(carrying) >= 10, "too few bad records carry a real caller to exercise the dead-letter path"
    assert {"events", "deadletter"} <= set(run.tables)
    assert {t for t, _ in run.string_columns} >= {"events", "deadletter"}
    leaks = []
    for (table, column), values in sorted(run.string_columns.items()):
        for value in values:
            found = _personal(value, run.phones, run.names)
            if found:
                leaks.append(f"{table}.{column} holds {sorted(set(found))}: {value[:200]!r}")
    assert not leaks, f"{len(leaks)} values hold a caller's phone or name:\n" + "\n".join(leaks[:40])


def test_a_forged_log_line_stays_escaped(run: Run) -> None:
    assert not [line for line in run.log.splitlines() if line.startswith(FORGED)]
    logged = "\\n" + FORGED in run.log
    assert logged, f"the record's dead letter was not logged (escaped){_stalled(run)}"
    forged = next(s for s in run.sent.values() if FORGED.encode() in (s.bad.value or b""))
    for letter in run.letters.get(forged.bad.key, []):
        assert b"\n" not in letter.headers["hotline.error"] and b"\x00" not in letter.headers["hotline.error"]


def test_the_worker_log_holds_no_callers_phone_or_name(run: Run) -> None:
    """README: caller.phone and caller.name never reach ClickHouse, logs or alerts."""
    leaks = [line[:300] for line in run.log.splitlines() if _personal(line, run.phones, run.names)]
    assert not leaks, f"{len(leaks)} log lines hold a caller's phone or name:\n" + "\n".join(leaks[:20])


def test_identity_conflicts_are_dead_lettered_naming_the_first_event(run: Run) -> None:
    assert len(run.conflicts) == 2, f"the conflicts were not sent{_stalled(run)}"
    for sent in run.conflicts:
        first = run.first_read_at[str(sent.bad.reuses)]
        letters = run.letters.get(sent.bad.key)
        assert letters, f"{sent.bad.name}: not in the dead-letter topic"
        for letter in letters:
            assert letter.headers.get("hotline.conflict.source") == first.encode(), sent.bad.name
            assert first in letter.headers["hotline.error"].decode(), sent.bad.name
    assert run.conflicts[1].bad.reuses in run.first_read_at
    assert run.first_read_at[str(run.conflicts[1].bad.reuses)].startswith(run.settings.calls_topic)
    assert f'hotline_event_id_conflicts_total{{topic="{run.settings.orders_topic}"}} 2.0' in run.metrics
    assert "hotline_event_id_conflicts_total" in run.metrics
    for line in run.metrics.splitlines():  # and no other record was taken for a conflict
        if line.startswith("hotline_event_id_conflicts_total{") and run.settings.orders_topic not in line:
            assert line.endswith(" 0.0"), line


def test_a_megabyte_key_is_dead_lettered_truncated_and_stops_nothing(isolated: Settings, worker: Worker) -> None:
    """A record whose Kafka key is about 1 MB (its value not JSON): its dead letter would pass the
    producer's request size with the whole key, and the batch would be retried for ever. The key
    goes truncated, with its size and digest; the valid events after it are stored."""
    from hotline.streams.deadletters import MAX_KEY_BYTES
    from tests.factories import event, raw

    key = b"k" * 1_000_000
    valid = [event("order.dispatched", order_id=f"K{n}", event_id=f"key-test-{n}") for n in range(8)]
    records: list[tuple[str, bytes | None, bytes | None]] = [(isolated.orders_topic, key, b"not json")]
    records += [(isolated.orders_topic, e["order_id"].encode(), raw(e)) for e in valid]
    placed = asyncio.run(_produce(records, isolated))
    assert _why_not_stored(_last_offsets(placed), isolated, worker, stall_s=60) is None, "the worker stopped"
    letters = asyncio.run(_read_letters(isolated, {key[:MAX_KEY_BYTES]}, timeout=60))
    [letter] = letters[key[:MAX_KEY_BYTES]]
    assert letter.value == b"not json"
    assert letter.headers["hotline.key.truncated.size"] == b"1000000"
    assert letter.headers["hotline.key.truncated.sha256"] == hashlib.sha256(key).hexdigest().encode()
    status = worker_get(isolated, "/status")
    assert status["store"] == {"ok": True}
