"""The simulator verifies signatures exactly, against the path it actually received."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.signing import compact_json, signed_headers
from latchflow_keyvox.testing import Sim


def post(sim: Sim, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(sim.url + path, content=body, headers=headers, timeout=10)


def headers_for(
    path: str,
    body: bytes,
    *,
    age: float = 0,
    secret: str = A.SIM_DEMO_API_SECRET,
    key: str = A.SIM_DEMO_API_KEY,
) -> dict[str, str]:
    now = datetime.now(UTC) - timedelta(seconds=age)
    return signed_headers(key, secret, path, body, now)


@pytest.mark.parametrize("prefix", ["/v1", "/api/eagle-pms/v1"])
def test_a_correctly_signed_call_succeeds_on_both_prefixes(sim: Sim, prefix: str) -> None:
    body = compact_json({})
    response = post(sim, f"{prefix}/getUnits", body, headers_for(f"{prefix}/getUnits", body))
    assert response.status_code == 200
    envelope = response.json()
    assert envelope["code"] == "0" and envelope["msg"] == "success"
    assert {u["unitName"] for u in envelope["data"]} >= {"Room 101", "Room 102"}


def test_body_changed_after_signing_is_refused(sim: Sim) -> None:
    path = "/api/eagle-pms/v1/getUnitPinList"
    unit = sim.room()["unitId"]
    signed_body = compact_json({"unitId": unit})
    headers = headers_for(path, signed_body)
    response = post(sim, path, compact_json({"unitId": unit, "records": "1"}), headers)
    assert response.status_code == 403
    assert response.json()["code"] == A.AUTH_ERROR_CODE
    assert "digest" in response.json()["msg"]
    # the same headers with the body that was signed pass
    assert post(sim, path, signed_body, headers).json()["code"] == "0"


def test_body_and_digest_changed_but_signature_kept_is_refused(sim: Sim) -> None:
    path = "/v1/getUnits"
    headers = headers_for(path, b"{}")
    forged = b'{"x":"1"}'
    headers["digest"] = headers_for(path, forged)["digest"]
    response = post(sim, path, forged, headers)
    assert response.status_code == 403
    assert "signature" in response.json()["msg"]


def test_a_date_six_seconds_old_is_refused(sim: Sim) -> None:
    path = "/v1/getUnits"
    response = post(sim, path, b"{}", headers_for(path, b"{}", age=6))
    assert response.status_code == 403
    assert "5 seconds" in response.json()["msg"]
    assert post(sim, path, b"{}", headers_for(path, b"{}", age=2)).json()["code"] == "0"


def test_signature_for_another_request_line_is_refused(sim: Sim) -> None:
    body = b"{}"
    headers = headers_for("/v1/getUnits", body)  # signed for the short prefix
    response = post(sim, "/api/eagle-pms/v1/getUnits", body, headers)
    assert response.status_code == 403
    assert "signature" in response.json()["msg"]


def test_unknown_key_and_wrong_secret_are_refused(sim: Sim) -> None:
    path = "/v1/getUnits"
    unknown = post(sim, path, b"{}", headers_for(path, b"{}", key="nobody"))
    assert unknown.status_code == 403 and "unknown API key" in unknown.json()["msg"]
    wrong = post(sim, path, b"{}", headers_for(path, b"{}", secret="not-the-secret"))
    assert wrong.status_code == 403 and "signature" in wrong.json()["msg"]
    missing = post(sim, path, b"{}", {"content-type": "application/json"})
    assert missing.status_code == 403


def test_clock_jumps_do_not_break_signatures(sim: Sim) -> None:
    sim.control("/_sim/clock", {"advance": 3 * 86400})
    path = "/v1/getUnits"
    assert post(sim, path, b"{}", headers_for(path, b"{}")).json()["code"] == "0"
