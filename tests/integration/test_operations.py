"""Operating the pipeline in the order a new user types the commands."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hotline.client import worker_get
from hotline.deploy.worker import settings_env
from hotline.settings import Settings
from tests.factories import event
from tests.integration.conftest import REPO, Worker

pytestmark = pytest.mark.integration

WAITING = "no worker answers at"


def _events(path: Path) -> Path:
    lines = [
        event("call.received", call_id="C1"),
        event("call.handled", call_id="C1", order_id="O1"),
        event("order.dispatched", order_id="O1", unit_id="yuhu"),
        event("order.completed", order_id="O1", unit_id="yuhu", occurred_at="2019-11-06T10:00:00+08:00"),
    ]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    return path


class Stderr:
    """A child's stderr read as it comes, so a test can wait for a line instead of sleeping."""

    def __init__(self, proc: subprocess.Popen[bytes], needle: str) -> None:
        self.text = ""
        self.seen = threading.Event()
        self.needle = needle
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.text += line.decode(errors="replace")
            if self.needle in self.text:
                self.seen.set()


def test_replay_wait_started_before_the_worker_succeeds_once_the_worker_is_up(
    isolated: Settings, tmp_path: Path
) -> None:
    replay = subprocess.Popen(
        [sys.executable, "-m", "hotline", "replay", str(_events(tmp_path / "events.jsonl")), "--wait"],
        cwd=REPO,
        env=settings_env(isolated),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stderr = Stderr(replay, WAITING)
    worker = Worker(isolated)
    try:
        assert stderr.seen.wait(120), stderr.text  # every record produced, and no worker yet
        assert replay.poll() is None, stderr.text
        worker.start()
        assert replay.wait(300) == 0, stderr.text
        sunk = worker_get(isolated, "/offsets")["offsets"]
    finally:
        if replay.poll() is None:
            replay.kill()
        worker.stop()
    assert sum(offset + 1 for _, _, offset in sunk) == 4  # every record replayed is in ClickHouse
