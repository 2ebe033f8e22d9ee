"""The serving snapshot: swapped atomically, and closed only once no request still uses it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from entitle.engine.snapshot import Snapshot


class NoPolicyLoaded(RuntimeError):
    """No valid bundle has been loaded yet: decisions cannot be made (FAILED_PRECONDITION)."""


@dataclass
class _Entry:
    snapshot: Snapshot
    loaded_at: datetime
    refs: int = 0
    retired: bool = False


@dataclass(frozen=True)
class Serving:
    """What is being served, for ServerInfo and health details."""

    revision: str
    loaded_at: datetime


class SnapshotHolder:
    """Requests lease the current snapshot; a swap retires the old one, closed by its last user."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entry: _Entry | None = None

    @contextmanager
    def lease(self) -> Iterator[Snapshot]:
        """The current snapshot, guaranteed open until the `with` block ends."""
        with self._lock:
            entry = self._entry
            if entry is None:
                raise NoPolicyLoaded("no valid policy bundle is loaded")
            entry.refs += 1
        try:
            yield entry.snapshot
        finally:
            with self._lock:
                entry.refs -= 1
                done = entry.retired and entry.refs == 0
            if done:
                entry.snapshot.close()

    def serving(self) -> Serving | None:
        entry = self._entry
        if entry is None:
            return None
        return Serving(entry.snapshot.policy.revision, entry.loaded_at)

    def swap(self, snapshot: Snapshot, loaded_at: datetime) -> None:
        """Serve `snapshot` from now on; the previous one closes when its last lease ends."""
        with self._lock:
            old, self._entry = self._entry, _Entry(snapshot, loaded_at)
            done = self._retire(old)
        if done:
            old.snapshot.close()

    def close(self) -> None:
        """Stop serving (shutdown); the snapshot closes once in-flight requests finish."""
        with self._lock:
            old, self._entry = self._entry, None
            done = self._retire(old)
        if done:
            old.snapshot.close()

    @staticmethod
    def _retire(entry: _Entry | None) -> bool:
        if entry is None:
            return False
        entry.retired = True
        return entry.refs == 0
