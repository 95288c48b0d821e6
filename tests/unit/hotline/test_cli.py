"""The ``hotline`` command as assembled: its version, its entry point, and every group's commands."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from hotline import cli

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


def _run(tmp_path: Path, args: list[str], **variables: str) -> subprocess.CompletedProcess[str]:
    """``python -m hotline ARGS`` from the repository, with only ``variables`` set (and a var dir)."""
    env = {"PATH": "/usr/bin:/bin", "HOTLINE_VAR_DIR": str(tmp_path / "var"), **variables}
    return subprocess.run(
        [sys.executable, "-m", "hotline", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


# Commands whose pipeline imports used to read every setting (the office's time zone) before the
# command could load them: a bad one was pydantic's traceback.
IMPORTING = [["deadletters", "list"], ["backup", "{tmp}/copy"], ["import", "{tmp}/orders.csv"], ["kafka", "status"]]


@pytest.mark.parametrize("args", IMPORTING, ids=lambda args: " ".join(args[:2]))
def test_a_bad_setting_is_one_line_naming_it_whichever_command(tmp_path: Path, args: list[str]) -> None:
    done = _run(tmp_path, [a.format(tmp=tmp_path) for a in args], HOTLINE_PARTITIONS="abc")
    assert done.returncode == 2
    assert done.stderr.startswith("error: HOTLINE_PARTITIONS: input should be a valid integer")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "abc" not in done.stderr


@pytest.mark.parametrize("args", [["deadletters", "list"], ["restore", "{tmp}/copy"]], ids=" ".join)
def test_a_secret_in_a_bad_setting_is_never_echoed(tmp_path: Path, args: list[str]) -> None:
    channels = '{"yuhu": [{"channel": "webhook", "url": "ftp://hooks.example/TOPSECRET", "secret": "s3cr3t"}]}'
    done = _run(tmp_path, [a.format(tmp=tmp_path) for a in args], HOTLINE_ALERT_CHANNELS=channels)
    assert done.returncode == 2
    assert done.stderr.startswith("error: HOTLINE_ALERT_CHANNELS: an entry: a webhook channel's url must start")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "TOPSECRET" not in done.stderr and "s3cr3t" not in done.stderr


def test_an_office_profile_that_cannot_be_loaded_is_one_line(tmp_path: Path) -> None:
    """Read by an import (the time zone), not by the command's settings: still one line, exit 2."""
    done = _run(tmp_path, ["deadletters", "list"], HOTLINE_OFFICE=str(tmp_path / "nowhere.toml"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: HOTLINE_OFFICE: office profile nowhere.toml: cannot be read")
    assert len(done.stderr.splitlines()) == 1, done.stderr


def test_every_command_module_is_assembled_in_the_order_help_lists_them() -> None:
    """A command moved between modules, or a module left out, changes what ``hotline --help`` offers."""
    group = get_command(cli.app)
    assert isinstance(group, TyperGroup)
    assert list(group.commands) == [
        "schema",
        "worker",
        "store",
        "notify",
        "replay",
        "bulletin",
        "import",
        "restate",
        "generate",
        "demo",
        "status",
        "backup",
        "restore",
        "kafka",
        "deploy",
        "deadletters",
        "units",
        "coverage",
    ]
    kafka, deploy = group.commands["kafka"], group.commands["deploy"]
    assert isinstance(kafka, TyperGroup) and isinstance(deploy, TyperGroup)
    assert list(kafka.commands) == ["start", "node", "stop", "status"]
    assert list(deploy.commands) == ["clickhouse-ddl"]


def test_python_m_hotline_names_what_replaces_the_retired_webhook(tmp_path: Path) -> None:
    """An operator upgrading with ``HOTLINE_WEBHOOKS`` set learns it at start, in one line, not from lost alerts."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOTLINE_VAR_DIR": str(tmp_path / "var"),
        "HOTLINE_WEBHOOKS": '{"yuhu": "https://receiver.example/alerts"}',
    }
    done = subprocess.run(
        [sys.executable, "-m", "hotline", "worker"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: the HOTLINE_ settings: the worker's in-memory webhook is retired")
    assert "HOTLINE_ALERT_CHANNELS" in done.stderr and "hotline notify" in done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "receiver.example" not in done.stderr
