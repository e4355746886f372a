"""KEYVOX HMAC-SHA256 request signing (client side) and verification (simulator side).

Signing string, three lines joined by ``\\n``::

    date: <date header>
    POST <request path> HTTP/1.1
    digest: SHA-256=<base64 sha256 of the body bytes>

signature = base64(hmac_sha256(secret, signing string)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

TARGET_HOST = "default.pms"
SIGNED_HEADERS = "date request-line digest"
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def compact_json(body: Any) -> bytes:
    """The body bytes KEYVOX samples send: compact JSON, UTF-8, ``{}`` when empty."""
    return json.dumps(
        body if body is not None else {}, separators=(",", ":"), ensure_ascii=False
    ).encode()


def http_date(moment: datetime) -> str:
    """RFC 1123 date in GMT, e.g. ``Tue, 07 Feb 2023 01:00:00 GMT``."""
    return format_datetime(moment, usegmt=True)


def parse_http_date(value: str) -> datetime:
    return parsedate_to_datetime(value)


def body_digest(body: bytes) -> str:
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def signing_string(date: str, path: str, digest: str) -> str:
    return f"date: {date}\nPOST {path} HTTP/1.1\ndigest: {digest}"


def signature(secret: str, date: str, path: str, digest: str) -> str:
    mac = hmac.new(secret.encode(), signing_string(date, path, digest).encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def authorization(api_key: str, sig: str) -> str:
    return (
        f'hmac username="{api_key}", algorithm="hmac-sha256", '
        f'headers="{SIGNED_HEADERS}", signature="{sig}"'
    )


def signed_headers(
    api_key: str, secret: str, path: str, body: bytes, now: datetime
) -> dict[str, str]:
    """Every header a KEYVOX call needs, for ``body`` sent to ``path`` at ``now``."""
    date = http_date(now)
    digest = body_digest(body)
    return {
        "x-target-host": TARGET_HOST,
        "date": date,
        "digest": digest,
        "authorization": authorization(api_key, signature(secret, date, path, digest)),
        "content-type": "application/json",
    }


def parse_authorization(value: str) -> dict[str, str]:
    """The quoted parameters of an ``hmac ...`` authorization header (empty if malformed)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "hmac":
        return {}
    return dict(_AUTH_PARAM.findall(rest))
