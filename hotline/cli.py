"""``hotline``: the one command a hotline office and its engineers use.

This module assembles it; each group of commands lives in :mod:`hotline.commands`. Commands are
registered here in the order ``hotline --help`` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hotline.commands import backup as backup_commands
from hotline.commands import bulletin, contract, deadletters, demo, deploy, events, history, kafka, services, units
from hotline.commands.common import configuration_error, fail
from hotline.commands.coverage import coverage_app

# A crash's traceback never lists its frames' variables: they hold settings, tokens, webhook URLs.
app = typer.Typer(
    help="12345 热线工单数据管道 (12345 hotline work-order pipeline).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(kafka.app, name="kafka")
app.add_typer(deploy.app, name="deploy")
app.add_typer(deadletters.app, name="deadletters")
app.add_typer(units.units_app, name="units")
app.add_typer(coverage_app, name="coverage")


def version() -> str:
    """The installed distribution's version (``hotline12345``), as ``pip`` knows it."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("hotline12345")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        print(f"hotline {version()}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


app.command()(contract.schema)
app.command()(services.worker)
app.command()(services.store)
app.command()(services.notify)
app.command()(events.replay)
app.command()(bulletin.bulletin)
app.command("import")(history.import_)
app.command()(history.restate)
app.command()(events.generate)
app.command()(demo.demo)
app.command()(services.status)


app.command("backup")(backup_commands.backup)
app.command("restore")(backup_commands.restore)


def main() -> None:
    """Run the command; a configuration error it meets (a bad setting, an office profile that
    cannot be loaded) is one line on stderr and exit 2 whichever command met it, and wherever:
    never pydantic's traceback, which would print the value (a token, a webhook's URL)."""
    try:
        app()
    except Exception as exc:
        message = configuration_error(exc)
        if message is None:
            raise
        raise SystemExit(fail(message, code=2).exit_code) from None
