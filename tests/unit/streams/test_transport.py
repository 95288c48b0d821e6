"""The worker's Faust app produces with the project's producer options (acks=all, idempotent)."""

from __future__ import annotations

import faust
import faust.transport

from hotline.settings import Settings
from hotline.streams.transport import Producer, Transport, broker_urls


def test_every_bootstrap_entry_becomes_a_broker_url_of_the_transport() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:29092, 127.0.0.1:29192")
    urls = broker_urls(settings)
    assert urls == ["hotline-kafka://127.0.0.1:29092", "hotline-kafka://127.0.0.1:29192"]
    assert faust.transport.by_url(urls[0]) is Transport


async def test_the_faust_producer_is_created_acks_all_and_idempotent() -> None:
    app = faust.App("transport-test", broker=broker_urls(Settings()))
    producer = app.producer
    assert isinstance(producer, Producer)
    options = {**producer._settings_default(), **producer._settings_extra()}
    assert options["acks"] == "all"
    assert options["enable_idempotence"] is True
