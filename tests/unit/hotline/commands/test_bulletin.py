"""``hotline bulletin``: a period that cannot be is refused in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hotline import cli
from hotline.settings import Settings
from tests.unit.hotline.commands.test_common import _errors


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--period", "2019-W53"], "2019 has weeks 1 to 52, not 53"),
        (["--month", "2019-W47"], "--month must look like 2019-11"),
        (["--period", "2019-11", "--month", "2019-11"], "name one period"),
        (["--from", "2019-11-04"], "--from and --to go together"),
        (["--from", "2019-11-10", "--to", "2019-11-04"], "a period ends on or after its start"),
    ],
)
def test_a_period_that_cannot_be_is_named_in_one_line(local: Settings, args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli.app, ["bulletin", *args])
    assert result.exit_code == 1
    assert len(_errors(result)) == 1 and says in _errors(result)[0]
