"""Two workers in one consumer group, one storage owner (``hotline store``) over one embedded chDB.

The seed month is replayed while both workers process it; one is SIGKILLed mid-month, and the
other takes its partitions over, resuming from the ledger the store keeps. Then what the store
holds is compared with what was sent event by event, and the bulletin with the seed cell by
cell and headline.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.client import worker_get
from hotline.deploy.worker import StoreProcess
from hotline.replay import produce, read_records, wait_until_sunk
from hotline.settings import Settings
from hotline.sinks.remote import RemoteSink
from tests.integration.conftest import Worker, _free_port
from tests.integration.seed import HEADLINE, assert_table_matches_seed, headline_differences, write_month

pytestmark = pytest.mark.integration

TOKEN = "integration-store-token"


@pytest.fixture(scope="module")
def month_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_month(tmp_path_factory.mktemp("month") / "2019-11.jsonl")


@pytest.fixture
def shared(isolated: Settings) -> Settings:
    """The test's topics and group, and the store every process of it reaches."""
    port = _free_port()
    return isolated.model_copy(
        update={"store_token": TOKEN, "store_port": port, "store_url": f"http://127.0.0.1:{port}"}
    )


@pytest.fixture
def store(shared: Settings) -> Iterator[StoreProcess]:
    process = StoreProcess(shared.model_copy(update={"var_dir": shared.var_path / "store"}))
    yield process.start()
    process.stop()


def _worker_settings(shared: Settings, name: str) -> Settings:
    """One worker: the shared topics, group and store; its own var directory (Faust's) and port."""
    return shared.model_copy(update={"var_dir": shared.var_path / name, "web_port": _free_port()})


def _processed(settings: Settings) -> float:
    """Records this worker has processed, from its /metrics; 0 while it does not answer."""
    try:
        text = worker_get(settings, "/metrics", timeout=5).decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("hotline_events_processed_total")
    )


def _stored(settings: Settings) -> int:
    try:
        return sum(o + 1 for _, _, o in worker_get(settings, "/offsets", timeout=5)["offsets"])
    except OSError:
        return 0


def _wait_for(what: str, check: object, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_two_workers_one_store_a_worker_killed_mid_month(
    shared: Settings, store: StoreProcess, month_file: Path
) -> None:
    first, second = Worker(_worker_settings(shared, "w1")), Worker(_worker_settings(shared, "w2"))
    try:
        first.start()
        second.start()
        month = list(read_records(month_file, shared))
        total, half = len(month), len(month) // 2
        # The month in two halves, in order: the worker is killed after the first, so the second
        # half of its partitions can only be processed by the other worker, from the store's ledger.
        before = asyncio.run(produce(month[:half], shared))
        _wait_for("both workers processing", lambda: _processed(first.settings) > 0 and _processed(second.settings) > 0)
        _wait_for("a quarter of the month stored", lambda: _stored(second.settings) >= total // 4)
        first.kill()  # its partitions go to the second worker once the group notices (session timeout)
        last = {**before, **asyncio.run(produce(month[half:], shared))}
        wait_until_sunk(last, second.settings, timeout=600)

        bulletin = worker_get(second.settings, "/bulletin/2019-11?format=json", timeout=120)
        csv_text = worker_get(second.settings, "/bulletin/2019-11?format=csv", timeout=120).decode()
        assert_table_matches_seed(csv_text)
        diffs = headline_differences(bulletin["headline"], json.loads(HEADLINE.read_text(encoding="utf-8")))
        assert not diffs, "headline differs:\n" + "\n".join(diffs)

        sent = {json.loads(r.value)["event_id"] for r in month}
        remote = RemoteSink(shared)
        remote.connect()
        stored = [r["event_id"] for r in remote.query_rows("SELECT event_id FROM {db}.events FINAL")]
        remote.close()
        assert len(stored) == len(set(stored)), "an event id is stored twice"
        missing, extra = sorted(sent - set(stored)), sorted(set(stored) - sent)
        assert not missing and not extra, f"missing {missing[:20]}, unexpected {extra[:20]}"
        store_metrics = worker_get(shared.model_copy(update={"web_port": shared.store_port}), "/metrics").decode()
        assert 'hotline_store_calls_total{op="write",outcome="ok"}' in store_metrics
    finally:
        first.stop()
        second.stop()
