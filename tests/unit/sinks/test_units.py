"""The unit registry in ClickHouse: the newest import is in force; before any, the office's CSV."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from hotline.schemas.registry import default_registry, parse_registry
from hotline.settings import Settings
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.units import import_registry, stored_registry, versions
from tests.unit.schemas.test_registry import REORGANISED


@pytest.fixture
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    s = ClickHouseStore(Settings(clickhouse_dsn=f"chdb://{tmp_path_factory.mktemp('units') / 'ch'}"))
    s.migrate()
    yield s
    s.close()  # chDB holds one path per process


def test_an_empty_store_falls_back_to_the_offices_csv(sink: ClickHouseStore) -> None:
    assert stored_registry(sink).version == default_registry().version


def test_the_imported_registry_reads_back_with_its_history(sink: ClickHouseStore) -> None:
    imported = parse_registry(REORGANISED)
    assert import_registry(sink, imported)
    stored = stored_registry(sink)
    assert stored.version == imported.version
    assert sorted(stored.history, key=lambda u: (u.id, u.valid_from or date.min)) == sorted(
        imported.history, key=lambda u: (u.id, u.valid_from or date.min)
    )


def test_importing_the_version_in_force_writes_nothing(sink: ClickHouseStore) -> None:
    registry = parse_registry(REORGANISED)
    assert import_registry(sink, registry)
    assert not import_registry(sink, registry)
    assert [v["rows"] for v in versions(sink)] == [len(registry.history)]


def test_the_newest_import_is_in_force(sink: ClickHouseStore) -> None:
    first = parse_registry(REORGANISED)
    second = parse_registry(REORGANISED.replace("市老干局", "市老干部局"))
    import_registry(sink, first)
    import_registry(sink, second)
    assert stored_registry(sink).version == second.version
    import_registry(sink, first)  # going back is an import like any other
    assert stored_registry(sink).version == first.version
