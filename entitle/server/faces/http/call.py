"""The HTTP face's side of service.calls.Call: the Connect deadline, the server's cap, the
client still there."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connectrpc.request import RequestContext


class HttpCall:
    """One call in flight on the HTTP face, as the implementation (on a worker thread) sees it.

    `time_remaining()` is the shorter of the client's `connect-timeout-ms` and the server's
    `--max-call-seconds` cap (unary calls only; streams are subscriptions, as on gRPC).
    `end()` marks the call over and runs the callbacks (a waiting alert stream wakes).
    Without `ctx` (a Server-Sent Events stream, a mounted page) there is no client deadline.
    """

    def __init__(self, ctx: RequestContext | None = None, cap_seconds: float = 0):
        self._ctx = ctx
        self._cap_at = time.monotonic() + cap_seconds if cap_seconds > 0 else None
        self._active = True
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def cap_remaining(self) -> float | None:
        """Seconds before the server's own cap; None without one."""
        return None if self._cap_at is None else self._cap_at - time.monotonic()

    def time_remaining(self) -> float | None:
        client_ms = None if self._ctx is None else self._ctx.timeout_ms
        left = [x for x in (self.cap_remaining(), None if client_ms is None else client_ms / 1e3)
                if x is not None]
        return min(left) if left else None

    def is_active(self) -> bool:
        return self._active

    def add_callback(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if self._active:
                self._callbacks.append(callback)
                return True
        return False  # as gRPC: a call already over does not take callbacks

    def end(self) -> None:
        with self._lock:
            self._active, callbacks, self._callbacks = False, self._callbacks, []
        for callback in callbacks:
            callback()
