"""A store holding two synthetic years (2019 and 2020), imported once per module that asks for it.

chDB holds one path per process, so the store is closed when the module's tests are done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from hotline.schemas.registry import default_registry
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.streams.deadlines import limits_of
from hotline.streams.history import import_file
from tests.synthetic import history, write

FIRST, LAST = date(2019, 1, 1), date(2020, 12, 31)


@dataclass
class Stored:
    """A store and the distinct events it was given (for the reference computation)."""

    store: ClickHouseStore
    events: list[dict[str, Any]]


def imported(root: Path, records: list[bytes]) -> ClickHouseStore:
    """A migrated chDB store under ``root`` with ``records`` imported as ``hotline import`` does."""
    settings = Settings(clickhouse_dsn=f"chdb://{root / 'ch'}", var_dir=root / "var")
    store = ClickHouseStore(settings)
    store.migrate()
    import_file(store, write(records, root / "events.jsonl"), default_registry(), limits_of(settings))
    return store


@pytest.fixture(scope="module")
def two_years(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    records = history(FIRST, LAST)
    store = imported(tmp_path_factory.mktemp("two-years"), records)
    yield Stored(store, [json.loads(r) for r in records])
    store.close()
