"""``hotline units``: the registry in force, at a date, its changes, and importing a version."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline import cli
from hotline.commands import common
from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from tests.unit.schemas.test_registry import REORGANISED


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(common, "get_settings", lambda: Settings(var_dir=tmp_path / "var"))
    return CliRunner()


def _imported(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "units.csv"
    path.write_text(REORGANISED, encoding="utf-8")
    result = runner.invoke(cli.app, ["units", "import", str(path)])
    assert result.exit_code == 0, result.output


def test_before_an_import_the_offices_csv_is_shown(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["units", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:] == [f"{u.id},{u.name},{u.group},{u.order}" for u in default_registry()]


def test_the_imported_registry_is_shown_at_a_date(runner: CliRunner, tmp_path: Path) -> None:
    _imported(runner, tmp_path)
    may = runner.invoke(cli.app, ["units", "--at", "2023-05-01", "--format", "csv"]).output.splitlines()[1:]
    now = runner.invoke(cli.app, ["units", "--format", "csv"]).output.splitlines()[1:]
    assert [line.split(",")[1] for line in may] == ["市银保监局", "市水务局", "市国土局"]  # 市老干局 retired in March
    assert [line.split(",")[1] for line in now] == ["金融监管分局", "市资源局"]


def test_changes_lists_the_merge_and_the_rename(runner: CliRunner, tmp_path: Path) -> None:
    _imported(runner, tmp_path)
    lines = runner.invoke(cli.app, ["units", "changes", "--format", "csv"]).output.splitlines()
    assert "2023-06-01,renamed,bank,市银保监局 → 金融监管分局" in lines
    assert "2023-07-01,merged,resources,land、water → 市资源局" in lines


def test_a_bad_file_is_refused_naming_the_line(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("unit_id,name,group,order\na,甲,g,first\n", encoding="utf-8")
    result = runner.invoke(cli.app, ["units", "import", str(path)])
    assert result.exit_code == 1
    assert "bad.csv: line 2: order: not a whole number" in result.output


def test_a_bad_date_is_refused(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["units", "--at", "2023-13-01"])
    assert result.exit_code == 1 and "--at must look like 2023-06-01" in result.output
