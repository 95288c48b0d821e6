"""What the CLI says when it cannot go on: one line on stderr naming what is wrong and what to do,
never a traceback, never a configured secret (a hostile tester's findings)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from hotline import cli
from hotline.settings import Settings, get_settings
from tests.factories import event, raw

REPO = Path(__file__).resolve().parents[3]
SECRET = "s3cret-t0ken"


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings built from this test's environment, not from one an earlier test cached."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An embedded chDB under ``tmp_path``, as the CLI's configuration."""
    settings = Settings(var_dir=tmp_path / "var", clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "for_long_runs", lambda: None)  # the GC policy stays the test process's
    return settings


def _errors(result: Result) -> list[str]:
    """The error lines on stderr (the progress bar may print its last state there too)."""
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _import(path: Path) -> Result:
    return CliRunner().invoke(cli.app, ["import", str(path)])


def _lines(n: int) -> bytes:
    return b"".join(raw(event("call.received", call_id=f"C{i}")) + b"\n" for i in range(n))


# -- hotline import: a file that cannot be read --------------------------------------------------


def test_importing_a_gz_that_is_not_gzip_says_so_in_one_line(local: Settings, tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(_lines(3))
    result = _import(path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == _errors(result)  # nothing else: the store was not even opened
    [line] = _errors(result)
    assert str(path) in line and "not a gzip file" in line and "give a .jsonl file or a gzip of one" in line


def test_importing_a_truncated_gzip_loads_what_it_can_then_says_so_in_one_line(local: Settings, tmp_path: Path) -> None:
    whole = gzip.compress(_lines(3_000))
    path = tmp_path / "m.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    result = _import(path)
    assert result.exit_code == 1
    [line] = _errors(result)
    assert str(path) in line and "truncated" in line
    assert "Aborted" not in result.output


def test_importing_a_missing_file_says_so_in_one_line(local: Settings, tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jsonl"
    result = _import(path)
    assert result.exit_code != 0
    assert result.stderr.splitlines() == _errors(result)
    [line] = _errors(result)
    assert str(path) in line and "does not exist" in line


# -- configuration --------------------------------------------------------------------------------


def test_malformed_access_tokens_name_the_variable_in_one_line_without_the_value(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_ACCESS_TOKENS", '{"' + SECRET + '": "*"')  # the closing brace is missing
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    [line] = _errors(result)
    assert line.startswith("error: HOTLINE_ACCESS_TOKENS: ")
    assert "JSON object" in line
    assert SECRET not in result.output


def test_a_value_of_the_wrong_type_names_its_variable_in_one_line(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_PARTITIONS", "abc")
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1, result.stderr
    [line] = _errors(result)
    assert line.startswith("error: HOTLINE_PARTITIONS: ") and "whole number" in line
    assert "abc" not in line


def test_a_dict_entry_of_the_wrong_type_does_not_name_its_key(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key of HOTLINE_ACCESS_TOKENS is the token itself: pydantic's error location names it."""
    monkeypatch.setenv("HOTLINE_ACCESS_TOKENS", '{"' + SECRET + '": 7}')
    result = CliRunner().invoke(cli.app, ["status"])
    assert result.exit_code == 2
    [line] = _errors(result)
    assert line.startswith("error: HOTLINE_ACCESS_TOKENS: ")
    assert SECRET not in result.output


def test_python_m_hotline_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    """The real entry point (no CliRunner): nothing else reaches stderr, no traceback."""
    env = {"PATH": "/usr/bin:/bin", "HOTLINE_VAR_DIR": str(tmp_path / "var"), "HOTLINE_ACCESS_TOKENS": "{not json"}
    done = subprocess.run(
        [sys.executable, "-m", "hotline", "status"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: HOTLINE_ACCESS_TOKENS: ")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "not json" not in done.stderr


# -- hotline worker -------------------------------------------------------------------------------


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_worker_without_a_broker_waits_with_backoff_and_says_so_once_per_try(
    local: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = f"127.0.0.1:{_closed_port()}"
    settings = local.model_copy(update={"kafka_bootstrap": bootstrap, "app_id": "hotline-unit-no-broker"})
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 7:
            raise KeyboardInterrupt  # the operator stops it: until then it waits

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli.time, "sleep", sleep)
    result = CliRunner().invoke(cli.app, ["worker"])
    assert waits == [1, 2, 4, 8, 16, 30, 30]
    lines = [line for line in result.stderr.splitlines() if line.startswith("waiting:")]
    assert len(lines) == 7 and all(f"no Kafka broker answers at {bootstrap}" in line for line in lines)
    assert "Traceback" not in result.stderr


# -- hotline notify ----------------------------------------------------------------------------------


def test_notify_without_channels_says_what_to_set(local: Settings) -> None:
    result = CliRunner().invoke(cli.app, ["notify"])
    assert result.exit_code == 1
    [line] = _errors(result)
    assert "HOTLINE_ALERT_CHANNELS" in line


def test_a_malformed_channel_names_its_variable_without_its_address_or_secret(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = '{"channel": "pager", "url": "https://x/send?key=' + SECRET + '", "secret": "' + SECRET + '"}'
    channels = '{"yuhu": [' + entry + "]}"
    monkeypatch.setenv("HOTLINE_ALERT_CHANNELS", channels)
    result = CliRunner().invoke(cli.app, ["notify"])
    assert result.exit_code == 2
    [line] = _errors(result)
    assert line.startswith("error: HOTLINE_ALERT_CHANNELS: ") and SECRET not in result.output
