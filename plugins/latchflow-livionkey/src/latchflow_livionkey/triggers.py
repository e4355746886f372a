"""LivionKey triggers.

API V1 (connection ``livionkey``): ``livionkey.key_fetched``, ``key_returned``,
``key_not_returned``, ``key_not_fetched`` arrive by legacy push and by polling
``GET /keys/{id}/status``; ``livionkey.contract_updated`` by push only.

API V2 (connection ``livionkey_v2``): signed webhooks only. A trigger has one connection type,
so V2 triggers cannot reuse the V1 keys: they are named ``livionkey.v2_*``
(``v2_key_fetched`` ... ``v2_contract_updated``, ``v2_code_entered``, ``v2_device_alarm``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from latchflow import JSON, Connection, PollResult, Trigger, TriggerEvent
from latchflow_livionkey.schemas import VENDOR_V1, VENDOR_V2, obj, open_obj, prop
from latchflow_livionkey.v1_client import V1Client
from latchflow_livionkey.webhooks import v1_key_status

NULLABLE_STR: JSON = {"type": ["string", "null"]}


async def _watched_keys(client: V1Client, config: JSON) -> list[tuple[str, str]]:
    if config.get("deviceId") and config.get("keyId"):
        return [(config["deviceId"], config["keyId"])]
    if config.get("deviceId"):
        device_ids = [config["deviceId"]]
    else:
        device_ids = [d["deviceId"] for d in await client.request("GET", "/devices")]
    pairs: list[tuple[str, str]] = []
    for device_id in device_ids:
        for key in await client.request("GET", f"/devices/{device_id}/keys"):
            if config.get("keyId") in (None, "", key["keyId"]):
                pairs.append((device_id, key["keyId"]))
    return pairs


async def poll_key_status(
    state: str, connection: Connection, config: JSON, cursor: JSON | None
) -> PollResult:
    """New ``state`` statuses since the last poll, as events of that state's trigger; the
    first poll only records where we are.

    Only the latest status of each key is visible, so a key fetched and returned between two
    polls shows only as returned: use the push notifications for every change.
    """
    client = V1Client(connection)
    seen: dict[str, str] = dict((cursor or {}).get("seen", {}))
    events: list[TriggerEvent] = []
    for device_id, key_id in await _watched_keys(client, config):
        status = await client.request(
            "GET", f"/keys/{key_id}/status", params={"deviceId": device_id}
        )
        ref = f"{device_id}/{key_id}"
        if cursor is not None and seen.get(ref) != status["id"] and status["action"] == state:
            after = (status.get("data") or {}).get("after") or {}
            tags = status.get("tag") or []
            event_id, event = v1_key_status(
                {
                    "deviceId": device_id,
                    "keyId": key_id,
                    "lockerIndex": after.get("lockerIndex"),
                    "state": state,
                    "time": status.get("timestamp"),
                    "tag": tags[0] if tags else None,
                }
            )
            events.append(TriggerEvent(_trigger_key(state), event_id, event))
        seen[ref] = status["id"]
    return PollResult(events=events, cursor={"seen": seen})


def _trigger_key(state: str) -> str:
    return f"livionkey.{state.replace('-', '_')}"


def _poller(state: str) -> Callable[[Connection, JSON, JSON | None], Awaitable[PollResult]]:
    return partial(poll_key_status, state)


V1_KEY_EVENT = open_obj(
    {
        "deviceId": {"type": "string"},
        "keyId": {"type": "string"},
        "lockerIndex": NULLABLE_STR,
        "contractId": NULLABLE_STR,
        "contractObjectId": NULLABLE_STR,
        "state": {"type": "string"},
        "time": {"type": "string"},
        "tag": NULLABLE_STR,
    },
    ["deviceId", "keyId", "state", "time"],
)
V1_KEY_FILTER = obj(
    {
        "deviceId": prop("string", "Only this device (polling checks every device without it)"),
        "keyId": prop("string", "Only this key"),
    }
)


def _v1_key_trigger(state: str, title: str, when: str) -> Trigger:
    return Trigger(
        key=_trigger_key(state),
        title=f"{title} (V1)",
        description=(
            f"Starts when {when} at a LivionKey30/LivionKey1 automat: from the legacy push"
            " notifications, or by polling each key's status."
        ),
        input_schema=V1_KEY_FILTER,
        output_schema=V1_KEY_EVENT,
        sample={
            "deviceId": "000111",
            "keyId": "apt-101",
            "lockerIndex": "0",
            "contractId": "booking-1001",
            "contractObjectId": "60531613299ae000094cd278",
            "state": state,
            "time": "2026-03-03T11:00:00.000Z",
            "tag": "livion/demo/000111",
        },
        connection=VENDOR_V1,
        webhook=True,
        poll=_poller(state),
        poll_interval=60.0,
    )


V1_TRIGGERS = [
    _v1_key_trigger("key-fetched", "Key fetched", "a key is taken from its locker"),
    _v1_key_trigger("key-returned", "Key returned", "a key is put back in its locker"),
    _v1_key_trigger(
        "key-not-returned", "Key not returned", "a contract ends and its key is not back"
    ),
    _v1_key_trigger(
        "key-not-fetched", "Key not fetched", "a contract ends and its key was never fetched"
    ),
    Trigger(
        key="livionkey.contract_updated",
        title="Contract created or updated (V1)",
        description="Starts when a key contract is created or changed (legacy push only).",
        input_schema=obj(
            {
                "deviceId": prop("string", "Only this device"),
                "keyId": prop("string", "Only this key"),
                "contractId": prop("string", "Only this contract (your reference)"),
            }
        ),
        output_schema=open_obj(
            {
                "contractType": {"type": "string"},
                "pincode": NULLABLE_STR,
                "contractId": NULLABLE_STR,
                "contractObjectId": NULLABLE_STR,
                "start": NULLABLE_STR,
                "end": NULLABLE_STR,
                "deviceId": NULLABLE_STR,
                "keyId": NULLABLE_STR,
            },
            ["contractType", "contractObjectId"],
        ),
        sample={
            "contractType": "default",
            "pincode": "594395",
            "contractId": "booking-1001",
            "contractObjectId": "60531613299ae000094cd278",
            "time": "2026-03-01T10:00:00.000Z",
            "start": "2026-03-01T14:00:00.000Z",
            "end": "2026-03-03T11:00:00.000Z",
            "deviceId": "000111",
            "keyId": "apt-101",
            "tag": "livion/demo/000111",
        },
        connection=VENDOR_V1,
        webhook=True,
    ),
]

ENVELOPE_FIELDS: dict[str, JSON] = {
    "eventId": {"type": "string"},
    "eventType": {"type": "string"},
    "occurredAt": NULLABLE_STR,
    "organizationUnitId": NULLABLE_STR,
}
ENVELOPE_SAMPLE = {
    "eventId": "msg_2uQ9yH0b",
    "occurredAt": "2026-03-01T15:02:11.000Z",
    "organizationUnitId": "org-demo",
}


def _v2_trigger(
    key: str,
    title: str,
    description: str,
    filters: dict[str, JSON],
    fields: dict[str, JSON],
    required: list[str],
    sample: JSON,
) -> Trigger:
    return Trigger(
        key=f"livionkey.{key}",
        title=f"{title} (V2)",
        description=f"{description} From LivionKey's signed webhooks (API V2).",
        input_schema=obj(filters),
        output_schema=open_obj({**ENVELOPE_FIELDS, **fields}, ["eventId", *required]),
        sample={**ENVELOPE_SAMPLE, **sample},
        connection=VENDOR_V2,
        webhook=True,
    )


KEY_FILTERS = {
    "deviceId": prop("string", "Only this automat (device id)"),
    "keyId": prop("string", "Only this key"),
    "contractId": prop("string", "Only this contract"),
}
KEY_FIELDS: dict[str, JSON] = {
    "state": {"type": "string"},
    "storageType": {"type": "string"},
    "deviceId": NULLABLE_STR,
    "lockerIndex": NULLABLE_STR,
    "keyId": {"type": "string"},
    "contractId": NULLABLE_STR,
    "contractObjectId": NULLABLE_STR,
}


def _v2_key_trigger(state: str, title: str, when: str) -> Trigger:
    return _v2_trigger(
        "v2_" + state.replace("-", "_"),
        title,
        f"Starts when {when} (iLOQ or mechanical key).",
        KEY_FILTERS,
        KEY_FIELDS,
        ["state", "keyId"],
        {
            "eventType": "key-status",
            "state": state,
            "storageType": "device",
            "deviceId": "000111",
            "lockerIndex": "4",
            "keyId": "iloq-0001",
            "contractId": "c-7f3a",
            "contractObjectId": "c-7f3a",
        },
    )


V2_TRIGGERS = [
    _v2_key_trigger("key-fetched", "Key fetched", "a key is picked up from an automat"),
    _v2_key_trigger("key-returned", "Key returned", "a key is returned to an automat"),
    _v2_key_trigger(
        "key-not-returned", "Key not returned", "a key is not back by the contract end"
    ),
    _v2_key_trigger("key-not-fetched", "Key not fetched", "a key was never picked up in time"),
    _v2_trigger(
        "v2_contract_updated",
        "Contract created or updated",
        "Starts when a key contract is created or changed.",
        {
            "contractId": prop("string", "Only this contract"),
            "deviceId": prop("string", "Only this automat"),
        },
        {
            "contractType": {"type": "string"},
            "contractId": NULLABLE_STR,
            "pincode": NULLABLE_STR,
            "start": NULLABLE_STR,
            "end": NULLABLE_STR,
            "deviceId": NULLABLE_STR,
            "keyId": NULLABLE_STR,
        },
        ["contractType"],
        {
            "eventType": "contract-update",
            "contractType": "default",
            "contractId": "c-7f3a",
            "contractObjectId": "c-7f3a",
            "pincode": "482913",
            "start": "2026-03-01T14:00:00.000Z",
            "end": "2026-03-03T11:00:00.000Z",
            "deviceId": "000111",
            "keyId": "iloq-0001",
        },
    ),
    _v2_trigger(
        "v2_code_entered",
        "Code entered at an automat",
        "Starts when someone enters a valid pincode, return code or access code at an automat.",
        {
            "deviceId": prop("string", "Only this automat"),
            "codeType": prop(
                "string",
                "Only this kind of code",
                enum=["right-pincode", "right-return-code", "right-access-code"],
            ),
        },
        {
            "codeType": {"type": "string"},
            "code": NULLABLE_STR,
            "deviceId": NULLABLE_STR,
            "keyId": NULLABLE_STR,
            "contractId": NULLABLE_STR,
        },
        ["codeType"],
        {
            "eventType": "code-entered",
            "codeType": "right-pincode",
            "code": "482913",
            "deviceId": "000111",
            "lockerIndex": "4",
            "keyId": "iloq-0001",
            "contractId": "c-7f3a",
            "contractObjectId": "c-7f3a",
        },
    ),
    _v2_trigger(
        "v2_device_alarm",
        "Automat alarm",
        "Starts when an automat raises or clears an alarm (error, power, moved, offline).",
        {
            "deviceId": prop("string", "Only this automat"),
            "alarmType": prop(
                "string",
                "Only this alarm",
                enum=[
                    "DEVICE_ERROR",
                    "DEVICE_POWER_DISCONNECTED",
                    "DEVICE_LOW_POWER",
                    "DEVICE_MOVED",
                    "DEVICE_DISCONNECTED",
                    "DEVICE_WIFI_OFFLINE",
                ],
            ),
            "state": prop(
                "string",
                "Only activations or only deactivations",
                enum=["activated", "deactivated"],
            ),
        },
        {
            "alarmType": {"type": "string"},
            "state": {"type": "string"},
            "deviceId": {"type": "string"},
            "start": NULLABLE_STR,
            "end": NULLABLE_STR,
            "acknowledged": {"type": "boolean"},
        },
        ["alarmType", "state", "deviceId"],
        {
            "eventType": "device-alarm",
            "alarmType": "DEVICE_DISCONNECTED",
            "state": "activated",
            "deviceId": "000111",
            "start": "2026-03-01T15:02:11.000Z",
            "end": None,
            "acknowledged": False,
        },
    ),
]

TRIGGERS = V1_TRIGGERS + V2_TRIGGERS
