"""API V2 automats, automat groups and the iLOQ access rights a handover programs."""

from __future__ import annotations

from typing import Any

from latchflow import JSON, Action, RetryableError, RunContext
from latchflow_livionkey.schemas import list_of, obj, open_obj, prop
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
    body = {"pincode": data["pincode"], "proximityCheck": bool(data.get("proximityCheck"))}
    result: JSON = await client_of(ctx).request(
        "POST", f"/automats/{data['automatId']}/sendPincode", json_body=body
    )
    if not result.get("success") and result.get("reason") == "AUTOMAT_BUSY":
        raise RetryableError(f"automat {data['automatId']} is busy (AUTOMAT_BUSY)", retry_after=10)
    return {"success": bool(result.get("success")), "reason": result.get("reason")}


async def list_groups(ctx: RunContext, data: JSON) -> JSON:
    params = {k: data.get(k) for k in ("customerId", "search")}
    groups = await client_of(ctx).list_all("/groups", params)
    return {"groups": groups, "count": len(groups)}


async def create_group(ctx: RunContext, data: JSON) -> JSON:
    body = {"name": data["name"], "type": 2 if data.get("type") == "key" else 1}
    if data.get("customerId"):
        body["customerId"] = data["customerId"]
    group: JSON = await client_of(ctx).request("POST", "/groups", json_body=body)
    return group


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
GROUP_OUT = open_obj({"id": {"type": "string"}, "name": {"type": "string"}}, ["id", "name"])

ACTIONS: list[Action] = [
    v2_action(
        "list_automats",
        "List key automats (V2)",
        "Every automat with its groups and lockers (GET /automats, every page), for choosing a pick-up location.",
        list_automats,
        obj({"activeOnly": prop("boolean", "Only installed, active automats")}),
        list_of("automats"),
        {"automats": [AUTOMAT_SAMPLE], "count": 1},
        True,
    ),
    v2_action(
        "get_automat",
        "Get a key automat (V2)",
        "One automat with its lockers (GET /automats/{id}).",
        get_automat,
        obj({"id": prop("string", "Automat (device) id")}, ["id"]),
        open_obj({"id": {"type": "string"}}, ["id"]),
        AUTOMAT_SAMPLE,
        True,
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
        True,
    ),
    v2_action(
        "send_pincode",
        "Send a pincode to an automat (V2)",
        "Enter a pincode at an automat remotely (POST /automats/{id}/sendPincode): the locker opens and iLOQ keys are programmed. With proximityCheck the user must press # at the automat.",
        send_pincode,
        obj(
            {
                "automatId": prop("string", "Automat (device) id"),
                "pincode": prop("string", "The contract's pincode"),
                "proximityCheck": prop(
                    "boolean", "Require the user to press # at the automat", default=False
                ),
            },
            ["automatId", "pincode"],
        ),
        open_obj(
            {"success": {"type": "boolean"}, "reason": {"type": ["string", "null"]}}, ["success"]
        ),
        {"success": True, "reason": None},
        False,
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
        True,
    ),
    v2_action(
        "create_group",
        "Create an automat group (V2)",
        "A new automat (device) or key group (POST /groups); add automats with 'Update a key automat'.",
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
            },
            ["name"],
        ),
        GROUP_OUT,
        GROUP_SAMPLE,
        False,
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
        True,
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
        True,
    ),
]
