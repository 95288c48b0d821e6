"""``hotline coverage`` and ``hotline bulletin --period/--from/--to`` against an embedded chDB, no worker."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hotline import cli
from hotline.settings import Settings


def test_a_declared_day_is_what_coverage_shows(local: Settings) -> None:
    declared = CliRunner().invoke(cli.app, ["coverage", "declare", "--from", "2019-10-01", "--note", "imported"])
    assert declared.exit_code == 0, declared.stderr
    shown = CliRunner().invoke(cli.app, ["coverage", "show"])
    assert json.loads(shown.stdout) == {"since": "2019-10-01", "until": None, "declared": True}


def test_a_declared_day_must_be_a_date(local: Settings) -> None:
    result = CliRunner().invoke(cli.app, ["coverage", "declare", "--from", "October"])
    assert result.exit_code == 1 and "--from must look like 2019-01-01" in result.stderr


@pytest.mark.parametrize(
    ("args", "key", "label"),
    [
        (["--from", "2019-11-04", "--to", "2019-11-10"], "2019-11-04..2019-11-10", "2019年11月4日至11月10日"),
        (["--period", "2019-W47"], "2019-W47", "2019年第47周"),
        (["--month", "2019-11"], "2019-11", "2019年11月"),
    ],
)
def test_the_bulletin_of_any_period(local: Settings, args: list[str], key: str, label: str) -> None:
    result = CliRunner().invoke(cli.app, ["bulletin", *args, "--format", "json"])
    assert result.exit_code == 0, result.stderr
    period = json.loads(result.stdout)["period"]
    assert (period["key"], period["label"]) == (key, label)
