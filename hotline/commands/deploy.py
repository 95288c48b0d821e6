"""``hotline deploy``: what a production install needs, generated from the code."""

from __future__ import annotations

from typing import Annotated

import typer

from hotline.commands.common import fail, load_settings

app = typer.Typer(help="What a production install needs, generated from the code.", no_args_is_help=True)


@app.command("clickhouse-ddl")
def clickhouse_ddl(
    cluster: Annotated[str, typer.Option(help="The cluster's name in the servers' remote_servers.")],
    database: Annotated[str | None, typer.Option(help="Default: HOTLINE_CLICKHOUSE_DATABASE.")] = None,
) -> None:
    """ClickHouse server DDL (replicated + Distributed tables ON CLUSTER) generated from the pipeline's tables."""
    from hotline.deploy.clickhouse_cluster import script

    try:
        print(script(cluster, database or load_settings().clickhouse_database), end="")
    except ValueError as exc:
        raise fail(str(exc)) from None
