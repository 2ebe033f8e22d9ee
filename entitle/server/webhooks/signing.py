"""Signatures of webhook deliveries, in the Standard Webhooks convention.

Signed content: `<webhook-id>.<webhook-timestamp>.<body>` (the event id, the Unix time in
seconds, the exact body bytes), HMAC-SHA256 with each of the endpoint's keys; the
`webhook-signature` header lists them as `v1,<base64>` separated by spaces, so a receiver
holding either the old or the new secret verifies during a rotation. How a receiver
checks it: docs/webhooks.md#verifying-a-delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

SIGNATURE_VERSION = "v1"


def signed_content(event_id: str, timestamp: int, body: bytes) -> bytes:
    """Exactly what is signed: id, timestamp and body joined by dots."""
    return f"{event_id}.{timestamp}.".encode() + body


def signature_header(keys: Sequence[bytes], event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<base64 HMAC-SHA256>` per key, space-separated."""
    content = signed_content(event_id, timestamp, body)
    return " ".join(
        f"{SIGNATURE_VERSION},"
        + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
        for key in keys
    )
