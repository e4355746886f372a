"""JSON Schema pieces shared by the Unloc actions and triggers."""

from __future__ import annotations

from typing import Any

from latchflow_unloc.assumptions import (
    DEFAULT_MAX_WAIT_SECONDS,
    DEFAULT_POLL_INTERVAL_SECONDS,
    KEY_STATES,
    MAX_PAGE_SIZE,
)
from latchflow_unloc.keys import RECURRENCE_SCHEMA

MOMENT = {"type": ["string", "number"]}
NULLABLE_STRING = {"type": ["string", "null"]}

LOCK_ID = {"type": "string", "minLength": 1, "description": "Id (UUID) of a lock in the project."}
KEY_ID = {"type": "string", "minLength": 1, "description": "Id of the key."}
APP_USER_ID = {
    "type": "string",
    "minLength": 3,
    "description": "The recipient's mobile number; normalised to E.164 (+4799887766).",
}
DEFAULT_REGION = {
    "type": "string",
    "pattern": "^[A-Za-z]{2}$",
    "description": "Country (ISO 3166 alpha-2, e.g. NO) for phone numbers written without +country.",
}

KEY_FIELDS: dict[str, Any] = {
    "lockId": LOCK_ID,
    "appUserId": APP_USER_ID,
    "start": {
        **MOMENT,
        "description": "When the key starts working (ISO 8601 or unix seconds); leave out for now.",
    },
    "end": {
        **MOMENT,
        "description": "When the key expires (ISO 8601 or unix seconds); leave out for never.",
    },
    "durationMinutes": {
        "type": "integer",
        "minimum": 1,
        "description": "Instead of end: how many minutes after start the key expires.",
    },
    "recurrence": RECURRENCE_SCHEMA,
    "metadata": {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "description": "Text labels shown with the key in Unloc Control Center.",
    },
}

WAIT_FIELDS: dict[str, Any] = {
    "pollInterval": {
        "type": "number",
        "minimum": 1,
        "maximum": 3600,
        "default": DEFAULT_POLL_INTERVAL_SECONDS,
        "description": "Seconds between checks of the Create Keys job (no worker is held meanwhile).",
    },
    "maxWait": {
        "type": "number",
        "minimum": 1,
        "default": DEFAULT_MAX_WAIT_SECONDS,
        "description": "Seconds to wait for the job to finish before the step fails.",
    },
}

KEY_STATE = {"type": "string", "enum": list(KEY_STATES)}
DUPLICATES_REMOVED = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Ids of copies Unloc made late (after a lost answer) that the step revoked.",
}
LOCK_ITEM = {"type": "object", "required": ["id"]}

KEY_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["keyId", "lockId", "appUserId", "state"],
    "properties": {
        "keyId": {"type": "string", "description": "Id of the key."},
        "lockId": {"type": "string"},
        "appUserId": {"type": ["string", "null"], "description": "E.164 number of the holder."},
        "state": KEY_STATE,
        "start": NULLABLE_STRING,
        "end": NULLABLE_STRING,
        "created": NULLABLE_STRING,
        "recurrence": {"type": ["object", "null"]},
        "metadata": {"type": ["object", "null"]},
    },
}

PAGE_FIELDS: dict[str, Any] = {
    "limit": {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_PAGE_SIZE,
        "description": f"Page size (at most {MAX_PAGE_SIZE}).",
    },
    "startAfterId": {
        "type": "string",
        "description": "Continue after this id (the startAfterId of the previous page).",
    },
    "allPages": {
        "type": "boolean",
        "default": False,
        "description": "Follow startAfterId until every page is read.",
    },
}

SAMPLE_KEY: dict[str, Any] = {
    "keyId": "b99a1d1f-0a9a-4723-bd5b-4ff1614c7735",
    "lockId": "d6d8812e-48a9-11ee-b8a1-db05e53ca3e5",
    "appUserId": "+4799887766",
    "state": "active",
    "start": "2026-03-01T14:00:00.000Z",
    "end": "2026-03-04T11:00:00.000Z",
    "created": "2026-02-20T10:12:00.000Z",
    "recurrence": None,
    "metadata": None,
}

HOLDER_ID = {
    "type": "string",
    "minLength": 1,
    "description": "Lock holder id; may be left out when the connection names exactly one.",
}
HOLDER_OUTPUT: dict[str, Any] = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "countryIso": {"type": "string"},
        "organizationId": {"type": "string"},
        "organizationIdSuffix": {"type": "string"},
    },
}
SAMPLE_HOLDER = {
    "id": "866b8a35-4184-44c5-8ffd-448a77e5a91c",
    "name": "Demo lock holder",
    "countryIso": "NO",
    "organizationId": "demo-holder",
    "organizationIdSuffix": "",
}


def obj(
    properties: dict[str, Any], required: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """An object schema that refuses unknown fields (typos fail validation, not silently)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }
    if required:
        schema["required"] = required
    return schema


def list_output(name: str, item: dict[str, Any], **more: Any) -> dict[str, Any]:
    """The output schema of a listing: ``{name: [item...], "count": n}`` plus ``more`` fields."""
    return {
        "type": "object",
        "required": [name, "count"],
        "properties": {
            name: {"type": "array", "items": item},
            "count": {"type": "integer"},
            **more,
        },
    }
