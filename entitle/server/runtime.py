"""One worker's serving state: store, snapshot, reload, health, and the hooks alerts plug into."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from entitle.server import metrics
from entitle.server.alerts import AlertBus
from entitle.server.alerts import install as install_alerts
from entitle.server.clock import Clock
from entitle.server.config import ServeConfig
from entitle.server.decisionlog import DecisionLog
from entitle.server.reload import BundleWatcher, Reloader, ReloadOutcome
from entitle.server.slaclocks import SlaClocks
from entitle.server.slaclocks import install as install_sla_clocks
from entitle.server.snapshots import SnapshotHolder
from entitle.server.store import open_store, server_pool_size
from entitle.server.supervisor import SUPERVISOR_ENV
from entitle.server.webhooks import install as install_webhooks
from entitle.server.webhooks import load_webhooks


class Background(Protocol):
    """A task living as long as the worker (e.g. the alert sweeper): started, then stopped."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Runtime:
    config: ServeConfig
    clock: Clock
    store: object
    holder: SnapshotHolder
    reloader: Reloader
    watcher: BundleWatcher
    worker: int = 0
    # Passed to the store's admit()/record() so alerts commit with the usage (issue 5).
    admission_alerts: Callable | None = None
    record_alerts: Callable | None = None
    # Wakes alert streams when this worker commits alerts; None: alert calls UNIMPLEMENTED.
    alert_bus: AlertBus | None = None
    sla_clocks: SlaClocks | None = None  # live tickets' SLA clocks (server/slaclocks.py)
    background: list[Background] = field(default_factory=list)
    decision_log: DecisionLog | None = None  # --decision-log
    # Run first at shutdown, before calls drain: faces tell load balancers to stop sending.
    on_drain: list[Callable[[], None]] = field(default_factory=list)

    @classmethod
    def open(cls, config: ServeConfig, clock: Clock, *, worker: int = 0) -> Runtime:
        """Open the store and load the bundle; an invalid bundle still yields a runtime.

        An invalid webhooks file raises ValueError (the CLI checked it before starting)."""
        webhooks = load_webhooks(config.webhooks_file) if config.webhooks_file else None
        endpoints = len(webhooks.endpoints) if webhooks else 0
        store = open_store(config.store_url,
                           max_connections=server_pool_size(
                               config.threads, endpoints, faces=2 if config.http_listen else 1))
        holder = SnapshotHolder()
        reloader = Reloader(Path(config.policies), holder, clock, history=store,
                            accept_breaking=config.accept_breaking)
        reloader.subscribe(metrics.on_reload)
        reloader.reload("start")
        watcher = BundleWatcher(reloader, config.reload_interval)
        runtime = cls(config, clock, store, holder, reloader, watcher, worker)
        install_alerts(runtime)  # usage hooks, ListAlerts/WatchAlerts, the sweeper
        install_sla_clocks(runtime)  # clock rows at admission, the SLA sweeper
        if webhooks is not None:
            install_webhooks(runtime, webhooks)  # after alerts: delivery waits on their bus
        metrics.watch_store(getattr(store, "backend", runtime.store_backend))
        if config.decision_log:
            runtime.decision_log = DecisionLog(
                config.decision_log,
                mask_attributes=config.mask_attributes,
                mask_subject=config.mask_subject,
            )
        return runtime

    @property
    def store_backend(self) -> str:
        return self.config.store_url.partition(":")[0].split("+")[0]

    def start(self) -> None:
        self.watcher.start()
        for task in self.background:
            task.start()

    def begin_shutdown(self) -> None:
        """Before the server stops: faces drain, alert streams end instead of holding the grace."""
        while self.on_drain:
            self.on_drain.pop(0)()
        if self.alert_bus is not None:
            self.alert_bus.close()

    def request_reload(self, reason: str) -> None:
        """Reload soon, off the caller's thread (signal handlers)."""
        self.watcher.request(reason)

    def reload_now(self, reason: str) -> ReloadOutcome:
        """Reload this worker now, and have the supervisor tell its siblings (SIGHUP)."""
        outcome = self.reloader.reload(reason)
        parent = os.environ.get(SUPERVISOR_ENV)
        if parent and int(parent) == os.getppid():
            os.kill(os.getppid(), signal.SIGHUP)
        return outcome

    def close(self) -> None:
        """After the server stopped: background tasks, then the snapshot, then the store."""
        self.begin_shutdown()
        self.watcher.stop()
        for task in reversed(self.background):
            task.stop()
        self.holder.close()
        self.store.close()
        if self.decision_log is not None:
            self.decision_log.close()
