"""Backup and restore on a real (embedded) ClickHouse: every table back exactly, checked, migrated."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hotline.settings import Settings
from hotline.sinks import backup
from hotline.sinks.base import Batch, DeadLetter, WindowRow
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.fencing import Fence
from hotline.sinks.migrations import SCHEMA_VERSION
from hotline.sinks.tables import BULLETIN_ISSUES, TABLES
from hotline.streams.processing import Source, event_row
from tests.factories import event, folded, raw

PHONES = ("13912345678", "13800000000", "0731-52345678")


def _store(root: Path, database: str) -> ClickHouseStore:
    return ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{root / 'ch'}", clickhouse_database=database))


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[ClickHouseStore]:
    s = _store(tmp_path, "hotline")
    s.migrate()
    yield s
    s.close()  # chDB holds one path per process


@pytest.fixture
def other(sink: ClickHouseStore) -> ClickHouseStore:
    """A second, empty database on the same chDB path (one path per process): the restore's target."""
    return ClickHouseStore(sink.settings.model_copy(update={"clickhouse_database": "restored"}), sink.client)


def _fill(sink: ClickHouseStore) -> None:
    """A row in every table the pipeline writes, with the types that are easy to get wrong:
    DateTime64 with its zone, Nullable, arrays of decimals, LowCardinality, Bool."""
    batch: Batch = folded(
        [
            event("order.dispatched", order_id="O1", due_at="2019-11-08T09:00:00+08:00"),
            event("order.returned", order_id="O1", occurred_at="2019-11-05T09:00:00+08:00"),
            event("order.completed", order_id="O1", occurred_at="2019-11-07T09:00:00.123+08:00"),
            event("order.visited", order_id="O1", occurred_at="2019-12-01T00:00:00+08:00", citizen_replied=False),
        ]
    )
    from hotline.schemas.events import parse_event

    received = parse_event(raw(event("call.received", caller={"phone": PHONES[1], "name": "张三"})))
    batch.events.append(event_row(received, Source("hotline.calls", 0, 10)))
    batch.events.append(event_row(parse_event(raw(event("check.test_call"))), Source("hotline.calls", 0, 11)))
    batch.deadletters.append(
        DeadLetter("hotline.calls", 0, 12, f"bad phone {PHONES[0]}", f'{{"caller": {{"phone": "{PHONES[2]}"'.encode())
    )
    batch.windows.append(WindowRow("yuhu", date(2019, 11, 4), "hotline.orders", 1, 9, {"dispatched": 2}))
    sink.write(batch)
    sink.record_progress({("hotline.orders", 0): 3, ("hotline.calls", 0): 12})
    sink.record_claims("group", 4, [("hotline.orders", 0)])
    sink.record_generation("import", "a file of history")
    sink.insert(BULLETIN_ISSUES, [["2019-11", 1, 12, 113, date(2019, 12, 26), '{"units": []}', '{"docx": "UEsDBA=="}']])


def _rows(sink: ClickHouseStore, table: str) -> list[tuple[Any, ...]]:
    return sorted(sink.query(f"SELECT * FROM {{db}}.{table}"), key=repr)


def test_every_table_comes_back_exactly(sink: ClickHouseStore, other: ClickHouseStore, tmp_path: Path) -> None:
    _fill(sink)
    backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)
    backup.restore(other, tmp_path / "b")
    for table in [*TABLES, "schema_version"]:
        if table != "generations":
            assert _rows(other, table) == _rows(sink, table), table
    assert [r[:2] for r in _rows(other, "generations")] == [(1, "import"), (2, backup.RESTORED)]


def test_copies_of_a_row_not_merged_yet_come_back_as_they_were(
    sink: ClickHouseStore, other: ClickHouseStore, tmp_path: Path
) -> None:
    """A batch stored twice (a replay after a crash) leaves two copies until ClickHouse merges them:
    the backup copies both, the restore keeps both, the counts match, and reads see one."""
    batch = folded([event("order.dispatched", order_id="O1"), event("order.completed", order_id="O1")])
    sink.command("SYSTEM STOP MERGES {db}")  # both copies stay until the backup
    sink.write(batch)
    sink.write(batch)
    backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)
    restored = backup.restore(other, tmp_path / "b")
    assert restored.rows["events"] == len(_rows(sink, "events")) == 4
    assert other.counts() == sink.counts() == {"events": 2, "deadletter": 0}


def test_the_manifest_counts_and_hashes_every_file_and_holds_the_ledger(sink: ClickHouseStore, tmp_path: Path) -> None:
    _fill(sink)
    backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)
    manifest = json.loads((tmp_path / "b" / backup.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["ledger"] == [["hotline.calls", 0, 12], ["hotline.orders", 0, 3]]
    assert [f["partition"] for f in manifest["tables"]["events"]["files"]] == ["201911", "201912"]
    for table in TABLES:
        assert manifest["tables"][table]["rows"] == len(_rows(sink, table)), table
    listed = {f["file"] for t in manifest["tables"].values() for f in t["files"]}
    assert listed | {backup.MANIFEST} == {p.name for p in (tmp_path / "b").iterdir()}


def test_no_backup_file_holds_a_phone_number_in_clear(sink: ClickHouseStore, tmp_path: Path) -> None:
    _fill(sink)
    backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)
    phone = re.compile("|".join(re.escape(p) for p in PHONES).encode())
    files = list(backup.files_of(tmp_path / "b"))
    assert len(files) > len(TABLES)
    assert [name for name, data in files if phone.search(data)] == []


def test_a_backup_goes_into_a_new_or_empty_directory_only(sink: ClickHouseStore, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "old").write_text("x")
    with pytest.raises(backup.BackupError, match="not an empty directory"):
        backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)


def test_restore_refuses_a_store_holding_rows_and_leaves_it_as_it_was(
    sink: ClickHouseStore, other: ClickHouseStore, tmp_path: Path
) -> None:
    _fill(sink)
    backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)
    before = {t: _rows(sink, t) for t in TABLES}
    with pytest.raises(backup.BackupError, match="is not empty"):
        backup.restore(sink, tmp_path / "b")
    assert {t: _rows(sink, t) for t in TABLES} == before


def test_restore_refuses_a_damaged_file_before_writing_anything(
    sink: ClickHouseStore, other: ClickHouseStore, tmp_path: Path
) -> None:
    _fill(sink)
    backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)
    damaged = tmp_path / "b" / "events.201911.native.gz"
    data = damaged.read_bytes()
    damaged.write_bytes(data[:20] + bytes([data[20] ^ 1]) + data[21:])
    with pytest.raises(backup.BackupError, match="does not match its sha256"):
        backup.restore(other, tmp_path / "b")
    assert backup.stored_rows(other) == {}


def test_restore_refuses_a_backup_cut_short(other: ClickHouseStore, tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "sink_offsets.native.gz").write_bytes(b"")
    with pytest.raises(backup.BackupError, match="did not finish"):
        backup.restore(other, tmp_path / "b")


def test_restore_refuses_a_newer_schema_version(sink: ClickHouseStore, other: ClickHouseStore, tmp_path: Path) -> None:
    backup.write_backup(backup.Opened(sink), tmp_path / "b", sink.db)
    path = tmp_path / "b" / backup.MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**manifest, "schema_version": SCHEMA_VERSION + 1}), encoding="utf-8")
    with pytest.raises(backup.BackupError, match=f"newer than this build's {SCHEMA_VERSION}"):
        backup.restore(other, tmp_path / "b")
    assert backup.stored_rows(other) == {}


def test_a_backup_of_an_older_schema_version_is_restored_then_migrated(sink: ClickHouseStore, tmp_path: Path) -> None:
    """A store of the version before the claims table, backed up by that release, restored by this one."""
    old = ClickHouseStore(sink.settings.model_copy(update={"clickhouse_database": "older"}), sink.client)
    before_claims = 5
    backup._create_schema(old, before_claims)
    for version in range(1, before_claims + 1):
        old.command(f"INSERT INTO {{db}}.schema_version (version, description) VALUES ({version}, 'v{version}')")
    old.schema_version = before_claims
    old.record_progress({("hotline.orders", 0): 41})
    backup.write_backup(backup.Opened(old), tmp_path / "b", old.db)
    assert "partition_claims" not in json.loads((tmp_path / "b" / backup.MANIFEST).read_text())["tables"]

    target = ClickHouseStore(sink.settings.model_copy(update={"clickhouse_database": "target"}), sink.client)
    restored = backup.restore(target, tmp_path / "b")
    assert (restored.from_version, restored.to_version) == (before_claims, SCHEMA_VERSION)
    assert target.progress() == {("hotline.orders", 0): 41}
    target.claim(Fence(1, frozenset()))
    target.record_claims("group", 1, [("hotline.orders", 0)])  # the table the migration added
    assert target.claims() == {("group", "hotline.orders", 0): 1}


def test_the_copy_order_covers_every_table_ledger_first_order_states_before_what_derives_from_them() -> None:
    """Why this order: ``hotline.sinks.backup``'s docstring (a worker on the restored store replays from
    the ledger, reading orders back from their states and skipping steps the windows hold)."""
    assert sorted(backup.ORDER) == sorted([*TABLES, "schema_version"])
    position = {table: i for i, table in enumerate(backup.ORDER)}
    assert position["sink_offsets"] == 0
    assert position["order_states"] < min(position[t] for t in ("unit_windows", "order_returns", "events"))


def test_a_backup_since_an_earlier_one_links_the_months_unchanged_and_copies_the_rest(
    sink: ClickHouseStore, other: ClickHouseStore, tmp_path: Path
) -> None:
    _fill(sink)  # events of November and December
    backup.write_backup(backup.Opened(sink), tmp_path / "first", sink.db)
    late = folded([event("order.visited", order_id="O1", occurred_at="2019-12-02T09:00:00+08:00")], partition=3)
    sink.write(late)  # December changes, November does not
    reused: list[str] = []
    backup.write_backup(
        backup.Opened(sink),
        tmp_path / "second",
        sink.db,
        lambda table, partition, rows, linked: reused.extend([f"{table}.{partition}"] if linked else []),
        since=tmp_path / "first",
    )
    assert reused == ["events.201911"]
    november = "events.201911.native.gz"
    assert (tmp_path / "second" / november).stat().st_ino == (tmp_path / "first" / november).stat().st_ino
    backup.restore(other, tmp_path / "second")
    assert _rows(other, "events") == _rows(sink, "events")


def test_a_backup_since_one_of_another_store_is_refused(sink: ClickHouseStore, tmp_path: Path) -> None:
    backup.write_backup(backup.Opened(sink), tmp_path / "first", "elsewhere")
    with pytest.raises(backup.BackupError, match="take a full backup"):
        backup.write_backup(backup.Opened(sink), tmp_path / "second", sink.db, since=tmp_path / "first")
