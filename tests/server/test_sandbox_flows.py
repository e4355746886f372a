"""``latchflow serve --sandbox --flows`` with the example flows, against the vendor simulators.

One server process: every vendor simulator runs inside it and the example flows from flows/
are installed. The flows' receiver URLs point at a local receiver, and their Unloc poll
intervals are shortened to one second so the real-time waits stay short; nothing else changes.
Runs start the way they would in a demo: a booking arriving at the KEYVOX simulator (its
reservation webhook), a POST to a trigger URL, a guest entering a pincode at a LivionKey automat
(its signed key-status webhook).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from latchflow.plugin.host import load_registry
from latchflow.testing import make_connection, make_context
from latchflow_unloc.testing import APARTMENT, FRONT_DOOR, v2_config

from .processes import Receiver, cli, running_server, wait_for

pytestmark = pytest.mark.slow

FLOWS = Path(__file__).resolve().parents[2] / "flows"


def copy_flows(target: Path, receiver_url: str) -> Path:
    target.mkdir()
    for path in FLOWS.glob("*.json"):
        document = json.loads(path.read_text())
        for step in document["steps"]:
            if step["action"] == "http.request":
                step["input"]["url"] = receiver_url
            if step["action"] == "unloc.create_key":
                step["input"]["pollInterval"] = 1
        (target / path.name).write_text(json.dumps(document))
    return target


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.Client(base_url=base, headers={"authorization": f"Bearer {key}"})

    def runs(self, flow_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.http.get("/api/runs", params={"flow_id": flow_id}).json()
        return runs

    def finished(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        detail: dict[str, Any] = wait_for(
            lambda: (
                (d := self.http.get(f"/api/runs/{run_id}").json())["status"]
                in ("succeeded", "failed", "filtered")
                and d
            ),
            timeout,
            f"run {run_id} to finish",
        )
        return detail

    def only_run(self, flow_id: str) -> dict[str, Any]:
        (run,) = wait_for(lambda: self.runs(flow_id), 20, f"a run of {flow_id}")
        return self.finished(run["id"])

    def sim_base(self, connection_id: str, field: str, suffix: str = "") -> str:
        connections = self.http.get("/api/connections").json()
        (config,) = [c["config"] for c in connections if c["id"] == connection_id]
        base = str(config[field])
        return base.removesuffix(suffix) if suffix else base


def unloc_keys(base_url: str, lock_id: str) -> list[dict[str, Any]]:
    """The keys the Unloc simulator holds for a lock, read through the plugin's own action."""
    registry = load_registry()

    async def read() -> list[dict[str, Any]]:
        connection = make_connection("unloc", v2_config(base_url), connection_id="check")
        try:
            action = registry.actions["unloc.list_keys"]
            result = await action.run(make_context(connection), {"lockId": lock_id})
            assert isinstance(result, dict)
            return list(result["keys"])
        finally:
            await connection.http.aclose()

    return asyncio.run(read())


def test_example_flows_run_through_serve_against_the_simulators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LATCHFLOW_LOAD_PLUGINS")  # unloc_keys reads the Unloc plugin's action
    receiver = Receiver()
    data = tmp_path / "data"
    key = cli("apikey", "create", data_dir=data)
    with receiver.serve() as receiver_base:
        flows = copy_flows(tmp_path / "flows", f"{receiver_base}/effect")
        with running_server(data, flows, workers=4, sandbox=True) as server:
            api = Api(server.base, key)
            keyvox = api.sim_base("sandbox-keyvox", "baseUrl", "/api/eagle-pms/v1")
            livion_v2 = api.sim_base("sandbox-livionkey_v2", "base_url", "/v2")
            unloc = api.sim_base("sandbox-unloc", "base_url")

            # KEYVOX: a booking arrives from a channel; the simulator posts its reservation
            # webhook to the server, which starts the booking flows of KEYVOX and Unloc
            now = datetime.fromisoformat(httpx.get(f"{keyvox}/_sim/clock").json()["now"])
            room = next(
                u
                for u in httpx.get(f"{keyvox}/_sim/state").json()["units"]
                if u["unitName"].startswith("Room")
            )
            booking = httpx.post(
                f"{keyvox}/_sim/bookings",
                json={
                    "unitId": room["unitId"],
                    "checkin": int((now + timedelta(minutes=30)).timestamp()),
                    "checkout": int((now + timedelta(days=1)).timestamp()),
                    "orderContact": "Hanako",
                    "contactTel": "090-1234-5678",
                },
            ).json()
            pin_run = api.only_run("keyvox-booking-pin")
            assert pin_run["status"] == "succeeded", pin_run
            pins = httpx.get(f"{keyvox}/_sim/state").json()["pins"]
            assert pin_run["steps"][0]["output"]["pinCode"] == "***"  # a credential: masked
            revealed = api.http.get(f"/api/runs/{pin_run['id']}", params={"reveal": "true"})
            issued = revealed.json()["steps"][0]["output"]["pinCode"]
            assert [p["pinCode"] for p in pins] == [issued]
            notice = next(b for b in receiver.bodies if b.get("orderId") == booking["orderId"])
            assert notice["pin"] == pins[0]["pinCode"] and notice["guestName"] == "Hanako"

            # an event type no trigger stands for is kept as dropped, with its raw type
            (hook,) = httpx.get(f"{keyvox}/_sim/webhooks").json()["urls"]
            unknown = {"event": "reservation.deleted", "data": {"reservationCode": "K1"}}
            assert httpx.post(hook, json=unknown).json()["dropped"] == 1
            dropped = api.http.get("/api/events", params={"status": "dropped"}).json()
            assert [(e["vendor_type"], e["connection_id"], e["flow_id"]) for e in dropped] == [
                ("reservation.deleted", "sandbox-keyvox", None)
            ]
            assert "eventTypes" in dropped[0]["reason"]

            key_run = api.only_run("unloc-booking-guest-key")
            assert key_run["status"] == "succeeded", key_run
            assert key_run["output"]["state"] == "active"
            (guest_key,) = unloc_keys(unloc, APARTMENT)
            assert guest_key["keyId"] == key_run["output"]["keyId"]
            assert guest_key["state"] == "active" and guest_key["appUserId"] == "+819012345678"
            assert api.only_run("unloc-staff-weekday-key")["status"] == "filtered"

            # LivionKey V2: a booking system posts to the handover flow's trigger URL
            flow = api.http.get("/api/flows/livionkey-booking-iloq-handover").json()
            stay = {
                "id": "B-42",
                "automatGroupId": "grp-espoo",
                "accessRightIds": ["ar-main-door"],
                "checkIn": (now + timedelta(minutes=30)).isoformat(),
                "checkOut": (now + timedelta(days=2)).isoformat(),
                "guestName": "Aino",
                "email": "aino@example.com",
                "phone": "040 1234567",
            }
            accepted = httpx.post(flow["trigger_url"], json={"booking": stay})
            assert accepted.status_code == 202, accepted.text
            handover = api.finished(accepted.json()["run_id"])
            assert handover["status"] == "succeeded", handover
            reply = next(b for b in receiver.bodies if b.get("bookingId") == "B-42")
            assert reply["automatId"] == "000211" and reply["pincode"]

            # the guest enters that pincode at the automat: the simulator hands over the key
            # and posts its signed key-fetched webhook, which starts two flows
            entered = httpx.post(
                f"{livion_v2}/_sim/v2/enter-pincode",
                json={"automatId": "000211", "pincode": reply["pincode"]},
            ).json()
            assert entered == {"success": True, "reason": None}
            fetched = api.only_run("livionkey-iloq-key-fetched")
            assert fetched["status"] == "succeeded", fetched
            assert fetched["event"]["data"]["contractId"] == reply["contractId"]
            front_door = api.only_run("unloc-livionkey-front-door")
            assert front_door["status"] == "succeeded", front_door
            (door_key,) = unloc_keys(unloc, FRONT_DOOR)
            assert door_key["keyId"] == front_door["output"]["keyId"]
            assert door_key["appUserId"] == "+358401234567"

            # access grants: a booking system posts a booking; its guest may open room 102 and
            # the front door (a KEYVOX PIN, an Unloc key) and fetch a key at an automat (an
            # iLOQ handover); the booking moves a day, then it is cancelled
            access_booking(api, now, keyvox, unloc, livion_v2)
            api.http.close()


def post_to(api: Api, flow_id: str, body: dict[str, Any]) -> dict[str, Any]:
    url = api.http.get(f"/api/flows/{flow_id}").json()["trigger_url"]
    accepted = httpx.post(url, json=body)
    assert accepted.status_code == 202, accepted.text
    run = api.finished(accepted.json()["run_id"])
    assert run["status"] == "succeeded", run
    return run


def _utc(value: Any) -> datetime:
    if str(value).isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def granted(keyvox: str, unloc: str, livion_v2: str, booking: str) -> list[tuple[str, datetime]]:
    """What works at each simulator for a booking: (vendor, start), by vendor."""
    pins = httpx.get(f"{keyvox}/_sim/state").json()["pins"]
    keys = httpx.get(f"{unloc}/_sim/state").json()["keys"]
    contracts = httpx.get(f"{livion_v2}/_sim/v2/state").json()["contracts"]
    found = [
        ("keyvox", _utc(p["sTime"]))
        for p in pins
        if booking in p.get("targetName", "") and p["pinStatus"] == "1"
    ]
    found += [
        ("unloc", _utc(k["start"]))
        for k in keys
        if booking in k.get("metadata", {}).get("label", "")
        and k["state"] not in ("revoked", "expired")
    ]
    found += [
        ("livionkey", _utc(c["start"]))
        for c in contracts
        if booking in str(c.get("contact", {}).get("name", "")) and c.get("state") != "deleted"
    ]
    return sorted(found)


def access_booking(api: Api, now: datetime, keyvox: str, unloc: str, livion_v2: str) -> None:
    guest = {"name": "Ada Lovelace", "phone": "+4799887766", "email": "ada@example.com"}
    arrival, departure = now + timedelta(hours=1), now + timedelta(days=2)
    stay = {"guest": guest, "arrival": arrival.isoformat(), "departure": departure.isoformat()}
    post_to(api, "access-booking-created", {"bookingId": "B-77", "room": "Room 102", **stay})
    pick_up = "Apartment 12 (key automat Kamppi automat)"
    post_to(api, "access-key-handover", {"bookingId": "B-78", "pickUp": pick_up, **stay})
    wait_for(
        lambda: (
            [v for v, _ in granted(keyvox, unloc, livion_v2, "B-7")]
            == ["keyvox", "livionkey", "unloc"]
        ),
        30,
        "the grants' credentials at the three simulators",
    )
    # the guest opens the front door with the key: Unloc's access event, sent to the server,
    # is linked to the grant's credential in the audit log
    (key,) = [
        k
        for k in httpx.get(f"{unloc}/_sim/state").json()["keys"]
        if "B-77" in k.get("metadata", {}).get("label", "")
    ]
    credential = f"credential {key['metadata']['latchflowCredential']}"

    def recorded(action: str) -> list[dict[str, Any]]:
        entries = api.http.get("/api/audit", params={"limit": 500}).json()
        return [e for e in entries if e["action"] == action and e["subject"] == credential]

    wait_for(lambda: recorded("credential.issued"), 30, "the Unloc key's job to finish")
    httpx.post(f"{unloc}/_sim/clock", json={"advance": 7200}).raise_for_status()
    opened = httpx.post(f"{unloc}/_sim/locks/{FRONT_DOOR}/open", json={"keyId": key["id"]})
    assert opened.status_code == 200, opened.text
    (used,) = wait_for(lambda: recorded("credential.event"), 10, "the door opening, linked")
    assert used["detail"]["kind"] == "unloc.lock_unlocked"
    httpx.post(f"{unloc}/_sim/clock", json={"advance": -7200}).raise_for_status()

    later = arrival + timedelta(days=1)
    moved = {"arrival": later.isoformat(), "departure": (departure + timedelta(days=1)).isoformat()}
    post_to(api, "access-booking-changed", {"bookingId": "B-77", "room": "Room 102", **moved})
    wait_for(
        lambda: (
            [
                (v, abs((start - later).total_seconds()) < 1)
                for v, start in granted(keyvox, unloc, livion_v2, "B-77")
            ]
            == [("keyvox", True), ("unloc", True)]
        ),
        30,
        "the credentials moved a day",
    )
    post_to(api, "access-booking-cancelled", {"bookingId": "B-77"})
    wait_for(
        lambda: granted(keyvox, unloc, livion_v2, "B-77") == [],
        30,
        "nothing granted for B-77 at any simulator",
    )
