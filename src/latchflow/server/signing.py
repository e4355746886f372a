"""Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature).

The signature is ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}")) where the key
is the base64 part of a ``whsec_``-prefixed secret, with or without its ``=`` padding. A header
may carry several space-separated signatures (during secret rotation); one match is enough.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
TOLERANCE_SECONDS = 300
MIN_KEY_BYTES = 16


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret, padded or not; ValueError if it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("a signing secret starts with 'whsec_' followed by base64")
    encoded = secret[len(PREFIX) :].rstrip("=")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError(
            "the part after 'whsec_' is not standard base64 (A-Z, a-z, 0-9, '+', '/')"
        ) from exc
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(
            f"the key is too short: use at least {MIN_KEY_BYTES} random bytes ({len(key)} given)"
        )
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for a delivery."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_matches(
    secret: str, webhook_id: str, timestamp: int, body: bytes, header: str
) -> bool:
    expected = sign(secret, webhook_id, timestamp, body).split(",", 1)[1]
    for part in header.split():
        version, _, value = part.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return True
    return False
