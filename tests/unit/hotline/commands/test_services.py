"""``hotline worker`` and ``hotline store`` refuse to start, or wait, saying why in one line."""

from __future__ import annotations

import socket
import time

import pytest
from typer.testing import CliRunner

from hotline import cli, heap
from hotline.commands import common
from hotline.settings import Settings
from tests.unit.hotline.commands.test_common import _errors


def test_the_store_does_not_start_without_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "get_settings", lambda: Settings(store_token=None))
    monkeypatch.setattr(heap, "for_long_runs", lambda: None)
    result = CliRunner().invoke(cli.app, ["store"])
    assert result.exit_code != 0
    assert "HOTLINE_STORE_TOKEN" in result.output


def test_a_worker_that_cannot_reach_its_store_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(store_url="http://127.0.0.1:9", store_token="t", app_id="hotline-unit-cli")
    monkeypatch.setattr(common, "get_settings", lambda: settings)
    monkeypatch.setattr(heap, "for_long_runs", lambda: None)  # the GC policy stays the test process's
    result = CliRunner().invoke(cli.app, ["worker"])
    assert result.exit_code != 0
    assert "cannot open the store at http://127.0.0.1:9" in result.output


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_worker_without_a_broker_waits_with_backoff_and_says_so_once_per_try(
    local: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = f"127.0.0.1:{_closed_port()}"
    settings = local.model_copy(update={"kafka_bootstrap": bootstrap, "app_id": "hotline-unit-no-broker"})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 7:
            raise KeyboardInterrupt  # the operator stops it: until then it waits

    monkeypatch.setattr(common, "get_settings", lambda: settings)
    monkeypatch.setattr(time, "sleep", sleep)
    result = CliRunner().invoke(cli.app, ["worker"])
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    lines = [line for line in result.stderr.splitlines() if line.startswith("waiting:")]
    assert len(lines) == 7 and all(f"no Kafka broker answers at {bootstrap}" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_notify_without_channels_says_what_to_set(local: Settings) -> None:
    result = CliRunner().invoke(cli.app, ["notify"])
    assert result.exit_code == 1
    [line] = _errors(result)
    assert "HOTLINE_ALERT_CHANNELS" in line


def test_a_malformed_channel_names_its_variable_without_its_address_or_secret(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-robot-key"
    entry = '{"channel": "pager", "url": "https://x/send?key=' + secret + '", "secret": "' + secret + '"}'
    monkeypatch.setenv("HOTLINE_ALERT_CHANNELS", '{"yuhu": [' + entry + "]}")
    result = CliRunner().invoke(cli.app, ["notify"])
    assert result.exit_code == 2
    [line] = _errors(result)
    assert line.startswith("error: HOTLINE_ALERT_CHANNELS: ") and secret not in result.output
