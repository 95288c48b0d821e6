"""Faust's Kafka transport with the project's producer reliability: ``acks=all`` and idempotent.

Why: Faust offers ``producer_acks`` but no idempotence setting; its aiokafka producer turns
idempotence on only inside transactions (exactly-once mode, which this project does not use).
Without it, a retry after a lost answer (a broker killed mid-request) can write a changelog or
dead-letter record twice. This transport gives Faust's producer the same
:meth:`Settings.producer_options` as every other producer of the project; the worker selects
it by the scheme of its broker URLs (:func:`broker_urls`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import ProducerT

from hotline.settings import Settings

SCHEME = "hotline-kafka"


class Producer(faust_aiokafka.Producer):
    """Faust's aiokafka producer, created with the project's producer options."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), **Settings.producer_options()}


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport whose producers are :class:`Producer`."""

    Producer: ClassVar[type[ProducerT]] = Producer


TRANSPORTS.aliases.setdefault(SCHEME, f"{__name__}:Transport")


def broker_urls(settings: Settings) -> list[str]:
    """The ``broker=`` of a Faust app: every bootstrap entry, through this transport."""
    return [f"{SCHEME}://{entry.strip()}" for entry in settings.kafka_bootstrap.split(",") if entry.strip()]

