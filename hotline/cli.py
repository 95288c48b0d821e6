"""``hotline``: the one command a hotline office and its engineers use.

This module assembles it; each group of commands lives in :mod:`hotline.commands`. Commands are
registered here in the order ``hotline --help`` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hotline.commands import backup as backup_commands
from hotline.commands import bulletin, contract, deadletters, demo, deploy, events, history, kafka, services, units
from hotline.commands.coverage import coverage_app

app = typer.Typer(help="12345 热线工单数据管道 (12345 hotline work-order pipeline).", no_args_is_help=True)
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
    app()
