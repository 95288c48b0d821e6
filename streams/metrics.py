"""Prometheus metrics of a worker, served at ``/metrics``.

One registry per pipeline (not the global one) so several pipelines in one
test process do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "hotline_events_processed", "Records consumed and sunk, by topic.", ["topic"], registry=self.registry
        )
        self.duplicates = Counter(
            "hotline_duplicate_events",
            "Events sent again under the same id with the same content (counted once), by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.conflicts = Counter(
            "hotline_event_id_conflicts",
            "Events whose id already names another event: dead-lettered, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.unreadable = Counter(
            "hotline_unreadable_offsets",
            "Source offsets Kafka could not return any more (retention): reported, not processed.",
            ["topic"],
            registry=self.registry,
        )
        self.gaps = Counter(
            "hotline_offset_gaps",
            "Offsets the stream skipped and the worker re-read from Kafka, by topic.",
            ["topic"],
            registry=self.registry,
        )
        self.store_up = Gauge(
            "hotline_store_up",
            "1 while ClickHouse and Kafka take the worker's writes; 0 while it retries with backoff.",
            registry=self.registry,
        )
        self.store_retries = Counter(
            "hotline_store_retries", "Batches retried after an infrastructure failure.", registry=self.registry
        )
        self.store_raced = Counter(
            "hotline_store_raced_events",
            "Events another worker stored between this worker's lookup and its write (a re-send under"
            " another key, on another partition): the store refused the write and the batch was folded again.",
            registry=self.registry,
        )
        self.store_fenced = Counter(
            "hotline_store_fenced",
            "Store calls refused because another worker claimed the partitions under a newer group generation"
            " (this worker had stalled): the batch dropped, nothing read until the next assignment; by operation.",
            ["op"],
            registry=self.registry,
        )
        self.reading = Gauge(
            "hotline_reading",
            "1 while the worker reads the source partitions it holds; 0 while the store has fenced it off"
            " (another claim holds them) and it waits to claim them again.",
            registry=self.registry,
        )
        self.reading.set(1)
        self.evicted = Counter(
            "hotline_orders_evicted",
            "Completed, quiet orders that left the worker's order table (ClickHouse keeps them; a late event"
            " reads one back).",
            registry=self.registry,
        )
        self.deadletters = Counter(
            "hotline_deadlettered_records", "Records sent to the dead-letter topic.", ["topic"], registry=self.registry
        )
        self.sink_latency = Histogram(
            "hotline_sink_batch_seconds",
            "Time to write one batch to ClickHouse.",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.lag = Gauge(
            "hotline_consumer_lag", "Records not yet consumed, by topic.", ["topic"], registry=self.registry
        )
        self.alert_lateness = Histogram(
            "hotline_alert_lateness_seconds",
            "emitted_at - the time the alert was due.",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60),
        )
        self.alerts = Counter(
            "hotline_alerts_sent", "Alerts Kafka acknowledged, by type.", ["type"], registry=self.registry
        )
        self.alerts_refused = Counter(
            "hotline_alerts_refused",
            "Alert sends Kafka refused or did not acknowledge in time: each alert owed again and sent on a later"
            " tick (after a back-off), by type.",
            ["type"],
            registry=self.registry,
        )
        self.alerts_suppressed = Counter(
            "hotline_alerts_suppressed",
            "Alerts older than the horizon: counted, not delivered.",
            registry=self.registry,
        )
