"""Settings: the local cluster's port rule, replication following the cluster, producer reliability, retired
variables refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hotline.settings import KafkaNode, Settings, office_setting


def test_a_single_node_listens_on_the_bootstrap_and_controller_ports() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:19092", kafka_controller_port=19093)
    assert settings.kafka_nodes() == [KafkaNode(1, 19092, 19093)]


def test_node_i_listens_one_step_further_per_node() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:29092", kafka_controller_port=29093, kafka_brokers=3)
    assert settings.kafka_nodes() == [
        KafkaNode(1, 29092, 29093),
        KafkaNode(2, 29192, 29193),
        KafkaNode(3, 29292, 29293),
    ]


def test_the_first_bootstrap_entry_is_node_1() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:29092,127.0.0.1:29192,127.0.0.1:29292", kafka_controller_port=29093)
    assert settings.kafka_nodes(3)[0] == KafkaNode(1, 29092, 29093)


def test_overlapping_ports_are_refused() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        Settings(kafka_bootstrap="127.0.0.1:9092", kafka_controller_port=9192, kafka_brokers=3)


def test_one_broker_replicates_once() -> None:
    settings = Settings(kafka_brokers=1)
    assert (settings.replication_factor, settings.min_insync_replicas) == (1, 1)


def test_three_brokers_replicate_three_times_with_two_in_sync() -> None:
    settings = Settings(kafka_brokers=3)
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)


def test_explicit_replication_wins_over_the_cluster_size() -> None:
    settings = Settings(kafka_brokers=3, replication_factor=2)
    assert (settings.replication_factor, settings.min_insync_replicas) == (2, 1)


def test_min_insync_above_replication_is_refused() -> None:
    with pytest.raises(ValidationError, match="min_insync_replicas"):
        Settings(replication_factor=1, min_insync_replicas=2)


def test_producers_wait_for_every_in_sync_replica_and_are_idempotent() -> None:
    assert Settings.producer_options() == {"acks": "all", "enable_idempotence": True}


def test_a_malformed_deadletter_key_is_refused_when_the_settings_load() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="32 bytes in base64 are needed, not 5"):
        Settings(deadletter_key="c2hvcnQ=")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("channel", "why"),
    [
        ({"channel": "wecom", "url": "qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K"}, "http:// or https://"),
        ({"channel": "sms", "url": "https://gw/send"}, "needs phones"),
        ({"channel": "webhook", "url": "https://x", "kinds": ["overdu"]}, "overdue"),
    ],
)
def test_an_alert_channel_that_cannot_deliver_is_refused_at_start(channel: dict[str, object], why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        Settings(alert_channels={"yuhu": [channel]})


WEBHOOKS = '{"yuhu": "https://receiver.example/alerts"}'


def test_a_retired_hotline_webhooks_stops_the_start_naming_its_replacement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_WEBHOOKS", WEBHOOKS)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    message = str(refused.value)
    assert "HOTLINE_ALERT_CHANNELS" in message and '"channel": "webhook"' in message and "hotline notify" in message


def test_a_retired_hotline_webhooks_in_the_env_file_is_refused_too(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"HOTLINE_WEBHOOKS={WEBHOOKS}\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="HOTLINE_ALERT_CHANNELS"):
        Settings(_env_file=env_file)  # type: ignore[call-arg]


@pytest.mark.parametrize("value", ["{}", "", " {} "])
def test_a_hotline_webhooks_naming_no_unit_is_let_be(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """The old deploy/hotline.env.example's line, ``HOTLINE_WEBHOOKS={}``, delivered nothing: no reason to stop."""
    monkeypatch.setenv("HOTLINE_WEBHOOKS", value)
    assert Settings(_env_file=None).alert_channels == {}  # type: ignore[call-arg]


def test_the_office_is_read_alone_whatever_the_other_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What an import reads (the office's time zone): a bad other setting is the command's to say."""
    monkeypatch.setenv("HOTLINE_OFFICE", str(tmp_path / "office.toml"))
    monkeypatch.setenv("HOTLINE_PARTITIONS", "abc")
    assert office_setting() == tmp_path / "office.toml"
