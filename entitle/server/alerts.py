"""Alerts at run time: usage hooks, the sweeper and retention (the calls: service/alertlog.py).

- `UsageAlertHook` is handed to the store's admit()/record(): it runs inside the usage
  transaction, reads the snapshot being served at that moment, and returns the alerts the
  change raised; they commit (or roll back) with the usage. Keys in `alert_keys` make each
  one exactly-once across workers, replicas and restarts.
- `Sweeper` emits date alerts (activated, expiring, expired) for the window
  (watermark, now], under the store lease "alert-sweeper" so one replica sweeps at a time.
  The watermark lives in store meta and moves only after the alerts before it committed,
  so alerts that fell due while no server ran are emitted on start, with their true
  occurred_at. It also purges alerts past retention.
- `AlertBus` wakes this worker's WatchAlerts streams (service/alertlog.py) when alerts commit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta

from entitle.engine.alerts import AlertEvent, due_alerts, usage_alerts
from entitle.engine.bundle import pack_contract_ids
from entitle.server.clock import Clock
from entitle.server.logs import get_logger
from entitle.server.snapshots import NoPolicyLoaded, SnapshotHolder
from entitle.server.store import NewAlert, UsageChange
from entitle.server.store.base import from_text, to_text

SWEEPER_LEASE = "alert-sweeper"
WATERMARK_META = "alerts.sweep_watermark"
SWEPT_REVISION_META = "alerts.swept_revision"  # the policy revision the watermark applies to
DEFAULT_SWEEP_INTERVAL = 60.0  # seconds
DEFAULT_RETENTION_DAYS = 90
DEFAULT_CATCH_UP_DAYS = 400  # how far back the very first sweep of a store looks
SWEEP_BATCH = 1000  # alerts per append transaction



def new_alert(event: AlertEvent) -> NewAlert:
    """The store's row for a domain alert."""
    return NewAlert(
        dedupe_key=event.dedupe_key,
        kind=event.kind,
        contract_id=event.contract_id,
        customer_id=event.customer_id,
        plan_id=event.plan_id,
        occurred_at=event.occurred_at,
        threshold=event.threshold,
        period_key=event.period_key,
        body=event.body(),
    )


class AlertBus:
    """Wakes this worker's streams when it committed alerts; closes them on shutdown."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self.closed = False

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def generation(self) -> int:
        with self._cond:
            return self._generation

    def wait(self, seen: int, timeout: float) -> None:
        """Until something was committed after `seen`, the timeout, or close()."""
        with self._cond:
            if self._generation == seen and not self.closed:
                self._cond.wait(timeout)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class UsageAlertHook:
    """Runtime.admission_alerts / record_alerts: a usage change's alerts, from the served policy.

    Called inside the usage transaction. A failure to compute alerts is logged and does not
    fail the admission (the ticket matters more than its notification).
    """

    def __init__(self, holder: SnapshotHolder, bus: AlertBus | None = None):
        self.holder = holder
        self.bus = bus
        self._local = threading.local()

    def __call__(self, change: UsageChange) -> list[NewAlert]:
        try:
            with self.holder.lease() as snapshot:
                policy = snapshot.policy
                contract = policy.contracts.get(change.contract_id)
                if contract is None:
                    return []
                plan = policy.plans.get(contract.plan_id)
                if plan is None or plan.limit is None:
                    return []
                events = usage_alerts(
                    contract, plan, change.period_key, change.before, change.after, change.at
                )
        except NoPolicyLoaded:
            return []
        except Exception:
            get_logger().exception(
                "usage alerts failed", extra={"contract_id": change.contract_id}
            )
            return []
        if events:
            self._local.pending = True
        return [new_alert(e) for e in events]

    def committed(self) -> None:
        """After the store call returned on this thread: wake streams if it raised alerts."""
        if getattr(self._local, "pending", False):
            self._local.pending = False
            if self.bus is not None:
                self.bus.notify()


class Sweeper:
    """Date alerts for (watermark, now], plus retention; one replica at a time (lease)."""

    lease = SWEEPER_LEASE  # the store lease this kind of sweeper runs under

    def __init__(
        self,
        store,
        holder: SnapshotHolder,
        clock: Clock,
        *,
        interval: float = DEFAULT_SWEEP_INTERVAL,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        catch_up_days: float = DEFAULT_CATCH_UP_DAYS,
        batch: int = SWEEP_BATCH,
        bus: AlertBus | None = None,
        holder_id: str | None = None,
    ):
        self.store = store
        self.holder = holder
        self.clock = clock
        self.interval = interval
        self.retention_days = retention_days
        self.catch_up_days = catch_up_days
        self.batch = batch
        self.bus = bus
        self.id = holder_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = max(3 * interval, 30.0)
        self.sweeps = 0  # completed sweeps (tests wait on it)
        self.last_error: str | None = None
        self._lock = threading.Lock()  # one sweep at a time in this process
        self._swept: tuple[str, frozenset[str]] | None = None  # revision, its contract ids
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Condition()

    # -- background task --------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=self.lease, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        # Let a restarted server (or another replica) take over at once; best effort.
        with self._lock, contextlib.suppress(Exception):
            self.store.try_lease(self.lease, self.id, self.clock.now(), -1.0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep()
                self.last_error = None
            except Exception as exc:  # the store may be down: try again next interval
                self.last_error = str(exc)
                get_logger().exception("alert sweep failed")
            with self._done:
                self.sweeps += 1
                self._done.notify_all()
            if self._stop.wait(self.interval):
                return

    def wait_sweeps(self, count: int, timeout: float = 30.0) -> bool:
        """Until `count` background sweeps finished (tests, start-up checks)."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self.sweeps < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(left)
        return True

    # -- one sweep ---------------------------------------------------------------------------
    def sweep(self, *, force: bool = False) -> int | None:
        """Sweep (watermark, now]; the number of alerts appended, None without the lease.

        `force` skips the lease (tests of concurrent sweepers: dedupe keys still hold).
        """
        with self._lock:
            now = self.clock.now()
            if not force and not self.store.try_lease(
                self.lease, self.id, now, self.lease_seconds
            ):
                return None
            try:
                with self.holder.lease() as snapshot:
                    count = self._sweep(snapshot.policy, now)
            except NoPolicyLoaded:
                return None  # nothing to sweep against; the watermark waits
            self._purge(now)
            return count

    def _sweep(self, policy, now: datetime) -> int:
        mark = self.store.get_meta(WATERMARK_META)
        since = from_text(mark) if mark else now - timedelta(days=self.catch_up_days)
        pairs = [
            (c, policy.plans[c.plan_id]) for c in policy.contracts.values()
            if c.plan_id in policy.plans
        ]
        # Contracts new since the swept revision: the watermark passed their past dates
        # (a contract entered after its start, a replica sweeping with an older bundle during
        # a rolling deploy), so their catch-up window is swept once; keys drop repeats.
        new = self._new_contracts(policy, mark is not None)
        floor = now - timedelta(days=self.catch_up_days)
        events = due_alerts([p for p in pairs if p[0].id in new], floor, since) if new else []
        if since < now:
            events += due_alerts(pairs, since, now)  # all after `since`: still in order
        appended = 0
        for i in range(0, len(events), self.batch):
            chunk = events[i: i + self.batch]
            appended += len(self.store.append_alerts([new_alert(e) for e in chunk], now))
            if self.bus is not None:
                self.bus.notify()
            # Committed: the watermark may pass this batch, but not into an instant the next
            # batch still has alerts at (nor back behind where it stood).
            following = events[i + self.batch] if i + self.batch < len(events) else None
            last = chunk[-1].occurred_at
            if following is not None and following.occurred_at > last > since:
                self.store.set_meta(WATERMARK_META, to_text(last))
        if since < now:
            self.store.set_meta(WATERMARK_META, to_text(now))
        self.store.set_meta(SWEPT_REVISION_META, policy.revision)
        self._swept = (policy.revision, frozenset(policy.contracts))
        if appended:
            get_logger().info(
                "alerts swept",
                extra={"since": since.isoformat(), "until": now.isoformat(), "alerts": appended,
                       "new_contracts": len(new)},
            )
        return appended

    def _new_contracts(self, policy, swept_before: bool) -> frozenset[str]:
        """Ids of contracts the last sweep's policy did not have; none on a store's first sweep
        (its catch-up window covers every contract)."""
        if self._swept is None:  # this process has not swept yet: the store says what was
            revision = self.store.get_meta(SWEPT_REVISION_META)
            if revision is None or not swept_before:
                return frozenset()
            self._swept = (revision, self._contract_ids_of(revision))
        revision, ids = self._swept
        if revision == policy.revision:
            return frozenset()
        if ids is None:  # that bundle is no longer in the store: sweep all, keys dedupe
            return frozenset(policy.contracts)
        return frozenset(policy.contracts) - ids

    def _contract_ids_of(self, revision: str) -> frozenset[str] | None:
        """Contract ids of an accepted bundle kept in the store, None if it is gone."""
        try:
            blob = self.store.bundle_of(revision)
            return None if blob is None else pack_contract_ids(blob)
        except Exception as exc:
            get_logger().warning("swept bundle unreadable", extra={"error": str(exc)})
            return None

    def _purge(self, now: datetime) -> int:
        if not self.retention_days or self.retention_days <= 0:
            return 0
        purged = self.store.purge_alerts(now - timedelta(days=self.retention_days))
        if purged:
            get_logger().info("alerts purged", extra={"alerts": purged})
        return purged


def install(runtime) -> None:
    """Wire alerts into a Runtime: the usage hooks, the bus streams wait on, the sweeper."""
    config = runtime.config
    bus = AlertBus()
    hook = UsageAlertHook(runtime.holder, bus)
    runtime.admission_alerts = hook
    runtime.record_alerts = hook
    runtime.alert_bus = bus
    interval = getattr(config, "sweep_interval", DEFAULT_SWEEP_INTERVAL)
    if interval and interval > 0:
        runtime.background.append(Sweeper(
            runtime.store,
            runtime.holder,
            runtime.clock,
            interval=interval,
            retention_days=getattr(config, "alert_retention_days", DEFAULT_RETENTION_DAYS),
            bus=bus,
        ))


def sweeper_of(runtime) -> Sweeper | None:
    """The date-alert sweeper (not its SLA subclass)."""
    return next((t for t in runtime.background if type(t) is Sweeper), None)
