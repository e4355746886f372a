"""Access grants on LivionKey: the credential providers of both API versions.

API V1 gives a person a pincode for a key in a device (a contract); API V2 hands over an iLOQ
key, programmed with access rights at pick-up, from an automat or an automat group (an iLOQ key
contract). Both build on the contract actions, which already make a retried create adopt what
an earlier attempt made; the device, automat, group and access right lists give the resources.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from latchflow import (
    JSON,
    CredentialKind,
    CredentialProvider,
    CredentialRequest,
    FatalError,
    Holder,
    Pending,
    Resource,
    ResourceKind,
    RunContext,
    VendorCredential,
    parse_moment,
)
from latchflow_livionkey import v1_contracts, v1_devices, v2_automats, v2_contracts
from latchflow_livionkey.assumptions import V2_CONTRACT_FILTERS
from latchflow_livionkey.schemas import VENDOR_V1, VENDOR_V2

KEY = ResourceKind(
    key="livionkey.key",
    title="LivionKey key (API V1)",
    description=(
        "A key in a LivionKey30 or LivionKey1 device: the device id and the key's keyId joined"
        " by a slash, e.g. 000111/apt-101 (as listed by List devices and List a device's keys)."
        " The PIN opens the key's locker for the grant's window."
    ),
    credentials=(CredentialKind.PIN,),
)
AUTOMAT = ResourceKind(
    key="livionkey.key_automat",
    title="LivionKey iLOQ key automat (API V2)",
    description=(
        "An automat id (as listed by List automats), a slash, then the iLOQ access right ids"
        " the key gets, comma-separated (as listed by List access rights), e.g."
        " 000111/ar-apt-12,ar-main-door. The person fetches one key there with a pincode;"
        " handovers made there with exactly these access rights belong to this resource."
    ),
    credentials=(CredentialKind.KEY_HANDOVER,),
)
GROUP = ResourceKind(
    key="livionkey.automat_group",
    title="LivionKey automat group (API V2)",
    description=(
        "An automat group id (as listed by List groups), a slash, then the iLOQ access right"
        " ids the key gets, comma-separated (as listed by List access rights), e.g."
        " grp-helsinki/ar-apt-12. LivionKey picks the automat of the group; handovers made"
        " for the group with exactly these access rights belong to this resource."
    ),
    credentials=(CredentialKind.KEY_HANDOVER,),
)
START_MARGIN = timedelta(minutes=1)
"""V1 refuses a start in the past: a window that has begun starts this long after now."""


def _parts(resource: str, kind: ResourceKind) -> tuple[str, str]:
    """The two halves of a ``<id>/<rest>`` resource id, refused when one is missing."""
    head, _, tail = resource.partition("/")
    if not head or not tail:
        raise FatalError(f"{resource!r} is not a {kind.key} resource id: {kind.description}")
    return head, tail


def _check_kind(request: CredentialRequest, kind: ResourceKind) -> None:
    if request.kind not in kind.credentials:
        offered = ", ".join(kind.credentials)
        raise FatalError(
            f"{kind.title} cannot issue a {request.kind} credential, only {offered}:"
            " prefer one of these for this place, or map the place to another resource"
        )


def _moment(value: Any) -> datetime | None:
    return None if value is None else parse_moment(value)


def _shown(item: JSON) -> str:
    return str(item.get("name") or item["id"])


def _contact(name: str, holder: Holder) -> JSON:
    """Who LivionKey shows and notifies: by SMS and e-mail where the holder has them."""
    contact: JSON = {"name": name, "sendSms": bool(holder.phone), "sendEmail": bool(holder.email)}
    if holder.phone:
        contact["phoneNumber"] = holder.phone
    if holder.email:
        contact["email"] = holder.email
    return contact


# --- API V1: a contract's pincode for a key ----------------------------------------------------


def _v1_input(request: CredentialRequest) -> JSON:
    device, key = _parts(request.resource, KEY)
    contact = {**_contact(request.holder.name, request.holder), "language": "en-gb"}
    return {
        "deviceId": device,
        "keyId": key,
        "end": request.window.ends_at,
        "person": request.label,
        "contacts": [contact],
    }


def _v1_credential(ctx: RunContext, resource: str, contract: JSON) -> VendorCredential:
    end = _moment(contract.get("end"))
    return VendorCredential(
        ids={"contract": str(contract["id"])},
        resource=resource,
        kind=CredentialKind.PIN,
        active=end is None or end > ctx.clock.now(),
        starts_at=_moment(contract.get("start")),
        ends_at=end,
        secret=contract.get("pincode"),
        holder=contract.get("person"),
    )


async def _v1_contracts(ctx: RunContext, resource: str) -> list[JSON]:
    device, key = _parts(resource, KEY)
    listed = await v1_devices.list_device_contracts(ctx, {"deviceId": device})
    return [
        c
        for c in listed["contracts"]
        if any(d.get("id") == device and d.get("keyId") == key for d in c.get("devices") or [])
    ]


async def v1_issue(ctx: RunContext, request: CredentialRequest) -> VendorCredential:
    """Create a contract whose contractId is the issuance's idempotency key; a later attempt
    first adopts the contract with that contractId (its start may have been moved to now)."""
    _check_kind(request, KEY)
    data = _v1_input(request)
    if ctx.attempt > 1:
        for contract in await _v1_contracts(ctx, request.resource):
            if contract.get("contractId") == ctx.idempotency_key:
                return _v1_credential(ctx, request.resource, contract)
    data["start"] = max(request.window.starts_at, ctx.clock.now() + START_MARGIN)
    made = await v1_contracts.create_contract(ctx, data)
    return _v1_credential(ctx, request.resource, {**made, "person": request.label})


async def v1_change(
    ctx: RunContext, before: VendorCredential, request: CredentialRequest
) -> VendorCredential:
    """Move the contract's window in place; a running contract keeps its start when the new
    start has passed too (V1 refuses a start in the past)."""
    _check_kind(request, KEY)
    data = {**_v1_input(request), "id": before.ids["contract"]}
    now, start = ctx.clock.now(), request.window.starts_at
    running = before.starts_at is not None and before.starts_at <= now
    if start > now + START_MARGIN or not running:
        data["start"] = max(start, now + START_MARGIN)
    updated = await v1_contracts.update_contract(ctx, data)
    return _v1_credential(ctx, request.resource, updated)


async def v1_revoke(ctx: RunContext, credential: VendorCredential) -> None:
    """Delete the contract (one already deleted counts as deleted)."""
    await v1_contracts.delete_contract(ctx, {"id": credential.ids["contract"]})


async def v1_inspect(ctx: RunContext, resource_kind: str, resource: str) -> list[VendorCredential]:
    """Every contract on the key, ended ones as inactive."""
    return [_v1_credential(ctx, resource, c) for c in await _v1_contracts(ctx, resource)]


# --- API V2: an iLOQ key handed over at an automat or an automat group -----------------------


def _v2_kind(key: str) -> ResourceKind:
    return GROUP if key == GROUP.key else AUTOMAT


def _v2_place(resource_kind: str, resource: str) -> tuple[str, str, list[str]]:
    """The location field, its id and the access right ids of a V2 resource."""
    kind = _v2_kind(resource_kind)
    where, rights = _parts(resource, kind)
    field = "groupId" if kind is GROUP else "keyAutomatId"
    return field, where, [r.strip() for r in rights.split(",") if r.strip()]


def _v2_credential(ctx: RunContext, resource: str, contract: JSON) -> VendorCredential:
    end = _moment(contract.get("end"))
    keys = contract.get("keys") or []
    waiting = [k for k in keys if k.get("status") != "key-returned"]
    contact = contract.get("contact") or {}
    return VendorCredential(
        ids={"contract": str(contract["id"])},
        resource=resource,
        kind=CredentialKind.KEY_HANDOVER,
        active=bool(waiting) and (end is None or end > ctx.clock.now()),
        starts_at=_moment(contract.get("start")),
        ends_at=end,
        secret=contract.get("pincode"),
        holder=contact.get("name") or contact.get("phoneNumber") or contact.get("email"),
        status=keys[0].get("status") if keys else None,
    )


async def v2_issue(ctx: RunContext, request: CredentialRequest) -> VendorCredential | Pending:
    """Create a default iLOQ contract for one key; a later attempt adopts the contract that
    carries the issuance's pincodes, and one made on a retry is checked for copies later."""
    _check_kind(request, _v2_kind(request.resource_kind))
    field, where, rights = _v2_place(request.resource_kind, request.resource)
    data = {
        "contractType": "default",
        field: where,
        "numberOfKeys": 1,
        "accessRightIds": rights,
        "start": request.window.starts_at,
        "end": request.window.ends_at,
        "contact": _contact(request.label, request.holder),
    }
    made = await v2_contracts.create_iloq_contract(ctx, data)
    if isinstance(made, Pending):
        return made
    return _v2_credential(ctx, request.resource, made)


async def v2_change(
    ctx: RunContext, before: VendorCredential, request: CredentialRequest
) -> VendorCredential:
    """Move the contract's window (and update its contact) in place."""
    _check_kind(request, _v2_kind(request.resource_kind))
    data = {
        "id": before.ids["contract"],
        "start": request.window.starts_at,
        "end": request.window.ends_at,
        "contact": _contact(request.label, request.holder),
    }
    return _v2_credential(ctx, request.resource, await v2_contracts.update_iloq_contract(ctx, data))


async def v2_revoke(ctx: RunContext, credential: VendorCredential) -> None:
    """Delete the contract (one already deleted counts as deleted); LivionKey refuses while
    the key is out, which fails naming the rule."""
    await v2_contracts.delete_iloq_contract(ctx, {"id": credential.ids["contract"]})


async def v2_inspect(ctx: RunContext, resource_kind: str, resource: str) -> list[VendorCredential]:
    """Every ongoing or future handover made at exactly this location (automat or group) with
    exactly these access rights: another resource never lists it, so latchflow's credential at
    one resource is not taken for an unknown one at another."""
    field, where, rights = _v2_place(resource_kind, resource)
    found: dict[str, JSON] = {}
    wanted = set(rights)
    for name in V2_CONTRACT_FILTERS:
        for contract in (await v2_contracts.list_iloq_contracts(ctx, {name: True}))["contracts"]:
            if contract.get(field) == where and set(contract.get("accessRightIds") or []) == wanted:
                found.setdefault(str(contract["id"]), contract)
    return [_v2_credential(ctx, resource, c) for c in found.values()]


async def v1_resources(ctx: RunContext, resource_kind: str) -> list[Resource]:
    """Every key of every LivionKey30/LivionKey1 device, named "<key> (<device>)"."""
    found: list[Resource] = []
    for device in (await v1_devices.list_devices(ctx, {}))["devices"]:
        did = str(device["deviceId"])
        for key in (await v1_devices.list_device_keys(ctx, {"deviceId": did}))["keys"]:
            name = f"{key.get('keyName') or key['keyId']} ({device.get('name') or did})"
            found.append(Resource(f"{did}/{key['keyId']}", name))
    return found


async def v2_resources(ctx: RunContext, resource_kind: str) -> list[Resource]:
    """One resource per location and access right: each active automat, or each automat (not
    key) group, with each single access right, named "<right> (key automat <automat>)"."""
    if _v2_kind(resource_kind) is GROUP:
        listed = (await v2_automats.list_groups(ctx, {}))["groups"]
        places, word = [g for g in listed if g.get("type") != 2], "automat group"
    else:
        places = (await v2_automats.list_automats(ctx, {"activeOnly": True}))["automats"]
        word = "key automat"
    rights = (await v2_automats.list_access_rights(ctx, {}))["accessRights"]
    return [
        Resource(f"{p['id']}/{r['id']}", f"{_shown(r)} ({word} {_shown(p)})")
        for p in places
        for r in rights
    ]


PROVIDERS = [
    CredentialProvider(
        vendor=VENDOR_V1,
        resource_kinds=(KEY,),
        issue=v1_issue,
        revoke=v1_revoke,
        inspect=v1_inspect,
        change=v1_change,
        resources=v1_resources,
    ),
    CredentialProvider(
        vendor=VENDOR_V2,
        resource_kinds=(AUTOMAT, GROUP),
        issue=v2_issue,
        revoke=v2_revoke,
        inspect=v2_inspect,
        change=v2_change,
        resources=v2_resources,
    ),
]
"""The providers the plugin registers: one per API version (each names one vendor)."""
