"""What every ``hotline`` command shares: the error console, how a command fails, the
configuration (a malformed ``HOTLINE_`` variable said in one line) and ClickHouse opened here."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import UnionType
from typing import TYPE_CHECKING, Literal, Union, get_args, get_origin

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console

from hotline.settings import Settings, get_settings

if TYPE_CHECKING:
    from hotline.sinks.clickhouse import ClickHouseStore

err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """One line per line of ``message``, taken literally and never wrapped (logs read it as written)."""
    from rich.markup import escape

    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def load_settings(make: Callable[[], Settings] | None = None) -> Settings:
    """The configuration (``get_settings()``, or what ``make`` builds): a malformed ``HOTLINE_``
    variable stops the command with one line naming it (exit 2, a usage error), instead of
    pydantic's page of traceback. The value is never echoed: it may be a token."""
    try:
        return (make or get_settings)()
    except (SettingsError, ValidationError) as exc:
        raise fail(_misconfigured(exc), code=2) from None


def configuration_error(exc: BaseException) -> str | None:
    """The one line for a configuration error that escaped a command, or None for any other error.

    :func:`load_settings` says a bad setting where a command loads its settings; this is for what
    is read elsewhere: the office profile (``HOTLINE_OFFICE``) an import reads for the time zone,
    a setting read past :func:`load_settings`. ``hotline.cli.main`` asks it of whatever escapes."""
    from hotline.schemas.office import OfficeError

    if isinstance(exc, SettingsError) or (isinstance(exc, ValidationError) and exc.title == Settings.__name__):
        return _misconfigured(exc)
    if isinstance(exc, OfficeError):
        return f"{_variable('office')}: {exc}"
    return None


_UNPARSED = re.compile(r'field "(?P<field>\w+)" from source "(?P<source>\w+)"')
_EXAMPLES = {  # settings whose default (empty) shows no shape
    "access_tokens": '{"<token>": "<unit_id, or * for a supervisor>"}',
}


def _variable(field: str) -> str:
    """The environment variable of a settings field (pydantic-settings matches it in any case)."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _misconfigured(exc: SettingsError | ValidationError) -> str:
    """``VARIABLE: what is wrong; what a value looks like``, from what pydantic says: the field
    name only, never the input, nor the rest of an error's location (a dict key can be a token)."""
    if isinstance(exc, SettingsError):  # a complex value (dict, list) that is not JSON
        found = _UNPARSED.search(str(exc))
        if found is None:
            return f"the HOTLINE_ settings: {exc}"
        cause = exc.__cause__
        wrong = "cannot be parsed"
        if isinstance(cause, json.JSONDecodeError):  # its message says where, never what
            wrong = f"not JSON ({cause.msg} at character {cause.pos + 1})"
        where = " (in .env)" if found["source"] == "DotEnvSettingsSource" else ""
        return f"{_variable(found['field'])}{where}: {wrong}; {_form(found['field'])}"
    problems = exc.errors(include_url=False, include_context=False, include_input=False)
    fields = list(dict.fromkeys(str(p["loc"][0]) for p in problems if p["loc"]))
    first = problems[0]
    wrong = first["msg"].removeprefix("Value error, ")
    wrong = wrong[:1].lower() + wrong[1:]
    if not first["loc"]:  # the settings together (a model validator): its message names the fields
        return f"the HOTLINE_ settings: {wrong}"
    name = str(first["loc"][0])
    inside = "an entry: " if len(first["loc"]) > 1 else ""
    also = f" (also wrong: {', '.join(_variable(f) for f in fields[1:])})" if len(fields) > 1 else ""
    return f"{_variable(name)}: {inside}{wrong}; {_form(name)}{also}"


def _form(field: str) -> str:
    """What a value of ``field`` looks like, from its type (its default as the example)."""
    info = Settings.model_fields.get(field)
    if info is None:
        return "see hotline/settings.py"
    kind = info.annotation
    if get_origin(kind) in (Union, UnionType):  # X | None: an X
        kind = next(a for a in get_args(kind) if a is not type(None))
    default = info.get_default(call_default_factory=True)
    origin = get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(kind))
    if origin is dict:
        return f"a JSON object, e.g. {_EXAMPLES.get(field) or json.dumps(default, ensure_ascii=False)}"
    if origin is list:
        return f"a JSON array, e.g. {json.dumps(default)}"
    if kind is bool:
        return "true or false"
    if kind is int:
        return f"a whole number, e.g. {default}"
    if kind is float:
        return f"a number, e.g. {default}"
    return "a string"


def open_clickhouse(settings: Settings, why: str = "the worker may hold it: stop it first") -> ClickHouseStore:
    """The configured ClickHouse, migrated; a clear failure when another process holds an embedded one."""
    from hotline.sinks.clickhouse import ClickHouseStore

    try:
        sink = ClickHouseStore(settings)
        sink.migrate()
    except Exception as exc:  # chDB refuses a directory another process holds
        raise fail(f"cannot open ClickHouse at {settings.resolved_clickhouse_dsn} and {why}: {exc}") from exc
    return sink
