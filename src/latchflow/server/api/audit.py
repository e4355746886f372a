"""Management API: the audit record (admin scope), newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from latchflow.server.schemas import AuditEventOut
from latchflow.server.state import ServerState, server_state

router = APIRouter(tags=["audit"])
State = Annotated[ServerState, Depends(server_state)]


@router.get(
    "/audit",
    response_model=list[AuditEventOut],
    summary="What was done that must stay on record (such as revealing credentials)",
)
def list_audit(
    state: State, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return [
        {
            "at": e.at,
            "actor": e.actor,
            "action": e.action,
            "subject": e.subject,
            "detail": e.detail,
        }
        for e in state.engine.store.audit.events(limit)
    ]
