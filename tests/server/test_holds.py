"""Connection holds on PostgreSQL: nodes that open a connection's breaker at the same moment
store one hold, and when it ends one call in all of them probes the vendor."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from latchflow.engine import Engine
from latchflow.plugin.clock import FakeClock
from latchflow.plugin.host import load_registry
from latchflow.runs.holds import OUTAGE_AFTER, Holds
from latchflow.storage.database import Settings

from . import fakeplugin

pytestmark = pytest.mark.postgres


@pytest.fixture
def nodes(tmp_path: Path, clock: FakeClock, pg_url: str) -> Iterator[list[Engine]]:
    engines = [
        Engine(
            Settings.from_environment(tmp_path / f"node-{n}", pg_url),
            registry=load_registry(extra=[fakeplugin]),
            clock=clock,
        )
        for n in range(2)
    ]
    yield engines
    for engine in engines:
        engine.store.engine.dispose()


def test_two_nodes_open_one_breaker_and_one_call_probes(
    nodes: list[Engine], clock: FakeClock
) -> None:
    holds = [node.connections.holds for node in nodes]

    def fail_in_a_row(node_holds: Holds) -> None:
        for _ in range(OUTAGE_AFTER):
            node_holds.failed("vendor-1", "vendor answered 502")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(fail_in_a_row, holds))
    (stored,) = nodes[0].store.holds.all()
    assert (stored.kind, stored.opened) == ("outage", 1)
    assert [h.held_until("vendor-1") for h in holds] == [stored.until, stored.until]

    clock.set(stored.until)
    admitted = [h.admit("vendor-1", 8.0) for h in holds]
    assert admitted[0] is None  # this node's call probes
    assert admitted[1] is not None and admitted[1] > clock.now()  # the other waits for it
