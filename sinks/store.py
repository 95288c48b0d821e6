"""The one place that chooses which store a process gets (what a store answers: ``hotline.sinks.base``).

A worker either opens ClickHouse itself (:class:`~hotline.sinks.clickhouse.ClickHouseStore`:
embedded chDB, or a server DSN), or stores through the storage owner, ``hotline store``
(:class:`~hotline.sinks.remote.RemoteStore`), when ``HOTLINE_STORE_URL`` is set. Both answer
:class:`~hotline.sinks.base.Store`, synchronously: the worker's rules rest on a write being durable when the call
returns (the ledger moves only after it), and on lookups seeing every earlier write.
"""

from __future__ import annotations

from typing import TypeGuard

from hotline.settings import Settings
from hotline.sinks.base import Store
from hotline.sinks.clickhouse import ClickHouseStore


def open_store(settings: Settings, *, worker: bool = False) -> Store:
    """The worker's store, open and checked: through ``hotline store`` when ``store_url`` is set
    (the store process migrated it), else ClickHouse opened and migrated here. A ``worker``'s calls
    announce its ``/metrics`` to the store, which then covers it in its own."""
    if settings.store_url:
        from hotline.sinks.remote import RemoteStore

        remote = RemoteStore(settings, announce=worker)
        remote.connect()
        return remote
    store = ClickHouseStore(settings)
    store.migrate()
    return store


def owned(store: Store) -> TypeGuard[ClickHouseStore]:
    """Whether this process opened ClickHouse itself (and so keeps its own filter of stored ids and
    may restate it), rather than storing through ``hotline store``."""
    return isinstance(store, ClickHouseStore)


def describe(settings: Settings) -> str:
    """Where the worker stores, for its log and errors (no credentials)."""
    if settings.store_url:
        return f"the store at {settings.store_url}"
    return f"ClickHouse at {settings.resolved_clickhouse_dsn.split('@')[-1]}"
