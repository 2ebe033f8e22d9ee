"""Hot reload: compile a bundle aside, refuse invalid or breaking ones, swap the rest atomically."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from entitle.engine.bundle import compile_bundle, pack_documents, policy_from_pack
from entitle.engine.diagnostics import PolicyError
from entitle.engine.diff import diff_policies
from entitle.engine.load import Document, walk_bundle
from entitle.engine.model import Policy
from entitle.engine.snapshot import Snapshot
from entitle.server.clock import Clock
from entitle.server.logs import get_logger
from entitle.server.snapshots import SnapshotHolder

APPLIED = "applied"
UNCHANGED = "unchanged"
REFUSED = "refused"
MAX_ERROR_CHARS = 4000


class BundleHistory(Protocol):
    """Where workers agree on the accepted bundle (the usage store): the reload baseline."""

    def accepted_revision(self) -> str | None: ...

    def bundle_of(self, revision: str) -> bytes | None: ...

    def accept_bundle(self, revision: str, bundle: bytes, at: datetime) -> None: ...


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
    """Loads the bundle under `root` into `holder`; one reload at a time, listeners told after.

    With a `history`, the first attempt checks the bundle on disk against the bundle last
    accepted by any worker sharing the store, not against nothing: a breaking change that
    running workers refused is refused by a restarted worker or a new replica too, which
    serve the accepted bundle instead (also when the disk bundle is invalid).
    `accept_breaking` lets that first attempt apply a breaking bundle on purpose.
    """

    def __init__(
        self,
        root: Path,
        holder: SnapshotHolder,
        clock: Clock,
        *,
        compile_policy: Callable[[Path], tuple[Policy, list[Document]]] = compile_bundle,
        history: BundleHistory | None = None,
        accept_breaking: bool = False,
    ):
        self.root = root
        self.holder = holder
        self.clock = clock
        self._compile = compile_policy
        self._history = history
        self._accept_breaking = accept_breaking
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
        first = serving is None
        current = serving.revision if serving else None
        try:
            policy, documents = self._compile(self.root)
        except PolicyError as exc:
            text = f"invalid bundle {self.root}:\n{exc}"
            return self._refuse(text, self._accepted() if first else None, current)
        except OSError as exc:
            text = f"cannot read bundle {self.root}: {exc}"
            return self._refuse(text, self._accepted() if first else None, current)
        if first:
            baseline = None if self._accept_breaking else self._accepted(unless=policy.revision)
        elif policy.revision == serving.revision:
            return ReloadOutcome(UNCHANGED, current)
        else:
            baseline = serving
        if baseline is not None:
            breaking = [c for c in diff_policies(baseline, policy) if c.breaking]
            if breaking:
                lines = "\n".join(f"  {c}" for c in breaking)
                against = "accepted" if first else "serving"
                text = f"breaking changes against the {against} revision {baseline.revision}:"
                return self._refuse(f"{text}\n{lines}", baseline if first else None, current)
        outcome = self._serve(policy)
        if outcome.status == APPLIED:
            self._remember(policy, documents)
        return outcome

    def _serve(self, policy: Policy) -> ReloadOutcome:
        """Compile the rulesets and swap; a ruleset the engine rejects keeps the last good."""
        try:
            snapshot = Snapshot.build(policy)
        except Exception as exc:
            get_logger().exception("compiling rulesets failed")
            current = self._policy.revision if self._policy else None
            return ReloadOutcome(REFUSED, current, _clip(f"cannot compile rulesets: {exc}"))
        self.holder.swap(snapshot, self.clock.now())
        self._policy = policy
        return ReloadOutcome(APPLIED, policy.revision)

    def _refuse(self, text: str, fallback: Policy | None, current: str | None) -> ReloadOutcome:
        """Refuse the disk bundle; a worker serving nothing yet serves `fallback` instead."""
        if fallback is not None and self._serve(fallback).status == APPLIED:
            text += f"\nserving the accepted revision {fallback.revision} from the store"
            current = fallback.revision
        return ReloadOutcome(REFUSED, current, _clip(text))

    def _accepted(self, unless: str | None = None) -> Policy | None:
        """The bundle last accepted by any worker on the store; None when there is none, it
        is unreadable, or its revision is `unless` (nothing to check against)."""
        if self._history is None:
            return None
        try:
            revision = self._history.accepted_revision()
            if revision is None or revision == unless:
                return None
            blob = self._history.bundle_of(revision)
            return None if blob is None else policy_from_pack(blob)
        except Exception as exc:  # a baseline is a safeguard: without one, serve the disk
            get_logger().warning("accepted bundle unreadable", extra={"error": str(exc)})
            return None

    def _remember(self, policy: Policy, documents: list[Document]) -> None:
        """Make the applied bundle the accepted one for every worker sharing the store."""
        if self._history is None:
            return
        try:
            if self._history.accepted_revision() != policy.revision:
                blob = pack_documents(documents)
                self._history.accept_bundle(policy.revision, blob, self.clock.now())
        except Exception as exc:
            get_logger().warning("could not record the accepted bundle",
                                 extra={"revision": policy.revision, "error": str(exc)})


def _clip(text: str) -> str:
    """Keep refusals small enough for ServerInfo and health details."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 20] + "\n  ... (truncated)"


def bundle_fingerprint(root: Path) -> tuple:
    """What a change to the bundle changes: every policy file's path, size and mtime, and
    every entry that cannot be read (a new dangling link is a change, refused on reload)."""
    try:
        entries = walk_bundle(root)
        files = [p for p in entries.files if p.suffix in (".yaml", ".yml")]
        return (*((str(p.relative_to(root)), *_stat(p)) for p in files),
                *((str(p.relative_to(root)), why) for p, why in entries.broken))
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
        if self._thread.is_alive():  # never started: nothing to wait for
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
