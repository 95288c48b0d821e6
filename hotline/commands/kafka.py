"""``hotline kafka``: a local Kafka (KRaft) for a demo or a small office, and whether a broker answers."""

from __future__ import annotations

from typing import Annotated

import typer

from hotline.commands.common import err, fail, load_settings
from hotline.settings import Settings

app = typer.Typer(help="A local Kafka (KRaft): one node, or a cluster with --brokers 3.", no_args_is_help=True)


@app.command("start")
def kafka_start(
    brokers: Annotated[
        int | None, typer.Option(min=1, help="Nodes of the local cluster (default HOTLINE_KAFKA_BROKERS, 1).")
    ] = None,
) -> None:
    """Start the broker(s) (formats storage the first time; safe to call twice; restarts a stopped node)."""
    from hotline.deploy import kafka

    settings = load_settings() if brokers is None else load_settings(lambda: Settings(kafka_brokers=brokers))
    try:
        with err.status("starting Kafka (first run downloads the jars with Maven)…"):
            err.print(kafka.start(settings))
            kafka.ensure_topics(settings, kafka.pipeline_topics(settings))
    except RuntimeError as exc:
        raise fail(str(exc)) from None
    if settings.kafka_brokers > 1 and kafka.managed(settings):
        err.print(f"clients: HOTLINE_KAFKA_BOOTSTRAP={kafka.local_bootstrap(settings)}", soft_wrap=True)


@app.command("node")
def kafka_node(node: int) -> None:
    """Run node NODE of the local cluster in the foreground (what deploy/systemd/hotline-kafka@.service runs)."""
    from hotline.deploy import kafka

    try:
        kafka.run_node(load_settings(), node)
    except RuntimeError as exc:
        raise fail(str(exc)) from None


@app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker, or every node of the local cluster."""
    from hotline.deploy import kafka

    print(kafka.stop(load_settings()))


@app.command("status")
def kafka_status() -> None:
    """Say whether the local broker runs (node by node for a cluster)."""
    from hotline.deploy import kafka

    print(kafka.status(load_settings()))


def broker_answers(settings: Settings) -> bool:
    """Whether a broker serves the bootstrap, asked before Faust starts: Faust meets a broker that
    does not answer inside its own loop, logs a page of traceback and exits, and nothing here can
    catch it. aiokafka's connection-error lines are kept quiet meanwhile: one line says it all."""
    import logging

    from hotline.deploy import kafka

    client_log = logging.getLogger("aiokafka")
    was, client_log.disabled = client_log.disabled, True
    try:
        return kafka.answers(settings, timeout=15)
    finally:
        client_log.disabled = was
