"""``hotline demo``: the whole pipeline once on one machine, from a local Kafka to the printed bulletin."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from hotline.commands.bulletin import BulletinFormat, bulletin_bytes
from hotline.commands.common import err, fail, load_settings
from hotline.commands.events import generate, replay_file
from hotline.commands.kafka import kafka_start
from hotline.settings import Settings


def demo(
    fmt: Annotated[BulletinFormat, typer.Option("--format")] = BulletinFormat.table,
    serve: Annotated[
        bool, typer.Option(help="Keep the worker running afterwards, for /monitor (Ctrl-C stops).")
    ] = False,
) -> None:
    """The whole pipeline once: Kafka, a worker, the seed month replayed, the bulletin printed."""
    import secrets

    from hotline import seed
    from hotline.deploy.worker import WorkerProcess

    settings = load_settings()
    if serve and not settings.access_tokens:
        token = secrets.token_urlsafe(16)  # the monitor always needs one: a supervisor's, for this run
        settings = settings.model_copy(update={"access_tokens": {token: "*"}, "api_token": token})
    month = str(json.loads(seed.HEADLINE.read_text(encoding="utf-8"))["period"])
    events = settings.var_path / "demo" / f"{month}.jsonl"
    err.rule("1/4 Kafka")
    kafka_start()
    err.rule("2/4 生成事件 generating the month")
    generate(out=events)
    err.rule("3/4 worker + replay")
    worker = WorkerProcess(settings)
    try:
        worker.start()
    except RuntimeError as exc:
        raise fail(f"{exc}\n(see {worker.log})") from exc
    try:
        replay_file(settings, events, wait=True, timeout=900)
        err.rule("4/4 通报 bulletin")
        sys.stdout.buffer.write(bulletin_bytes(settings, month, fmt.value))
        sys.stdout.flush()
        if serve:
            _serve(settings, f"{month}-{_last_day(month)}")
    finally:
        worker.stop()
    left = _kafka_left_running(settings)
    if left:
        err.print(left, markup=False, soft_wrap=True)


def _kafka_left_running(settings: Settings) -> str | None:
    """What to say about the broker the demo started (or found) and leaves running, if it is ours."""
    from hotline.deploy import kafka

    if kafka.managed_port(settings) is None:
        return None
    state = kafka.status(settings)
    if not state.startswith(("running", "starting")):
        return None  # external, or a broker some other var directory manages
    same_var = f" (with HOTLINE_VAR_DIR={settings.var_path})" if settings.var_dir != Path("var") else ""
    return f"Kafka keeps running in the background ({state}); stop it with `hotline kafka stop`{same_var}."


def _last_day(month: str) -> str:
    import calendar

    year, mon = (int(x) for x in month.split("-"))
    return f"{calendar.monthrange(year, mon)[1]:02d}"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(settings: Settings, day: str) -> None:
    """Point at the live pages and wait for Ctrl-C."""
    token = settings.api_token or next(iter(settings.access_tokens), "")
    err.rule("实时监测 live monitor")
    err.print(f"{settings.web_url}/monitor?token={token}&date={day}")
    err.print(f"{settings.web_url}/alerts?token={token}   (server-sent events)")
    err.print(f"{settings.web_url}/bulletin/{day[:7]}?format=docx&token={token}")
    err.print("Ctrl-C stops the worker.")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the worker too, not only Ctrl-C
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
