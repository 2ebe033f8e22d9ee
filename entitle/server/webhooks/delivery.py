"""Pushing the alert log to webhook endpoints: at least once, in cursor order, one replica each.

Per endpoint, every worker runs a thread; the one holding the store lease "webhook:<id>"
delivers, the others stand by and take over when it stops (or its lease runs out). Progress
lives in the store (`webhook_*` methods): the cursor moves past an alert only after the
endpoint answered 2xx, or after the alert's last attempt made it a dead letter, and each
move is a compare-and-set, so a restart or another replica never loses an alert nor sends
one again that was delivered. Alerts are sent one at a time, in cursor order: the next one
waits until the one before it is delivered or dead-lettered. Between failed attempts the
wait doubles (with jitter, up to a cap). New alerts wake the thread through the AlertBus;
alerts committed by other processes are found by a slow poll.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from entitle import __version__
from entitle.server import metrics
from entitle.server.alerts import AlertBus
from entitle.server.clock import Clock, SystemClock
from entitle.server.logs import get_logger
from entitle.server.service.alertlog import alert_to_proto
from entitle.server.service.jsonwire import to_dict
from entitle.server.store import AlertQuery, StoredAlert, WebhookProgress
from entitle.server.webhooks.config import Endpoint, Retry, SecretError, WebhookConfig
from entitle.server.webhooks.signing import signature_header

LEASE_PREFIX = "webhook:"
PAGE = 100  # alerts read per store query
MAX_ERROR_CHARS = 300  # of a receiver's answer kept as last_error
MAX_RESPONSE_BYTES = 64 * 1024  # read of a receiver's answer, the rest is dropped
USER_AGENT = f"entitle/{__version__} (webhooks)"


def backoff_delay(attempts: int, retry: Retry, rand: Callable[[], float] = random.random,
                  retry_after: float | None = None) -> float:
    """Seconds to wait after the `attempts`-th failure: exponential, jittered, capped.

    The bound doubles with each failure from `retry.backoff` up to `retry.max_backoff`, and
    the wait is drawn from [bound/2, bound] ("equal jitter": never 0, so receivers that fail
    together do not retry together). A receiver's Retry-After lengthens it, up to the cap.
    """
    bound = min(retry.max_backoff, retry.backoff * 2.0 ** min(max(attempts - 1, 0), 62))
    wait = bound / 2 + rand() * bound / 2
    if retry_after is not None and retry_after > wait:
        wait = min(retry_after, retry.max_backoff)
    return wait


def alert_body(alert: StoredAlert) -> bytes:
    """The POST body: the Alert in the one JSON form of wire messages, typed."""
    payload = {"type": "alert", "alert": to_dict(alert_to_proto(alert))}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Outcome:
    """One POST: delivered (2xx), or why not."""

    ok: bool
    error: str = ""
    reason: str = ""  # for failures: status, timeout or network
    retry_after: float | None = None


@dataclass(frozen=True)
class EndpointStatus:
    """What `entitle health` and the metrics show of one endpoint."""

    id: str
    cursor: int | None  # None: never started (no progress in the store yet)
    latest: int  # the alert log's newest cursor
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    last_error_at: datetime | None
    delivered: int
    dead_letters: int

    @property
    def lag(self) -> int:
        """Alerts in the log after the endpoint's cursor (those its filter skips included)."""
        return max(self.latest - (self.cursor if self.cursor is not None else self.latest), 0)


class EndpointDelivery:
    """One endpoint's delivery thread in this worker (it delivers while it holds the lease)."""

    def __init__(self, endpoint: Endpoint, store, clock: Clock, *, holder: str,
                 bus: AlertBus | None, poll: float, stop: threading.Event,
                 transport: httpx.BaseTransport | None = None):
        self.endpoint = endpoint
        self.store = store
        self.clock = clock
        self.holder = holder
        self.bus = bus
        self.poll = poll
        self.stop_event = stop
        self.lease = LEASE_PREFIX + endpoint.id
        # A POST may take 3 timeouts (connect, write, read): the lease outlives it.
        self.lease_seconds = max(15.0, 4 * endpoint.timeout)
        self.renew_every = self.lease_seconds / 3
        self.query = AlertQuery(limit=PAGE, kinds=endpoint.kinds,
                                customer_id=endpoint.customer_id,
                                contract_id=endpoint.contract_id)
        self._client = httpx.Client(
            timeout=endpoint.timeout, follow_redirects=False, verify=endpoint.tls(),
            headers={"user-agent": USER_AGENT}, transport=transport,
        )
        self._keys: tuple[bytes, ...] = ()
        self._keys_stamp: object = object()
        self._known = False  # the endpoint's row exists in the store
        self._renewed = 0.0  # monotonic time the lease was last taken or renewed
        self.thread: threading.Thread | None = None
        # As this thread last read it from the store (health reads it without store I/O).
        self.status = EndpointStatus(endpoint.id, None, 0, 0, None, "", None, 0, 0)

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> None:
        log = get_logger()
        while not self.stop_event.is_set():
            try:
                self.step()
            except Exception:  # the store may be down, the secret file gone: try again
                log.exception("webhook delivery failed", extra={"endpoint": self.endpoint.id})
                self.stop_event.wait(self.poll)
        self._client.close()

    def step(self) -> None:
        """Deliver what is due now, or wait for the lease, the back-off or new alerts."""
        now = self.clock.now()
        if not self._take_lease(now):
            self._show(self._progress_or_none())
            self.stop_event.wait(self.poll)
            return
        progress = self._progress(now)
        if progress.next_attempt_at is not None and progress.next_attempt_at > now:
            self._show(progress)
            left = (progress.next_attempt_at - now).total_seconds()
            self.stop_event.wait(min(left, self.renew_every))
            return
        seen = self.bus.generation() if self.bus is not None else 0
        page, resume, more = self.store.alerts(
            AlertQuery(progress.cursor, self.query.limit, self.query.kinds,
                       self.query.customer_id, self.query.contract_id)
        )
        cursor = self._deliver(progress, page)
        if cursor is not None and not more and resume > cursor:
            # Everything up to `resume` was visible; what the filter skipped is done too.
            self.store.webhook_advance(self.endpoint.id, cursor, resume, delivered=False,
                                       at=self.clock.now())
        self._show(self._progress_or_none())
        if not page and not more:
            self._idle(seen)

    def _deliver(self, progress: WebhookProgress, page: list[StoredAlert]) -> int | None:
        """Send `page` in order; the cursor reached, or None if delivery must stop for now."""
        cursor = progress.cursor
        attempts = progress.attempts
        for alert in page:
            if self.stop_event.is_set() or not self._take_lease(self.clock.now()):
                return None
            if progress.attempt_cursor != alert.cursor:
                attempts = 0
            body = alert_body(alert)
            try:
                keys = self._signing_keys()
            except SecretError as exc:  # our fault, not the alert's: no attempt is counted
                self._secret_missing(cursor, alert.cursor, attempts, str(exc))
                return None
            outcome = self.post(alert.cursor, body, keys)
            at = self.clock.now()
            if outcome.ok:
                if not self.store.webhook_advance(self.endpoint.id, cursor, alert.cursor,
                                                  delivered=True, at=at):
                    return None  # another holder moved the cursor: read it again
                metrics.count_webhook_delivery(self.endpoint.id)
                cursor, attempts = alert.cursor, 0
                continue
            attempts += 1
            metrics.count_webhook_failure(self.endpoint.id, outcome.reason)
            extra = {"endpoint": self.endpoint.id, "cursor": alert.cursor,
                     "attempts": attempts, "error": outcome.error}
            if attempts >= self.endpoint.retry.max_attempts:
                if not self.store.webhook_dead_letter(
                    self.endpoint.id, cursor, alert.cursor, attempts=attempts,
                    error=outcome.error, body=body.decode("utf-8"), at=at,
                ):
                    return None
                get_logger().error("webhook dead letter", extra=extra)
                cursor, attempts = alert.cursor, 0
                continue
            wait = backoff_delay(attempts, self.endpoint.retry, retry_after=outcome.retry_after)
            self.store.webhook_failed(
                self.endpoint.id, cursor, alert.cursor, attempts=attempts, error=outcome.error,
                at=at, next_attempt_at=at + timedelta(seconds=wait),
            )
            get_logger().warning("webhook attempt failed",
                                 extra={**extra, "retry_in_s": round(wait, 3)})
            return None
        return cursor

    def _secret_missing(self, cursor: int, alert_cursor: int, attempts: int,
                        error: str) -> None:
        """The secret cannot be read (a file removed mid-rotation): wait, show why, retry."""
        metrics.count_webhook_failure(self.endpoint.id, "secret")
        at = self.clock.now()
        self.store.webhook_failed(
            self.endpoint.id, cursor, alert_cursor, attempts=attempts, error=f"secret: {error}",
            at=at, next_attempt_at=at + timedelta(seconds=self.poll),
        )
        get_logger().error("webhook secret unreadable",
                           extra={"endpoint": self.endpoint.id, "error": error})

    def _idle(self, seen: int) -> None:
        """Until new alerts commit in this worker, the poll interval, or stop."""
        if self.bus is None or self.bus.closed:
            self.stop_event.wait(self.poll)
        else:
            self.bus.wait(seen, min(self.poll, self.renew_every))

    # -- one POST -------------------------------------------------------------------------
    def post(self, cursor: int, body: bytes, keys: tuple[bytes, ...]) -> Outcome:
        """POST one signed delivery; its outcome (never raises for the receiver's faults)."""
        event_id = str(cursor)
        stamp = int(self.clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature_header(keys, event_id, stamp, body),
        }
        try:
            with self._client.stream("POST", self.endpoint.url, content=body,
                                     headers=headers) as response:
                answer = _read_some(response)
                if 200 <= response.status_code < 300:
                    return Outcome(True)
                text = answer.decode("utf-8", "replace").strip()
                error = f"HTTP {response.status_code}" + (f": {text}" if text else "")
                return Outcome(False, _clip(error), "status",
                               _retry_after(response.headers.get("retry-after")))
        except httpx.TimeoutException as exc:
            return Outcome(False, f"timed out after {self.endpoint.timeout:g}s "
                           f"({type(exc).__name__})", "timeout")
        except httpx.HTTPError as exc:
            return Outcome(False, _clip(f"{type(exc).__name__}: {exc}"), "network")

    def _signing_keys(self) -> tuple[bytes, ...]:
        """The endpoint's keys, read again when its secret file changed (rotation)."""
        stamp = self.endpoint.secret.stamp()
        if not self._keys or stamp != self._keys_stamp:
            self._keys = self.endpoint.secret.read()
            self._keys_stamp = stamp
        return self._keys

    # -- store ----------------------------------------------------------------------------
    def _take_lease(self, now: datetime) -> bool:
        if time.monotonic() - self._renewed < self.renew_every:
            return True
        if self.store.try_lease(self.lease, self.holder, now, self.lease_seconds):
            self._renewed = time.monotonic()
            return True
        self._renewed = 0.0
        return False

    def release(self) -> None:
        """Let another worker or replica take over at once (best effort)."""
        if self._renewed:
            with contextlib.suppress(Exception):
                self.store.try_lease(self.lease, self.holder, self.clock.now(), -1.0)
            self._renewed = 0.0

    def _progress(self, now: datetime) -> WebhookProgress:
        """The endpoint's progress; its row is made (a write) only the first time."""
        if self._known:
            found = self._progress_or_none()
            if found is not None:
                return found
        start = self.store.latest_cursor() if self.endpoint.start == "latest" else 0
        progress = self.store.webhook_progress(self.endpoint.id, start_cursor=start, at=now)
        self._known = True
        return progress

    def _progress_or_none(self) -> WebhookProgress | None:
        return self.store.webhook_progress_of([self.endpoint.id]).get(self.endpoint.id)

    def _show(self, progress: WebhookProgress | None) -> None:
        """Publish the endpoint's state as the store has it: `status` and the gauges."""
        if progress is None:
            return
        p = progress
        self.status = EndpointStatus(
            p.endpoint_id, p.cursor, self.store.latest_cursor(), p.attempts, p.next_attempt_at,
            p.last_error, p.last_error_at, p.delivered, p.dead_letters,
        )
        metrics.show_webhook(self.endpoint.id, self.status.lag, p.dead_letters)


class WebhookDelivery:
    """The background task of a worker: a delivery thread per configured endpoint."""

    def __init__(self, config: WebhookConfig, store, *, clock: Clock | None = None,
                 bus: AlertBus | None = None, holder_id: str | None = None,
                 transport: httpx.BaseTransport | None = None):
        self.config = config
        self.store = store
        self.clock = clock or SystemClock()  # real time: receivers check the timestamp
        self.holder = holder_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self.endpoints = [
            EndpointDelivery(e, store, self.clock, holder=self.holder, bus=bus,
                             poll=config.poll, stop=self._stop, transport=transport)
            for e in config.endpoints
        ]

    def start(self) -> None:
        for delivery in self.endpoints:
            if delivery.thread is None:
                delivery.thread = threading.Thread(
                    target=delivery.run, name=f"webhook-{delivery.endpoint.id}", daemon=True
                )
                delivery.thread.start()

    def stop(self) -> None:
        self._stop.set()
        for delivery in self.endpoints:
            if delivery.thread is not None:
                delivery.thread.join(timeout=3 * delivery.endpoint.timeout + 5)
                delivery.thread = None
            delivery.release()

    def status(self) -> list[EndpointStatus]:
        """Each endpoint's state as its thread last read it from the store (at most `poll`
        old on a standby worker): a health check never waits on the store for it."""
        return [delivery.status for delivery in self.endpoints]


def _read_some(response: httpx.Response) -> bytes:
    """At most MAX_RESPONSE_BYTES of a response body (a receiver may answer with anything)."""
    out = b""
    for chunk in response.iter_bytes():
        out += chunk
        if len(out) >= MAX_RESPONSE_BYTES:
            break
    return out[:MAX_ERROR_CHARS * 4]


def _retry_after(value: str | None) -> float | None:
    """A Retry-After in seconds (the HTTP-date form is ignored)."""
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def _clip(text: str) -> str:
    """One printable line of at most MAX_ERROR_CHARS characters."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"
