"""The service core blocks (store I/O, locks): the HTTP face's event loop runs it on threads."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor

TICK = object()  # what iterate() yields when `tick` seconds passed without a message
_END = object()


async def run(executor: Executor | None, fn: Callable, *args):
    """`fn(*args)` on `executor` (None: the loop's default), in this task's context (the
    request id reaches the decision log and the log lines)."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(executor, context.run, fn, *args)


async def iterate(
    executor: Executor | None, messages: Iterator, *, tick: float | None = None
) -> AsyncIterator:
    """A blocking iterator's items, each fetched on `executor`; TICK after `tick` idle seconds.

    When the consumer stops (client gone, cancelled), the iterator is closed on the executor
    once its pending step returned: its own cleanup (the watchers count) always runs.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = loop.run_in_executor(executor, context.run, next, messages, _END)
            done, _ = await asyncio.wait({pending}, timeout=tick)
            if not done:
                yield TICK
                continue
            item, pending = pending.result(), None
            if item is _END:
                return
            yield item
    finally:
        close = getattr(messages, "close", None)
        if close is not None:
            if pending is None or pending.done():
                _submit(loop, executor, context, close)
            else:
                pending.add_done_callback(lambda _f: _submit(loop, executor, context, close))


def _submit(loop, executor: Executor | None, context: contextvars.Context, fn: Callable) -> None:
    """`fn` on the executor; nothing when it (or the loop) already shut down."""
    with contextlib.suppress(RuntimeError):
        loop.run_in_executor(executor, context.run, fn)
