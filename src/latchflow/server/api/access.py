"""Management API: access. People, places and grants (with their credentials and history), a
credential's code (admin scope, recorded in the audit log), "why can't P open X at T?", and
the audit chain's verification.

Grant bodies are the ``access.grant`` and ``access.update_grant`` actions' inputs, checked
against the same JSON Schema, so a flow and an API client are refused for the same things.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response

from latchflow.plugin.errors import FatalError, ValidationError
from latchflow.server.access_schemas import (
    GRANT_CHANGE,
    GRANT_IN,
    PERSON_IN,
    PLACE_IN,
    AuditEntryOut,
    AuditVerified,
    ExplanationOut,
    GrantOut,
    GrantState,
    PersonOut,
    PlaceOut,
    RevealOut,
    body,
    checked,
)
from latchflow.server.auth import require_api_key
from latchflow.server.errors import Rejected, responses
from latchflow.server.gate import require_scope
from latchflow.server.schemas import DateTimeParameter, ValidationErrorBody
from latchflow.server.state import ServerState, server_state
from latchflow.server.versions import expected_version, if_match_header
from latchflow.storage.api_keys import Scope
from latchflow.storage.models import ApiKey, AuditEvent, GrantRecord, PersonRecord, PlaceRecord

READ = "GET /api/grants/{key}"

router = APIRouter(tags=["access"])
State = Annotated[ServerState, Depends(server_state)]
Key = Annotated[ApiKey, Depends(require_api_key)]
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ValidationErrorBody, "description": "The body is invalid (JSON paths)"}
}


# helpers


def _actor(key: ApiKey) -> str:
    return f"api key {key.id} ({key.name})"


def _person(state: ServerState, key: str) -> PersonRecord:
    person = state.engine.access.records.person(key)
    if person is None:
        raise Rejected(
            404,
            f"nobody is known by the id, reference or name {key!r}",
            "path person_key",
            "GET /api/people lists them",
        )
    return person


def _place(state: ServerState, key: str) -> PlaceRecord:
    place = state.engine.access.records.place(key)
    if place is None:
        raise Rejected(404, f"no place {key!r}", "path place_key", "GET /api/places lists them")
    return place


def _grant(state: ServerState, key: str) -> GrantRecord:
    grant = state.engine.access.records.grant(key)
    if grant is None:
        raise Rejected(
            404,
            f"no grant has the id or reference {key!r}",
            "path grant_key",
            "GET /api/grants lists the grants",
        )
    return grant


@contextmanager
def _found(where: str) -> Iterator[None]:
    """The access layer's ``FatalError`` (something named that is not there) as a 404."""
    try:
        yield
    except FatalError as exc:
        raise Rejected(404, str(exc), where) from None


def _shown(response: Response, state: ServerState, grant: GrantRecord) -> dict[str, Any]:
    response.headers["etag"] = f'"{grant.version}"'
    return state.engine.access.view(grant)


def _record(record: PersonRecord | PlaceRecord) -> dict[str, Any]:
    return record.model_dump()


def _saved(response: Response, record: PersonRecord | PlaceRecord) -> dict[str, Any]:
    """A saved record: 201 when it is new, 200 when an existing one was updated."""
    if record.updated_at != record.created_at:
        response.status_code = 200
    return _record(record)


# people and places


@router.get("/people", response_model=list[PersonOut], summary="People, by name")
def list_people(state: State) -> list[dict[str, Any]]:
    return [_record(p) for p in state.engine.access.records.people()]


@router.post(
    "/people",
    response_model=PersonOut,
    status_code=201,
    responses=INVALID | {200: {"model": PersonOut, "description": "The person was updated"}},
    summary="Create a person, or update the one with the same reference",
    openapi_extra=body(PERSON_IN),
)
def save_person(response: Response, state: State, body: Annotated[dict[str, Any], Body()]) -> Any:
    person = state.engine.access.grants.save_person(checked(body, PERSON_IN))
    return _saved(response, person)


@router.get(
    "/people/{person_key}",
    response_model=PersonOut,
    responses=responses(404),
    summary="A person by id, reference or name",
)
def get_person(person_key: str, state: State) -> dict[str, Any]:
    return _record(_person(state, person_key))


@router.get("/places", response_model=list[PlaceOut], summary="Places, by name")
def list_places(state: State) -> list[dict[str, Any]]:
    return [_record(p) for p in state.engine.access.records.places()]


@router.post(
    "/places",
    response_model=PlaceOut,
    status_code=201,
    responses=INVALID | {200: {"model": PlaceOut, "description": "The place was updated"}},
    summary="Create a place with the vendor resources that open it, or update the one with"
    " the same name",
    openapi_extra=body(PLACE_IN),
)
def save_place(response: Response, state: State, body: Annotated[dict[str, Any], Body()]) -> Any:
    place = state.engine.access.grants.save_place(checked(body, PLACE_IN))
    state.flows_changed()  # the first place installs the scheduled verification
    return _saved(response, place)


@router.get(
    "/places/{place_key}",
    response_model=PlaceOut,
    responses=responses(404),
    summary="A place by id or name",
)
def get_place(place_key: str, state: State) -> dict[str, Any]:
    return _record(_place(state, place_key))


# grants


@router.get(
    "/grants",
    response_model=list[GrantOut],
    responses=responses(404),
    summary="Grants with their credentials, the latest start first",
)
def list_grants(
    state: State,
    person: Annotated[str | None, Query(description="A person's id, reference or name")] = None,
    grant_state: Annotated[GrantState | None, Query(alias="state")] = None,
    reference: Annotated[
        str | None, Query(description="Only the grant with this reference")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    access = state.engine.access
    person_id = None
    if person is not None:
        found = access.records.person(person)
        if found is None:
            raise Rejected(
                404,
                f"nobody is known by the id, reference or name {person!r}",
                "query person",
                "GET /api/people lists them",
            )
        person_id = found.id
    if reference is None:
        grants = access.records.grants(person_id, grant_state, limit)
    else:
        found_grant = access.records.grant(reference)
        grants = [found_grant] if found_grant and found_grant.reference == reference else []
        grants = [
            g for g in grants if person_id in (None, g.person_id) and grant_state in (None, g.state)
        ]
    return [access.view(g) for g in grants]


@router.post(
    "/grants",
    response_model=GrantOut,
    status_code=201,
    responses=INVALID
    | {200: {"model": GrantOut, "description": "The grant with that reference was changed"}},
    summary="Grant a person access to places from a start to an end (a reference that has a"
    " grant changes that grant)",
    openapi_extra=body(GRANT_IN),
)
def save_grant(
    response: Response, state: State, key: Key, body: Annotated[dict[str, Any], Body()]
) -> Any:
    access = state.engine.access
    reference = body.get("reference")
    known = isinstance(reference, str) and access.records.grant(reference)
    grant = access.grants.grant(checked(body, GRANT_IN), _actor(key))
    state.dispatcher.notify()
    if known and known.reference == reference:
        response.status_code = 200
    return _shown(response, state, grant)


@router.get(
    "/grants/{grant_key}",
    response_model=GrantOut,
    responses=responses(404),
    summary="A grant by id or reference, with its credentials and their states (ETag: version)",
)
def get_grant(grant_key: str, response: Response, state: State) -> dict[str, Any]:
    return _shown(response, state, _grant(state, grant_key))


@router.patch(
    "/grants/{grant_key}",
    response_model=GrantOut,
    responses=INVALID | responses(400, 404, 409, 412),
    summary="Change a grant's dates, places, hours, kinds or person: its credentials follow",
    openapi_extra=body(GRANT_CHANGE),
)
def update_grant(
    grant_key: str,
    response: Response,
    state: State,
    key: Key,
    body: Annotated[dict[str, Any], Body()],
    if_match: Annotated[str | None, if_match_header("grant", READ)] = None,
) -> dict[str, Any]:
    grant = _grant(state, grant_key)
    expected = expected_version(if_match, "grant", READ)
    if expected is not None and expected != grant.version:
        raise _stale(grant_key, grant.version, expected)
    if grant.state != "active":
        raise Rejected(
            409,
            f"grant {grant_key!r} is {grant.state}; it cannot change any more",
            "path grant_key",
            "POST /api/grants makes a new grant",
        )
    try:
        changed = state.engine.access.grants.update(
            grant.id, checked(body, GRANT_CHANGE), _actor(key), expected
        )
    except ValidationError:
        stored = _grant(state, grant.id)
        if expected is not None and stored.version != expected:  # changed meanwhile
            raise _stale(grant_key, stored.version, expected) from None
        raise
    state.dispatcher.notify()
    return _shown(response, state, changed)


def _stale(key: str, version: int, expected: int) -> Rejected:
    return Rejected(
        412,
        f"grant {key!r} is at version {version}, not {expected}: nothing was changed",
        "header if-match",
        "GET /api/grants/{key} answers the grant as it is now, with its ETag",
    )


@router.post(
    "/grants/{grant_key}/cancel",
    response_model=GrantOut,
    responses=responses(404),
    summary="Cancel a grant: every credential it has is revoked",
)
def cancel_grant(grant_key: str, response: Response, state: State, key: Key) -> dict[str, Any]:
    grant = _grant(state, grant_key)
    with _found("path grant_key"):
        cancelled = state.engine.access.grants.cancel(grant.id, _actor(key))
    state.dispatcher.notify()
    return _shown(response, state, cancelled)


@router.get(
    "/grants/{grant_key}/history",
    response_model=list[AuditEntryOut],
    responses=responses(404),
    summary="The audit entries of a grant and its credentials, newest first",
)
def grant_history(
    grant_key: str, state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    grant = _grant(state, grant_key)
    access = state.engine.access
    subjects = [f"grant {grant.id}"] + [
        f"credential {c.id}" for c in access.records.credentials(grant_id=grant.id)
    ]
    entries = [e for s in subjects for e in state.engine.store.audit.events(limit, s)]
    return [_entry(e) for e in sorted(entries, key=lambda e: -e.seq)[:limit]]


def _entry(event: AuditEvent) -> dict[str, Any]:
    return event.model_dump(exclude={"hash"})


# credentials, explanations, the audit chain


@router.post(
    "/credentials/{credential_id}/reveal",
    response_model=RevealOut,
    responses=responses(404),
    summary="A credential's PIN or code (admin scope; recorded in the audit log with the key)",
)
def reveal_credential(credential_id: str, state: State, key: Key) -> dict[str, Any]:
    require_scope(key, Scope.ADMIN, "revealing a credential's code")
    access = state.engine.access
    if access.records.credential(credential_id) is None:
        raise Rejected(
            404,
            f"no credential {credential_id!r}",
            "path credential_id",
            "GET /api/grants/{key} lists a grant's credentials",
        )
    with _found("path credential_id"):
        return access.reveal(credential_id, _actor(key))


@router.get(
    "/access/explain",
    response_model=ExplanationOut,
    summary="Why a person can or cannot open a place at a moment: grant, credential, vendor",
)
async def explain_access(
    state: State,
    person: Annotated[str, Query(description="A person's id, reference or name")],
    place: Annotated[str, Query(description="A place's id or name")],
    at: Annotated[DateTimeParameter | None, Query(description="Default: now")] = None,
) -> dict[str, Any]:
    moment: datetime | None = at
    return await state.engine.access.explainer.explain(person, place, moment)


@router.get(
    "/audit/verify",
    response_model=AuditVerified,
    tags=["audit"],
    summary="Check the audit record's hash chain: the first entry edited or removed, if any",
)
def verify_audit(state: State) -> dict[str, Any]:
    entries, head, broken = state.engine.store.audit.verify()
    return {
        "entries": entries,
        "head": head,
        "ok": broken is None,
        "broken": None if broken is None else asdict(broken),
    }
