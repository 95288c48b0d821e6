"""A malformed ``HOTLINE_`` variable: one line on stderr naming it and what a value looks like,
never the value (it may be a token), whatever the command (``hotline status`` here)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner, Result

from hotline import cli

SECRET = "s3cret-t0ken"


def _errors(result: Result) -> list[str]:
    """The error lines on stderr (the progress bar may print its last state there too)."""
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


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


def test_a_malformed_deadletter_key_stops_the_command_in_one_line_without_echoing_it(
    fresh_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOTLINE_DEADLETTER_KEY", "c2hvcnQ=")
    result = CliRunner().invoke(cli.app, ["deadletters", "list"])
    assert result.exit_code == 2
    assert _errors(result) == [
        "error: HOTLINE_DEADLETTER_KEY: 32 bytes in base64 are needed, not 5 (`hotline deadletters new-key` makes "
        "one); a string"
    ]
    assert "c2hvcnQ=" not in result.output
