"""History brought in and rebuilt: ``hotline import`` and ``hotline restate`` on the real engine.

The seed month imported (in order, and shuffled), half imported and half streamed shuffled
(completions and re-sent copies of imported orders' events in the streamed half, with the
worker SIGKILLed during it), and restated, each gives the published bulletin cell by cell and
headline; what ClickHouse holds is compared with the file event by event.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hotline.client import worker_get
from hotline.deploy.worker import settings_env
from hotline.replay import produce, read_records, wait_until_sunk
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from tests.integration.conftest import REPO, Worker, hotline, isolated_settings
from tests.integration.seed import (
    assert_headline_matches_seed,
    assert_stored_as_sent,
    assert_table_matches_seed,
    stored_event_ids,
)

pytestmark = pytest.mark.integration

CUT = datetime.fromisoformat("2019-11-16T00:00:00+08:00")  # imported before, streamed after
RESENT = 300  # imported events sent again in the streamed half


@pytest.fixture
def isolated(broker: Settings, tmp_path: Path) -> Settings:
    """This module's settings: the office's token, which the screen's snapshot requires."""
    return isolated_settings(broker, tmp_path, access_tokens={"office-token": "*"}, api_token="office-token")



def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _when(line: str) -> datetime:
    return datetime.fromisoformat(json.loads(line)["event"]["occurred_at"])


def _event_ids(lines: list[str]) -> set[str]:
    return {json.loads(line)["event"]["event_id"] for line in lines}


def _direct(settings: Settings, fmt: str) -> str:
    """The bulletin read straight from ClickHouse (no worker running)."""
    return hotline(settings, "bulletin", "--month", "2019-11", "--format", fmt).stdout.decode()


def _assert_seed(settings: Settings) -> None:
    assert_table_matches_seed(_direct(settings, "csv"))
    ours = json.loads(_direct(settings, "json"))["headline"]
    assert_headline_matches_seed(ours)


def _assert_stored_once(settings: Settings, lines: list[str]) -> None:
    assert_stored_as_sent(_event_ids(lines), stored_event_ids(settings))


def _count(settings: Settings, sql: str) -> int:
    store = ClickHouseStore(settings)
    try:
        return int(store.query_rows(sql)[0]["n"])
    finally:
        store.close()


def test_the_imported_seed_month_is_the_published_bulletin(isolated: Settings, month_file: Path) -> None:
    out = hotline(isolated, "import", str(month_file)).stderr.decode()
    assert "0 dead letters" in out, out
    _assert_seed(isolated)
    _assert_stored_once(isolated, _lines(month_file))


def test_a_month_imported_in_shuffled_order_is_the_published_bulletin(
    isolated: Settings, month_file: Path, tmp_path: Path
) -> None:
    lines = _lines(month_file)
    random.Random(11).shuffle(lines)
    path = tmp_path / "shuffled.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = hotline(isolated, "import", str(path)).stderr.decode()
    assert "0 dead letters" in out, out
    _assert_seed(isolated)
    _assert_stored_once(isolated, lines)


def test_importing_twice_equals_importing_once(isolated: Settings, month_file: Path) -> None:
    hotline(isolated, "import", str(month_file))
    first = _direct(isolated, "json")
    windows = _count(isolated, "SELECT count() AS n FROM {db}.unit_windows FINAL")
    out = hotline(isolated, "import", str(month_file)).stderr.decode()
    assert "imported 0 events" in out, out
    assert _direct(isolated, "json") == first
    assert (
        _count(isolated, "SELECT count() AS n FROM {db}.unit_windows FINAL WHERE dispatched != 0 OR visits != 0")
        <= windows
    )
    _assert_stored_once(isolated, _lines(month_file))


def test_a_bad_line_is_a_dead_letter_with_its_line_number_and_the_rest_loads(
    isolated: Settings, month_file: Path, tmp_path: Path
) -> None:
    lines = _lines(month_file)
    bad = [*lines[:10], '{"event_id": "x", "type": "order.dispatched"}', "not json at all", *lines[10:]]
    path = tmp_path / "with-bad-lines.jsonl"
    path.write_text("\n".join(bad) + "\n", encoding="utf-8")
    out = hotline(isolated, "import", str(path)).stderr.decode()
    assert "line 11:" in out and "line 12: not JSON" in out and "2 dead letters" in out, out
    assert _count(isolated, "SELECT count() AS n FROM {db}.deadletter FINAL WHERE source_topic = 'import'") == 2
    _assert_seed(isolated)


def _split(month_file: Path, tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """The month in two files by time, the first in event-time order, the second also re-sending
    some imported events, all of it shuffled (arrival order is not event order)."""
    lines = sorted(_lines(month_file), key=_when)
    before = [line for line in lines if _when(line) < CUT]
    after = [line for line in lines if _when(line) >= CUT]
    shuffle = random.Random(7)
    streamed = after + shuffle.sample(before, RESENT)
    shuffle.shuffle(streamed)
    first, second = tmp_path / "before.jsonl", tmp_path / "after.jsonl"
    first.write_text("\n".join(before) + "\n", encoding="utf-8")
    second.write_text("\n".join(streamed) + "\n", encoding="utf-8")
    return first, second, lines


def _stored(settings: Settings) -> int:
    """Records of the pipeline's topics the worker's ledger covers (not the import's lines)."""
    topics = {settings.calls_topic, settings.orders_topic}
    try:
        offsets = worker_get(settings, "/offsets", timeout=5)["offsets"]
    except OSError:
        return 0
    return sum(o + 1 for t, _, o in offsets if t in topics)


def _open_orders(lines: list[str]) -> int:
    """Orders whose latest dispatch no completion followed, straight from the file."""
    last_dispatch: dict[str, datetime] = {}
    completions: dict[str, list[datetime]] = {}
    for line in lines:
        ev: dict[str, Any] = json.loads(line)["event"]
        if ev["type"] == "order.dispatched":
            at = datetime.fromisoformat(ev["occurred_at"])
            last_dispatch[ev["order_id"]] = max(at, last_dispatch.get(ev["order_id"], at))
        elif ev["type"] == "order.completed":
            completions.setdefault(ev["order_id"], []).append(datetime.fromisoformat(ev["occurred_at"]))
    return sum(1 for o, at in last_dispatch.items() if not any(c >= at for c in completions.get(o, [])))


def test_half_imported_then_half_streamed_shuffled_through_a_sigkill_is_the_published_bulletin(
    isolated: Settings, worker: Worker, month_file: Path, tmp_path: Path
) -> None:
    worker.stop()
    first, second, lines = _split(month_file, tmp_path)
    hotline(isolated, "import", str(first))

    worker.start()
    imported_open = _open_orders(_lines(first))
    deadline = time.monotonic() + 120
    while (shown := worker_get(isolated, "/monitor/snapshot")["total"]["open"]) != imported_open:
        assert time.monotonic() < deadline, f"the screen shows {shown} open orders, the import left {imported_open}"
        time.sleep(0.2)  # until the worker is assigned its partitions and has loaded their open orders

    streamed = list(read_records(second, isolated))
    last = asyncio.run(produce(streamed, isolated))
    deadline = time.monotonic() + 300
    while _stored(isolated) < 0.4 * len(streamed):
        assert time.monotonic() < deadline, "the streamed half is not being stored"
        time.sleep(0.02)
    worker.kill()
    worker.start()
    wait_until_sunk(last, isolated, timeout=600)
    status = worker_get(isolated, "/status")
    worker.stop()

    _assert_seed(isolated)
    _assert_stored_once(isolated, lines)
    assert status["counts"]["events"] == len(_event_ids(lines))


def test_restating_a_streamed_month_changes_no_figure_and_twice_is_once(
    isolated: Settings, worker: Worker, month_file: Path
) -> None:
    hotline(isolated, "replay", str(month_file), "--wait")
    worker.stop()
    before = _direct(isolated, "json")
    hotline(isolated, "restate")
    assert _direct(isolated, "json") == before
    hotline(isolated, "restate", "--month", "2019-11")
    assert _direct(isolated, "json") == before
    _assert_seed(isolated)


def test_an_import_is_refused_while_a_worker_of_the_group_runs(
    isolated: Settings, worker: Worker, month_file: Path
) -> None:
    """Kafka's group coordinator says a worker runs, whatever the store has heard from it yet."""
    deadline = time.monotonic() + 120
    while not _group_has_members(isolated):
        assert time.monotonic() < deadline, "the worker never joined its group"
        time.sleep(0.2)
    refused = subprocess.run(
        [sys.executable, "-m", "hotline", "import", str(month_file)],
        cwd=REPO,
        env=settings_env(isolated),
        capture_output=True,
        timeout=300,
    )
    err = refused.stderr.decode(errors="replace")
    assert refused.returncode != 0 and f"of group {isolated.app_id!r} are running" in err, err
    assert len(err.strip().splitlines()) == 1, err
    worker.stop()
    assert _count(isolated, "SELECT count() AS n FROM {db}.events") == 0


def _group_has_members(settings: Settings) -> bool:
    from hotline.deploy import kafka

    return bool(kafka.group_members(settings))
