"""The usage ledger: one interface (`Store`), SQLite and PostgreSQL behind it."""

from __future__ import annotations

from entitle.server.store.base import (
    Admission,
    AdmitResult,
    AlertHook,
    AlertQuery,
    NewAlert,
    RecordResult,
    Store,
    StoredAlert,
    StoreError,
    StoreUnavailable,
    TicketUsage,
    UsageChange,
    redact,
)
from entitle.server.store.migrations import check_readable

SQLITE_PREFIX = "sqlite:///"
# Threads of a server worker calling the store besides its --threads handler threads (which
# run the WatchAlerts streams too): the alert sweeper, and the bundle watcher's reloads.
BACKGROUND_THREADS = 2

__all__ = [
    "Admission",
    "AdmitResult",
    "AlertHook",
    "AlertQuery",
    "NewAlert",
    "RecordResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredAlert",
    "TicketUsage",
    "UsageChange",
    "open_store",
    "server_pool_size",
]


def server_pool_size(threads: int) -> int:
    """A worker's pool size: a connection per thread that calls the store, so none waits."""
    return threads + BACKGROUND_THREADS


def open_store(url: str, *, max_connections: int = 16, migrate: bool = True) -> Store:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://...`, migrated.

    With `migrate=False` (readers such as `entitle report`) nothing is created or migrated:
    a missing SQLite file, or a ledger whose schema is not this code's, is a StoreError.
    """
    store = _open_backend(url, max_connections, migrate)
    if not migrate:
        try:
            check_readable(store.installed_version())
        except (StoreError, StoreUnavailable) as exc:
            store.close()
            raise StoreError(f"store {redact(url)}: {exc}") from None
    return store


def _open_backend(url: str, max_connections: int, migrate: bool) -> Store:
    """The backend the URL names, opened (and migrated when `migrate`)."""
    scheme = url.partition(":")[0].split("+")[0].lower()
    if scheme == "sqlite" and url.startswith(SQLITE_PREFIX):
        from entitle.server.store.sqlite import SqliteStore

        return SqliteStore.open(url[len(SQLITE_PREFIX):], migrate=migrate)
    if scheme in ("postgresql", "postgres"):
        from entitle.server.store.postgres import PostgresStore

        return PostgresStore.open(url, max_connections=max_connections, migrate=migrate)
    raise StoreError(
        f"unsupported store {redact(url)!r}: use sqlite:///PATH (relative), sqlite:////PATH "
        "(absolute) or postgresql://USER@HOST:PORT/DB"
    )
