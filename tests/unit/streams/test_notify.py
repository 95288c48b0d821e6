"""The notifier's pieces: its delivery log in ClickHouse, its destinations from the settings, and
what it records for the records it reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from hotline.schemas.events import TZ, AlertAcknowledged, dump_event
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.acks import ACKNOWLEDGED, ack_event_id, ack_row, topic_ack_row
from hotline.streams.channels import Destination
from hotline.streams.delivery import DELIVERED, PENDING, Deliveries, Entry, MemoryLog, http_post, next_version
from hotline.streams.notify import ClickHouseLog, Notifier, destinations, log_settings
from tests.unit.streams.test_channels import alert

CHANNELS = {
    "yuhu": [
        {"channel": "wecom", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY1"},
        {"channel": "sms", "url": "https://gw/send", "secret": "S3", "phones": ["13912345678"], "kinds": ["overdue"]},
    ]
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path / 'ch'}"))
    s.migrate()
    yield s
    s.close()  # chDB holds one path per process


def test_the_log_keeps_the_latest_row_of_each_destination_and_alert(store: ClickHouseStore) -> None:
    log = ClickHouseLog(store)
    dest = Destination("yuhu", "wecom", "http://x")
    engine = Deliveries([dest], log, http_post(None))  # type: ignore[arg-type]
    log.record(engine.offer(alert(1)))
    entry = Entry(alert(1), 0.0, attempts=2, first_try=1_573_000_000.5, last_try=1_573_000_060.25)
    log.record([engine.row(dest, entry, DELIVERED, delivered_at=1_573_000_060.5)])
    (row,) = log.load(0)
    assert (row.status, row.attempts) == (DELIVERED, 2)
    assert (row.first_try, row.delivered_at) == (1_573_000_000.5, 1_573_000_060.5)
    assert json.loads(row.alert) == alert(1)


def test_the_log_reads_back_only_rows_written_since_a_version(store: ClickHouseStore) -> None:
    log = ClickHouseLog(store)
    (row,) = Deliveries([Destination("yuhu", "wecom", "http://x")], log, http_post(None)).offer(alert(1))  # type: ignore[arg-type]
    log.record([row])
    assert log.load(row.version) == [row] and log.load(row.version + 1) == []


def test_a_restart_resumes_the_pending_rows_it_finds_in_clickhouse(store: ClickHouseStore) -> None:
    dest = Destination("yuhu", "wecom", "http://x")
    log = ClickHouseLog(store)
    log.record(Deliveries([dest], log, http_post(None)).offer(alert(1)))  # type: ignore[arg-type]
    again = Deliveries([dest], log, http_post(None))  # type: ignore[arg-type]
    assert again.resume() == 1 and list(again.outboxes[dest.name].queue) == [alert(1)["alert_id"]]


def test_destinations_come_from_the_settings_named_without_secrets() -> None:
    dests = destinations(Settings(alert_channels=CHANNELS))
    assert [d.name for d in dests] == ["yuhu/wecom/0", "yuhu/sms/1"]
    assert dests[1].phones == ("13912345678",) and dests[1].kinds == frozenset({"overdue"})
    shown = repr(Settings(alert_channels=CHANNELS).alert_channels) + repr(dests)
    assert not any(s in shown for s in ("KEY1", "S3", "13912345678"))


def test_the_log_is_a_chdb_of_its_own_unless_a_server_is_set(tmp_path: Path) -> None:
    own = log_settings(Settings(var_dir=tmp_path)).resolved_clickhouse_dsn
    assert own == f"chdb://{tmp_path / 'notify-clickhouse'}"
    assert log_settings(Settings(clickhouse_dsn="http://ch:8123")).clickhouse_dsn == "http://ch:8123"


def _ack(alert_id: str, at: datetime | None = None) -> AlertAcknowledged:
    return AlertAcknowledged(
        event_id=ack_event_id(alert_id), occurred_at=at or datetime.now(TZ), alert_id=alert_id, unit_id="yuhu"
    )


async def test_an_acknowledgement_read_from_the_topic_is_recorded_and_not_delivered() -> None:
    """Made on a worker's unit page (or by a signed link): the delivery log has it either way."""
    log = MemoryLog()
    engine = Deliveries(destinations(Settings(alert_channels=CHANNELS)), log, http_post(None))  # type: ignore[arg-type]
    notifier = Notifier(Settings(), engine)
    await notifier.take([dump_event(_ack(alert(1)["alert_id"]))])
    assert [(r.destination, r.alert_id, r.status) for r in log.rows] == [
        ("yuhu/ack", alert(1)["alert_id"], ACKNOWLEDGED)
    ]
    assert notifier.skipped == 0 and engine.queued() == 0


async def test_an_acknowledgement_read_again_after_a_restart_is_not_recorded_again(store: ClickHouseStore) -> None:
    log = ClickHouseLog(store)
    value = dump_event(_ack(alert(1)["alert_id"]))
    await Notifier(Settings(), Deliveries([], log, http_post(None))).take([value])  # type: ignore[arg-type]
    again = Deliveries([], log, http_post(None))  # type: ignore[arg-type]
    resumed = again.resume()
    await Notifier(Settings(), again).take([value])
    assert resumed == 0 and len(store.query_rows("SELECT * FROM {db}.alert_deliveries")) == 1


def test_the_topics_copy_of_an_acknowledgement_is_one_row_however_often_written(store: ClickHouseStore) -> None:
    """Its version is the acknowledgement's instant: a rewrite (offsets not committed) is the same row."""
    log = ClickHouseLog(store)
    ack = _ack(alert(1)["alert_id"], datetime(2019, 11, 4, 10, 0, 0, 123000, TZ))  # the log keeps ms
    log.record([topic_ack_row(ack)])
    log.record([topic_ack_row(ack)])
    assert log.load(0) == [topic_ack_row(ack)]


def test_the_links_own_row_outranks_the_topics_copy_of_the_same_acknowledgement(store: ClickHouseStore) -> None:
    log = ClickHouseLog(store)
    ack = _ack(alert(1)["alert_id"], datetime(2019, 11, 4, 10, 0, 0, 123000, TZ))
    pressed = ack_row(ack, next_version())
    log.record([pressed, topic_ack_row(ack)])
    assert log.load(0) == [pressed]


async def test_what_is_read_is_recorded_pending_and_what_is_not_an_alert_is_skipped() -> None:
    log = MemoryLog()
    engine = Deliveries(destinations(Settings(alert_channels=CHANNELS)), log, http_post(None))  # type: ignore[arg-type]
    notifier = Notifier(Settings(), engine)
    await notifier.take([json.dumps(alert(1)).encode(), b"{not json", json.dumps(alert(1)).encode()])
    assert notifier.skipped == 1
    assert sorted((r.destination, r.status) for r in log.rows) == [("yuhu/sms/1", PENDING), ("yuhu/wecom/0", PENDING)]
