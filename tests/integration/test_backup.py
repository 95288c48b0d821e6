"""A backup taken while the seed month streams through the worker, restored into a fresh directory.

The month is issued part way (its bulletin frozen in ClickHouse), then the worker goes on and
``hotline backup`` copies the store through the worker's pages while it writes. A worker on the
restored store, with the same topics and consumer group (Kafka and its order-table changelog
outlive a lost disk), resumes from the restored ledger and catches up: the bulletin is the seed's
cell by cell and headline, the issued document the same bytes, the stored events the file's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import pytest

from hotline.client import worker_get
from hotline.replay import produce, read_records, wait_until_sunk
from hotline.settings import Settings
from hotline.sinks.backup import MANIFEST, files_of
from tests.integration.conftest import Worker, hotline
from tests.integration.seed import (
    assert_headline_matches_seed,
    assert_stored_as_sent,
    assert_table_matches_seed,
    stored_event_ids,
)

pytestmark = pytest.mark.integration

PORTS = (18500, 18501)  # the two workers' pages (this suite's range)
ISSUE = ("--issue", "--number", "12", "--total-number", "113", "--date", "2019-12-26")


def _stored(settings: Settings) -> int:
    """Records the worker's ledger covers; 0 while it does not answer."""
    try:
        return sum(o + 1 for _, _, o in worker_get(settings, "/offsets", timeout=5)["offsets"])
    except OSError:
        return 0


def _wait_for(condition: str, check: object, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.02)


def test_a_backup_taken_while_the_month_streams_restores_to_the_seed(
    isolated: Settings, month_file: Path, tmp_path: Path
) -> None:
    # Small batches: the month takes the worker long enough that the backup runs while it writes.
    live = isolated.model_copy(update={"web_port": PORTS[0], "batch_size": 100})
    month = list(read_records(month_file, live))
    last = asyncio.run(produce(month, live))
    worker = Worker(live).start()
    try:
        _wait_for("a fifth of the month stored", lambda: _stored(live) >= len(month) // 5)
        worker.stop()  # the embedded chDB is the worker's: the issue opens it with the worker stopped
        issued = tmp_path / "issued.docx"
        hotline(live, "bulletin", "--month", "2019-11", *ISSUE, "--format", "docx", "--out", str(issued))
        worker.start()
        _wait_for("a third of the month stored", lambda: _stored(live) >= len(month) // 3)
        copied = hotline(live, "backup", str(tmp_path / "backup")).stderr.decode()
        wait_until_sunk(last, live, timeout=600)
    finally:
        worker.stop()
    assert f"from the worker at {live.web_url}" in copied
    manifest = json.loads((tmp_path / "backup" / MANIFEST).read_text(encoding="utf-8"))
    assert sum(o + 1 for _, _, o in manifest["ledger"]) < len(month), "the month was stored before the backup"

    restored = live.model_copy(update={"var_dir": tmp_path / "restored", "web_port": PORTS[1], "batch_size": 5000})
    hotline(restored, "restore", str(tmp_path / "backup"))
    worker = Worker(restored).start()
    try:
        wait_until_sunk(last, restored, timeout=600)
        bulletin = worker_get(restored, "/bulletin/2019-11?format=json")
        csv_text = worker_get(restored, "/bulletin/2019-11?format=csv").decode()
    finally:
        worker.stop()
    assert_table_matches_seed(csv_text)
    assert_headline_matches_seed(bulletin["headline"])
    assert hotline(restored, "bulletin", "--month", "2019-11", "--issued", "--format", "docx").stdout == (
        issued.read_bytes()
    )
    assert_stored_as_sent({json.loads(r.value)["event_id"] for r in month}, stored_event_ids(restored))


def test_no_backup_file_holds_a_caller_phone_of_the_month(isolated: Settings, month_file: Path, tmp_path: Path) -> None:
    """The month's callers' phones, searched for in every file of a backup of the stored month."""
    settings = isolated.model_copy(update={"web_port": PORTS[0]})
    month = list(read_records(month_file, settings))
    phones = {json.loads(r.value).get("caller", {}).get("phone") for r in month} - {None}
    assert phones
    worker = Worker(settings).start()
    try:
        hotline(settings, "replay", str(month_file), "--wait")
    finally:
        worker.stop()
    hotline(settings, "backup", str(tmp_path / "backup"))  # the worker stopped: ClickHouse opened directly
    pattern = re.compile("|".join(re.escape(p) for p in sorted(phones)).encode())
    files = list(files_of(tmp_path / "backup"))
    assert any(name.startswith("events.") for name, _ in files)
    assert [name for name, data in files if pattern.search(data)] == []
