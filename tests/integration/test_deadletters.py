"""Dead letters fixed and redriven, on the real broker and chDB.

Events of a unit the registry does not know yet are dead-lettered; the unit is added to the
registry file (``HOTLINE_UNITS_FILE``) and the worker restarted; ``hotline deadletters
redrive`` sends the originals again and the pipeline stores each once. With a sealing key
the originals come from their sealed copy after Kafka dropped the records; without one, from
the topic while it holds them; and when neither can give them, the redrive says why.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from pydantic import SecretStr

from hotline.client import worker_get
from hotline.deploy.worker import settings_env
from hotline.schemas.office import current_office
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.originals import new_key
from hotline.streams.redrive import REDRIVE_HEADER
from tests.factories import event, raw
from tests.integration.conftest import REPO, Worker, hotline, isolated_settings

pytestmark = pytest.mark.integration

NEW_UNIT = "xinqu"
PHONE = "13912345690"


def _registries(root: Path) -> tuple[Path, Path]:
    """The shipped registry, and the same with the new unit added."""
    office = current_office()
    shipped = office.registry_path.read_text(encoding="utf-8")
    group = office.bulletin.ordered_groups[0]
    before, after = root / "units-before.csv", root / "units-after.csv"
    before.write_text(shipped, encoding="utf-8")
    after.write_text(shipped.rstrip("\n") + f"\n{NEW_UNIT},新区管委会,{group},999,,,\n", encoding="utf-8")
    return before, after


def _events() -> list[tuple[bytes, bytes]]:
    """(key, value): three events of the new unit (one quoting a phone), one of a known unit."""
    return [
        (b"X1", raw(event("order.dispatched", order_id="X1", unit_id=NEW_UNIT))),
        (b"K1", raw(event("order.dispatched", order_id="K1", unit_id="yuhu"))),
        (b"X2", raw(event("order.dispatched", order_id="X2", unit_id=NEW_UNIT))),
        (
            b"X1",
            raw(
                event(
                    "order.returned",
                    order_id="X1",
                    unit_id=NEW_UNIT,
                    reason=f"请回电{PHONE}",
                    occurred_at="2019-11-04T10:00:00+08:00",
                )
            ),
        ),
    ]


async def _produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> list[tuple[str, int, int]]:
    """Sent in order to the orders topic; where each landed."""
    producer = AIOKafkaProducer(**settings.producer_options(), **settings.kafka_client_options())
    await producer.start()
    placed = []
    try:
        for key, value in records:
            sent = await producer.send_and_wait(settings.orders_topic, value, key=key)
            placed.append((sent.topic, sent.partition, sent.offset))
    finally:
        await producer.stop()
    return placed


async def _delete_all_records(settings: Settings) -> None:
    """What retention does to old records, now: every record of the orders topic deleted."""
    tps = [TopicPartition(settings.orders_topic, p) for p in range(settings.partitions)]
    consumer = AIOKafkaConsumer(**settings.kafka_client_options())  # type: ignore[arg-type]
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items() if end})
    finally:
        await admin.close()


async def _redriven_records(settings: Settings, expected: int) -> dict[str, tuple[bytes | None, bytes]]:
    """The orders topic's records that carry the redrive header: (key, value) by the dead letter they name."""
    consumer = AIOKafkaConsumer(
        settings.orders_topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.kafka_client_options(),  # type: ignore[arg-type]
    )
    await consumer.start()
    found: dict[str, tuple[bytes | None, bytes]] = {}
    deadline = time.monotonic() + 60
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for r in records:
                    headers = dict(r.headers)
                    if REDRIVE_HEADER in headers:
                        found[headers[REDRIVE_HEADER].decode()] = (r.key, r.value)
    finally:
        await consumer.stop()
    return found


def _until(check: Callable[[], Any], what: str, timeout: float = 180) -> Any:
    """Poll until ``check`` returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _letters(settings: Settings, query: str) -> list[dict[str, Any]]:
    return list(worker_get(settings, f"/deadletters?{query}")["letters"])


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``hotline deadletters …`` as a user runs it, whatever its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "hotline", "deadletters", *args],
        cwd=REPO,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _all_processed(settings: Settings, ids: list[str]) -> bool:
    return all(worker_get(settings, f"/deadletters/{i}")["status"].startswith("processed") for i in ids)


def _dead_lettered(settings: Settings, expected: int) -> list[str]:
    """The ids of the unknown unit's dead letters, once all ``expected`` are stored."""
    letters = _until(
        lambda: (found := _letters(settings, "reason=unknown+unit_id")) and len(found) >= expected and found,
        f"{expected} dead letters of the unknown unit",
    )
    assert len(letters) == expected, letters
    return [letter["id"] for letter in letters]


def _table(settings: Settings, sql: str) -> list[dict[str, Any]]:
    store = ClickHouseStore(settings)
    try:
        return store.query_rows(sql)
    finally:
        store.close()


def test_sealed_originals_are_redriven_after_kafka_dropped_them_once_and_never_again(
    broker: Settings, tmp_path: Path
) -> None:
    before, after = _registries(tmp_path)
    settings = isolated_settings(broker, tmp_path, deadletter_key=SecretStr(new_key()), units_file=before)
    records = _events()
    worker = Worker(settings).start()
    try:
        asyncio.run(_produce(settings, records))
        ids = _dead_lettered(settings, 3)
        assert all(letter["original"].startswith("sealed with key") for letter in _letters(settings, "limit=10"))
    finally:
        worker.stop()
    asyncio.run(_delete_all_records(settings))

    fixed = settings.model_copy(update={"units_file": after})
    sent = hotline(fixed, "deadletters", "redrive", "--reason", "unknown unit_id").stdout.decode()
    assert "redriven: 3; cannot: 0; already: 0" in sent, sent
    produced = {value: key for key, value in records}
    redriven = asyncio.run(_redriven_records(fixed, 3))
    assert sorted(redriven) == sorted(ids), "each redriven record names its dead letter"
    assert all(produced.get(value) == key for key, value in redriven.values()), "the original key and bytes"

    worker = Worker(fixed).start()
    try:
        _until(lambda: _all_processed(fixed, ids), "the redriven records processed")
        again = hotline(fixed, "deadletters", "redrive", "--reason", "unknown unit_id").stdout.decode()
        assert "redriven: 0; cannot: 0; already: 3" in again, again
        forced = hotline(fixed, "deadletters", "redrive", "--again", *ids).stdout.decode()
        assert "redriven: 3; cannot: 0; already: 0" in forced, forced
        _until(lambda: _all_processed(fixed, ids), "the records redriven again processed")
        assert len(_letters(fixed, "redriven=yes")) == 3
        assert _letters(fixed, "redriven=no") == [], "a redrive dead-lettered again"
    finally:
        worker.stop()

    stored = _table(fixed, f"SELECT event_id FROM {{db}}.events FINAL WHERE unit_id = '{NEW_UNIT}'")
    assert len(stored) == 3, "each redriven event stored once"
    orders = _table(
        fixed, f"SELECT order_id, returns FROM {{db}}.order_states FINAL WHERE unit_id = '{NEW_UNIT}' ORDER BY order_id"
    )
    assert [(r["order_id"], r["returns"]) for r in orders] == [("X1", 1), ("X2", 0)]
    windows = _table(fixed, f"SELECT sum(returned) AS n FROM {{db}}.unit_windows FINAL WHERE unit_id = '{NEW_UNIT}'")
    assert windows[0]["n"] == 1, "the return counted once, though redriven twice"

    rows = _table(fixed, "SELECT * FROM {db}.deadletter FINAL")
    assert PHONE not in json.dumps(rows, default=str, ensure_ascii=False), "a phone in clear in the deadletter table"

    unkeyed = fixed.model_copy(update={"deadletter_key": None})
    refused = _cli(unkeyed, "redrive", "--again", *ids)
    assert refused.returncode == 1
    assert "no HOTLINE_DEADLETTER_KEY is configured: unreadable" in refused.stderr
    assert "is no longer in Kafka" in refused.stderr


def test_without_a_key_nothing_is_kept_and_the_redrive_reads_the_topic_while_it_can(
    broker: Settings, tmp_path: Path
) -> None:
    before, after = _registries(tmp_path)
    settings = isolated_settings(broker, tmp_path, units_file=before)
    worker = Worker(settings).start()
    try:
        asyncio.run(_produce(settings, _events()[:2]))
        [first] = _dead_lettered(settings, 1)
        assert worker_get(settings, f"/deadletters/{first}")["original"] == "not kept"
        # Redriven before the cause is fixed: dead-lettered again, with the reason, under a new id.
        sent = hotline(settings, "deadletters", "redrive", first).stdout.decode()
        assert "redriven: 1; cannot: 0" in sent, sent
        status = _until(
            lambda: (
                (s := worker_get(settings, f"/deadletters/{first}")["status"]).startswith("dead-lettered again") and s
            ),
            "the redrive dead-lettered again",
        )
        assert f"unknown unit_id '{NEW_UNIT}' on 2019-11-04: not in the unit registry" in status
        [second] = [i for i in _dead_lettered(settings, 2) if i != first]
        assert status.startswith(f"dead-lettered again as {second}:")
    finally:
        worker.stop()

    fixed = settings.model_copy(update={"units_file": after})
    sent = hotline(fixed, "deadletters", "redrive", "--reason", "unknown unit_id").stdout.decode()
    assert "redriven: 1; cannot: 0; already: 1" in sent, sent  # the second one, from the topic
    worker = Worker(fixed).start()
    try:
        _until(lambda: _all_processed(fixed, [second]), "the redriven record processed")
    finally:
        worker.stop()
    stored = _table(fixed, f"SELECT event_id FROM {{db}}.events FINAL WHERE unit_id = '{NEW_UNIT}'")
    assert len(stored) == 1

    asyncio.run(_delete_all_records(fixed))
    refused = _cli(fixed, "redrive", "--again", second)
    assert refused.returncode == 1
    assert "no original was kept" in refused.stderr and "is no longer in Kafka" in refused.stderr


def _sunk(settings: Settings, topic: str, partition: int, offset: int) -> bool:
    sunk = {(t, p): o for t, p, o in worker_get(settings, "/offsets")["offsets"]}
    return sunk.get((topic, partition), -1) >= offset


def _refused_to_a_unit(settings: Settings, path: str, body: bytes | None = None) -> int:
    request = urllib.request.Request(f"{settings.web_url}{path}", data=body, method="POST" if body else "GET")
    request.add_header("Authorization", "Bearer tok-yuhu")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_an_orphans_event_redriven_once_its_dispatch_came_counts_once(broker: Settings, tmp_path: Path) -> None:
    settings = isolated_settings(
        broker,
        tmp_path,
        deadletter_key=SecretStr(new_key()),
        orphan_wait_s=1.0,
        access_tokens={"tok-office": "*", "tok-yuhu": "yuhu"},
        api_token="tok-office",
    )
    visited = event("order.visited", order_id="O9", outcome="satisfied", occurred_at="2019-11-06T09:00:00+08:00")
    dispatched = event("order.dispatched", order_id="O9", occurred_at="2019-11-05T09:00:00+08:00")
    worker = Worker(settings).start()
    try:
        asyncio.run(_produce(settings, [(b"O9", raw(visited))]))
        [orphan] = _until(
            lambda: _letters(settings, "reason=not+dispatched+within"), "the visit dead-lettered as an orphan"
        )
        assert _refused_to_a_unit(settings, "/deadletters") == 403
        assert _refused_to_a_unit(settings, f"/deadletters/{orphan['id']}") == 403
        assert (
            _refused_to_a_unit(settings, "/deadletters", b'{"select": [["id", "%s"]]}' % orphan["id"].encode()) == 403
        )

        [placed] = asyncio.run(_produce(settings, [(b"O9", raw(dispatched))]))
        _until(lambda: _sunk(settings, *placed), "the dispatch processed")
        sent = hotline(settings, "deadletters", "redrive", orphan["id"]).stdout.decode()
        assert "redriven: 1; cannot: 0" in sent, sent
        _until(lambda: _all_processed(settings, [orphan["id"]]), "the redriven visit processed")
        forced = hotline(settings, "deadletters", "redrive", "--again", orphan["id"]).stdout.decode()
        assert "redriven: 1; cannot: 0" in forced, forced
        _until(lambda: _all_processed(settings, [orphan["id"]]), "the visit redriven again processed")
        assert _letters(settings, "redriven=no") == [], "dead-lettered again"
    finally:
        worker.stop()
    visits = _table(settings, "SELECT sum(visits) AS n FROM {db}.unit_windows FINAL WHERE unit_id = 'yuhu'")
    assert visits[0]["n"] == 1, "the orphan's visit counted once, though redriven twice"
