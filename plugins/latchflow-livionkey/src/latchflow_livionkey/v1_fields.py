"""What the API V1 action modules share: field schemas, samples and the step's client."""

from __future__ import annotations

from functools import partial

from latchflow import RunContext
from latchflow_livionkey.schemas import VENDOR_V1, action, connection_of, prop
from latchflow_livionkey.v1_client import V1Client

DEVICE_ID = prop("string", "LivionKey device id (e.g. '000111')")
KEY_ID = prop("string", "Your unique key id (keyId) in the device")
SAMPLE_CONTRACT = {
    "id": "60531613299ae000094cd278",
    "contractId": "booking-1001",
    "keyId": "apt-101",
    "devices": [{"id": "000111", "keyId": "apt-101"}],
    "pincode": "594395",
    "start": "2026-03-01T14:00:00.000Z",
    "end": "2026-03-03T11:00:00.000Z",
    "person": "Ada Lovelace",
    "contacts": [],
}
SAMPLE_KEY = {
    "keyId": "apt-101",
    "deviceId": "000111",
    "keyName": "Apartment 101",
    "lockerIndex": 0,
    "shared": False,
    "backupCodes": ["83920471"],
    "contracts": [],
}

v1_action = partial(action, VENDOR_V1)
"""A ``livionkey.<key>`` action on a ``livionkey`` (API V1) connection."""


def client_of(ctx: RunContext) -> V1Client:
    return V1Client(connection_of(ctx, VENDOR_V1))
