"""``hotline import`` of a file that cannot be read: one line on stderr naming the file and what is
wrong, never a traceback."""

from __future__ import annotations

import gzip
from pathlib import Path

from typer.testing import CliRunner, Result

from hotline import cli
from hotline.settings import Settings
from tests.factories import event, raw


def _errors(result: Result) -> list[str]:
    """The error lines on stderr (the progress bar may print its last state there too)."""
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def _import(path: Path) -> Result:
    return CliRunner().invoke(cli.app, ["import", str(path)])


def _lines(n: int) -> bytes:
    return b"".join(raw(event("call.received", call_id=f"C{i}")) + b"\n" for i in range(n))


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
