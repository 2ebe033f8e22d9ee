"""The standard gRPC health service, driven by whether a valid policy is being served."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import OVERALL_HEALTH, HealthServicer

from entitle.server.faces.grpc.status import metadata_text
from entitle.server.logs import get_logger
from entitle.server.reload import ReloadStatus
from entitle.server.snapshots import Serving
from entitle.server.webhooks import EndpointStatus

WEBHOOK_METADATA = "entitle-webhook"  # one per endpoint: its state as JSON
# Asked for by `entitle health` only: probes (kubelet, load balancers) never receive the
# entries, so many endpoints cannot push a probe's reply past its metadata size limit.
DETAILS_METADATA = ("entitle-details", "webhooks")
WEBHOOK_ERROR_CHARS = 150  # of last_error, so the JSON fits one metadata value

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class PolicyHealth(HealthServicer):
    """SERVING while a policy is loaded, NOT_SERVING before one is and while draining.

    The standard response has only a status, so details (the serving revision, the last
    reload refusal) travel as trailing metadata `entitle-policy-revision` and
    `entitle-last-reload-error` on every Check, and, when the request's metadata has
    `entitle-details: webhooks`, each webhook endpoint's state as an `entitle-webhook`
    entry (it does not change the status: a failing receiver is not a reason to restart
    or unroute the server).
    """

    def __init__(self, services: tuple[str, ...],
                 webhooks: Callable[[], Iterable[EndpointStatus]] | None = None):
        super().__init__(experimental_non_blocking=True)
        self.webhooks = webhooks
        self.services = (OVERALL_HEALTH, *services)
        self._details: tuple[tuple[str, str], ...] = ()
        for service in self.services:
            self.set(service, NOT_SERVING)

    def update(self, serving: Serving | None, status: ReloadStatus) -> None:
        details = []
        if serving is not None:
            details.append(("entitle-policy-revision", serving.revision))
        if status.last_error:
            details.append(("entitle-last-reload-error", metadata_text(status.last_error)))
        self._details = tuple(details)
        for service in self.services:
            self.set(service, SERVING if serving is not None else NOT_SERVING)

    def Check(self, request, context):
        response = super().Check(request, context)
        context.set_trailing_metadata(self._details + self._webhook_details(context))
        return response

    def _webhook_details(self, context) -> tuple[tuple[str, str], ...]:
        if self.webhooks is None or DETAILS_METADATA not in tuple(
            context.invocation_metadata() or ()
        ):
            return ()
        try:
            return tuple((WEBHOOK_METADATA, webhook_text(s)) for s in self.webhooks())
        except Exception as exc:  # the store is down: the status itself still answers
            get_logger().warning("webhook status unavailable", extra={"error": str(exc)})
            return ((WEBHOOK_METADATA, json.dumps({"error": metadata_text(str(exc))[:200]})),)

    def shutdown(self) -> None:
        """Tell load balancers to stop sending calls before in-flight ones drain."""
        self.enter_graceful_shutdown()


def webhook_text(status: EndpointStatus) -> str:
    """One endpoint's state as a compact ASCII JSON object (for `entitle health`)."""
    def instant(at) -> str | None:
        return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None

    return json.dumps({
        "id": status.id, "cursor": status.cursor, "latest": status.latest, "lag": status.lag,
        "delivered": status.delivered, "dead_letters": status.dead_letters,
        "attempts": status.attempts, "next_attempt_at": instant(status.next_attempt_at),
        "last_error": metadata_text(status.last_error)[:WEBHOOK_ERROR_CHARS],
        "last_error_at": instant(status.last_error_at),
    }, separators=(",", ":"))
