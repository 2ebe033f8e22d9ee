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
# pg_stat_activity.application_name of the store's connections, unless the URL (or
# PGAPPNAME) names another: lets operators and tests find, count or terminate them.
APPLICATION_NAME = "entitle"


class ConnectionLost(psycopg.OperationalError):
    """The connection broke under a call (backend terminated, server restarted, network)."""


class PostgresStore(SqlStore):
    """A connection pool; correctness comes from row locks taken by conditional updates."""

    backend = "postgresql"
    lock_rows = " FOR UPDATE"
    unavailable = (psycopg.OperationalError, PoolTimeout)
    # NUL in text, a number out of a column's range, text the encoding cannot hold.
    not_storable = (psycopg.DataError, OverflowError, UnicodeEncodeError)

    def __init__(self, url: str, pool: ConnectionPool):
        self.url = url
        self.pool = pool

    @classmethod
    def open(cls, url: str, *, max_connections: int = 16, migrate: bool = True) -> PostgresStore:
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT,
                "fallback_application_name": APPLICATION_NAME,
            },
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
            if migrate:
                store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def installed_version(self) -> int:
        """The schema version, 0 when entitle never migrated the database (no table yet)."""
        row = self._read_one("SELECT to_regclass('schema_migrations') IS NOT NULL")
        return self.schema_version() if row and row[0] else 0

    def _retryable(self, exc: BaseException) -> bool:
        return isinstance(
            exc, errors.DeadlockDetected | errors.SerializationFailure | errors.LockNotAvailable
        )

    def _reconnect(self, exc: BaseException) -> bool:
        if not isinstance(exc, ConnectionLost):
            return False
        # Its idle siblings most likely died with it (a restart, a failover, an operator's
        # pg_terminate_backend): test them all now, one round trip each, so that neither the
        # retry nor the next calls are handed a dead one. Dead ones are replaced in the
        # background; the retry waits for a live connection.
        self.pool.check()
        return True

    @contextmanager
    def _transaction(self, write: bool, pipeline: bool = False) -> Iterator[Tx]:
        with self.pool.connection() as conn:
            try:
                if not write:  # autocommit: one round trip per read statement
                    with conn.cursor() as cursor:
                        yield Tx(cursor, "format")
                    return
                if pipeline:  # BEGIN goes with the first statement waited for, COMMIT with
                    # the writes before it: a group's transaction in two or three round trips
                    with conn.pipeline(), conn.transaction(), conn.cursor() as cursor:
                        yield Tx(cursor, "format", conn.cursor)
                    return
                with conn.transaction(), conn.cursor() as cursor:
                    yield Tx(cursor, "format")
            except psycopg.OperationalError as exc:  # COMMIT included: it runs in this block
                if not conn.broken:
                    raise
                raise ConnectionLost(f"connection lost: {exc}") from exc

    def _lock_alert_log(self, tx: Tx) -> None:
        # Held to commit: an alert's cursor is visible only after every smaller one is.
        tx.run("SELECT pg_advisory_xact_lock(?)", (ALERT_LOG_LOCK,))

    def _lock_migrations(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def close(self) -> None:
        self.pool.close()
