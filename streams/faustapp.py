"""The Faust app a worker runs on: positioned by the ledger, its watchdogs and pages as the pipeline needs.

Faust is the worker's runtime (the consumer group, the order table and its changelog, timers,
the web server); what the pipeline changes in it is here, in one place: where partitions start
(:class:`LedgerApp`), the credentials of a managed cluster, Faust's own pages off, and its stream
watchdogs off where the batch reader owns the partitions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.types import TP, ConsumerT

from hotline.settings import Settings
from hotline.streams.transport import broker_urls

Positions = Mapping[TP, int]


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """SASL/SSL for a managed cluster; ``None`` for the local PLAINTEXT broker."""
    context = settings.kafka_ssl_context()
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


NEVER_S = 10 * 365 * 86400.0  # a watchdog that must not fire


def faust_watchdogs(settings: Settings) -> dict[str, Any]:
    """Faust's stream and commit watchdogs, where they mean something.

    In ``batch`` ingest the batch reader owns the source partitions (Faust's stream is paused on
    them, and progress is the ledger's, not the group's commits), so Faust's "Stream has not
    started processing" and "Has not committed" errors would be false alarms every 30 s from five
    minutes after start: they are turned off there, and keep Faust's defaults in ``stream`` ingest."""
    if settings.ingest != "batch":
        return {}
    return {"stream_processing_timeout": NEVER_S, "broker_commit_livelock_soft_timeout": NEVER_S}


class LedgerApp(faust.App):
    """A Faust app whose stream partitions start where the ledger says, not where the group committed.

    Faust positions its stream partitions after every assignment through its consumer's
    ``seek_to_committed`` (in ``perform_seek``), and takes the offsets it returns as the
    committed baseline for its own acks. ``resume_at`` replaces those offsets with the
    ledger's, and seeks there, so a partition resumes right after its last contiguous
    processed offset, whatever the group committed.
    """

    resume_at: Callable[[Positions], Awaitable[Positions]] | None = None
    # Begun as the app starts, before it joins the group: a restarted worker waits there up to the
    # session timeout for its killed predecessor to leave, time in which the store opens and the
    # filters of stored ids load (Faust starts its own tasks only once the table is recovered).
    starting: Callable[[], Awaitable[None]] | None = None

    async def on_start(self) -> None:
        await super().on_start()
        if self.starting is not None:
            self.add_future(self.starting())

    def _new_consumer(self) -> ConsumerT:
        consumer: Any = super()._new_consumer()  # faust's Consumer: seek_to_committed is not in ConsumerT
        committed = consumer.seek_to_committed

        async def seek_to_ledger() -> Positions:
            positions = await committed()
            return await self.resume_at(positions) if self.resume_at else positions

        consumer.seek_to_committed = seek_to_ledger
        return consumer  # type: ignore[no-any-return]


def ledger_app(settings: Settings) -> LedgerApp:
    """The worker's Faust app, configured from the settings."""
    return LedgerApp(
        settings.app_id,
        broker=broker_urls(settings),  # producers acks=all and idempotent (streams/transport.py)
        broker_credentials=broker_credentials(settings),
        store=settings.table_store,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        processing_guarantee="at_least_once",
        web_host=settings.web_host,  # Faust's canonical address: where others reach this worker
        web_bind=settings.web_listen_host,
        web_port=settings.web_port,
        # Faust's own pages (/table: order state; /router, /graph, /, /stats, /performance) stay off:
        # hotline/web.py serves only the project's pages, each behind its token rule (registered
        # by whoever runs the pipeline: the pages sit above the pipeline and the reports).
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        web_in_thread=False,
        datadir=str(settings.var_path / "faust"),
        consumer_auto_offset_reset="earliest",
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        consumer_metadata_max_age_ms=int(settings.metadata_max_age_s * 1000),
        **faust_watchdogs(settings),
    )
