"""The runbooks name real commands, and every command they name is run by some test.

An operator follows a runbook under pressure: a command that does not exist, or that no test has
ever run, is worse than none. So each ``hotline …`` in ``docs/runbooks.md`` must resolve to a
registered command (sub-commands included), and some test must invoke it (through ``CliRunner``,
``python -m hotline`` or the integration helper ``hotline(settings, …)``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from typer.main import get_command

from hotline import cli

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "docs" / "runbooks.md"
COMMAND = re.compile(r"`hotline ([a-z][a-z0-9 -]*)")


def _named() -> set[tuple[str, ...]]:
    """The command paths the runbooks name: words up to the first argument or option."""
    paths = set()
    for match in COMMAND.finditer(RUNBOOKS.read_text(encoding="utf-8")):
        words = [w for w in match.group(1).split() if not w.startswith("-")]
        paths.add(tuple(_resolved(words)))
    return paths


def _resolved(words: list[str]) -> list[str]:
    """The longest prefix of ``words`` that names a command; the rest are its arguments."""
    command: Any = get_command(cli.app)
    path: list[str] = []
    for word in words:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
        path.append(word)
    assert path and not hasattr(command, "commands"), f"`hotline {' '.join(words)}` is not a command"
    return path


def _invoked(path: tuple[str, ...], sources: list[str]) -> bool:
    quoted = r",\s*".join(f'"{w}"' for w in path)
    pattern = re.compile(rf'(\[|"hotline",\s*|hotline\(\w+,\s*){quoted}')
    return any(pattern.search(text) for text in sources)


def test_the_runbooks_name_commands_that_exist() -> None:
    assert len(_named()) >= 8, "the runbooks name the commands an operator runs"


def test_every_command_the_runbooks_name_is_run_by_a_test() -> None:
    sources = [p.read_text(encoding="utf-8") for p in (REPO / "tests").rglob("test_*.py")]
    untested = sorted(" ".join(path) for path in _named() if not _invoked(path, sources))
    assert not untested, f"named in docs/runbooks.md, run by no test: {untested}"
