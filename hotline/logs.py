"""Logging hygiene for the worker: one record is one line, and an outage is not a flood.

Two incidents shaped this module. A validation message quoting a record's raw input
carried a newline and forged a line in the worker log (NUL bytes got through too), so
every record's message is escaped before it is written. And during a 13-minute broker
outage aiokafka logged "Unable connect to node" 1.77 million times (371 MB), so the
Kafka client's repeated lines are let through once per interval, with a count of what
was held back.

Faust configures logging itself when the worker starts (``mode.Worker._setup_logging``
clears the root handlers and builds its own), so :func:`install` has to run after
that: ``hotline worker`` calls it from the worker's ``on_setup_root_logger`` hook.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from hotline.schemas.escaping import printable

# Libraries whose storms the pipeline does not control: Kafka clients reconnecting, and the event
# loop's and aiohttp's per-connection errors (descriptors exhausted: one traceback per accept).
LIMITED_LOGGERS = ("aiokafka", "kafka", "faust.transport", "asyncio", "aiohttp", "hotline.connections")
_MARK = "hotline_repeat_passed"  # a record's verdict, so a filter shared by two handlers decides once


class EscapingFormatter(logging.Formatter):
    """Wraps a handler's formatter so the message it formats is :func:`printable`.

    Only the message is escaped: the traceback ``exc_info`` appends is the program's own
    and stays readable on its lines. The record is restored afterwards, so other handlers
    (and their formatters) still see its template and arguments.
    """

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        msg, args = record.msg, record.args
        record.msg, record.args = printable(record.getMessage()), ()
        try:
            return self.inner.format(record)
        finally:
            record.msg, record.args = msg, args


class RepeatFilter(logging.Filter):
    """Lets one record per (logger, template, first argument) through per ``interval_s``.

    The first argument tells apart, say, the nodes a client cannot reach; the template
    ignores the rest (the error text varies). The next line let through says how many
    were held back since the last one. Only loggers under ``prefixes`` are limited: a
    storm of the pipeline's own lines is a bug to see, not to hide.
    """

    def __init__(
        self,
        interval_s: float,
        prefixes: Iterable[str] = LIMITED_LOGGERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.prefixes = tuple(prefixes)
        self.clock = clock
        self.seen: dict[tuple[str, str, str], tuple[float, int]] = {}  # key -> (last let through, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        verdict = record.__dict__.get(_MARK)
        if verdict is None:
            verdict = record.__dict__[_MARK] = self._decide(record)
        return bool(verdict)

    def _limited(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.prefixes)

    def _decide(self, record: logging.LogRecord) -> bool:
        if not self._limited(record.name):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        key = (record.name, str(record.msg), str(args[0]) if args else "")
        now = self.clock()
        last = self.seen.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self.seen[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            # No "%" in the suffix: the template still formats with its arguments.
            record.msg = f"{record.msg} ({last[1]} similar lines suppressed)"
        self.seen[key] = (now, 0)
        self._forget(now)
        return True

    def _forget(self, now: float) -> None:
        """Drop quiet keys (nothing held back, interval over), so unbounded first arguments cannot grow the map."""
        if len(self.seen) > 1000:
            self.seen = {k: v for k, v in self.seen.items() if v[1] or now - v[0] < self.interval_s}


def install(
    root: logging.Logger, repeat_interval_s: float, clock: Callable[[], float] = time.monotonic
) -> RepeatFilter:
    """Escape and rate-limit every line ``root``'s handlers write; safe to call twice.

    On the handlers, not the loggers: a logger's filter sees only records logged on that
    very logger, while aiokafka logs on its modules' children (``aiokafka.client``…), and
    every record reaches the root's handlers. One filter serves all handlers, so the
    limit counts each record once.
    """
    existing = [f for h in root.handlers for f in h.filters if isinstance(f, RepeatFilter)]
    repeat = existing[0] if existing else RepeatFilter(repeat_interval_s, clock=clock)
    for handler in root.handlers:
        if not isinstance(handler.formatter, EscapingFormatter):
            handler.setFormatter(EscapingFormatter(handler.formatter))
        if repeat not in handler.filters:
            handler.addFilter(repeat)
    return repeat
