"""The usage ledger: one interface (`Store`), SQLite and PostgreSQL behind it."""

from __future__ import annotations

from entitle.server.store.base import (
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

SQLITE_PREFIX = "sqlite:///"

__all__ = [
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
]


def open_store(url: str, *, max_connections: int = 16) -> Store:
    """`sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://...`, migrated."""
    scheme = url.partition(":")[0].split("+")[0].lower()
    if scheme == "sqlite" and url.startswith(SQLITE_PREFIX):
        from entitle.server.store.sqlite import SqliteStore

        return SqliteStore.open(url[len(SQLITE_PREFIX):])
    if scheme in ("postgresql", "postgres"):
        from entitle.server.store.postgres import PostgresStore

        return PostgresStore.open(url, max_connections=max_connections)
    raise StoreError(
        f"unsupported store {redact(url)!r}: use sqlite:///PATH (relative), sqlite:////PATH "
        "(absolute) or postgresql://USER@HOST:PORT/DB"
    )
