"""Every event once through crashes: the seed month while the worker is SIGKILLed five times,
and the same month arriving in shuffled order through three SIGKILLs.

Four kills land at different points of the month's processing, one while the restarted
worker is joining the group and being assigned its partitions. What ClickHouse holds is
then compared with what was sent event by event (not only the totals a table shows),
and the bulletin with the seed cell by cell and headline.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hotline.client import worker_get
from hotline.deploy.worker import settings_env
from hotline.replay import Record, produce, read_records, wait_until_sunk
from hotline.settings import Settings
from tests.integration.conftest import REPO, Worker, isolated_settings
from tests.integration.seed import (
    assert_headline_matches_seed,
    assert_stored_as_sent,
    assert_table_matches_seed,
    stored_event_ids,
)

pytestmark = pytest.mark.integration

KILL_AT = (0.15, 0.35, 0.55, 0.8)  # shares of the month's records stored when the worker is killed



def _stored(settings: Settings) -> int:
    """Records the worker's ledger covers; 0 while it does not answer (restarting)."""
    try:
        return sum(o + 1 for _, _, o in worker_get(settings, "/offsets", timeout=5)["offsets"])
    except OSError:
        return 0


def _wait_for(condition: str, check: object, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {condition}"
        time.sleep(0.02)


def _assignments(worker: Worker) -> int:
    """How many times the worker's log says partitions were assigned (one per start, at least)."""
    return Path(worker.log).read_text(errors="replace").count("Setting newly assigned partitions")


def _kill_during_assignment(worker: Worker) -> None:
    """Start the worker and SIGKILL it as soon as it logs that partitions are being assigned."""
    marks = _assignments(worker)
    worker.settings.var_path.mkdir(parents=True, exist_ok=True)
    with worker.log.open("ab") as log:
        worker.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "worker"],
            cwd=REPO,
            env=settings_env(worker.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _wait_for(
        "the partition assignment",
        lambda: _assignments(worker) > marks,
    )
    worker.kill()


def test_five_sigkills_lose_and_double_no_event(isolated: Settings, worker: Worker, month_file: Path) -> None:
    month = list(read_records(month_file, isolated))
    total = len(month)
    last = asyncio.run(produce(month, isolated))
    for n, share in enumerate(KILL_AT):
        _wait_for(f"{share:.0%} stored", lambda share=share: _stored(isolated) >= share * total, timeout=300)
        worker.kill()
        if n == 1:
            _kill_during_assignment(worker)
        worker.start()
    # The last worker is assigned its partitions before the month is checked: a month stored in
    # full before the last kill would otherwise be "sunk" by the ledger alone, the new worker still joining.
    _wait_for(
        "the last restarted worker's assignment",
        lambda: _assignments(worker) >= len(KILL_AT) + 2,
        timeout=120,
    )
    wait_until_sunk(last, isolated, timeout=600)
    _assert_published_and_stored_once(isolated, worker, month)
    assert _assignments(worker) >= len(KILL_AT) + 2


def test_a_shuffled_month_through_sigkills_is_the_published_bulletin(
    isolated: Settings, worker: Worker, month_file: Path
) -> None:
    """Arrival order is not event order (completions before their dispatch, visits before the
    completion): the figures are those of event time, through crashes in the middle of re-folds."""
    month = list(read_records(month_file, isolated))
    random.Random(19).shuffle(month)
    last = asyncio.run(produce(month, isolated))
    for share in KILL_AT[1::2]:
        _wait_for(f"{share:.0%} stored", lambda share=share: _stored(isolated) >= share * len(month), timeout=300)
        worker.kill()
        worker.start()
    wait_until_sunk(last, isolated, timeout=600)
    _assert_published_and_stored_once(isolated, worker, month)


def test_a_shuffled_month_evicted_as_it_goes_through_sigkills_is_the_published_bulletin(
    broker: Settings, tmp_path: Path, month_file: Path
) -> None:
    """Orders evicted from the worker's table as soon as they are completed (their events are from
    2019): every late event of the shuffled month reads its order back from ClickHouse, across
    crashes, tombstones in the changelog and restarts; the figures are still those of event time."""
    isolated = isolated_settings(broker, tmp_path, evict_after_s=2.0)
    worker = Worker(isolated).start()
    try:
        month = list(read_records(month_file, isolated))
        random.Random(24).shuffle(month)
        last = asyncio.run(produce(month, isolated))
        for share in KILL_AT[1::2]:
            _wait_for(f"{share:.0%} stored", lambda share=share: _stored(isolated) >= share * len(month), timeout=300)
            worker.kill()
            worker.start()
        wait_until_sunk(last, isolated, timeout=600)
        evicted = Path(worker.log).read_text(errors="replace").count("evicted from the order table")
        assert evicted > 0, "no order was evicted: the test would not exercise the read-back"
        _assert_published_and_stored_once(isolated, worker, month)
    finally:
        worker.stop()


def _assert_published_and_stored_once(settings: Settings, worker: Worker, month: list[Record]) -> None:
    """The bulletin the worker serves is the published one, cell by cell and headline; then, the
    worker stopped, ClickHouse holds every event sent exactly once, compared id by id."""
    bulletin = worker_get(settings, "/bulletin/2019-11?format=json")
    csv_text = worker_get(settings, "/bulletin/2019-11?format=csv").decode()
    worker.stop()
    assert_table_matches_seed(csv_text)
    assert_headline_matches_seed(bulletin["headline"])
    assert_stored_as_sent({json.loads(r.value)["event_id"] for r in month}, stored_event_ids(settings))
