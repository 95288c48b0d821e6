"""The worker's log: raw input cannot forge lines, and a broker outage is not a flood."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from hotline.logs import RepeatFilter, install, printable

CONNECT = "Unable connect to node with id %s: %s"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Log:
    """A root-like logger with one handler writing to a string, as Faust leaves the root."""

    def __init__(self) -> None:
        self.root = logging.Logger("root-under-test")
        self.out = io.StringIO()
        handler = logging.StreamHandler(self.out)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.root.addHandler(handler)

    def child(self, name: str) -> logging.Logger:
        """A module's logger: its records reach the root's handlers, like aiokafka.client's do."""
        logger = logging.Logger(name)
        logger.parent = self.root
        return logger

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def log(clock: FakeClock) -> Iterator[Log]:
    target = Log()
    install(target.root, 30, clock=clock)
    yield target


def test_printable_escapes_line_breaks_nul_and_other_controls() -> None:
    raw = "a\nb\rc\x00d\te\x1bf\x7fg\x85h\u2028i\u2029j"
    assert printable(raw) == "a\\nb\\rc\\x00d\\te\\x1bf\\x7fg\\x85h\\u2028i\\u2029j"


def test_printable_keeps_ordinary_text_and_chinese_as_is() -> None:
    text = '非本单位职责 "quoted" \\n already-escaped'
    assert printable(text) == text


def test_printable_cuts_to_the_limit_between_escapes() -> None:
    assert printable("ab\ncd", limit=4) == "ab…"  # "ab\n" would be 4 + the ellipsis
    assert printable("abcdef", limit=4) == "abc…"
    assert printable("abc", limit=4) == "abc"


def test_a_newline_in_a_message_argument_does_not_forge_a_line(log: Log) -> None:
    log.child("hotline.streams.app").warning("dead letter %s: %s", "orders[0]@7", "bad\nINFO forged line\x00")
    assert log.lines() == ["WARNING hotline.streams.app dead letter orders[0]@7: bad\\nINFO forged line\\x00"]


def test_the_traceback_stays_on_its_own_lines(log: Log) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        log.child("hotline.streams.app").exception("batch failed for %s", "x\ny")
    lines = log.lines()
    assert lines[0] == "ERROR hotline.streams.app batch failed for x\\ny"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


def test_other_handlers_still_get_the_records_template_and_arguments(log: Log) -> None:
    seen: list[logging.LogRecord] = []
    log.root.handlers[0].addFilter(lambda record: seen.append(record) or True)
    log.child("hotline.streams.app").info("sank %d records", 3)
    assert (seen[0].msg, seen[0].args) == ("sank %d records", (3,))


def test_a_reconnect_storm_leaves_one_line_per_interval_with_the_count_suppressed(log: Log, clock: FakeClock) -> None:
    client = log.child("aiokafka.client")
    start = clock.now
    for i in range(1000):
        clock.now = start + i * 0.01  # 10 s in all: within the interval
        client.error(CONNECT, 1, "[Errno 111] Connect call failed")
    clock.now = start + 30
    client.error(CONNECT, 1, "[Errno 111] Connect call failed")
    assert log.lines() == [
        "ERROR aiokafka.client Unable connect to node with id 1: [Errno 111] Connect call failed",
        "ERROR aiokafka.client Unable connect to node with id 1: [Errno 111] Connect call failed "
        "(999 similar lines suppressed)",
    ]


def test_each_node_gets_its_own_line(log: Log) -> None:
    client = log.child("aiokafka.client")
    for node in (1, 2, 1, 2):
        client.error(CONNECT, node, "refused")
    assert len(log.lines()) == 2


def test_the_pipelines_own_lines_are_never_suppressed(log: Log) -> None:
    for _ in range(3):
        log.child("hotline.streams.app").warning("dead letter %s", "orders[0]@7")
    assert len(log.lines()) == 3


def test_a_filter_shared_by_two_handlers_decides_once_per_record(clock: FakeClock) -> None:
    target = Log()
    second = io.StringIO()
    target.root.addHandler(logging.StreamHandler(second))
    install(target.root, 30, clock=clock)
    client = target.child("aiokafka.client")
    client.error(CONNECT, 1, "refused")
    client.error(CONNECT, 1, "refused")
    assert len(target.lines()) == 1
    assert second.getvalue().splitlines() == ["Unable connect to node with id 1: refused"]


def test_installing_twice_changes_nothing(clock: FakeClock) -> None:
    target = Log()
    install(target.root, 30, clock=clock)
    install(target.root, 30, clock=clock)
    (handler,) = target.root.handlers
    assert sum(isinstance(f, RepeatFilter) for f in handler.filters) == 1
    target.child("x").warning("a\nb")
    assert target.lines() == ["WARNING x a\\nb"]


def test_an_accept_storm_of_the_event_loop_leaves_one_line_per_interval(log: Log, clock: FakeClock) -> None:
    """Descriptors exhausted: asyncio logs every failed accept, with its traceback."""
    loop_log = log.child("asyncio")
    for _ in range(1000):
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            loop_log.error("socket.accept() out of system resource", exc_info=True)
    assert sum(line.startswith("ERROR asyncio") for line in log.lines()) == 1
