"""All configuration in one place: environment variables prefixed ``HOTLINE_``.

Every other module receives a :class:`Settings` (or calls :func:`get_settings`);
nothing else reads the environment.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field, SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SEALING_KEY_BYTES = 32  # HOTLINE_DEADLETTER_KEY: an AES-256 key (hotline.sinks.originals)
MAKE_KEY = "`hotline deadletters new-key` makes one"


def sealing_key(text: str) -> bytes:
    """The dead letters' sealing key from its base64 text; a clear error for anything else (never echoed)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not base64 (a key is {SEALING_KEY_BYTES} bytes in base64: {MAKE_KEY})") from None
    if len(key) != SEALING_KEY_BYTES:
        raise ValueError(f"{SEALING_KEY_BYTES} bytes in base64 are needed, not {len(key)} ({MAKE_KEY})")
    return key


RETIRED_WEBHOOKS_VARIABLE = "HOTLINE_WEBHOOKS"
RETIRED_WEBHOOKS = (
    "the worker's in-memory webhook is retired and HOTLINE_WEBHOOKS is no longer read (its alerts would go "
    "nowhere): give each unit a webhook destination in HOTLINE_ALERT_CHANNELS instead, "
    '\'{"<unit_id>": [{"channel": "webhook", "url": "https://…", "secret": "…"}]}\', run `hotline notify` '
    "(signed, retried until taken, through crashes: docs/alerts.md), and unset HOTLINE_WEBHOOKS"
)


def _names_a_webhook(value: object) -> bool:
    """Whether a ``HOTLINE_WEBHOOKS`` value configures anything: blank and ``{}`` do not."""
    if isinstance(value, str):
        return value.strip() not in ("", "{}")
    return bool(value)


class KafkaNode(NamedTuple):
    """One node of the local KRaft cluster: its id and the two ports it listens on (127.0.0.1)."""

    node_id: int
    port: int
    controller_port: int


class AlertChannel(BaseModel):
    """One place a unit's alerts are delivered by ``hotline notify`` (``HOTLINE_ALERT_CHANNELS``)."""

    channel: Literal["webhook", "wecom", "dingtalk", "feishu", "sms"]
    url: str = Field(repr=False)  # a robot's address holds its key
    secret: str = Field(default="", repr=False)
    phones: list[str] = Field(default_factory=list, repr=False)  # sms only: never logged nor stored
    # empty: every kind (a unit's channels: all but escalated; the supervisors' "*" channels: escalated)
    kinds: list[Literal["overdue", "due_soon", "supervision_due", "escalated"]] = Field(default_factory=list)
    per_minute: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _deliverable(self) -> AlertChannel:
        """Refused at start, not at the first alert: an address that is no HTTP(S) URL, an SMS
        channel without a phone number. The messages name neither (they are secrets)."""
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"a {self.channel} channel's url must start with http:// or https://")
        if self.channel == "sms" and not self.phones:
            raise ValueError("an sms channel needs phones")
        return self


class Settings(BaseSettings):
    """Pipeline configuration; defaults run everything on this machine."""

    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=".env", extra="ignore")

    var_dir: Path = Field(default=Path("var"), description="Local state: Kafka data, chDB, pid files.")

    # Kafka
    kafka_bootstrap: str = Field(
        default="127.0.0.1:9092",
        description="Kafka's bootstrap servers, comma-separated `host:port` (any cluster); the first entry's port is "
        "node 1's of a local cluster.",
    )
    kafka_controller_port: int = Field(
        default=9093,
        description="The controller port of node 1 of the local KRaft cluster; node i's is this + (i-1) × "
        "`HOTLINE_KAFKA_PORT_STEP`.",
    )
    kafka_security_protocol: str = Field(
        default="PLAINTEXT",
        description="Kafka's security protocol: `PLAINTEXT` for the local broker; `SSL`, `SASL_PLAINTEXT` or "
        "`SASL_SSL` for a managed cluster.",
    )
    kafka_sasl_mechanism: str | None = Field(
        default=None, description="The SASL mechanism of a managed cluster (e.g. `SCRAM-SHA-512`); unset: no SASL."
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="The SASL user name, with `HOTLINE_KAFKA_SASL_MECHANISM`."
    )
    kafka_sasl_password: str | None = Field(
        default=None, description="The SASL password, with `HOTLINE_KAFKA_SASL_MECHANISM`."
    )
    kafka_ssl_cafile: str | None = Field(
        default=None, description="The CA file trusted for `SSL` and `SASL_SSL` clusters; unset: the system's CAs."
    )
    kafka_version: str = Field(
        default="4.1.1",
        description="The Apache Kafka release whose jars `hotline kafka` resolves from Maven Central for the "
        "local broker(s).",
    )
    # Nodes `hotline kafka start` runs here (1, or 3 for a KRaft cluster). Node i (from 1) listens on
    # the bootstrap's first port + (i-1) * kafka_port_step and on kafka_controller_port + (i-1) * step.
    kafka_brokers: int = Field(
        default=1,
        ge=1,
        description="Nodes `hotline kafka start` runs on this machine (1, or 3 for a KRaft cluster); the "
        "replication settings follow it when unset.",
    )
    kafka_port_step: int = Field(
        default=100,
        ge=2,
        description="Ports between local nodes: node i listens on the bootstrap's first port + (i-1) × step, its "
        "controller on `HOTLINE_KAFKA_CONTROLLER_PORT` + (i-1) × step.",
    )

    # Topics
    calls_topic: str = Field(default="hotline.calls", description="The source topic of call events (`call.*`).")
    orders_topic: str = Field(
        default="hotline.orders",
        description="The source topic of work-order events (`order.*`) and the provincial checks (`check.*`).",
    )
    alerts_topic: str = Field(
        default="hotline.alerts",
        description="The topic the workers send alerts to, keyed by unit; every worker also reads it back from "
        "its beginning.",
    )
    deadletter_topic: str = Field(
        default="hotline.deadletter",
        description="The topic of records that could not be processed: each unchanged, with the reason in headers.",
    )
    partitions: int = Field(
        default=4,
        description="Partitions of the pipeline's topics and of Faust's order table, at creation; they bound the "
        "number of workers.",
    )
    # Unset, both follow kafka_brokers: 1 and 1 on a single node, 3 and 2 from three brokers on, so an
    # acks=all write still succeeds with one broker down and is never on one broker only.
    replication_factor: int = Field(
        default=1,
        ge=1,
        description="Replicas of new topics (the pipeline's and Faust's); unset: the local cluster's "
        "`HOTLINE_KAFKA_BROKERS`, at most 3. Set it for an external cluster.",
    )
    min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="`min.insync.replicas` of new topics; unset: 2 when the replication factor is 3 or more, else 1. "
        "Set it for an external cluster.",
    )

    # Faust
    app_id: str = Field(
        default="hotline",
        description="The Faust app id and the workers' consumer group; the store keeps its partition claims per group.",
    )
    table_store: str = Field(
        default="memory://",
        description="Faust's store of the per-order table (`memory://`: held in memory, recovered from its changelog).",
    )
    # web_host is where others reach the worker's HTTP: the store scrapes its /metrics there, and
    # the addresses the CLI prints use it. web_bind is where it listens, when that differs (0.0.0.0
    # on a machine reached by name or through NAT); empty: at web_host only, not on every interface.
    web_host: str = Field(
        default="127.0.0.1",
        description="Where others reach the worker's HTTP (the store's scrape, printed links); it listens on "
        "this host only unless `HOTLINE_WEB_BIND` is set.",
    )
    web_bind: str = Field(
        default="",
        description="The interface the worker's HTTP listens on when it is not the reachable address (e.g. "
        "`0.0.0.0`); empty: `HOTLINE_WEB_HOST`.",
    )
    web_port: int = Field(
        default=6066,
        description="The port of the worker's HTTP: its pages, `/bulletin`, `/monitor`, `/status`, `/offsets`, "
        "`/metrics`.",
    )
    session_timeout_s: float = Field(
        default=10.0,
        description="How long a killed worker's partitions wait before they move to another worker of the group.",
    )  # how long a killed worker's partitions wait before moving
    # How often the group's consumers re-read cluster metadata. A group leader that asked before
    # a topic existed (a worker started as its topics are created, on a broker just started)
    # assigns none of it until its next read, which is what ends that state: aiokafka's default
    # is five minutes of a group reading nothing.
    metadata_max_age_s: float = Field(
        default=5.0,
        gt=0,
        description="How often the group re-reads cluster metadata: a leader that assigned before its topics "
        "existed assigns them at its next read (aiokafka's default, five minutes, left such a worker reading "
        "nothing that long).",
    )
    max_connections_per_client: int = Field(
        default=256,
        ge=1,
        description="The most HTTP connections one client address may hold open to a worker or the store; "
        "one past it is closed at once.",
    )
    orphan_wait_s: float = Field(
        default=72 * 3600.0,
        gt=0,
        description="How long the events of a work order whose dispatch never arrives are held (from its first "
        "event) before they are dead-lettered with the reason.",
    )
    evict_after_s: float = Field(
        default=35 * 86400.0,
        ge=0,
        description="How long a completed work order stays in the worker's order table after its latest event "
        "(event time); then it leaves the table (ClickHouse keeps it, and a later event reads it back). The "
        "worker's memory and restart time follow the open and recent orders. 0: keep every order.",
    )
    evict_sweep_s: float = Field(
        default=30.0,
        gt=0,
        description="How often the worker looks for completed work orders to evict (a pass over its order table, "
        "under the batch lock).",
    )
    changelog_segment_s: float = Field(
        default=3600.0,
        gt=0,
        description="The order table's changelog topic's compaction period: it starts a new segment this often "
        "(`segment.ms`), a dirty segment is compacted within it (`max.compaction.lag.ms`) and a tombstone kept as "
        "long (`delete.retention.ms`), so an evicted order's records leave it within about three periods. Applies "
        "when the topic is created.",
    )
    deadletter_key: SecretStr | None = Field(
        default=None,
        description="The key (base64 of 32 bytes; `hotline deadletters new-key` makes one) that seals each dead "
        "letter's original record with AES-GCM for a later redrive; unset: no original is kept. Rotating or "
        "removing it makes the originals sealed with it unreadable. Set it where ClickHouse is written.",
    )
    deadletter_retention_days: int = Field(
        default=90,
        ge=1,
        description="How long a dead letter's sealed original is kept for redrive; older ones are never opened "
        "and `hotline deadletters purge` drops them.",
    )
    units_file: Path | None = Field(
        default=None,
        description="The unit registry as CSV (`id,name,group,order`); unset: the registry shipped with the code.",
    )
    max_order_events: int = Field(
        default=1_000,
        ge=10,
        description="The most events one work order may hold; an event past it is dead-lettered with the reason, "
        "so no order's state can outgrow a Kafka record.",
    )
    batch_size: int = Field(
        default=5000,
        description="Records per batch at most; a batch also ends after `HOTLINE_BATCH_WITHIN_S`.",
    )  # at most; a batch also ends after batch_within_s, so live traffic is not held back
    batch_within_s: float = Field(
        default=0.5,
        description="The longest a batch waits to fill (live traffic goes out within it).",
    )
    # How source records reach the pipeline: "batch" reads them in batches past Faust's
    # per-event stream (streams/reader.py); "stream" uses Faust's agents (take_events).
    ingest: Literal["batch", "stream"] = Field(
        default="batch",
        description="`batch`: the worker reads its source partitions in batches past Faust's per-event stream "
        "(`streams/reader.py`); `stream`: through Faust's agents (`take_events`). Same ledger and rules either way.",
    )

    # ClickHouse: empty means embedded chDB under var_dir/clickhouse
    clickhouse_dsn: str = Field(
        default="",
        description="ClickHouse: `http://user:pass@host:8123` for a server (the same code path); empty: embedded "
        "chDB under `<HOTLINE_VAR_DIR>/clickhouse`.",
    )
    clickhouse_database: str = Field(
        default="hotline", description="The ClickHouse database that holds the pipeline's tables."
    )

    office: Path | None = Field(
        default=None,
        description="The office profile (TOML): names, masthead, time zone, bulletin lists and standards, sections, "
        "办理时限 and the unit registry file (see *Setting up a new office*); unset: the shipped demo office.",
    )

    # Deadlines and alerts
    deadline_days: dict[str, int] = Field(
        default_factory=dict,
        description="Overrides of the office profile's 办理时限 (working days by order type, used when a dispatch "
        'carries no due_at), e.g. `{"complaint": 3}`; empty: the profile\'s.',
    )
    alert_leads_s: list[float] = Field(
        default_factory=lambda: [86400.0, 7200.0],
        description="How long before a deadline each `alert.due_soon` is sent, one alert per lead.",
    )
    alert_horizon_s: float = Field(default=86400.0, description="Older alert times are counted, not delivered.")
    alert_escalate_after_s: float = Field(
        default=0.0,
        ge=0,
        description="An overdue alert its unit has not acknowledged (签收) this long after it was sent is escalated "
        "once (`alert.escalated`, to the `*` channels of `HOTLINE_ALERT_CHANNELS`); 0: no escalation.",
    )
    alert_tick_s: float = Field(
        default=0.05,
        description="The alert timer's tick: with nothing scheduled it looks this often, else it sleeps until the "
        "next alert falls due, at most 20 ticks.",
    )

    # Logging
    log_repeat_interval_s: float = Field(
        default=30.0, description="A repeated Kafka client line (same logger, template, first argument) once per this."
    )

    # Access to the worker's pages: token -> unit_id, or "*" for a supervisor.
    access_tokens: dict[str, str] = Field(
        default_factory=dict,
        description='Who sees what on the worker\'s pages: `{"<token>": "<unit_id>" or "*"}` (`*`: a supervisor); '
        "empty: the office-wide pages are open, the monitor and alert streams closed.",
    )
    # The token the CLI sends to the worker (a supervisor's), when access_tokens is set.
    api_token: str | None = Field(
        default=None, description="The supervisor token the CLI sends, once `HOTLINE_ACCESS_TOKENS` is set."
    )
    # The monitor's sign-in ticket (an HttpOnly cookie instead of ?token= in addresses): signed with this
    # secret when set, else with a key derived from access_tokens; valid for ticket_ttl_s seconds.
    ticket_secret: str | None = Field(
        default=None,
        description="The signing key of the monitor's sign-in cookie, mixed with the tokens; unset: derived from "
        "the tokens alone.",
    )
    ticket_ttl_s: float = Field(default=12 * 3600.0, description="The lifetime of the monitor's sign-in cookie (12 h).")
    # The storage owner (``hotline store``): one process opens ClickHouse (chDB or a
    # server DSN) and serves the store's operations over HTTP to any number of workers. A worker with
    # store_url set stores through it (hotline.sinks.remote); without, it opens ClickHouse itself.
    store_url: str | None = Field(
        default=None,
        description="Set (e.g. `http://127.0.0.1:6070`): the worker stores through `hotline store` there instead "
        "of opening ClickHouse.",
    )  # e.g. http://127.0.0.1:6070
    store_host: str = Field(
        default="127.0.0.1", description="The interface `hotline store` listens on."
    )  # where `hotline store` listens
    store_port: int = Field(default=6070, description="The port `hotline store` listens on.")
    store_token: str | None = Field(
        default=None,
        description="The bearer token between workers and the store; the store does not start without it.",
    )  # bearer token between workers and the store: required by both
    store_timeout_s: float = Field(default=120.0, gt=0, description="A worker's wait for one store call.")
    # The store's /metrics covers every worker that called it (each call names the worker's /metrics):
    # fetched on each scrape of the store, each worker waited for at most store_scrape_timeout_s.
    store_scrape_timeout_s: float = Field(default=2.0, gt=0, description="The store's wait for one worker's /metrics.")
    store_forget_worker_s: float = Field(
        default=600.0, gt=0, description="A worker that neither calls nor answers the store this long is gone."
    )
    # Fencing (hotline.sinks.fencing): a worker's claim of its partitions lapses when it has not renewed
    # it for this long (workers renew every third of it, idle or not); then a claim of a lower group
    # generation may take them (a consumer group Kafka deleted and re-created starts again at 1).
    store_claim_lease_s: float = Field(default=300.0, gt=0, description="How long a silent worker's claim holds.")
    # Alert delivery to people (``hotline notify``): channels per unit, read from the alerts topic.
    alert_channels: dict[str, list[AlertChannel]] = Field(
        default_factory=dict,
        description='Where `hotline notify` delivers each unit\'s alerts: `{"<unit_id>": [{"channel": "wecom", '
        '"url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"}, {"channel": "dingtalk", "url": …, '
        '"secret": "SEC…"}, {"channel": "feishu", …}, {"channel": "webhook", …}, {"channel": "sms", "url": …, '
        '"secret": …, "phones": ["…"], "kinds": ["overdue"]}]}`; optional `per_minute` (default 20). Never logged.',
    )
    notify_group: str = Field(
        default="hotline-notify",
        description="The consumer group of `hotline notify` on the alerts topic (apart from the workers').",
    )
    notify_ttl_s: float = Field(
        default=86_400.0,
        gt=0,
        description="How long after it was emitted an alert is still retried; then written off as `expired` in the "
        "delivery log.",
    )
    notify_retry_max_s: float = Field(
        default=300.0, gt=0, description="The longest backoff between two tries of one destination (1 s doubling)."
    )
    notify_port: int = Field(
        default=6071, description="The port of `hotline notify`'s HTTP: `/metrics` and the 签收 pages `/ack/…`."
    )
    notify_host: str = Field(
        default="127.0.0.1",
        description="The interface `hotline notify`'s HTTP listens on (`0.0.0.0` when units open its 签收 links "
        "from their phones).",
    )
    ack_secret: str | None = Field(
        default=None,
        description="The key that signs the 签收 (acknowledgement) link each alert message carries; unset: messages "
        "carry no link.",
    )
    ack_base_url: str = Field(
        default="",
        description="Where units reach `hotline notify`'s 签收 page, as the links say (e.g. "
        "`https://hotline.example.gov.cn/notify`); empty: `http://<HOTLINE_NOTIFY_HOST>:<HOTLINE_NOTIFY_PORT>`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_retired_webhooks(cls, data: Any) -> Any:
        """``HOTLINE_WEBHOOKS`` (the worker's in-memory webhook) is no longer read: ignored like any
        unknown variable, it would stop every delivery to those receivers without a word. Naming a
        unit there stops the process at start instead, saying what replaces it; empty or ``{}``
        (the old example's line) delivered nothing and is let be."""
        given = [value for name, value in os.environ.items() if name.upper() == RETIRED_WEBHOOKS_VARIABLE]
        if isinstance(data, dict) and "webhooks" in data:  # a .env line (its extras come through) or an argument
            given.append(data["webhooks"])
        if any(_names_a_webhook(value) for value in given):
            raise ValueError(RETIRED_WEBHOOKS)
        return data

    @field_validator("deadletter_key")
    @classmethod
    def _a_sealing_key(cls, value: SecretStr | None) -> SecretStr | None:
        """A malformed key stops every command at once, not the first dead letter."""
        if value is not None:
            sealing_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _replication_follows_the_cluster(self) -> Settings:
        """One variable (``HOTLINE_KAFKA_BROKERS=3``) makes topics, Faust's changelogs and the brokers agree."""
        if "replication_factor" not in self.model_fields_set:
            self.replication_factor = min(3, self.kafka_brokers)
        if "min_insync_replicas" not in self.model_fields_set:
            self.min_insync_replicas = 2 if self.replication_factor >= 3 else 1
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"min_insync_replicas {self.min_insync_replicas} > replication_factor: no write could succeed"
            )
        ports = [port for node in self.kafka_nodes() for port in node[1:]]
        if len(set(ports)) < len(ports):
            raise ValueError(f"the local cluster's ports overlap ({ports}): change kafka_port_step or the ports")
        return self

    @property
    def var_path(self) -> Path:
        return self.var_dir.resolve()

    @property
    def resolved_clickhouse_dsn(self) -> str:
        """chDB DSNs need an absolute path (``chdb:///abs/path``)."""
        if self.clickhouse_dsn:
            return self.clickhouse_dsn
        return f"chdb://{self.var_path / 'clickhouse'}"

    def kafka_client_options(self) -> dict[str, object]:
        """Connection options for aiokafka clients (producers, plain consumers)."""
        options: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password,
            )
        context = self.kafka_ssl_context()
        if context is not None:
            options["ssl_context"] = context
        return options

    @staticmethod
    def producer_options() -> dict[str, object]:
        """Every producer's reliability: a write counts once all in-sync replicas have it (``acks=all``,
        at least ``min_insync_replicas``), and a retry after a lost answer cannot duplicate or reorder it
        (idempotence). Losing a broker then loses nothing that was acknowledged."""
        return {"acks": "all", "enable_idempotence": True}

    def kafka_nodes(self, brokers: int | None = None) -> list[KafkaNode]:
        """The local cluster's nodes (``kafka_brokers`` unless given): the one port rule, used by
        ``hotline kafka``, its systemd units and the bootstrap a client of that cluster needs."""
        base = self.kafka_bootstrap_port
        step = self.kafka_port_step
        count = self.kafka_brokers if brokers is None else brokers
        return [KafkaNode(i + 1, base + i * step, self.kafka_controller_port + i * step) for i in range(count)]

    @property
    def kafka_bootstrap_port(self) -> int:
        """The port of the bootstrap's first entry (9092 when it names none): node 1 of a local cluster."""
        first = self.kafka_bootstrap.split(",")[0].strip().split("://", 1)[-1]
        _, sep, port = first.rpartition(":")
        return int(port) if sep and port.isdigit() else 9092

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """TLS for SSL and SASL_SSL clusters, trusting ``kafka_ssl_cafile`` (or the system CAs)."""
        if "SSL" not in self.kafka_security_protocol:
            return None
        return ssl.create_default_context(cafile=self.kafka_ssl_cafile)

    @property
    def store_listen_url(self) -> str:
        """Where ``hotline store`` answers (what workers put in ``store_url``)."""
        return f"http://{self.store_host}:{self.store_port}"

    @property
    def ack_url(self) -> str:
        """Where the 签收 links point: ``ack_base_url``, or ``hotline notify``'s own address."""
        return (self.ack_base_url or f"http://{self.notify_host}:{self.notify_port}").rstrip("/")

    @property
    def web_url(self) -> str:
        """Where others reach the worker's HTTP (never its bind address: 0.0.0.0 reaches nothing)."""
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def web_listen_host(self) -> str:
        """The interface the worker's HTTP listens on."""
        return self.web_bind or self.web_host


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


class _OneSetting(BaseSettings):
    """Where a single setting is read from: the environment and ``.env``, as :class:`Settings` reads it."""

    model_config = Settings.model_config


def office_setting() -> Path | None:
    """``HOTLINE_OFFICE`` alone, under its declaration in :class:`Settings`.

    What an import needs: the office's time zone is a constant of ``schemas/events.py``, read
    when the module is imported. Validating every other setting then would stop any command
    with pydantic's traceback (which prints the offending value: a token, a webhook's URL)
    before the command could say what is wrong in one line (``hotline.commands.common``)."""
    declared = Settings.model_fields["office"]
    annotation: Any = declared.annotation  # its type, as declared there (not spelled again here)
    # Named as the whole: an error in it is reported as any setting's (hotline.commands.common).
    only = create_model("Settings", __base__=_OneSetting, office=(annotation, declared))
    value: Path | None = only().office  # type: ignore[attr-defined]
    return value
