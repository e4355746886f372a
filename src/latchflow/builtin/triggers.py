"""Built-in triggers: a flow's own webhook URL, schedules, and manual starts."""

from __future__ import annotations

from collections.abc import Callable

from latchflow import JSON, Trigger, hookimpl


def _always(config: JSON, data: JSON) -> bool:
    return True


WEBHOOK = Trigger(
    key="webhook",
    title="Webhook",
    description=(
        "Starts a run for each JSON POST to the flow's trigger URL /hooks/{flow_id}/{token}."
        " The event is committed before the caller gets 202."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "idempotency_key_path": {
                "type": "string",
                "description": (
                    "JMESPath into the body whose value dedupes deliveries (used when the"
                    " caller sends no Idempotency-Key header), e.g. 'booking.id'"
                ),
            },
        },
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["body", "headers", "received_at"],
        "properties": {
            "body": {"description": "The JSON body as posted"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "query": {"type": "object", "additionalProperties": {"type": "string"}},
            "received_at": {"type": "string", "format": "date-time"},
        },
    },
    sample={
        "body": {"booking": {"id": "b-1001", "unitId": "5e901978ef16f912aa9aaaa7"}},
        "headers": {"content-type": "application/json"},
        "query": {},
        "received_at": "2026-03-01T10:00:00+00:00",
    },
    matches=_always,
)

SCHEDULE = Trigger(
    key="schedule",
    title="Schedule",
    description=(
        "Starts a run on a cron schedule or every N seconds, in a time zone. Each fire is"
        " stored under its scheduled time, so it never runs twice; fires missed while"
        " latchflow was down are skipped or run once, as 'catch_up' says."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "cron": {
                "type": "string",
                "description": "Five-field cron expression, e.g. '0 8 * * mon-fri'",
            },
            "interval_seconds": {
                "type": "number",
                "minimum": 1,
                "description": "Seconds between fires (instead of cron)",
            },
            "timezone": {
                "type": "string",
                "default": "UTC",
                "description": "IANA time zone the cron expression is read in, e.g. Europe/Oslo",
            },
            "catch_up": {
                "enum": ["skip", "once"],
                "default": "once",
                "description": "Fires missed during downtime: skip them, or run once for them",
            },
        },
        "oneOf": [{"required": ["cron"]}, {"required": ["interval_seconds"]}],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "required": ["scheduled_for", "fired_at"],
        "properties": {
            "scheduled_for": {"type": "string", "format": "date-time"},
            "fired_at": {"type": "string", "format": "date-time"},
        },
    },
    sample={"scheduled_for": "2026-03-02T08:00:00+01:00", "fired_at": "2026-03-02T07:00:00+00:00"},
    matches=_always,
)

MANUAL = Trigger(
    key="manual",
    title="Manual",
    description="Starts a run when someone asks for it (CLI or API), with the event they give.",
    input_schema={"type": "object", "properties": {}, "additionalProperties": False},
    output_schema={"type": "object"},
    sample={"note": "started by hand"},
    matches=_always,
)


@hookimpl
def register_triggers(register: Callable[[Trigger], None]) -> None:
    for trigger in (WEBHOOK, SCHEDULE, MANUAL):
        register(trigger)
