"""``hotline worker``, ``hotline store`` and ``hotline status``: the long-running services, and
what the running worker says it has sunk."""

from __future__ import annotations

import json
import time

from hotline import heap
from hotline.commands.common import err, fail, load_settings
from hotline.commands.kafka import broker_answers
from hotline.settings import Settings


def worker(loglevel: str = "info") -> None:
    """Run the pipeline: consume, keep state, sink to ClickHouse, serve HTTP."""
    # First: importing the pipeline reads the settings (the office's profile), and a bad variable
    # must stop the worker in one line, not in a traceback from an import.
    settings = load_settings()
    import logging

    import faust

    from hotline import web
    from hotline.logs import install
    from hotline.sinks.store import describe
    from hotline.streams.app import Pipeline

    heap.for_long_runs()
    pipeline = Pipeline(settings)
    web.register(pipeline)
    try:
        _ = pipeline.store  # open the store before joining Kafka: a locked chDB directory fails here, clearly
    except Exception as exc:
        raise fail(f"cannot open {describe(pipeline.settings)}: {exc}") from exc
    try:
        _wait_for_kafka(pipeline.settings)
    except BaseException:  # stopped while waiting (Ctrl-C, SIGTERM): the store is closed, not left open
        pipeline.store.close()
        raise

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            """Faust has just replaced the root handlers: from here on, escape and rate-limit what they write."""
            super().on_setup_root_logger(logger, level)
            install(logger, pipeline.settings.log_repeat_interval_s)

    Worker(pipeline.app, loglevel=loglevel, quiet=True).execute_from_commandline()


BROKER_WAIT_MAX_S = 30.0  # the longest wait between two tries to reach the broker


def _wait_for_kafka(settings: Settings) -> None:
    """Until a broker answers: a service started before its broker (a machine's boot, a broker
    restarting) waits with backoff (1 s doubling to 30 s) and says so once per try, in one line,
    instead of exiting with Faust's traceback."""
    delay = 1.0
    while not broker_answers(settings):
        err.print(
            f"waiting: no Kafka broker answers at {settings.kafka_bootstrap} (start one: hotline kafka start, "
            f"or set HOTLINE_KAFKA_BOOTSTRAP); trying again in {delay:.0f}s",
            markup=False,
            highlight=False,
        )
        time.sleep(delay)
        delay = min(BROKER_WAIT_MAX_S, delay * 2)


def store() -> None:
    """Own ClickHouse for every worker: open it, then serve the sink's calls over HTTP (HOTLINE_STORE_*)."""
    settings = load_settings()  # before the imports that read it (see worker)
    import logging

    from hotline.logs import install
    from hotline.sinks.server import run

    if not settings.store_token:
        raise fail("set HOTLINE_STORE_TOKEN (and the same on every worker, with HOTLINE_STORE_URL)")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    install(logging.getLogger(), settings.log_repeat_interval_s)
    heap.for_long_runs()
    try:
        run(settings)
    except Exception as exc:  # a chDB directory another process holds, a newer schema, a port taken
        raise fail(f"the store did not start on {settings.store_listen_url}: {type(exc).__name__}: {exc}") from exc


def status() -> None:
    """What the running worker has sunk: events, dead letters, offsets."""
    from hotline.client import worker_get

    try:
        print(json.dumps(worker_get(load_settings(), "/status"), ensure_ascii=False, indent=2))
    except OSError as exc:
        raise fail(f"no worker answers at {load_settings().web_url}: {exc}") from exc


def notify() -> None:
    """Deliver alerts to people: read the alerts topic in its own group, send each to its unit's channels
    (HOTLINE_ALERT_CHANNELS), retry until delivered, record every delivery in ClickHouse."""
    settings = load_settings()  # before the imports that read it (see worker)
    import asyncio
    import logging

    from hotline.logs import install
    from hotline.streams import notify as notifier

    if not settings.alert_channels:
        raise fail("set HOTLINE_ALERT_CHANNELS: no unit has a channel to deliver to")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    install(logging.getLogger(), settings.log_repeat_interval_s)
    _wait_for_kafka(settings)
    asyncio.run(notifier.until_stopped(settings))  # SIGTERM and Ctrl-C stop it cleanly
