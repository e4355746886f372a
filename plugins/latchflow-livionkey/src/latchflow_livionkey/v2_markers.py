"""How a step finds the iLOQ key contract it made: by the contract's pincodes.

API V2 takes neither an idempotency key nor a reference of ours for iLOQ contracts (V2 §4),
but it takes the pincodes (V2 §5.1) and lists them with each contract. A step that gives no
pincodes gets ones derived from its idempotency key, keyed by the connection's private key (so
nobody without that key can predict them); a retry looks for a contract with those pincodes,
the same type, window and pick-up location, and adopts it instead of making another.
"""

from __future__ import annotations

import hashlib
import hmac

from latchflow import JSON, parse_moment
from latchflow_livionkey.assumptions import V2_CONTRACT_FILTERS, V2_PINCODE_DIGITS
from latchflow_livionkey.v2_client import V2Client

LOCATION_FIELDS = ("groupId", "keyAutomatId", "keyIds")
LOOKUP_LIMIT = 10_000


def marker_pincodes(secret: str, idempotency_key: str, count: int) -> list[str]:
    """``count`` different pincodes of V2_PINCODE_DIGITS digits, the same for every attempt."""
    key = hashlib.sha256(secret.encode()).digest()
    lowest = 10 ** (V2_PINCODE_DIGITS - 1)
    codes: list[str] = []
    n = 0
    while len(codes) < count:
        digest = hmac.new(key, f"{idempotency_key}:{n}".encode(), hashlib.sha256).digest()
        code = str(lowest + int.from_bytes(digest[:8], "big") % (9 * lowest))
        if code not in codes:
            codes.append(code)
        n += 1
    return codes


def _same_moment(given: object, listed: object) -> bool:
    if given is None or listed is None:
        return given is listed
    return parse_moment(given) == parse_moment(listed)


def carries_marker(contract: JSON, body: JSON) -> bool:
    """Whether ``contract`` is the one the create ``body`` (its ``input``) made."""
    codes = [(k.get("storageInfo") or {}).get("pincode") for k in contract.get("keys") or []]
    live = {c for c in codes if c}  # a key's pincode is null once it can no longer be used
    if contract.get("contractType") != body["contractType"]:
        return False
    if len(codes) != len(body["pincodes"]) or not live or not live <= set(body["pincodes"]):
        return False
    if any(contract.get(name) != body.get(name) for name in LOCATION_FIELDS):
        return False
    return all(_same_moment(body[k], contract.get(k)) for k in ("start", "end") if k in body)


async def contracts_carrying(client: V2Client, body: JSON) -> list[JSON]:
    """The contracts that carry the marker of the create ``body``."""
    found: dict[str, JSON] = {}
    for name in V2_CONTRACT_FILTERS:
        for contract in await client.list_all(
            "/iloq/keycontracts", {name: True}, max_items=LOOKUP_LIMIT
        ):
            if carries_marker(contract, body):
                found.setdefault(str(contract["id"]), contract)
    return list(found.values())
