"""Vendor events linked to the credential they concern (a door opened with a guest's key, a
key fetched with a handover contract): recorded in the audit log as ``credential.event``.

An event is linked to a credential of its connection when its data carries every one of the
credential's vendor ids (a key id, a contract id) as a value, anywhere in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from latchflow.access.notices import Notices
from latchflow.plugin.types import TriggerEvent, UnmappedEvent
from latchflow.storage.store import Store


def _values(data: Any) -> Iterator[str]:
    if isinstance(data, dict):
        for value in data.values():
            yield from _values(value)
    elif isinstance(data, list):
        for value in data:
            yield from _values(value)
    elif data is not None and not isinstance(data, bool):
        yield str(data)


def link_events(
    store: Store,
    notices: Notices,
    connection_id: str,
    events: Sequence[TriggerEvent | UnmappedEvent],
) -> int:
    """Record each event that names a credential of the connection; returns how many."""
    credentials = [c for c in store.access.credentials(connection_id=connection_id) if c.vendor_ids]
    if not credentials:
        return 0
    linked = 0
    for event in events:
        values = set(_values(event.data))
        kind = event.trigger if isinstance(event, TriggerEvent) else event.vendor_type
        for credential in credentials:
            ids = [str(v) for v in (credential.vendor_ids or {}).values()]
            if not ids or not all(v in values for v in ids):
                continue
            subject = f"credential {credential.id}"
            seen = store.audit.events(limit=1000, subject=subject)
            if any(
                e.action == "credential.event" and (e.detail or {}).get("event") == event.id
                for e in seen
            ):
                continue
            notices.record("credential.event", credential, {"event": event.id, "kind": kind})
            linked += 1
    return linked
