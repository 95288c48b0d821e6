"""The commands' configuration in a test: built from this test's environment, or an embedded chDB
under the test's own directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline import heap
from hotline.commands import common
from hotline.settings import Settings, get_settings


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings built from this test's environment, not from one an earlier test cached."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An embedded chDB under ``tmp_path``, as the CLI's configuration."""
    settings = Settings(var_dir=tmp_path / "var", clickhouse_dsn=f"chdb://{tmp_path / 'ch'}")
    monkeypatch.setattr(common, "get_settings", lambda: settings)
    monkeypatch.setattr(heap, "for_long_runs", lambda: None)  # the GC policy stays the test process's
    return settings
