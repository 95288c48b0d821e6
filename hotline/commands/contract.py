"""``hotline schema``: the event contract the pipeline reads, exported as JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def schema(out: Annotated[Path | None, typer.Option(help="Write here instead of the repo's file.")] = None) -> None:
    """Export the event contract as JSON Schema."""
    from hotline.schemas.events import SCHEMA_PATH, write_json_schema

    print(write_json_schema(out or SCHEMA_PATH))
