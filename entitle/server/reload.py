"""Hot reload: compile a bundle aside, refuse invalid or breaking ones, swap the rest atomically."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from entitle.engine.bundle import compile_or_raise
from entitle.engine.diagnostics import PolicyError
from entitle.engine.diff import diff_policies
from entitle.engine.model import Policy
from entitle.engine.snapshot import Snapshot
from entitle.server.clock import Clock
from entitle.server.logs import get_logger
from entitle.server.snapshots import SnapshotHolder

APPLIED = "applied"
UNCHANGED = "unchanged"
REFUSED = "refused"
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class ReloadOutcome:
    """Result of one reload attempt; `message` says why a bundle was refused."""

    status: str  # applied | unchanged | refused
    revision: str | None  # the revision serving afterwards
    message: str = ""


@dataclass(frozen=True)
class ReloadStatus:
    """The last refusal, kept until a later attempt finds a servable bundle."""

    last_error: str | None
    last_error_at: datetime | None
    last_attempt_at: datetime | None


class Reloader:
    """Loads the bundle under `root` into `holder`; one reload at a time, listeners told after."""

    def __init__(
        self,
        root: Path,
        holder: SnapshotHolder,
        clock: Clock,
        *,
        compile_policy: Callable[[Path], Policy] = compile_or_raise,
    ):
        self.root = root
        self.holder = holder
        self.clock = clock
        self._compile = compile_policy
        self._lock = threading.Lock()
        self._listeners: list[Callable[[ReloadOutcome], None]] = []
        self._status = ReloadStatus(None, None, None)
        self._policy: Policy | None = None  # the policy being served, for diffs

    def subscribe(self, listener: Callable[[ReloadOutcome], None]) -> None:
        """Call `listener` after every attempt (health status, alert thresholds, metrics)."""
        self._listeners.append(listener)

    @property
    def status(self) -> ReloadStatus:
        return self._status

    def reload(self, reason: str) -> ReloadOutcome:
        """Try the bundle on disk now; unless it is servable, the last good snapshot stays."""
        with self._lock:
            at = self.clock.now()
            outcome = self._attempt()
            if outcome.status == REFUSED:
                self._status = ReloadStatus(outcome.message, at, at)
            else:
                self._status = ReloadStatus(None, None, at)
        log = get_logger()
        fields = {"reason": reason, "status": outcome.status, "revision": outcome.revision}
        if outcome.status == REFUSED:
            log.error("policy reload refused", extra={**fields, "error": outcome.message})
        elif outcome.status == APPLIED:
            log.info("policy loaded", extra=fields)
        for listener in self._listeners:
            try:
                listener(outcome)
            except Exception:
                log.exception("reload listener failed", extra={"listener": repr(listener)})
        return outcome

    def _attempt(self) -> ReloadOutcome:
        serving = self._policy
        current = serving.revision if serving else None
        try:
            policy = self._compile(self.root)
        except PolicyError as exc:
            return ReloadOutcome(REFUSED, current, _clip(f"invalid bundle {self.root}:\n{exc}"))
        except OSError as exc:
            return ReloadOutcome(REFUSED, current, _clip(f"cannot read bundle {self.root}: {exc}"))
        if serving is not None and policy.revision == serving.revision:
            return ReloadOutcome(UNCHANGED, current)
        if serving is not None:
            breaking = [c for c in diff_policies(serving, policy) if c.breaking]
            if breaking:
                lines = "\n".join(f"  {c}" for c in breaking)
                text = f"breaking changes against the serving revision {current}:\n{lines}"
                return ReloadOutcome(REFUSED, current, _clip(text))
        try:
            snapshot = Snapshot.build(policy)
        except Exception as exc:  # a ruleset the rules engine rejects: keep the last good one
            get_logger().exception("compiling rulesets failed")
            return ReloadOutcome(REFUSED, current, _clip(f"cannot compile rulesets: {exc}"))
        self.holder.swap(snapshot, self.clock.now())
        self._policy = policy
        return ReloadOutcome(APPLIED, policy.revision)


def _clip(text: str) -> str:
    """Keep refusals small enough for ServerInfo and health details."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 20] + "\n  ... (truncated)"


def bundle_fingerprint(root: Path) -> tuple:
    """What a change to the bundle changes: every policy file's path, size and mtime."""
    try:
        files = sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        return tuple((str(p.relative_to(root)), *_stat(p)) for p in files)
    except OSError as exc:
        return (("<error>", str(exc)),)


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


class BundleWatcher:
    """Polls the bundle every `interval` s; a change stable over one more poll reloads it.

    Also runs reloads others request (SIGHUP) off the signal handler's thread.
    """

    def __init__(self, reloader: Reloader, interval: float):
        self.reloader = reloader
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._requests: list[str] = []
        self._thread = threading.Thread(target=self._run, name="bundle-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self, reason: str) -> None:
        """Reload soon on the watcher thread (safe to call from a signal handler)."""
        self._requests.append(reason)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        watching = self.interval > 0
        last = bundle_fingerprint(self.reloader.root) if watching else ()
        pending = None
        while not self._stop.is_set():
            self._wake.wait(self.interval if watching else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while self._requests:
                    reason = self._requests.pop(0)
                    last = bundle_fingerprint(self.reloader.root) if watching else ()
                    pending = None
                    self.reloader.reload(reason)
                if not watching:
                    continue
                now = bundle_fingerprint(self.reloader.root)
                if now == last:
                    pending = None
                elif now == pending:
                    last, pending = now, None
                    self.reloader.reload("files changed")
                else:
                    pending = now
            except Exception:
                get_logger().exception("bundle watcher failed; it keeps polling")
