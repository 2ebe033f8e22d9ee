"""The embedded default: one SQLite file in WAL mode, every commit synced to disk."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from entitle.server.metrics import count_store_error
from entitle.server.store.base import StoreError, StoreUnavailable
from entitle.server.store.sql import SqlStore, Tx

BUSY_TIMEOUT_MS = 30_000


class SqliteStore(SqlStore):
    """One connection per thread; writers serialise on BEGIN IMMEDIATE across processes."""

    backend = "sqlite"
    unavailable = (sqlite3.DatabaseError,)
    # An int past 64 bits, a lone surrogate, a string or blob past SQLite's limits.
    not_storable = (OverflowError, UnicodeEncodeError, sqlite3.DataError)

    def __init__(self, path: str, *, read_only: bool = False):
        self.path = path
        self.read_only = read_only  # opened with mode=ro: never creates or writes the file
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: str, *, migrate: bool = True) -> SqliteStore:
        """Create and migrate the file; `migrate=False` opens an existing one read-only."""
        if not path:
            raise StoreError("sqlite store needs a file: sqlite:///entitle.db or sqlite:////abs/path")
        parent = Path(path).parent
        if not parent.is_dir():
            raise StoreError(f"sqlite store {path!r}: directory {str(parent)!r} does not exist")
        if not migrate and not Path(path).is_file():
            raise StoreError(f"sqlite store {path!r} does not exist")
        store = cls(path, read_only=not migrate)
        try:
            if migrate:
                store.migrate()
        except StoreUnavailable as exc:
            store.close()
            raise StoreError(f"sqlite store {path!r}: {exc.__cause__ or exc}") from exc
        except BaseException:
            store.close()
            raise
        return store

    def _retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreError("the store is closed")
            target = f"file:{quote(self.path)}?mode=ro" if self.read_only else self.path
            conn = sqlite3.connect(
                target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                check_same_thread=False, uri=self.read_only,
            )
            if not self.read_only:  # WAL is kept in the file: a reader need not set it
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")  # a commit is on disk when it returns
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    def installed_version(self) -> int:
        """The schema version, 0 when entitle never migrated the file (no schema_migrations)."""
        row = self._read_one(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        )
        return self.schema_version() if row else 0

    def _read_one(self, sql: str, params: tuple = ()) -> tuple | None:
        """The hot read (usage per decision): one statement, no transaction machinery."""
        try:
            return self._connection().execute(sql, params).fetchone()
        except self.not_storable as exc:
            raise self._refusal(exc) from exc
        except sqlite3.DatabaseError as exc:
            if self._retryable(exc):
                return super()._read_one(sql, params)
            count_store_error(self.backend)
            raise StoreUnavailable(f"sqlite store unavailable: {exc}") from exc

    @contextmanager
    def _transaction(self, write: bool, pipeline: bool = False) -> Iterator[Tx]:
        conn = self._connection()  # in process: no round trips to save, `pipeline` is moot
        if not write:  # each read statement sees the last commit and never waits (WAL)
            yield Tx(conn.cursor(), "qmark")
            return
        conn.execute("BEGIN IMMEDIATE")  # the write lock up front: no upgrade deadlocks
        try:
            yield Tx(conn.cursor(), "qmark")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._guard:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()
