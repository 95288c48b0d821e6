"""``replay --wait`` against a stand-in worker on a local port: it waits for one that is not up yet."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hotline.replay import behind, wait_until_sunk
from hotline.settings import Settings

EXPECTED = {("t.orders", 0): 9, ("t.orders", 1): 4}  # 15 records
ALL_SUNK = [["t.orders", 0, 9], ["t.orders", 1, 4]]
SOME_SUNK = [["t.orders", 0, 3]]  # 4 of the 15
COND_S = 10  # how long a test waits for a condition before it fails


def test_behind_names_each_partition_not_yet_sunk() -> None:
    expected = {("orders", 0): 9, ("orders", 1): 4, ("calls", 0): 2}
    assert behind(expected, {("orders", 0): 9, ("orders", 1): 3}) == {"orders[1]": "3/4", "calls[0]": "-1/2"}
    assert behind(expected, {("orders", 0): 10, ("orders", 1): 4, ("calls", 0): 2}) == {}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeWorker

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a held request is what the test wants, not an error to print."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        fake = self.server.fake
        fake.requests += 1
        fake.hold.wait(COND_S)
        body = json.dumps({"offsets": fake.offsets}).encode()
        self.send_response(fake.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeWorker:
    """The worker's ``/offsets`` on a local port; refuses connections until :meth:`listen`."""

    def __init__(self, port: int = 0, offsets: list[list[Any]] | None = None) -> None:
        self.offsets = offsets if offsets is not None else ALL_SUNK
        self.status = 200
        self.requests = 0
        self.hold = threading.Event()  # cleared: requests hang until it is set again
        self.hold.set()
        self.server = _Server(("127.0.0.1", port), _Handler, bind_and_activate=False)
        self.server.fake = self
        self.server.server_bind()  # the port is taken, but nothing listens: connections are refused
        self.port = int(self.server.server_address[1])
        self.thread: threading.Thread | None = None

    def listen(self) -> FakeWorker:
        self.server.server_activate()
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.hold.set()
        if self.thread is not None:
            self.server.shutdown()
            self.thread.join()
        self.server.server_close()


class Waiter:
    """``wait_until_sunk`` in a thread, recording what it reports, so the test can act meanwhile."""

    def __init__(self, port: int, **options: Any) -> None:
        self.progress: list[tuple[int, int]] = []
        self.reasons: list[str] = []
        self.answered = threading.Event()
        self.unanswered = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(port, options), daemon=True)
        self.thread.start()

    def _run(self, port: int, options: dict[str, Any]) -> None:
        try:
            wait_until_sunk(EXPECTED, _settings(port), 30, self._progress, self._waiting, poll_s=0.02, **options)
        except BaseException as exc:
            self.error = exc

    def _progress(self, done: int, total: int) -> None:
        self.progress.append((done, total))
        self.answered.set()

    def _waiting(self, reason: str) -> None:
        self.reasons.append(reason)
        self.unanswered.set()

    def finish(self) -> None:
        self.thread.join(COND_S)
        assert not self.thread.is_alive(), "still waiting"
        if self.error is not None:
            raise self.error


def _settings(port: int) -> Settings:
    return Settings(web_host="127.0.0.1", web_port=port, api_token=None)


@pytest.fixture
def fake() -> Iterator[FakeWorker]:
    worker = FakeWorker()
    yield worker
    worker.close()


def test_waits_for_a_worker_that_starts_after_the_replay(fake: FakeWorker) -> None:
    waiter = Waiter(fake.port)
    assert waiter.unanswered.wait(COND_S)
    fake.listen()
    waiter.finish()
    assert waiter.reasons[0] == "connection refused"
    assert waiter.progress == [(15, 15)]


def test_keeps_waiting_and_counting_through_a_worker_restart(fake: FakeWorker) -> None:
    fake.offsets = SOME_SUNK
    waiter = Waiter(fake.listen().port)
    assert waiter.answered.wait(COND_S)
    fake.close()  # the worker goes away mid-wait
    assert waiter.unanswered.wait(COND_S)
    again = FakeWorker(fake.port, ALL_SUNK).listen()
    try:
        waiter.finish()
    finally:
        again.close()
    assert waiter.progress[0] == (4, 15)
    assert waiter.progress[-1] == (15, 15)


def test_a_server_error_is_not_yet(fake: FakeWorker) -> None:
    fake.status = 503
    waiter = Waiter(fake.listen().port)
    assert waiter.unanswered.wait(COND_S)
    fake.status = 200
    waiter.finish()
    assert waiter.reasons[0] == "503 Service Unavailable"
    assert waiter.progress[-1] == (15, 15)


def test_a_request_that_times_out_is_not_yet(fake: FakeWorker) -> None:
    fake.hold.clear()
    waiter = Waiter(fake.listen().port, request_timeout_s=0.2)
    assert waiter.unanswered.wait(COND_S)
    fake.hold.set()
    waiter.finish()
    assert waiter.reasons[0] == "timed out"
    assert waiter.progress[-1] == (15, 15)


def test_gives_up_at_the_timeout_saying_what_it_waited_for_where_and_how_to_start_a_worker(
    fake: FakeWorker,
) -> None:
    with pytest.raises(TimeoutError) as failure:
        wait_until_sunk(EXPECTED, _settings(fake.port), timeout=0.3, poll_s=0.05)
    message = str(failure.value)
    assert f"none answers at http://127.0.0.1:{fake.port}/offsets (connection refused)" in message
    assert "to store 15 replayed records" in message
    assert "start a worker with `hotline worker`" in message


def test_a_worker_that_refuses_the_token_fails_at_once(fake: FakeWorker) -> None:
    fake.status = 401
    with pytest.raises(RuntimeError, match=r"401 .*set HOTLINE_API_TOKEN"):
        wait_until_sunk(EXPECTED, _settings(fake.listen().port), timeout=30, poll_s=0.02)
    assert fake.requests == 1


def test_nothing_replayed_needs_no_worker(fake: FakeWorker) -> None:
    wait_until_sunk({}, _settings(fake.port), timeout=30)
    assert fake.requests == 0
