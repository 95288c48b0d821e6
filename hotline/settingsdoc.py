"""The configuration page, generated from :class:`hotline.settings.Settings`.

Every field's ``description=`` is the one place a setting is explained: this module writes them
as a Markdown table (the environment variable, its default as a user would write it, the
description), and ``python -m hotline.settingsdoc > docs/configuration.md`` regenerates the page.
``tests/unit/hotline/test_settingsdoc.py`` fails when a field has no description or the page is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import PurePath

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from hotline.settings import Settings

# A default of these is never printed: the page shows "—" (the field holds a password, token or key).
SECRET_WORDS = ("password", "secret", "token")

INTRO = """\
# Configuration

All settings are environment variables with the prefix `HOTLINE_` (or lines of a `.env` file in
the working directory), read in one place, `hotline/settings.py`: nothing else reads the
environment. Durations (`…_S`) are in seconds; objects and lists are JSON, e.g.
`HOTLINE_ACCESS_TOKENS='{"<token>": "yuhu"}'`. *unset* means no value; a secret's default is
shown as —. A value that cannot be read stops the command with one line naming the variable
(never its value) and the form it takes.

Deadlines and alerts are explained in [Alerts and live monitoring](alerts-and-monitor.md),
access tokens and the sign-in cookie in [Security and personal data](security-and-personal-data.md),
the local cluster and the store in [Deployment](deployment.md).

This page is generated from the descriptions of the fields of `Settings`:
`python -m hotline.settingsdoc > docs/configuration.md` (a unit test fails when it is stale).
"""

# Defaults a validator of ``Settings`` derives when the variable is unset: the field's own default is
# only what one node gets, so the page says what it follows.
DERIVED = {
    "replication_factor": "`HOTLINE_KAFKA_BROKERS`, at most `3` (`1` on one node)",
    "min_insync_replicas": "`2` from a replication factor of 3, else `1`",
}

HEADER = "| variable | default | description |\n|---|---|---|\n"


def variable(name: str) -> str:
    """The environment variable of a field (pydantic-settings matches it in any case)."""
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def is_secret(name: str) -> bool:
    return any(word in name for word in SECRET_WORDS)


def undescribed(model: type[BaseModel] = Settings) -> list[str]:
    """The fields of ``model`` without a description."""
    return [name for name, info in model.model_fields.items() if not (info.description or "").strip()]


def _plain(value: object) -> object:
    """Floats that are whole numbers as integers (``86400``, not ``86400.0``), inside lists and dicts too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def default(name: str, info: FieldInfo) -> str:
    """The default as a user would write it in the environment, as a Markdown cell."""
    if is_secret(name):
        return "—"
    if name in DERIVED:
        return DERIVED[name]
    value = _plain(info.get_default(call_default_factory=True))
    if value is None:
        return "*unset*"
    if value == "":
        return "*empty*"
    if isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, PurePath):
        text = value.as_posix()
    else:
        text = str(value)
    return f"`{text}`"


def _cell(text: str) -> str:
    """One line of a Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    """The configuration page: the introduction, then one row per field in the order of ``Settings``."""
    rows = [
        f"| `{variable(name)}` | {_cell(default(name, info))} | {_cell(info.description or '')} |\n"
        for name, info in Settings.model_fields.items()
    ]
    return INTRO + "\n" + HEADER + "".join(rows)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
