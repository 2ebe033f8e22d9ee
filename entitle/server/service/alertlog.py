"""ListAlerts and WatchAlerts: the alert log read from the store's outbox, as wire messages."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import datetime

from entitle.engine.alerts import KINDS
from entitle.server.alerts import AlertBus
from entitle.server.metrics import alert_subscriber
from entitle.server.service.failures import WatchersExhausted
from entitle.server.service.pages import page_size
from entitle.server.service.wire import timestamp
from entitle.server.store import AlertQuery, StoredAlert
from entitle.v1 import entitle_pb2 as pb

WATCH_POLL = 0.2  # seconds between store polls of an idle WatchAlerts stream
WATCH_PAGE = 500  # alerts read per poll of a stream

KIND_VALUES = {kind: pb.AlertKind.Value(f"ALERT_KIND_{kind}") for kind in KINDS}
KIND_NAMES = {value: kind for kind, value in KIND_VALUES.items()}


def alert_to_proto(a: StoredAlert) -> pb.Alert:
    body = a.body or {}
    out = pb.Alert(
        cursor=a.cursor,
        kind=KIND_VALUES.get(a.kind, pb.ALERT_KIND_UNSPECIFIED),
        contract_id=a.contract_id,
        customer_id=a.customer_id,
        plan_id=a.plan_id,
        threshold=a.threshold,
        used=float(body.get("used", 0.0)),
        limit=float(body.get("limit", 0.0)),
        unit=body.get("unit", ""),
        occurred_at=timestamp(a.occurred_at),
        emitted_at=timestamp(a.emitted_at),
        recipients=body.get("recipients", []),
        message=body.get("message", ""),
    )
    if body.get("period_start"):
        out.period_start.CopyFrom(timestamp(_parse_iso(body["period_start"])))
    if body.get("days_left") is not None:
        out.days_left = float(body["days_left"])
    if body.get("ticket_id"):  # SLA kinds
        out.ticket_id, out.metric = body["ticket_id"], body.get("metric", "")
        out.cycle = int(body.get("cycle", 0))
        if body.get("due_at"):
            out.due_at.CopyFrom(timestamp(_parse_iso(body["due_at"])))
    return out


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class AlertService:
    """ListAlerts and WatchAlerts over the store's alert log (delegated by the servicer)."""

    def __init__(
        self,
        store,
        *,
        bus: AlertBus | None = None,
        poll_interval: float = WATCH_POLL,
        max_watchers: int = 64,
    ):
        self.store = store
        self.bus = bus or AlertBus()
        self.poll_interval = poll_interval
        self.max_watchers = max_watchers
        self._watchers = 0
        self._guard = threading.Lock()

    def query(self, after: int, limit: int, f: pb.AlertFilter) -> AlertQuery:
        return AlertQuery(
            after_cursor=after,
            limit=limit,
            kinds=tuple(sorted({KIND_NAMES[k] for k in f.kinds})),
            customer_id=f.customer_id,
            contract_id=f.contract_id,
        )

    def list(self, request: pb.ListAlertsRequest) -> pb.ListAlertsResponse:
        query = self.query(request.after_cursor, page_size(request.page_size), request.filter)
        page, resume, more = self.store.alerts(query)
        return pb.ListAlertsResponse(
            alerts=[alert_to_proto(a) for a in page], next_cursor=resume, has_more=more
        )

    def recent(self, f: pb.AlertFilter, before_cursor: int, limit: int) -> list[pb.Alert]:
        """Alerts newest first, before a cursor (0: from the newest): the dashboard's log."""
        query = self.query(0, page_size(limit), f)
        return [alert_to_proto(a) for a in self.store.recent_alerts(query, before_cursor)]

    def watch(self, request: pb.WatchAlertsRequest, context) -> Iterator[pb.WatchAlertsResponse]:
        """Stored alerts after the cursor, then new ones as they commit; ends on cancel/close."""
        with self._guard:
            if self._watchers >= self.max_watchers:
                raise WatchersExhausted(
                    f"this worker already streams to {self.max_watchers} subscribers; "
                    "retry later or use ListAlerts"
                )
            self._watchers += 1
        try:
            with alert_subscriber():  # the entitle_alert_subscribers gauge
                yield from self._stream(request, context)
        finally:
            with self._guard:
                self._watchers -= 1

    def _stream(self, request, context) -> Iterator[pb.WatchAlertsResponse]:
        cursor = request.after_cursor
        bus = self.bus
        wake = bus.notify  # a cancelled call wakes its stream at once
        context.add_callback(wake)
        while context.is_active() and not bus.closed:
            seen = bus.generation()
            page, resume, more = self.store.alerts(self.query(cursor, WATCH_PAGE, request.filter))
            for a in page:
                if not context.is_active():
                    return
                yield pb.WatchAlertsResponse(alert=alert_to_proto(a))
            cursor = resume
            if not more:
                bus.wait(seen, self.poll_interval)

    def close(self) -> None:
        """Shutdown: every stream ends cleanly (OK status) within one poll."""
        self.bus.close()


def kinds_in(values: Iterable[int]) -> list[int]:
    """Kind values a filter may name: known, and not UNSPECIFIED; raises ValueError."""
    out = []
    for value in values:
        if value not in KIND_NAMES:
            raise ValueError(
                f"{value} is not an alert kind (use ALERT_KIND_USAGE_THRESHOLD ... "
                "ALERT_KIND_SLA_BREACHED; UNSPECIFIED is not allowed)"
            )
        out.append(value)
    return out


