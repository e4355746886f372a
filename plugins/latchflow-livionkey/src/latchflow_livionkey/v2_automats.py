"""API V2 automats, automat groups and the iLOQ access rights a handover programs."""

from __future__ import annotations

from functools import partial
from typing import Any

from latchflow import JSON, Action, Pending, RetryableError, RetrySafety, RunContext
from latchflow_livionkey.assumptions import V2_PINCODE_DIGITS
from latchflow_livionkey.deadline import DEADLINE_INPUT, RETRY_WITHIN_DEADLINE, open_in_time
from latchflow_livionkey.duplicates import (
    REMOVED_OUTPUT,
    VERIFY_INPUT,
    remove_copies,
    verify_later,
    verifying,
)
from latchflow_livionkey.schemas import list_of, obj, open_obj, prop
from latchflow_livionkey.v2_client import V2Client, V2Error
from latchflow_livionkey.v2_fields import client_of, v2_action


async def list_automats(ctx: RunContext, data: JSON) -> JSON:
    automats = await client_of(ctx).list_all("/automats")
    if data.get("activeOnly"):
        automats = [a for a in automats if a.get("lifecycleState") == "active"]
    return {"automats": automats, "count": len(automats)}


async def get_automat(ctx: RunContext, data: JSON) -> JSON:
    automat: JSON = await client_of(ctx).request("GET", f"/automats/{data['id']}")
    return automat


async def update_automat(ctx: RunContext, data: JSON) -> JSON:
    body = {k: v for k, v in data.items() if k != "id" and v is not None}
    automat: JSON = await client_of(ctx).request("PATCH", f"/automats/{data['id']}", json_body=body)
    return automat


async def send_pincode(ctx: RunContext, data: JSON) -> JSON:
    client, automat = client_of(ctx), data["automatId"]
    body = {"pincode": data["pincode"], "proximityCheck": bool(data.get("proximityCheck"))}

    async def send(seconds_left: float) -> JSON:
        result: JSON = await client.request(
            "POST", f"/automats/{automat}/sendPincode", json_body=body, within=seconds_left
        )
        if not result.get("success") and result.get("reason") == "AUTOMAT_BUSY":
            raise RetryableError(f"automat {automat} is busy (AUTOMAT_BUSY); trying again")
        return result

    result = await open_in_time(ctx, data, f"the locker of automat {automat}", send)
    return {"success": bool(result.get("success")), "reason": result.get("reason")}


async def list_groups(ctx: RunContext, data: JSON) -> JSON:
    params = {k: data.get(k) for k in ("customerId", "search")}
    groups = await client_of(ctx).list_all("/groups", params)
    return {"groups": groups, "count": len(groups)}


async def create_group(ctx: RunContext, data: JSON) -> JSON | Pending:
    """Create, or on a retry adopt, the group with this exact name, type and customer."""
    client = client_of(ctx)
    body = {"name": data["name"], "type": 2 if data.get("type") == "key" else 1}
    if data.get("customerId"):
        body["customerId"] = data["customerId"]
    own = verifying(ctx)
    if own is not None:
        found = [str(g["id"]) for g in await _groups_like(client, body)]
        removed = await remove_copies(own, found, partial(_delete_group, client), "group")
        group: JSON = await client.request("GET", f"/groups/{own}")
        return {**group, "duplicatesRemoved": removed}
    if ctx.attempt > 1 and (same := await _groups_like(client, body)):
        return dict(same[0])
    group = await client.request("POST", "/groups", json_body=body)
    return verify_later(ctx, data, str(group["id"])) if ctx.attempt > 1 else group


async def _groups_like(client: V2Client, body: JSON) -> list[JSON]:
    """Groups with exactly the name, type and customer of the create ``body``."""
    params = {"search": body["name"], "customerId": body.get("customerId")}
    return [
        group
        for group in await client.list_all("/groups", params)
        if group.get("name") == body["name"]
        and group.get("type") == body["type"]
        and group.get("customerId") == body.get("customerId")
    ]


async def _delete_group(client: V2Client, group_id: str) -> None:
    try:
        await client.request("DELETE", f"/groups/{group_id}")
    except V2Error as exc:
        if exc.status != 404:  # already gone
            raise


async def update_group(ctx: RunContext, data: JSON) -> JSON:
    body = {k: data[k] for k in ("name", "customerId") if data.get(k) is not None}
    group: JSON = await client_of(ctx).request("PATCH", f"/groups/{data['id']}", json_body=body)
    return group


async def list_access_rights(ctx: RunContext, data: JSON) -> JSON:
    params: dict[str, Any] = {"search": data.get("search")}
    if data.get("defaultOnly"):
        params["returnDefaultAccessesOnly"] = True
    rights = await client_of(ctx).list_all("/iloq/accessRights", params)
    return {"accessRights": rights, "count": len(rights)}


AUTOMAT_SAMPLE = {
    "id": "000111",
    "name": "Kamppi automat",
    "lifecycleState": "active",
    "groups": [{"id": "grp-helsinki", "name": "Helsinki centre"}],
    "lockers": [],
}
GROUP_SAMPLE = {
    "id": "grp-helsinki",
    "name": "Helsinki centre",
    "customerId": "cust-demo",
    "type": 1,
    "members": [{"id": "000111", "name": "Kamppi automat"}],
}
GROUP_OUT = open_obj(
    {"id": {"type": "string"}, "name": {"type": "string"}, "duplicatesRemoved": REMOVED_OUTPUT},
    ["id", "name"],
)

ACTIONS: list[Action] = [
    v2_action(
        "list_automats",
        "List key automats (V2)",
        "Every automat with its groups and lockers (GET /automats, every page), for choosing a pick-up location.",
        list_automats,
        obj({"activeOnly": prop("boolean", "Only installed, active automats")}),
        list_of("automats"),
        {"automats": [AUTOMAT_SAMPLE], "count": 1},
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "get_automat",
        "Get a key automat (V2)",
        "One automat with its lockers (GET /automats/{id}).",
        get_automat,
        obj({"id": prop("string", "Automat (device) id")}, ["id"]),
        open_obj({"id": {"type": "string"}}, ["id"]),
        AUTOMAT_SAMPLE,
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "update_automat",
        "Update a key automat (V2)",
        "Rename an automat, set its label, time zone, location, or the automat groups it belongs to (PATCH /automats/{id}).",
        update_automat,
        obj(
            {
                "id": prop("string", "Automat (device) id"),
                "name": prop("string", "New name"),
                "label": prop("string", "New label"),
                "groups": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Ids of the groups the automat belongs to (replaces the list)",
                },
                "timezone": prop("string", "IANA time zone, e.g. Europe/Helsinki"),
                "location": obj(
                    {
                        "address": prop("string", "Street address"),
                        "postalCode": prop("string", "Postal code"),
                        "postalOffice": prop("string", "Postal office"),
                    }
                )
                | {"description": "Where the automat is"},
            },
            ["id"],
        ),
        open_obj({"id": {"type": "string"}}, ["id"]),
        AUTOMAT_SAMPLE,
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "send_pincode",
        "Send a pincode to an automat (V2)",
        "Enter a pincode at an automat remotely (POST /automats/{id}/sendPincode): the locker opens and iLOQ keys are programmed. With proximityCheck the user must press # at the automat. A busy automat is retried until deadlineSeconds after the step started; then the step fails as 'locker not opened in time'. Sending the same pincode again opens nothing new (its key is out, or its locker already open), so a call whose answer was lost is sent again; the answer then tells what the automat did with the repeat.",
        send_pincode,
        obj(
            {
                "automatId": prop("string", "Automat (device) id"),
                "pincode": prop(
                    "string",
                    f"The contract's pincode ({V2_PINCODE_DIGITS} digits)",
                    pattern=f"^[0-9]{{{V2_PINCODE_DIGITS}}}$",
                ),
                "proximityCheck": prop(
                    "boolean", "Require the user to press # at the automat", default=False
                ),
                "deadlineSeconds": DEADLINE_INPUT,
            },
            ["automatId", "pincode"],
        ),
        open_obj(
            {"success": {"type": "boolean"}, "reason": {"type": ["string", "null"]}}, ["success"]
        ),
        {"success": True, "reason": None},
        RetrySafety.IDEMPOTENT,
        RETRY_WITHIN_DEADLINE,
    ),
    v2_action(
        "list_groups",
        "List automat groups (V2)",
        "Automat and key groups (GET /groups, every page).",
        list_groups,
        obj(
            {
                "customerId": prop("string", "Only this customer's groups"),
                "search": prop("string", "Only groups whose name contains this"),
            }
        ),
        list_of("groups"),
        {"groups": [GROUP_SAMPLE], "count": 1},
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "create_group",
        "Create an automat group (V2)",
        "A new automat (device) or key group (POST /groups); add automats with 'Update a key automat'. Safe to retry: a retry adopts a group with exactly this name, type and customer instead of making another, and a group made on a retry is checked verifyAfterSeconds later for a copy LivionKey applied late.",
        create_group,
        obj(
            {
                "name": prop("string", "Group name"),
                "customerId": prop("string", "Owning customer id"),
                "type": prop(
                    "string",
                    "device (automats) or key group",
                    enum=["device", "key"],
                    default="device",
                ),
                "verifyAfterSeconds": VERIFY_INPUT,
            },
            ["name"],
        ),
        GROUP_OUT,
        GROUP_SAMPLE,
        RetrySafety.RECONCILE,
    ),
    v2_action(
        "update_group",
        "Update an automat group (V2)",
        "Rename a group or change its customer (PATCH /groups/{id}).",
        update_group,
        obj(
            {
                "id": prop("string", "Group id"),
                "name": prop("string", "New name"),
                "customerId": prop("string", "New customer id"),
            },
            ["id"],
        ),
        GROUP_OUT,
        GROUP_SAMPLE,
        RetrySafety.IDEMPOTENT,
    ),
    v2_action(
        "list_access_rights",
        "List iLOQ access rights (V2)",
        "Access rights that can be programmed into keys (GET /iloq/accessRights, every page).",
        list_access_rights,
        obj(
            {
                "search": prop("string", "Only rights whose name contains this"),
                "defaultOnly": prop("boolean", "Only the default accesses"),
            }
        ),
        list_of("accessRights"),
        {
            "accessRights": [
                {"id": "ar-main-door", "name": "Main door", "realEstatePath": "Demo estate/A"}
            ],
            "count": 1,
        },
        RetrySafety.IDEMPOTENT,
    ),
]
