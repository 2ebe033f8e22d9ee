"""The usage ledger: one interface (`Store`), SQLite and PostgreSQL behind it."""

from __future__ import annotations

from entitle.server.store.base import (
    Admission,
    AdmitResult,
    AlertHook,
    AlertQuery,
    DeadLetter,
    NewAlert,
    RecordResult,
    Store,
    StoredAlert,
    StoreError,
    StoreUnavailable,
    TicketUsage,
    UsageChange,
    ValueNotStorable,
    WebhookProgress,
    redact,
)
from entitle.server.store.migrations import check_readable

SQLITE_PREFIX = "sqlite:///"
# Threads of a server worker calling the store besides its handler threads (--threads per
# face; they run the alert streams too): the date-alert and SLA sweepers, the bundle
# watcher's reloads, and the dashboard's usage snapshot and warm-up.
BACKGROUND_THREADS = 5
CHECK_TIMEOUT = 3.0  # seconds `entitle serve` waits for PostgreSQL before refusing to start

__all__ = [
    "Admission",
    "AdmitResult",
    "AlertHook",
    "AlertQuery",
    "DeadLetter",
    "NewAlert",
    "RecordResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredAlert",
    "TicketUsage",
    "UsageChange",
    "ValueNotStorable",
    "WebhookProgress",
    "check_store",
    "open_store",
    "server_pool_size",
    "store_url",
]


def server_pool_size(threads: int, webhook_endpoints: int = 0, *, faces: int = 1) -> int:
    """A worker's pool size: a connection per thread that calls the store, so none waits
    (each face has `threads` handler threads; a webhook endpoint a delivery thread)."""
    return threads * faces + BACKGROUND_THREADS + webhook_endpoints


def store_url(text: str) -> str:
    """A `--store` as a URL: a plain path (`entitle.db`, `./data/entitle.db`, `/var/lib/x.db`,
    no `://`) is a SQLite file, as SQLite's own tools take it."""
    if "://" in text or not text.strip():
        return text
    return SQLITE_PREFIX + text


def check_store(url: str, *, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise StoreError (one line) unless the store can be used: the URL's form, a SQLite file
    that opens or can be created (and migrated), a PostgreSQL server that answers within
    `timeout` seconds. For `entitle serve` to say so before it says `serving`."""
    url = store_url(url)
    if _scheme(url) in ("postgresql", "postgres"):
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=max(1, round(timeout)),
                                 autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            why = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreError(f"cannot connect to {redact(url)}: {why}") from None
        return
    try:
        open_store(url, max_connections=1).close()
    except StoreUnavailable as exc:
        raise StoreError(f"store {redact(url)}: {exc}") from None


def _scheme(url: str) -> str:
    return url.partition(":")[0].split("+")[0].lower()


def open_store(url: str, *, max_connections: int = 16, migrate: bool = True) -> Store:
    """`sqlite:///relative.db`, `sqlite:////absolute.db`, a plain path (SQLite) or
    `postgresql://...`, migrated.

    With `migrate=False` (readers such as `entitle report`) nothing is created or migrated:
    a missing SQLite file, or a ledger whose schema is not this code's, is a StoreError.
    """
    url = store_url(url)
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
    scheme = _scheme(url)
    if scheme == "sqlite" and url.startswith(SQLITE_PREFIX):
        from entitle.server.store.sqlite import SqliteStore

        return SqliteStore.open(url[len(SQLITE_PREFIX):], migrate=migrate)
    if scheme in ("postgresql", "postgres"):
        from entitle.server.store.postgres import PostgresStore

        return PostgresStore.open(url, max_connections=max_connections, migrate=migrate)
    raise StoreError(
        f"unsupported store {redact(url)!r}: use a file path (SQLite), sqlite:///PATH "
        "(relative), sqlite:////PATH (absolute) or postgresql://USER@HOST:PORT/DB"
    )
