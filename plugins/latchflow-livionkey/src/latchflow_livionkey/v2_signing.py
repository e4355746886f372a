"""API V2 request signatures (service account + RSA), as the client makes and the simulator checks.

h        = hex(SHA-256(METHOD + full URL incl. query + body bytes as sent))
to_sign  = service_account_id + millisecond timestamp + h
x-signature = Base64(RSASSA-PKCS1-v1_5-SHA256(private key, to_sign))
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from latchflow import ConfigurationError


def request_hash(method: str, url: str, body: bytes) -> str:
    """Lowercase hex SHA-256 of METHOD + URL + the body's bytes (no separators)."""
    return hashlib.sha256(f"{method.upper()}{url}".encode() + body).hexdigest()


def string_to_sign(account_id: str, timestamp_ms: str, method: str, url: str, body: bytes) -> str:
    return f"{account_id}{timestamp_ms}{request_hash(method, url, body)}"


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """The service account's RSA private key, or a ConfigurationError naming the field."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            "is not an unencrypted PEM private key (paste the key LivionKey showed when the"
            " service account was created, including the BEGIN/END lines)",
            path="private_key_pem",
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("must be an RSA private key", path="private_key_pem")
    return key


def sign(
    key: rsa.RSAPrivateKey, account_id: str, timestamp_ms: str, method: str, url: str, body: bytes
) -> str:
    message = string_to_sign(account_id, timestamp_ms, method, url, body).encode()
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def signature_headers(
    key: rsa.RSAPrivateKey, account_id: str, timestamp_ms: int, method: str, url: str, body: bytes
) -> dict[str, str]:
    stamp = str(timestamp_ms)
    return {
        "x-service-account-id": account_id,
        "x-timestamp": stamp,
        "x-signature": sign(key, account_id, stamp, method, url, body),
    }


def verify(
    public_key: rsa.RSAPublicKey,
    signature_b64: str,
    account_id: str,
    timestamp_ms: str,
    method: str,
    url: str,
    body: bytes,
) -> bool:
    """True when ``signature_b64`` signs this request with the key's private half."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(
            signature,
            string_to_sign(account_id, timestamp_ms, method, url, body).encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def generate_key_pair() -> tuple[str, str]:
    """A fresh 2048-bit RSA key pair as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
