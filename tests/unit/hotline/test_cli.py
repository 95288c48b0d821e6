"""``hotline --version`` and the demo's last word about the Kafka it leaves running."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline import cli
from hotline.deploy import kafka
from hotline.settings import Settings

REPO = Path(__file__).resolve().parents[3]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_version_is_the_distribution_version() -> None:
    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"hotline {VERSION}\n"


def test_python_m_hotline_answers_from_the_repository() -> None:
    """What the integration tests and the worker child run: ``python -m hotline`` with the repository as cwd."""
    result = subprocess.run([sys.executable, "-m", "hotline", "--version"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"hotline {VERSION}\n"


def test_the_demo_says_how_to_stop_the_broker_it_leaves_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka, "status", lambda settings: "running (pid 4242) at 127.0.0.1:9092")
    hint = cli._kafka_left_running(Settings(var_dir=Path("var")))
    assert hint is not None and "hotline kafka stop" in hint and "pid 4242" in hint
    assert "HOTLINE_VAR_DIR" not in hint

    elsewhere = cli._kafka_left_running(Settings(var_dir=Path("/srv/hotline/var")))
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
    assert cli._kafka_left_running(Settings(kafka_bootstrap=bootstrap)) is None


def test_the_store_does_not_start_without_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(store_token=None))
    monkeypatch.setattr(cli, "for_long_runs", lambda: None)
    result = CliRunner().invoke(cli.app, ["store"])
    assert result.exit_code != 0
    assert "HOTLINE_STORE_TOKEN" in result.output


def test_a_worker_that_cannot_reach_its_store_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(store_url="http://127.0.0.1:9", store_token="t", app_id="hotline-unit-cli")
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "for_long_runs", lambda: None)  # the GC policy stays the test process's
    result = CliRunner().invoke(cli.app, ["worker"])
    assert result.exit_code != 0
    assert "cannot open the store at http://127.0.0.1:9" in result.output
