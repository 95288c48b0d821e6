"""The store's wire: what ``hotline store`` (``hotline.sinks.server``) and its client
(``hotline.sinks.remote``) must agree on, said once.

Each :class:`~hotline.sinks.base.Store` operation is ``POST {API}/<op>`` with its arguments as a
JSON object (``hotline.sinks.codec``), the codec version in :data:`CODEC_HEADER` and the store's
bearer token; the answer is ``{"result": …}``, or ``{"error": …}`` with a status that says why
(:data:`FENCED`, :data:`RACED`, :data:`WORKERS_RUNNING`; 400 a malformed call, 500 ClickHouse
refused). A worker's calls also announce it (:func:`announcement`), so the store can scrape it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, NamedTuple, get_args
from urllib.parse import urlsplit

from hotline.settings import Settings

API = "/v1"
AUTHORIZATION = "Authorization"
BEARER = "Bearer "  # the token follows: Authorization: Bearer <HOTLINE_STORE_TOKEN>
JSON = "application/json"  # every call's body and every answer's
WORKER_HEADER = "X-Hotline-Worker"  # the worker's name: host:port of its web (unique among workers)
METRICS_HEADER = "X-Hotline-Metrics"  # where the worker's /metrics answers
CODEC_HEADER = "X-Hotline-Codec"  # the wire format of the call's body (hotline.sinks.codec.CODEC_VERSION)

FENCED = 409  # the store's answer to a call of a generation whose partitions were claimed by a newer one
RACED = 412  # its answer to a write whose new events another worker stored since the writer's lookup
WORKERS_RUNNING = 423  # its answer to an import or a restate begun while a worker answers (Locked)
UNAVAILABLE = (502, 503, 504)  # a proxy's or the store's "not ready": an outage, retried

# Every operation the store serves, by name: the client's calls are checked against it by mypy.
Op = Literal[
    "hello",
    "claim",
    "write",
    "record_progress",
    "progress",
    "stored",
    "event_count",
    "event_months",
    "event_ids",
    "order_states",
    "open_orders",
    "awaiting_supervision",
    "windows",
    "generation",
    "healthy",
    "query",
    "query_rows",
    "counts",
    "deadletters",
    "record_generation",
    "restate",
    "begin_history",
    "backup_partitions",
    "backup_export",
]
OPS: tuple[Op, ...] = get_args(Op)

_NAME = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,255}$")
_MAX_URL = 512


class Announced(NamedTuple):
    """A worker as its calls name it: what the store scrapes, and under which ``worker`` label."""

    name: str
    url: str  # its /metrics


def announcement(settings: Settings) -> dict[str, str]:
    """The headers every call of a worker carries: its name and its ``/metrics`` address."""
    return {WORKER_HEADER: f"{settings.web_host}:{settings.web_port}", METRICS_HEADER: f"{settings.web_url}/metrics"}


def announced(headers: Mapping[str, str]) -> Announced | None:
    """The worker a call announces, or None when it announces none or not a plain ``/metrics`` address.

    The store fetches that address on every scrape of its own ``/metrics`` (which answers anyone),
    so only an ``http(s)://host[:port]/metrics`` is taken: no credentials, query or other path that
    would make the store fetch and show another page."""
    name, url = headers.get(WORKER_HEADER, ""), headers.get(METRICS_HEADER, "")
    if not _NAME.match(name) or not url or len(url) > _MAX_URL:
        return None
    try:
        parts = urlsplit(url)
        _port = parts.port  # raises on a port that is not a number
    except ValueError:
        return None
    plain = parts.scheme in ("http", "https") and parts.hostname and parts.path == "/metrics"
    if not plain or parts.username or parts.password or parts.query or parts.fragment:
        return None
    return Announced(name, url)
