"""``hotline backup`` and ``hotline restore`` as a user runs them: with no process holding the store,
and through ``hotline store`` (the worker's pages: tests/integration/test_backup.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hotline import cli
from hotline.commands import common
from hotline.settings import Settings
from hotline.sinks.backup import MANIFEST
from hotline.sinks.clickhouse import ClickHouseStore
from hotline.sinks.server import StoreServer
from tests.factories import event, folded
from tests.stores import serving, store_settings

NO_WORKER = 18502  # nothing listens here (this suite's port range): no worker holds the store


def _settings(root: Path, **extra: object) -> Settings:
    return Settings(var_dir=root, web_port=NO_WORKER, **extra)  # type: ignore[arg-type]


def _run(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(common, "get_settings", lambda: settings)
    result = CliRunner().invoke(cli.app, list(args))
    return result.exit_code, result.output


def _write_month(settings: Settings) -> None:
    with ClickHouseStore(settings) as sink:
        sink.migrate()
        sink.write(
            folded(
                [
                    event("order.dispatched", order_id="O1", due_at="2019-11-08T09:00:00+08:00"),
                    event("order.completed", order_id="O1", occurred_at="2019-11-07T09:00:00+08:00"),
                ]
            )
        )
        sink.record_progress({("hotline.orders", 0): 1})


def _events(settings: Settings) -> list[str]:
    with ClickHouseStore(settings) as sink:
        return sorted(str(r[0]) for r in sink.query("SELECT event_id FROM {db}.events FINAL"))


def test_a_store_no_process_holds_is_backed_up_and_restored_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source, target = _settings(tmp_path / "a"), _settings(tmp_path / "b")
    _write_month(source)
    code, said = _run(monkeypatch, source, "backup", str(tmp_path / "backup"))
    assert code == 0, said
    assert "from ClickHouse at chdb://" in said
    code, said = _run(monkeypatch, target, "restore", str(tmp_path / "backup"))
    assert code == 0, said
    assert _events(target) == _events(source) and len(_events(target)) == 2
    with ClickHouseStore(target) as sink:
        assert sink.progress() == {("hotline.orders", 0): 1}


def test_restore_refuses_a_store_that_holds_rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    source = _settings(tmp_path / "a")
    _write_month(source)
    assert _run(monkeypatch, source, "backup", str(tmp_path / "backup"))[0] == 0
    code, said = _run(monkeypatch, source, "restore", str(tmp_path / "backup"))
    assert code == 1
    assert "is not empty" in said and "HOTLINE_VAR_DIR" in said


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StoreServer]:
    settings = store_settings(tmp_path / "store")
    _write_month(settings.model_copy(update={"store_url": None}))
    yield from serving(settings)


def test_with_a_store_url_the_backup_reads_through_hotline_store(
    monkeypatch: pytest.MonkeyPatch, store: StoreServer, tmp_path: Path
) -> None:
    """``hotline store`` holds the chDB directory: the backup asks it, table by table."""
    settings = store.settings.model_copy(update={"web_port": NO_WORKER})
    code, said = _run(monkeypatch, settings, "backup", str(tmp_path / "backup"))
    assert code == 0, said
    assert f"from the store at {settings.store_url}" in said
    manifest = json.loads((tmp_path / "backup" / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["ledger"] == [["hotline.orders", 0, 1]]
    assert manifest["tables"]["events"]["rows"] == 2
    assert manifest["tables"]["order_states"]["rows"] == 1


def test_restore_refuses_while_a_store_url_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = _settings(tmp_path, store_url="http://127.0.0.1:18503", store_token="t")
    code, said = _run(monkeypatch, settings, "restore", str(tmp_path / "backup"))
    assert code == 1 and "HOTLINE_STORE_URL is set" in said


def test_a_backup_since_an_earlier_one_says_which_months_it_linked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = _settings(tmp_path / "a")
    _write_month(source)
    assert _run(monkeypatch, source, "backup", str(tmp_path / "first"))[0] == 0
    code, said = _run(monkeypatch, source, "backup", str(tmp_path / "second"), "--since", str(tmp_path / "first"))
    assert code == 0, said
    assert "events 201911: 2 rows (unchanged: linked from --since)" in said
