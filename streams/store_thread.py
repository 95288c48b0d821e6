"""The worker's one store, opened once, and the one thread its blocking calls run on.

chDB and the store's HTTP client block; the worker's event loop must not. Every call goes to
one thread, one at a time, so a lookup always sees every earlier write of this process, and a
second chDB client never races the first (it lost writes when it did).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hotline.settings import Settings
from hotline.sinks.base import Store
from hotline.sinks.store import open_store

T = TypeVar("T")


class StoreThread:
    """The store, opened on first use (``open_store`` chooses which), and its calls' thread."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.opened = store
        self._guard = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")

    @property
    def store(self) -> Store:
        """ClickHouse opened here, or the storage owner (``hotline store``) when ``HOTLINE_STORE_URL``
        is set: chosen in ``hotline.sinks.store.open_store``, nowhere else."""
        with self._guard:
            if self.opened is None:
                self.opened = open_store(self.settings, worker=True)
            return self.opened

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store's thread, off the event loop, after every earlier call."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
