"""The commands the runbooks send an operator to, run as the operator would, on the real broker."""

from __future__ import annotations

import json

import pytest

from hotline.settings import Settings
from tests.integration.conftest import Worker, hotline

pytestmark = pytest.mark.integration


def test_kafka_start_on_a_running_broker_changes_nothing_and_says_so(broker: Settings) -> None:
    done = hotline(broker, "kafka", "start")
    assert done.returncode == 0
    assert "running" in done.stdout.decode() + done.stderr.decode()


def test_kafka_status_says_the_broker_runs(broker: Settings) -> None:
    done = hotline(broker, "kafka", "status")
    assert done.returncode == 0 and "running" in done.stdout.decode()


def test_status_shows_a_healthy_store_of_a_running_worker(isolated: Settings, worker: Worker) -> None:
    done = hotline(isolated, "status")
    assert done.returncode == 0
    assert json.loads(done.stdout)["store"] == {"ok": True}
