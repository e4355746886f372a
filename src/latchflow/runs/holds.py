"""Holding a connection back, for every process: after a vendor's rate limit, and during an
outage.

A 429 holds the connection until its ``Retry-After`` has passed. Failures that look like an
outage (5xx answers, timeouts, resets, refused connections) open the connection's breaker after
``OUTAGE_AFTER`` in a row: the connection is held for a while that doubles with every open in a
row, and once it has passed, one call probes whether the vendor is back (alone, for up to
``PROBE_SECONDS``); its success closes the breaker, its failure opens it again. A run whose
step finds its connection held waits without a worker and without using an attempt; the runs
a hold kept waiting are released at a pace (up to ``release_rate`` per second), not all at
once. Each 429 halves the pace and each call that goes through raises it a step, so a vendor
that keeps answering 429 sees about as many calls as it lets through, not one per waiting run.

Holds are stored, so every process and node sees them within ``REFRESH_SECONDS``; each
process counts its own failures in a row and paces its own releases.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from latchflow.plugin.clock import Clock
from latchflow.storage.models import ConnectionHold
from latchflow.storage.store import Store

RATE_LIMIT = "rate_limit"
OUTAGE = "outage"
OUTAGE_AFTER = 5
"""Outage-like failures in a row (in one process) that open a connection's breaker."""
FIRST_OPEN_SECONDS = 15.0
LONGEST_OPEN_SECONDS = 600.0
PROBE_SECONDS = 30.0
"""How long the one probing call has before another call may probe instead."""
REFRESH_SECONDS = 1.0
SLOWEST_PACE = 1 / 64
"""The share of ``release_rate`` that 429s in a row slow a connection's releases down to."""
PACE_STEP = 1 / 16


class Holds:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._held: dict[str, ConnectionHold] = {}
        self._read_at: datetime | None = None
        self._failures: dict[str, int] = {}
        self._pacing: dict[str, tuple[datetime, datetime]] = {}
        """Per connection: the end of the hold being paced, and its next release."""
        self._pace: dict[str, float] = {}
        """Per connection: the share of the release rate it is released at now."""

    def admit(self, connection_id: str, release_rate: float) -> datetime | None:
        """None if a call on the connection may go out now (perhaps as the probe after an
        outage); else when to come back."""
        hold = self._current(connection_id)
        if hold is None:
            return None
        now = self.clock.now()
        if now < hold.until:
            return self._slot(connection_id, hold.until, release_rate)
        if hold.kind == RATE_LIMIT:
            return None
        probe_until = now + timedelta(seconds=PROBE_SECONDS)
        if self.store.holds.claim_probe(connection_id, hold.until, now, probe_until):
            hold.probe_until = probe_until
            return None
        self._read_at = None  # another process probes: read when its probe ends
        current = self._current(connection_id)
        if current is None:  # the probe succeeded meanwhile
            return None
        return self._slot(
            connection_id, max(current.until, current.probe_until or now), release_rate
        )

    def any(self) -> bool:
        """Whether some connection is held (or its hold awaits a probe): a cheap check first."""
        self._current("")
        return bool(self._held)

    def held_until(self, connection_id: str) -> datetime | None:
        """The end of the connection's hold, if one holds it now (no probing, no pacing)."""
        hold = self._current(connection_id)
        return hold.until if hold is not None and hold.until > self.clock.now() else None

    def rate_limited(self, connection_id: str, seconds: float, reason: str) -> datetime:
        """Hold the connection for ``seconds`` (never shortening a longer hold), and release
        the runs it keeps waiting more slowly."""
        until = self.clock.now() + timedelta(seconds=seconds)
        self._pace[connection_id] = max(SLOWEST_PACE, self._pace.get(connection_id, 1.0) / 2)
        hold = ConnectionHold(
            connection_id=connection_id, kind=RATE_LIMIT, until=until, reason=reason
        )
        return self._put(hold).until

    def failed(self, connection_id: str, reason: str) -> datetime | None:
        """Count an outage-like failure; when the breaker opens (or a probe failed), the end of
        the new hold."""
        hold = self._held.get(connection_id)
        now = self.clock.now()
        probing = hold is not None and hold.kind == OUTAGE and hold.until <= now
        failures = self._failures.get(connection_id, 0) + 1
        if not probing and failures < OUTAGE_AFTER:
            self._failures[connection_id] = failures
            return None
        self._failures.pop(connection_id, None)
        opened = hold.opened + 1 if probing and hold is not None else 1
        seconds = min(LONGEST_OPEN_SECONDS, FIRST_OPEN_SECONDS * 2 ** (opened - 1))
        until = now + timedelta(seconds=seconds)
        return self._put(
            ConnectionHold(
                connection_id=connection_id, kind=OUTAGE, until=until, opened=opened, reason=reason
            )
        ).until

    def succeeded(self, connection_id: str) -> None:
        """A call went through: the failures in a row end, and so does an outage's hold."""
        self._failures.pop(connection_id, None)
        if connection_id in self._pace:
            self._pace[connection_id] += PACE_STEP
            if self._pace[connection_id] >= 1.0:
                del self._pace[connection_id]
        hold = self._held.get(connection_id)
        if hold is not None and hold.until <= self.clock.now():
            self.store.holds.remove(connection_id, hold.kind)
            del self._held[connection_id]

    def _current(self, connection_id: str) -> ConnectionHold | None:
        now = self.clock.now()
        if self._read_at is None or (now - self._read_at).total_seconds() >= REFRESH_SECONDS:
            self._held = {h.connection_id: h for h in self.store.holds.all()}
            self._read_at = now
        return self._held.get(connection_id)

    def _put(self, hold: ConnectionHold) -> ConnectionHold:
        stored = self.store.holds.put(hold)
        self._held[hold.connection_id] = stored
        return stored

    def _slot(self, connection_id: str, start: datetime, release_rate: float) -> datetime:
        """The next moment from ``start`` (a hold's end) at which this process releases a
        waiting run; a hold that ends elsewhere releases its runs from its own end."""
        began, slot = self._pacing.get(connection_id, (start, start))
        slot = max(slot, start) if began == start else start
        rate = release_rate * self._pace.get(connection_id, 1.0)
        self._pacing[connection_id] = (start, slot + timedelta(seconds=1 / rate))
        return slot
