"""Signature verification, exactly as KEYVOX documents it, against the path received."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.signing import (
    SIGNED_HEADERS,
    TARGET_HOST,
    body_digest,
    parse_authorization,
    parse_http_date,
    signature,
)

SEED_HEADERS = "x-target-host date digest"


def _seed_signature(secret: str, date: str, digest: str) -> str:
    import base64
    import hashlib

    text = f"x-target-host: {TARGET_HOST}\ndate: {date}\ndigest: {digest}"
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def verify_request(
    keys: Mapping[str, str], path: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> str | None:
    """Why the request is refused, or None when its signature, digest and date are right."""
    params = parse_authorization(headers.get("authorization", ""))
    if not params:
        return "authorization header missing or not 'hmac ...'"
    secret = keys.get(params.get("username", ""))
    if secret is None:
        return "unknown API key"
    if params.get("algorithm", "").lower() != "hmac-sha256":
        return "algorithm must be hmac-sha256"
    date, digest = headers.get("date", ""), headers.get("digest", "")
    if not hmac.compare_digest(digest, body_digest(body)):
        return "digest does not match the body"
    try:
        sent = parse_http_date(date)
    except (TypeError, ValueError):
        return "date header is not an RFC 1123 date"
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs((now - sent).total_seconds()) >= A.MAX_CLOCK_SKEW_SECONDS:
        return "date differs from server time by 5 seconds or more"
    signed = params.get("headers", "")
    if signed == SIGNED_HEADERS:
        expected = signature(secret, date, path, digest)
    elif signed == SEED_HEADERS and A.SIM_ACCEPT_SEED_HEADER_VARIANT:
        if headers.get("x-target-host") != TARGET_HOST:
            return f"x-target-host must be {TARGET_HOST}"
        expected = _seed_signature(secret, date, digest)
    else:
        return f'headers must be "{SIGNED_HEADERS}"'
    if not hmac.compare_digest(params.get("signature", ""), expected):
        return "signature does not match"
    return None
