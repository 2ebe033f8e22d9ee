"""The standard gRPC health service, driven by whether a valid policy is being served."""

from __future__ import annotations

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import OVERALL_HEALTH, HealthServicer

from entitle.server.faces.grpc.status import metadata_text
from entitle.server.reload import ReloadStatus
from entitle.server.snapshots import Serving

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class PolicyHealth(HealthServicer):
    """SERVING while a policy is loaded, NOT_SERVING before one is and while draining.

    The standard response has only a status, so details (the serving revision, the last
    reload refusal) travel as trailing metadata `entitle-policy-revision` and
    `entitle-last-reload-error` on every Check.
    """

    def __init__(self, services: tuple[str, ...]):
        super().__init__(experimental_non_blocking=True)
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
        context.set_trailing_metadata(self._details)
        return response

    def shutdown(self) -> None:
        """Tell load balancers to stop sending calls before in-flight ones drain."""
        self.enter_graceful_shutdown()
