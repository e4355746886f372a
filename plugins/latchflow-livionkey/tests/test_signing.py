"""V2 request signatures and Standard Webhooks signatures, checked independently."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from latchflow import FakeClock, WebhookError
from latchflow.testing import make_connection
from latchflow_livionkey import standard_webhooks
from latchflow_livionkey.v2_client import V2Client
from latchflow_livionkey.v2_signing import generate_key_pair, request_hash

VECTOR_SECRET = "whsec_bGl2aW9uLXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmchIQ=="
VECTOR_BODY = b'{"specVersion":"1","type":"key-status"}'
VECTOR_SIGNATURE = "v1,WMZ8byyfVXO0mduC46YQ0e34r7D87/w8tRHD1RZDQiY="


def test_standard_webhooks_documented_test_vector() -> None:
    assert standard_webhooks.sign(VECTOR_SECRET, "msg_test_1", 1754200000, VECTOR_BODY) == (
        VECTOR_SIGNATURE
    )
    headers = {
        "webhook-id": "msg_test_1",
        "webhook-timestamp": "1754200000",
        "webhook-signature": f"v1,bm90LXRoaXMtb25l {VECTOR_SIGNATURE}",  # several entries
    }
    assert standard_webhooks.verify(VECTOR_SECRET, headers, VECTOR_BODY, 1754200100, 300) == (
        "msg_test_1"
    )


@pytest.mark.parametrize(
    ("change", "now"),
    [
        ({"webhook-id": "msg_test_2"}, 1754200000),
        ({}, 1754200000 + 301),
        ({"webhook-signature": "v1,AAAA"}, 1754200000),
    ],
)
def test_standard_webhooks_refuses_changes_and_stale_deliveries(
    change: dict[str, str], now: int
) -> None:
    headers = {
        "webhook-id": "msg_test_1",
        "webhook-timestamp": "1754200000",
        "webhook-signature": VECTOR_SIGNATURE,
        **change,
    }
    with pytest.raises(WebhookError) as info:
        standard_webhooks.verify(VECTOR_SECRET, headers, VECTOR_BODY, now, 300)
    assert info.value.status_code == 401


def test_standard_webhooks_refuses_a_changed_body() -> None:
    headers = {
        "webhook-id": "msg_test_1",
        "webhook-timestamp": "1754200000",
        "webhook-signature": VECTOR_SIGNATURE,
    }
    with pytest.raises(WebhookError):
        standard_webhooks.verify(
            VECTOR_SECRET, headers, VECTOR_BODY.replace(b"1", b"2"), 1754200000, 300
        )


async def test_client_signature_verifies_independently() -> None:
    """Capture a signed request and check it with plain hashlib + cryptography."""
    private_pem, public_pem = generate_key_pair()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"after": "0", "limit": 5, "hasNext": False, "data": []})

    clock = FakeClock()
    config = {
        "base_url": "https://api.livionkey.com/v2",
        "service_account_id": "sa-1",
        "private_key_pem": private_pem,
    }
    connection = make_connection(
        "livionkey_v2", config, clock=clock, transport=httpx.MockTransport(handler)
    )
    client = V2Client(connection)
    await client.request("GET", "/automats", params={"limit": 5})
    await client.request("POST", "/groups", json_body={"name": "Lobby", "type": 1})
    await connection.http.aclose()

    public_key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    get, post = seen
    assert str(get.url) == "https://api.livionkey.com/v2/automats?limit=5"
    assert get.headers["x-timestamp"] == str(int(clock.now().timestamp() * 1000))
    for request in seen:
        body = request.content.decode()
        digest = hashlib.sha256((request.method + str(request.url) + body).encode()).hexdigest()
        message = ("sa-1" + request.headers["x-timestamp"] + digest).encode()
        signature = base64.b64decode(request.headers["x-signature"])
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        assert request.headers["x-service-account-id"] == "sa-1"
    assert json.loads(post.content) == {"name": "Lobby", "type": 1}
    # The same signature does not cover another URL.
    digest = hashlib.sha256(
        ("GET" + "https://api.livionkey.com/v2/automats?limit=6").encode()
    ).hexdigest()
    with pytest.raises(InvalidSignature):
        public_key.verify(
            base64.b64decode(get.headers["x-signature"]),
            ("sa-1" + get.headers["x-timestamp"] + digest).encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )


NON_ASCII_URL = "https://api.livionkey.com/v2/groups"
NON_ASCII_BODY = '{"name":"Jääskeläinen","type":1}'.encode()
NON_ASCII_HASH = "4a4888044eb540babeb5ef12e780c141345d03cfc79071a2efdd6bf60b91973e"
"""hex SHA-256 of "POST" + NON_ASCII_URL + NON_ASCII_BODY (UTF-8), computed with hashlib alone."""


def test_request_hash_covers_raw_utf8_vector() -> None:
    assert request_hash("POST", NON_ASCII_URL, NON_ASCII_BODY) == NON_ASCII_HASH
    escaped = b'{"name":"J\\u00e4\\u00e4skel\\u00e4inen","type":1}'
    assert request_hash("POST", NON_ASCII_URL, escaped) != NON_ASCII_HASH


async def test_non_ascii_body_is_sent_and_signed_as_raw_utf8() -> None:
    """What JSON.stringify would send (raw UTF-8, compact), signed byte for byte as the
    cryptography primitives sign it."""
    private_pem, _ = generate_key_pair()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "g-1", "name": "Jääskeläinen"})

    clock = FakeClock()
    config = {
        "base_url": "https://api.livionkey.com/v2",
        "service_account_id": "sa-1",
        "private_key_pem": private_pem,
    }
    connection = make_connection(
        "livionkey_v2", config, clock=clock, transport=httpx.MockTransport(handler)
    )
    await V2Client(connection).request(
        "POST", "/groups", json_body={"name": "Jääskeläinen", "type": 1}
    )
    await connection.http.aclose()

    (request,) = seen
    assert request.content == NON_ASCII_BODY
    stamp = str(int(clock.now().timestamp() * 1000))
    assert request.headers["x-timestamp"] == stamp
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    expected = key.sign(
        ("sa-1" + stamp + NON_ASCII_HASH).encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert request.headers["x-signature"] == base64.b64encode(expected).decode()
