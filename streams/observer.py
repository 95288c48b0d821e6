"""What a stored batch says about the pipeline: its metrics and one log line, naming its offsets.

Kept apart from the batch's processing (as Faust keeps its sensors apart from its streams):
a batch is observed once it is stored, and what is counted is defined in ``streams/metrics.py``.
Dead letters are logged with their coordinates and masked reason, never with their content.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hotline.schemas.personal import mask_personal
from hotline.streams.alerts import alert_type
from hotline.streams.deadletters import CONFLICT_HEADER
from hotline.streams.metrics import Metrics
from hotline.streams.processing import Folded, Record

log = logging.getLogger("hotline.streams.app")  # the worker's log lines keep their logger name


class BatchObserver:
    """Counts and logs what each batch and each alert did."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def batch(self, records: list[Record], folded: Folded) -> None:
        """Metrics and one log line per batch, naming its offset ranges."""
        topic = records[0].source.topic
        self.metrics.events.labels(topic).inc(len(records))
        self.metrics.duplicates.labels(topic).inc(folded.duplicates)
        for dead in folded.batch.deadletters:
            self.metrics.deadletters.labels(dead.source_topic).inc()
            if dict(dead.headers).get(CONFLICT_HEADER):
                self.metrics.conflicts.labels(dead.source_topic).inc()
            log.warning(
                "dead letter %s[%s]@%s: %s",
                dead.source_topic,
                dead.source_partition,
                dead.source_offset,
                mask_personal(dead.error),
            )
        for record in records:
            if record.unreadable_from is not None:
                self.metrics.unreadable.labels(topic).inc(record.source.offset - record.unreadable_from + 1)
        log.info(
            "sank %d records (%d events, %d window steps, %d dead letters, %d duplicates) from %s",
            len(records),
            len(folded.batch.events),
            len(folded.steps),
            len(folded.batch.deadletters),
            folded.duplicates,
            ranges(records),
        )

    def alert(self, kind: str, lateness_s: float) -> None:
        if kind == "suppressed":
            self.metrics.alerts_suppressed.inc()
            return
        self.metrics.alerts.labels(alert_type(kind)).inc()
        self.metrics.alert_lateness.observe(lateness_s)

    def alert_refused(self, kind: str) -> None:
        """A send Kafka refused: the alert is owed again (the scheduler logs it with its order and unit)."""
        self.metrics.alerts_refused.labels(alert_type(kind)).inc()


def ranges(records: Sequence[Record]) -> str:
    """``topic[partition] first-last`` of a batch: where to look when a figure is questioned."""
    spans: dict[tuple[str, int], list[int]] = {}
    for r in records:
        offset = r.source.offset
        span = spans.setdefault((r.source.topic, r.source.partition), [offset, offset])
        span[0], span[1] = min(span[0], offset), max(span[1], offset)
    return ", ".join(f"{t}[{p}] {lo}-{hi}" for (t, p), (lo, hi) in sorted(spans.items()))
