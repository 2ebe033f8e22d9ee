"""PostgreSQL for several server processes or replicas sharing one ledger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors
from psycopg_pool import ConnectionPool, PoolTimeout

from entitle.server.store.base import StoreError, redact
from entitle.server.store.sql import SqlStore, Tx

# Advisory lock ids (any fixed bigints, unique to entitle).
ALERT_LOG_LOCK = 0x656E74_01
MIGRATION_LOCK = 0x656E74_02
CONNECT_TIMEOUT = 10


class PostgresStore(SqlStore):
    """A connection pool; correctness comes from row locks taken by conditional updates."""

    backend = "postgresql"
    unavailable = (psycopg.OperationalError, PoolTimeout)

    def __init__(self, url: str, pool: ConnectionPool):
        self.url = url
        self.pool = pool

    @classmethod
    def open(cls, url: str, *, max_connections: int = 16) -> PostgresStore:
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            open=False,
            name="entitle",
        )
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except (PoolTimeout, psycopg.Error) as exc:
            pool.close()
            raise StoreError(f"cannot connect to {redact(url)}: {exc}") from None
        store = cls(url, pool)
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def _retryable(self, exc: BaseException) -> bool:
        return isinstance(
            exc, errors.DeadlockDetected | errors.SerializationFailure | errors.LockNotAvailable
        )

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        with self.pool.connection() as conn:
            if not write:  # autocommit: one round trip per read statement
                with conn.cursor() as cursor:
                    yield Tx(cursor, "format")
                return
            with conn.transaction(), conn.cursor() as cursor:
                yield Tx(cursor, "format")

    def _lock_alert_log(self, tx: Tx) -> None:
        # Held to commit: an alert's cursor is visible only after every smaller one is.
        tx.run("SELECT pg_advisory_xact_lock(?)", (ALERT_LOG_LOCK,))

    def _lock_migrations(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def close(self) -> None:
        self.pool.close()
