"""``hotline deadletters`` with no worker running: it opens ClickHouse itself and prints redacted rows."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from hotline import cli
from hotline.commands import common
from hotline.settings import Settings
from hotline.sinks import originals
from hotline.sinks.base import Batch, DeadLetter
from hotline.sinks.clickhouse import ClickHouseStore
from tests.factories import event, raw

PHONE = "13912345678"


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An embedded chDB with two dead letters, and no worker at the configured port."""
    settings = Settings(
        var_dir=tmp_path / "var",
        clickhouse_dsn=f"chdb://{tmp_path / 'ch'}",
        web_port=18431,  # nothing listens there: the commands open ClickHouse themselves
        deadletter_key=SecretStr(originals.new_key()),
    )
    monkeypatch.setattr(common, "get_settings", lambda: settings)
    record = raw(event("call.received", answered="yes", caller={"phone": PHONE, "name": "李四"}))
    with ClickHouseStore(settings) as store:
        store.migrate()
        store.write(
            Batch(
                deadletters=[
                    DeadLetter("t.calls", 0, 7, "call.received.answered: not a boolean", record, b"C1"),
                    DeadLetter("t.calls", 0, 8, "not JSON", b'{"type":'),
                ]
            )
        )
    return settings


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli.app, ["deadletters", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_list_counts_per_reason_and_shows_no_phone(local: Settings) -> None:
    found = json.loads(_run("list", "--json"))
    assert found["counts"] == {"call.received.answered: not a boolean": 1, "not JSON": 1}
    assert [letter["id"] for letter in found["letters"]] == ["t.calls:0:7", "t.calls:0:8"]
    assert PHONE not in json.dumps(found, ensure_ascii=False) and "李四" not in json.dumps(found, ensure_ascii=False)


def test_list_filters_by_reason(local: Settings) -> None:
    found = json.loads(_run("list", "--json", "--reason", "json"))
    assert [letter["id"] for letter in found["letters"]] == ["t.calls:0:8"]


def test_show_prints_one_redacted_with_its_status(local: Settings) -> None:
    shown = json.loads(_run("show", "t.calls:0:7"))
    assert shown["reason"] == "call.received.answered: not a boolean"
    assert shown["source"] == {"topic": "t.calls", "partition": 0, "offset": 7}
    assert shown["status"] == "not redriven" and shown["original"].startswith("sealed with key")
    assert PHONE not in json.dumps(shown, ensure_ascii=False)


def test_show_of_an_unknown_id_fails_in_one_line(local: Settings) -> None:
    result = CliRunner().invoke(cli.app, ["deadletters", "show", "t.calls:0:99"])
    assert result.exit_code == 1 and "no dead letter t.calls:0:99" in result.stderr


def test_a_redrive_of_everything_is_refused(local: Settings) -> None:
    result = CliRunner().invoke(cli.app, ["deadletters", "redrive"])
    assert result.exit_code == 2 and "not all at once" in result.stderr


def test_purge_keeps_originals_within_the_retention(local: Settings) -> None:
    assert _run("purge").startswith("0 sealed original(s)")
    assert json.loads(_run("show", "t.calls:0:7"))["original"].startswith("sealed with key")


def test_new_key_prints_a_key_the_settings_accept() -> None:
    result = CliRunner().invoke(cli.app, ["deadletters", "new-key"])
    key = result.stdout.strip()
    assert len(base64.b64decode(key)) == 32
    assert Settings(deadletter_key=SecretStr(key)).deadletter_key is not None


def test_list_prints_a_table_of_counts_and_letters(local: Settings) -> None:
    printed = _run("list")
    assert "t.calls:0:7" in printed and "t.calls:0:8" in printed and "not JSON" in printed
    assert PHONE not in printed
