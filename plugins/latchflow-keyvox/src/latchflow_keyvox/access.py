"""KEYVOX credentials for access grants: PINs on units (doors, rooms) and on locker boxes.

Built on the plugin's actions, run with the reconciler's context: ``create_lock_pin`` and
``create_locker_pin`` issue once per idempotency key (the marker in ``targetName``, see
``actions/reconcile.py``), ``change_*`` moves a PIN's window in place, ``disable_*`` revokes
it, and the unit's PIN list or the locker's status shows what KEYVOX has. List units, and
List lockers with each locker's status, list the resources. KEYVOX has no weekly hours: the
reconciler issues one occurrence at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from latchflow import (
    JSON,
    CredentialKind,
    CredentialProvider,
    CredentialRequest,
    FatalError,
    Pending,
    Resource,
    ResourceKind,
    RunContext,
    VendorCredential,
    parse_moment,
    unix_seconds,
)
from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions import ACTIONS
from latchflow_keyvox.actions.base import LIMIT, VENDOR
from latchflow_keyvox.actions.fields import TARGET_NAME
from latchflow_keyvox.answers import Refused
from latchflow_keyvox.markers import strip_marker

UNIT = ResourceKind(
    key="keyvox.unit",
    title="KEYVOX unit",
    description="A door or room with KEYVOX locks: the KEYVOX unit id, as listed by List units.",
    credentials=(CredentialKind.PIN,),
)
LOCKER_BOX = ResourceKind(
    key="keyvox.locker_box",
    title="KEYVOX locker box",
    description=(
        "One box of a KEYVOX smart locker: the locker's device id and the box number as"
        " <deviceId>/<boxNum> (e.g. A4:CF:12:9B:3E:01/00-03), as listed by List lockers and"
        " Get locker status."
    ),
    credentials=(CredentialKind.PIN,),
)

RUNS = {action.key: action.run for action in ACTIONS}
LABEL_LENGTH = int(TARGET_NAME.schema["maxLength"])
DELIVERY_WORDS = {A.DELIVERY_WAITING: "waiting for delivery"} | dict.fromkeys(
    A.DELIVERED_STATUSES, "delivered"
)


async def run(ctx: RunContext, key: str, data: JSON) -> JSON | Pending:
    """Run the KEYVOX action ``key`` (``keyvox.<key>``) as a flow step would."""
    return await RUNS[f"{VENDOR}.{key}"](ctx, data)


async def read(ctx: RunContext, key: str, data: JSON) -> JSON:
    """Run an action that answers at once (a read, a change, a revocation)."""
    result = await run(ctx, key, data)
    assert not isinstance(result, Pending), f"keyvox.{key} does not wait"
    return result


def moment(value: Any) -> datetime | None:
    """An aware datetime from KEYVOX's unix seconds; None when there is none."""
    return parse_moment(value) if value not in (None, "") else None


def window(request: CredentialRequest) -> JSON:
    """The request's window as action input (unix seconds)."""
    w = request.window
    return {"startTime": unix_seconds(w.starts_at), "endTime": unix_seconds(w.ends_at)}


def credential(resource: str, pin: JSON) -> VendorCredential:
    """A KEYVOX PIN (``pinId``, ``pinCode``, ``sTime``, ``eTime``, ``targetName``)."""
    return VendorCredential(
        ids={"pinId": str(pin["pinId"])},
        resource=resource,
        kind=CredentialKind.PIN,
        active=str(pin.get("pinStatus", "")) != A.RESERVATION_PIN_DELETED,
        starts_at=moment(pin.get("sTime")),
        ends_at=moment(pin.get("eTime")),
        secret=str(pin.get("pinCode") or "") or None,
        holder=strip_marker(str(pin.get("targetName") or "")) or None,
    )


def pins_only(request: CredentialRequest) -> None:
    """Refuse a credential kind KEYVOX cannot issue."""
    if request.kind is not CredentialKind.PIN:
        raise FatalError(
            f"KEYVOX issues only PINs on {request.resource_kind} resources, not"
            f" {request.kind.value}: let the grant prefer a PIN for {request.resource}"
        )


def locker_box(resource: str) -> JSON:
    """The ``deviceId`` and ``boxNum`` of a ``keyvox.locker_box`` resource."""
    device, slash, box = resource.rpartition("/")
    if not slash or not device or not box:
        raise FatalError(
            f"{resource!r} is not a KEYVOX locker box: give <deviceId>/<boxNum>, e.g."
            " A4:CF:12:9B:3E:01/00-03 (see List lockers and Get locker status)"
        )
    return {"deviceId": device, "boxNum": box}


@dataclass(frozen=True)
class PinActions:
    """The actions that issue, move and revoke one kind of KEYVOX PIN."""

    create: str
    change: str
    disable: str
    where: Callable[[str], JSON]
    """The create input that names the resource."""
    fixed: JSON


def provider(
    kind: ResourceKind,
    actions: PinActions,
    inspect: Callable[[RunContext, str, str], Awaitable[list[VendorCredential]]],
    resources: Callable[[RunContext, str], Awaitable[list[Resource]]],
) -> CredentialProvider:
    """A provider for ``kind`` built on ``actions``, an ``inspect`` and a ``resources``."""

    async def issue(ctx: RunContext, request: CredentialRequest) -> VendorCredential | Pending:
        """Create the PIN once per ``ctx.idempotency_key`` (a retry adopts it)."""
        pins_only(request)
        data = {**actions.where(request.resource), **window(request), **actions.fixed}
        made = await run(ctx, actions.create, {**data, "targetName": request.label[:LABEL_LENGTH]})
        if isinstance(made, Pending):
            return made
        when = {"sTime": data["startTime"], "eTime": data["endTime"]}
        return credential(request.resource, {**when, **made})

    async def change(
        ctx: RunContext, issued: VendorCredential, request: CredentialRequest
    ) -> VendorCredential:
        """Move the PIN's window (and rename it when the label changed), in place."""
        data = {"pinId": str(issued.ids["pinId"]), **window(request)}
        label = request.label[:LABEL_LENGTH]
        if label != issued.holder:
            data["targetName"] = label
        await read(ctx, actions.change, data)
        return replace(
            issued,
            active=True,
            starts_at=moment(data["startTime"]),
            ends_at=moment(data["endTime"]),
            holder=label or None,
            status=None,
            delivered=None,
        )

    async def revoke(ctx: RunContext, issued: VendorCredential) -> None:
        """Disable the PIN; one KEYVOX no longer knows is gone already."""
        try:
            await read(ctx, actions.disable, {"pinId": str(issued.ids["pinId"])})
        except Refused as exc:
            if exc.answer.code != A.E_NOT_FOUND:
                raise

    return CredentialProvider(
        vendor=VENDOR,
        resource_kinds=(kind,),
        issue=issue,
        revoke=revoke,
        inspect=inspect,
        change=change,
        resources=resources,
    )


def ahead(ctx: RunContext) -> JSON:
    """From now to the listing horizon: every PIN that works now or will."""
    now = unix_seconds(ctx.clock.now())
    return {"startTime": now, "endTime": now + A.PIN_LIST_HORIZON_SECONDS}


async def inspect_unit(ctx: RunContext, resource_kind: str, unit_id: str) -> list[VendorCredential]:
    """Every PIN of the unit valid now or later, with its delivery to the locks."""
    query = {"unitId": unit_id, **ahead(ctx), "limit": LIMIT.schema["maximum"]}
    listed = await read(ctx, "list_unit_pins", query)
    now = int(query["startTime"])
    return [await delivery(ctx, credential(unit_id, pin), now) for pin in listed["pins"]]


async def delivery(ctx: RunContext, pin: VendorCredential, now: int) -> VendorCredential:
    """``pin`` with its delivery status; KEYVOX delivers only within a window before start."""
    starts = unix_seconds(pin.starts_at) if pin.starts_at else 0
    if not pin.active or starts - A.DELIVERY_WINDOW_SECONDS > now:
        return replace(pin, delivered=False) if pin.active else pin
    status = await read(ctx, "get_lock_pin_status", dict(pin.ids))
    code = str(status.get("status") or "")
    word = DELIVERY_WORDS.get(code, "status")
    return replace(pin, status=f"{word} ({code})", delivered=bool(status.get("delivered")))


async def inspect_locker_box(
    ctx: RunContext, resource_kind: str, resource: str
) -> list[VendorCredential]:
    """Every PIN of the box valid now or later, as Get locker status lists them."""
    where = locker_box(resource)
    status = await read(ctx, "get_locker_status", {"deviceId": where["deviceId"], **ahead(ctx)})
    box = next((b for b in status.get("boxes") or [] if b.get("boxNum") == where["boxNum"]), None)
    if box is None:
        raise FatalError(
            f"KEYVOX locker {where['deviceId']} has no box {where['boxNum']}: check the"
            f" place's {LOCKER_BOX.key} resource against Get locker status"
        )
    return [credential(resource, pin) for pin in box.get(A.LOCKER_BOX_PIN_LIST_KEY) or []]


async def list_units(ctx: RunContext, resource_kind: str) -> list[Resource]:
    """The organization's units (List units), named as KEYVOX shows them."""
    listed = await read(ctx, "list_units", {})
    return [
        Resource(str(u["unitId"]), str(u.get("unitName") or u["unitId"])) for u in listed["units"]
    ]


async def list_locker_boxes(ctx: RunContext, resource_kind: str) -> list[Resource]:
    """Every box of every locker (List lockers, then Get locker status of each)."""
    found: list[Resource] = []
    for locker in (await read(ctx, "list_lockers", {}))["lockers"]:
        device = str(locker["deviceId"])
        status = await read(ctx, "get_locker_status", {"deviceId": device})
        name = str(status.get("deviceName") or locker.get("deviceName") or device)
        found += [
            Resource(f"{device}/{b['boxNum']}", f"{name} box {b['boxNum']}")
            for b in status.get("boxes") or []
        ]
    return found


UNIT_PROVIDER = provider(
    UNIT,
    PinActions(
        "create_lock_pin",
        "change_lock_pin",
        "disable_lock_pin",
        lambda unit_id: {"unitId": unit_id},
        {},
    ),
    inspect_unit,
    list_units,
)
LOCKER_BOX_PROVIDER = provider(
    LOCKER_BOX,
    PinActions(
        "create_locker_pin",
        "change_locker_pin",
        "disable_locker_pin",
        locker_box,
        {"singleUse": False},
    ),
    inspect_locker_box,
    list_locker_boxes,
)
PROVIDERS = (UNIT_PROVIDER, LOCKER_BOX_PROVIDER)
