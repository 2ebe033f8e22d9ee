"""The alerts page's live feed: WatchAlerts as Server-Sent Events, resumed by Last-Event-ID.

Each event's `id` is the alert's cursor, so a browser's EventSource that lost its connection
reconnects with `Last-Event-ID` and misses nothing and repeats nothing. The stream itself is
the one WatchAlerts implementation (EntitlementCalls.handle_stream), run on a thread of its
own; an idle stream sends a comment every KEEPALIVE_SECONDS so proxies keep it open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable

from entitle.server.service.calls import EntitlementCalls
from entitle.server.service.failures import Failure
from entitle.server.service.jsonwire import to_dict
from entitle.v1 import entitle_pb2 as pb

KEEPALIVE_SECONDS = 15.0
RETRY_MS = 2000  # how long a browser waits before reconnecting
_END = object()


class StreamCall:
    """The Call a stream sees: active until the browser goes away."""

    def __init__(self) -> None:
        self._active = True
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def time_remaining(self) -> float | None:
        return None

    def is_active(self) -> bool:
        return self._active

    def add_callback(self, callback: Callable[[], None]) -> object:
        with self._lock:
            self._callbacks.append(callback)
        return True

    def end(self) -> None:
        with self._lock:
            self._active = False
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


def alert_event(alert: pb.Alert) -> str:
    """One SSE event: `id` the cursor, `data` the alert in the wire's JSON form, one line."""
    data = json.dumps(to_dict(alert), separators=(",", ":"), ensure_ascii=False)
    return f"id: {alert.cursor}\nevent: alert\ndata: {data}\n\n"


async def alert_events(
    calls: EntitlementCalls, request: pb.WatchAlertsRequest
) -> AsyncIterator[str]:
    """The SSE text of a WatchAlerts stream; a failure ends it with an `error` event."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    call = StreamCall()

    def produce() -> None:
        try:
            for message in calls.handle_stream("WatchAlerts", request, call):
                loop.call_soon_threadsafe(queue.put_nowait, message)
                if not call.is_active():
                    break
        except Failure as failure:
            loop.call_soon_threadsafe(queue.put_nowait, failure)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed first
                loop.call_soon_threadsafe(queue.put_nowait, _END)

    threading.Thread(target=produce, name="dashboard-alerts", daemon=True).start()
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if item is _END:
                return
            if isinstance(item, Failure):
                text = json.dumps({"code": item.code.name.lower(), "message": item.message})
                yield f"event: error\ndata: {text}\n\n"
                return
            yield alert_event(item.alert)
    finally:
        call.end()
