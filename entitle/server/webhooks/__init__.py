"""Alerts pushed to HTTP endpoints (`entitle serve --webhooks FILE`): docs/webhooks.md."""

from __future__ import annotations

from entitle.server import metrics
from entitle.server.webhooks.config import WebhookConfig, WebhookConfigError, load_webhooks
from entitle.server.webhooks.delivery import EndpointStatus, WebhookDelivery

__all__ = [
    "EndpointStatus",
    "WebhookConfig",
    "WebhookConfigError",
    "WebhookDelivery",
    "install",
    "load_webhooks",
    "webhooks_of",
]


def install(runtime, config: WebhookConfig) -> WebhookDelivery:
    """Deliver the runtime's alert log to the configured endpoints while it runs."""
    delivery = WebhookDelivery(config, runtime.store, bus=runtime.alert_bus)
    for endpoint in config.endpoints:
        metrics.watch_webhook(endpoint.id)
    runtime.background.append(delivery)
    return delivery


def webhooks_of(runtime) -> WebhookDelivery | None:
    return next((t for t in runtime.background if isinstance(t, WebhookDelivery)), None)
