"""Standard Webhooks signatures, as LivionKey API V2 sends them.

signature = "v1," + Base64(HMAC-SHA256(Base64-decode(secret without "whsec_"),
                                       webhook-id + "." + webhook-timestamp + "." + raw body))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from latchflow import WebhookError


def secret_bytes(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise ValueError("the webhook secret is not 'whsec_' followed by Base64") from exc


def sign(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    message = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now_unix: float,
    tolerance: float,
) -> str:
    """Check a delivery's headers; return its ``webhook-id`` or raise WebhookError(401/400)."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookError(
            "missing webhook-id, webhook-timestamp or webhook-signature header", status_code=400
        )
    try:
        sent_at = int(stamp)
    except ValueError as exc:
        raise WebhookError("webhook-timestamp is not Unix seconds", status_code=400) from exc
    if abs(now_unix - sent_at) > tolerance:
        raise WebhookError(
            f"webhook-timestamp {sent_at} is more than {int(tolerance)} s away from now",
            status_code=401,
        )
    expected = sign(secret, msg_id, sent_at, body)
    for candidate in signatures.split():
        if hmac.compare_digest(candidate.encode(), expected.encode()):
            return msg_id
    raise WebhookError(
        "webhook-signature does not match the body (check the connection's webhook secret)",
        status_code=401,
    )
