"""Request and response bodies of the access API.

Request bodies are JSON Schema (a grant's is the ``access.grant`` action's input), checked with
JSON paths by ``checked`` and documented as they are; answers are pydantic models.
"""

from __future__ import annotations

from typing import Any, Literal

from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from latchflow.builtin.access import PERSON, REFERENCE, WINDOW_FIELDS
from latchflow.flows.document import schema_errors
from latchflow.plugin.errors import ValidationError
from latchflow.server.schemas import Moment

GRANT_STATES = ("active", "cancelled", "ended")
GrantState = Literal["active", "cancelled", "ended"]

PERSON_IN = {**PERSON, "title": "PersonIn"}
PLACE_IN = {
    "type": "object",
    "title": "PlaceIn",
    "required": ["name", "resources"],
    "properties": {
        "name": {
            "type": "string",
            "minLength": 1,
            "description": "Unique; saving it again updates it",
        },
        "description": {"type": "string"},
        "timezone": {"type": "string", "description": "IANA time zone (default UTC)"},
        "resources": {
            "type": "array",
            "description": "The vendor resources that open it",
            "items": {
                "type": "object",
                "required": ["connection", "kind", "id"],
                "properties": {
                    "connection": {"type": "string", "description": "A connection's id"},
                    "kind": {"type": "string", "description": "A resource kind, e.g. keyvox.unit"},
                    "id": {"type": "string", "minLength": 1, "description": "The vendor's id"},
                },
                "additionalProperties": False,
            },
        },
    },
    "additionalProperties": False,
}
GRANT_IN = {
    "type": "object",
    "title": "GrantIn",
    "required": ["person", "places", "starts", "ends"],
    "properties": {"reference": REFERENCE, "person": PERSON, **WINDOW_FIELDS},
    "additionalProperties": False,
}
GRANT_CHANGE = {
    "type": "object",
    "title": "GrantChange",
    "minProperties": 1,
    "properties": {"person": PERSON, **WINDOW_FIELDS},
    "additionalProperties": False,
}
_VALIDATORS = {
    str(s["title"]): Draft202012Validator(s) for s in (PERSON_IN, PLACE_IN, GRANT_IN, GRANT_CHANGE)
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """A route's ``openapi_extra``: its JSON body is ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def checked(data: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``data`` if it keeps ``schema``, else ValidationError with every problem's JSON path."""
    errors = schema_errors(_VALIDATORS[schema["title"]], data, "$")
    if errors:
        raise ValidationError(errors)
    return data


class PersonOut(BaseModel):
    id: str
    name: str
    phone: str | None = Field(description="E.164")
    email: str | None
    reference: str | None = Field(description="The person's id in another system")
    created_at: Moment
    updated_at: Moment


class ResourceOut(BaseModel):
    connection: str
    kind: str
    id: str


class PlaceOut(BaseModel):
    id: str
    name: str
    description: str | None
    timezone: str
    resources: list[ResourceOut]
    created_at: Moment
    updated_at: Moment


class CredentialOut(BaseModel):
    """A grant's credential on one vendor resource (never its code: reveal it)."""

    id: str
    place: str
    resource_kind: str
    resource: str
    connection: str
    kind: str
    state: str = Field(description="issuing, issued, active, revoking, revoked, expired, failed")
    wanted: bool = Field(description="Whether the grant wants it now (else it is revoked)")
    starts: Moment | None
    ends: Moment | None
    vendor_ids: dict[str, Any] | None
    vendor_status: str | None
    delivered: bool | None = Field(description="Whether it reached the device; null: not known")
    attempts: int
    error: str | None
    last_verified_at: Moment | None


class GrantOut(BaseModel):
    id: str
    reference: str | None
    state: str = Field(description=", ".join(GRANT_STATES))
    version: int = Field(description="Counts its changes; send it as If-Match to PATCH")
    person: str
    person_id: str
    places: list[str]
    starts: Moment
    ends: Moment
    timezone: str
    weekly: dict[str, Any] | None
    kinds: list[str]
    credentials: list[CredentialOut]


class RevealOut(BaseModel):
    credential: str
    kind: str
    code: str | None = Field(description="The PIN or code; null when the vendor gave none")
    starts: Moment | None
    ends: Moment | None


class LinkOut(BaseModel):
    link: str
    ok: bool
    detail: str


class ExplanationOut(BaseModel):
    """The chain grant → credential → vendor, each link checked in order."""

    person: str
    place: str
    at: Moment
    can_open: bool
    broken: str | None = Field(description="The first link that fails; null if none does")
    reason: str
    links: list[LinkOut]


class AuditEntryOut(BaseModel):
    seq: int
    id: str
    at: Moment
    actor: str
    action: str
    subject: str
    detail: Any = None


class ChainBreakOut(BaseModel):
    seq: int
    id: str
    problem: str


class AuditVerified(BaseModel):
    entries: int = Field(description="Entries whose hashes were checked")
    head: str = Field(description="The hash of the last entry checked")
    ok: bool
    broken: ChainBreakOut | None = Field(description="The first entry that breaks the chain")
