"""The tables, declared once: each one's columns, engine and DDL.

Every table is a ReplacingMergeTree keyed by what makes a row unique (event id,
source offset, counter key), and every read uses ``FINAL``: a batch written twice
after a crash or a replay changes nothing. That is what lets the streams run
at-least-once and still count each event once. The migrations
(``hotline.sinks.migrations``), the inserts (``hotline.sinks.clickhouse``) and a cluster's
generated DDL (``hotline.deploy.clickhouse_cluster``) all derive from these declarations.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.schemas import metrics
from hotline.schemas.events import TZ

TS = f"DateTime64(3, '{TZ.key}')"  # the office's time zone (its profile): local days and months in SQL
POINTS = "Decimal(9, 2)"  # points the province deducts, to hundredths
CHECK_COLUMNS = ("reached", "points", "indicator", "deduction_items", "deduction_points")  # events, version 5


# Outdated parts (merged away) are removed in parallel once more than 100 wait, on a pool of up to
# 128 threads that then stays, idle: ~120 threads and ~40 MiB of the worker's memory for good, once
# a few months are stored (bench.state). One thread keeps up: removing a part is unlinking a directory.
SERIAL_PART_REMOVAL = "concurrent_part_removal_threshold = 1000000000"


@dataclass(frozen=True)
class Table:
    """A table's columns, defined once: its DDL and every insert's column names and types derive
    from them (with the types given, clickhouse-connect skips the DESCRIBE it runs per insert)."""

    name: str
    columns: tuple[tuple[str, str], ...]  # what the store inserts: (name, ClickHouse type)
    engine: str
    defaults: tuple[str, ...] = ()  # columns ClickHouse fills itself

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def types(self) -> list[str]:
        return [kind for _, kind in self.columns]

    def ddl(self) -> str:
        body = ",\n        ".join([*(f"{n} {t}" for n, t in self.columns), *self.defaults])
        return f"CREATE TABLE IF NOT EXISTS {{db}}.{self.name} (\n        {body}\n    ) ENGINE = {self.engine}"


EVENTS = Table(
    "events",
    (
        ("event_id", "String"),
        ("type", "LowCardinality(String)"),
        ("occurred_at", TS),
        ("call_id", "String"),
        ("order_id", "String"),
        ("unit_id", "LowCardinality(String)"),
        ("answered", "Nullable(Bool)"),
        ("valid", "Nullable(Bool)"),
        ("call_type", "LowCardinality(String)"),
        ("category", "LowCardinality(String)"),
        ("resolved_online", "Nullable(Bool)"),
        ("order_type", "LowCardinality(String)"),
        ("due_at", f"Nullable({TS})"),
        ("due_computed", "Bool"),
        ("reason", "String"),
        ("outcome", "LowCardinality(String)"),
        ("citizen_replied", "Nullable(Bool)"),
        ("method", "LowCardinality(String)"),
        ("satisfied", "Nullable(Bool)"),
        ("payload", "String"),
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
        # The provincial checks (schema version 5): a spot check's ``reached``; points deducted
        # (a test call's total, an upload's), an upload's indicator, a test call's items.
        ("reached", "Nullable(Bool)"),
        ("points", f"Nullable({POINTS})"),
        ("indicator", "LowCardinality(String)"),
        ("deduction_items", "Array(String)"),
        ("deduction_points", f"Array({POINTS})"),
    ),
    # Partitioned by month: the audit record and the source of restatement, read a month at a time.
    "ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY event_id",
    (f"ingested_at {TS} DEFAULT now64(3)",),
)
# ``raw`` holds a redacted copy (see :func:`hotline.sinks.redaction.redact`); the original bytes stay only in the
# dead-letter topic, bounded by its retention.
DEADLETTER = Table(
    "deadletter",
    (
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("source_offset", "Int64"),
        ("error", "String"),
        ("raw", "String"),
        ("key", "String"),
        ("occurred_at", f"Nullable({TS})"),
        ("original", "String"),
        ("original_key_id", "String"),
    ),
    "ReplacingMergeTree ORDER BY (source_topic, source_partition, source_offset)",
    (f"received_at {TS} DEFAULT now64(3)", f"redriven_at Nullable({TS})", "redrive_outcome String DEFAULT ''"),
)
# The progress ledger: per source partition, the last offset processed with every offset
# before it. The truth on restart and rebalance (not the consumer group's commits).
SINK_OFFSETS = Table(
    "sink_offsets",
    (("source_topic", "LowCardinality(String)"), ("source_partition", "Int32"), ("source_offset", "Int64")),
    "ReplacingMergeTree(source_offset) ORDER BY (source_topic, source_partition)",
)
UNIT_COUNTERS = Table(
    "unit_counters",
    (
        ("unit_id", "LowCardinality(String)"),
        ("day", "Date"),
        ("metric", "LowCardinality(String)"),
        ("event_id", "String"),
        ("value", "Int8"),
    ),
    "ReplacingMergeTree ORDER BY (unit_id, day, metric, event_id, value)",
)
# The day windows: per unit (calls: ``metrics.CITY``), local day and source partition, every
# windowed catalogue count as an absolute value. A source partition's windows are owned by
# the one worker that reads it, so each row is that partition's whole contribution, and
# ``version`` (the last source offset applied) makes a batch written twice change nothing.
UNIT_WINDOWS = Table(
    "unit_windows",
    (
        ("unit_id", "LowCardinality(String)"),
        ("day", "Date"),
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("version", "Int64"),
        *((m.name, "Int64") for m in metrics.WINDOWED),
    ),
    "ReplacingMergeTree(version) PARTITION BY toYYYYMM(day) ORDER BY (unit_id, day, source_topic, source_partition)",
)
# Each dispatched order's current state, in the partition of its cohort month (of its first
# dispatch in event time: a late earlier dispatch moves it, leaving a ``base.RETRACTED`` row in the
# old month); ``version`` is the number of its events folded in, so the latest state wins and
# a replay of the same events writes the same row.
ORDER_STATES = Table(
    "order_states",
    (
        ("order_id", "String"),
        ("cohort_day", "Date"),
        ("unit_id", "LowCardinality(String)"),
        ("order_type", "LowCardinality(String)"),
        ("due", TS),
        ("completed_at", f"Nullable({TS})"),
        ("returns", "UInt16"),
        ("seen", "Array(String)"),
        ("version", "UInt32"),
        # Supervision (schema version 5): unsatisfied visits so far, when the second one made the
        # order due for supervision, and whether it has been supervised since.
        ("unsatisfied_visits", "UInt16"),
        ("supervision_due", f"Nullable({TS})"),
        ("supervised", "Bool"),
    ),
    "ReplacingMergeTree(version) PARTITION BY toYYYYMM(cohort_day) ORDER BY order_id",
)
# Per month, each returned order's number of returns to date (the headline's 退单次数分布).
ORDER_RETURNS = Table(
    "order_returns",
    (("month", "UInt32"), ("order_id", "String"), ("times", "UInt16")),
    "ReplacingMergeTree(times) PARTITION BY month ORDER BY order_id",
)
# Who wrote state besides the stream (imports, restatements), and whether the windows are
# still to be built from the events table (a directory of the release before windows).
GENERATIONS = Table(
    "generations",
    (("gen", "UInt32"), ("kind", "LowCardinality(String)"), ("description", "String")),
    "ReplacingMergeTree ORDER BY gen",
    (f"at {TS} DEFAULT now64(3)",),
)
# Fencing (hotline.sinks.fencing): per consumer group and source partition, the highest group
# generation that claimed it at the store; a call of a lower generation for it is refused.
PARTITION_CLAIMS = Table(
    "partition_claims",
    (
        ("group_id", "String"),
        ("source_topic", "LowCardinality(String)"),
        ("source_partition", "Int32"),
        ("generation", "Int64"),
    ),
    # The latest claim wins, not the highest generation: a lapsed claim may be taken by a lower one
    # (a re-created consumer group: hotline.sinks.fencing.Claims).
    "ReplacingMergeTree(claimed_at) ORDER BY (group_id, source_topic, source_partition)",
    (f"claimed_at {TS} DEFAULT now64(3)",),
)
# Issued bulletins (hotline.reports.issued): each issue of a month frozen as it went out, the
# bulletin's JSON and every format's bytes (base64 in ``documents``), one row per revision.
BULLETIN_ISSUES = Table(
    "bulletin_issues",
    (
        ("month", "String"),
        ("revision", "UInt32"),
        ("number", "UInt32"),
        ("total_number", "UInt32"),
        ("issue_date", "Date"),
        ("bulletin", "String"),
        ("documents", "String"),
    ),
    "ReplacingMergeTree ORDER BY (month, revision)",
    (f"issued_at {TS} DEFAULT now64(3)",),
)
# The unit registry with its history (hotline.schemas.registry): one set of rows per imported
# version, the newest import in force for every worker, the store and the commands (hotline.sinks.units).
UNIT_REGISTRY = Table(
    "unit_registry",
    (
        ("version", "String"),
        ("unit_id", "String"),
        ("name", "String"),
        ("unit_group", "String"),
        ("unit_order", "Int32"),
        ("valid_from", "Nullable(Date)"),
        ("valid_to", "Nullable(Date)"),
        ("successor", "String"),
    ),
    "MergeTree ORDER BY (version, unit_id)",
    (f"imported_at {TS} DEFAULT now64(3)",),
)
# Coverage (hotline.reports.coverage): the day from which an office declares its imported
# history complete, one row per declaration (the latest wins), for the bulletin's comparisons.
COVERAGE_DECLARED = Table(
    "coverage_declared",
    (("source", "LowCardinality(String)"), ("complete_from", "Date"), ("note", "String")),
    "ReplacingMergeTree(declared_at) ORDER BY source",
    (f"declared_at {TS} DEFAULT now64(3)",),
)
# Alert delivery (hotline.streams.delivery): per destination and alert id, the latest row of its
# delivery (pending, delivered, expired), which is also what `hotline notify` resumes from. The
# destination is named unit/channel/index: no address, secret or phone number is ever stored.
ALERT_DELIVERIES = Table(
    "alert_deliveries",
    (
        ("destination", "String"),
        ("alert_id", "String"),
        ("unit_id", "LowCardinality(String)"),
        ("channel", "LowCardinality(String)"),
        ("status", "LowCardinality(String)"),
        ("attempts", "UInt32"),
        ("first_try", f"Nullable({TS})"),
        ("last_try", f"Nullable({TS})"),
        ("delivered_at", f"Nullable({TS})"),
        ("last_error", "String"),
        ("alert", "String"),
        ("version", "UInt64"),
    ),
    "ReplacingMergeTree(version) ORDER BY (destination, alert_id)",
)
ALL_TABLES = (
    EVENTS,
    DEADLETTER,
    SINK_OFFSETS,
    UNIT_COUNTERS,
    UNIT_WINDOWS,
    ORDER_STATES,
    ORDER_RETURNS,
    GENERATIONS,
    BULLETIN_ISSUES,
    PARTITION_CLAIMS,
    UNIT_REGISTRY,
    COVERAGE_DECLARED,
    ALERT_DELIVERIES,
)
TABLES = tuple(t.name for t in ALL_TABLES)
