"""Group commit: concurrent calls of one process share one transaction and one commit.

Callers queue their items. The caller at the head of the queue leads: it takes every item
queued so far (up to `max_batch`), runs them as one batch, answers each caller with its
own result, and hands the lead to the next queued caller, if any. A caller alone runs its
own batch of one at once, in its own thread; under load, items queue while a batch
commits, so the next batch is larger and the commit (the fsync, the round trips) is shared
by more callers. Every caller returns only after the batch holding its item finished.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 128  # bounds one transaction's size (and the SQL statements' parameter count)


class _Waiter(Generic[Item, Result]):
    __slots__ = ("done", "error", "item", "lead", "result", "woken")

    def __init__(self, item: Item):
        self.item = item
        self.woken = threading.Lock()  # held until woken: lighter than an Event
        self.woken.acquire()
        self.lead = False  # woken to lead the next batch, not with a result
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None

    def finish(self, outcome: object) -> None:
        if isinstance(outcome, BaseException):
            self.error = outcome
        else:
            self.result = outcome  # type: ignore[assignment]
        self.done = True
        self.woken.release()

    def promote(self) -> None:
        self.lead = True
        self.woken.release()

    def wait(self) -> None:
        self.woken.acquire()

    def outcome(self) -> Result:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit(Generic[Item, Result]):
    """Runs queued items in batches; `run_batch` returns one result (or exception) per item.

    An exception raised by `run_batch` itself (the database is down) is every item's result.
    """

    def __init__(self, run_batch: Callable[[Sequence[Item]], Sequence[Result | BaseException]],
                 max_batch: int = MAX_BATCH):
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Waiter[Item, Result]] = deque()

    @property
    def queued(self) -> int:
        """Calls waiting for (or in) a batch right now."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: Item) -> Result:
        """`item`'s result, once the batch that ran it finished (raises its exception)."""
        me: _Waiter[Item, Result] = _Waiter(item)
        with self._lock:
            self._queue.append(me)
            leading = len(self._queue) == 1
        if not leading:
            me.wait()
            if me.done:
                return me.outcome()
        self._lead()
        return me.outcome()

    def _lead(self) -> None:
        """Run the batch at the head of the queue (this caller's item first), then pass on."""
        with self._lock:
            group = [self._queue[i] for i in range(min(len(self._queue), self._max_batch))]
        try:
            outcomes: Sequence[object] = self._run_batch([w.item for w in group])
            if len(outcomes) != len(group):
                raise RuntimeError(f"a batch of {len(group)} got {len(outcomes)} results")
        except BaseException as exc:  # the whole batch failed: each caller gets the error
            outcomes = [exc] * len(group)
        with self._lock:
            for _ in group:
                self._queue.popleft()
            after = self._queue[0] if self._queue else None
        for waiter, outcome in zip(group, outcomes, strict=True):
            waiter.finish(outcome)  # the leader's own too: its lock is held, nobody waits
        if after is not None:
            after.promote()
