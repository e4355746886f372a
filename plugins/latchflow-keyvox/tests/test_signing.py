"""The documented signature test vector, and an independent computation for another request."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

from latchflow_keyvox.signing import (
    body_digest,
    compact_json,
    http_date,
    parse_authorization,
    signature,
    signed_headers,
)

VECTOR_BODY = (
    b'{"unitId":"5e901978ef16f912aa9aaaa7","sTime":"1675734300","eTime":"1675820700",'
    b'"targetName":"BCL20230207"}'
)


def test_documented_test_vector() -> None:
    date = "Tue, 07 Feb 2023 01:00:00 GMT"
    assert http_date(datetime(2023, 2, 7, 1, 0, 0, tzinfo=UTC)) == date
    body = compact_json(
        {
            "unitId": "5e901978ef16f912aa9aaaa7",
            "sTime": "1675734300",
            "eTime": "1675820700",
            "targetName": "BCL20230207",
        }
    )
    assert body == VECTOR_BODY
    digest = body_digest(body)
    assert digest == "SHA-256=LF+sUahQlUqBSW1ypmORY5ehdLZ8XdQyYmCio20Fgz0="
    sig = signature("test-secret", date, "/api/eagle-pms/v1/createLockPin", digest)
    assert sig == "axPK9mFocnKKE4/10GC/cWiITsUh2IgOYqSXoWXm/bk="


def test_empty_body_digest_matches_the_java_sample() -> None:
    assert body_digest(compact_json({})) == "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="


def test_headers_match_an_independent_computation_for_another_request() -> None:
    moment = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
    body = b'{"lockId":"000D6F0013112273","flag":"1"}'
    headers = signed_headers("my-key", "s3cr3t", "/v1/unlock", body, moment)

    # computed here from the documented recipe, without the plugin's helpers
    date = "Sat, 14 Mar 2026 09:26:53 GMT"
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    text = f"date: {date}\nPOST /v1/unlock HTTP/1.1\ndigest: {digest}"
    expected = base64.b64encode(
        hmac.new(b"s3cr3t", text.encode(), hashlib.sha256).digest()
    ).decode()

    assert headers["date"] == date
    assert headers["digest"] == digest
    assert headers["x-target-host"] == "default.pms"
    assert headers["authorization"] == (
        f'hmac username="my-key", algorithm="hmac-sha256", '
        f'headers="date request-line digest", signature="{expected}"'
    )
    params = parse_authorization(headers["authorization"])
    assert params["signature"] == expected and params["username"] == "my-key"


def test_compact_json_keeps_non_ascii_names() -> None:
    assert compact_json({"targetName": "山田"}) == '{"targetName":"山田"}'.encode()
