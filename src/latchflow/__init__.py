"""latchflow: low-code automation for smart locks, lockers and key automats.

This module is the whole import surface for plugin authors.
"""

from latchflow.plugin.clock import Clock, FakeClock, SystemClock
from latchflow.plugin.errors import (
    ActionError,
    ConfigurationError,
    ErrorDetail,
    ExpressionError,
    FatalError,
    LatchflowError,
    PluginError,
    RateLimitedError,
    RetryableError,
    RunFiltered,
    SkipError,
    ValidationError,
    WebhookError,
)
from latchflow.plugin.hookspecs import hookimpl
from latchflow.plugin.timeparse import parse_moment, unix_seconds
from latchflow.plugin.types import (
    JSON,
    Action,
    Connection,
    Pending,
    PollResult,
    RetryPolicy,
    RetrySafety,
    RunContext,
    Trigger,
    TriggerEvent,
    UnmappedEvent,
    Vendor,
    WebhookRequest,
    event_types_schema,
    map_event,
    match_fields,
)

__all__ = [
    "JSON",
    "Action",
    "ActionError",
    "Clock",
    "ConfigurationError",
    "Connection",
    "ErrorDetail",
    "ExpressionError",
    "FakeClock",
    "FatalError",
    "LatchflowError",
    "Pending",
    "PluginError",
    "PollResult",
    "RateLimitedError",
    "RetryPolicy",
    "RetrySafety",
    "RetryableError",
    "RunContext",
    "RunFiltered",
    "SkipError",
    "SystemClock",
    "Trigger",
    "TriggerEvent",
    "UnmappedEvent",
    "ValidationError",
    "Vendor",
    "WebhookError",
    "WebhookRequest",
    "event_types_schema",
    "hookimpl",
    "map_event",
    "match_fields",
    "parse_moment",
    "unix_seconds",
]
