"""The demo's last word about the Kafka it leaves running."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.commands import demo
from hotline.deploy import kafka
from hotline.settings import Settings


def test_the_demo_says_how_to_stop_the_broker_it_leaves_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "status", lambda settings: "running (pid 4242) at 127.0.0.1:9092")
    hint = demo._kafka_left_running(Settings(var_dir=Path("var")))
    assert hint is not None and "hotline kafka stop" in hint and "pid 4242" in hint
    assert "HOTLINE_VAR_DIR" not in hint

    elsewhere = demo._kafka_left_running(Settings(var_dir=Path("/srv/hotline/var")))
    assert elsewhere is not None and "(with HOTLINE_VAR_DIR=/srv/hotline/var)" in elsewhere


@pytest.mark.parametrize(
    ("bootstrap", "state"),
    [
        ("kafka-1.example:9092", "running (pid 1) at 127.0.0.1:9092"),  # an external cluster: not ours to stop
        ("127.0.0.1:9092", "stopped (but something not started by hotline.deploy.kafka listens on 127.0.0.1:9092)"),
        ("127.0.0.1:9092", "stopped"),
    ],
)
def test_no_stop_hint_for_a_broker_it_does_not_manage(
    monkeypatch: pytest.MonkeyPatch, bootstrap: str, state: str
) -> None:
    monkeypatch.setattr(kafka, "status", lambda settings: state)
    assert demo._kafka_left_running(Settings(kafka_bootstrap=bootstrap)) is None
