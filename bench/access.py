"""Reconciling access grants: N grants (default 10,000), each a PIN on one KEYVOX unit (and with
``--front-door`` an Unloc key on the front door too), then every one cancelled.

The KEYVOX simulator (and the Unloc one) runs as its own uvicorn process behind a middleware
that counts the vendor API requests it receives (``/_sim/`` controls are not counted).
``latchflow serve`` runs as the other benchmarks run it (SQLite, run processes); this process
writes the places and then the grants through the access layer (``engine.access.grants``) on
the same database while the server reconciles them, as a property manager's writes would
arrive. Each KEYVOX unit gets its grants as consecutive, non-overlapping stays (a hotel room's
bookings). Prints, for issuing and for cancelling: how long writing took, the time from the
first write until every credential was issued (revoked), and the vendor calls per grant.

    .venv/bin/python bench/access.py [--grants 10000] [--units 100] [--front-door]
        [--timeout 3600] [--workers 16] [--no-run-process] [--serve-option=--run-processes=1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from end_to_end import CONNECTION, keyvox_connection
from harness import BASE_ENV, Node, add_server_arguments, running_server, serve_options, start_asgi
from sqlmodel import col, func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from latchflow.engine import Engine
from latchflow.storage.database import Settings
from latchflow.storage.models import CredentialRecord, RunRecord

HERE = Path(__file__).resolve().parent
CALLS = "/_bench/calls"
UNLOC_CONNECTION = "bench-unloc"
FRONT_DOOR_PLACE = "Front door"
ENV = {"LATCHFLOW_ACCESS_VERIFY_EVERY": "86400"}
"""The periodic verification pass (every 15 minutes by default) is not what is measured."""
STAY = timedelta(days=2)
STAYS_APART = timedelta(days=3)
ID_SEGMENT = re.compile(r"/[0-9A-Za-z-]{16,}")


class Counted:
    """An ASGI app that counts the requests it passes on, by method and path (long ids in a
    path become ``{id}``), leaving out the ``/_sim/`` controls. ``GET /_bench/calls`` answers
    the counts; ``DELETE /_bench/calls`` answers them and starts again from zero."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.calls: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == CALLS:
                body = json.dumps(self.calls).encode()
                if scope["method"] == "DELETE":
                    self.calls = Counter()
                headers = [(b"content-type", b"application/json")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if not path.startswith("/_sim/"):
                self.calls[f"{scope['method']} {ID_SEGMENT.sub('/{id}', path)}"] += 1
        await self.app(scope, receive, send)


def keyvox_app() -> Counted:
    """The KEYVOX simulator with its vendor calls counted (a ``uvicorn --factory``)."""
    from latchflow_keyvox.simulator import create_app

    return Counted(create_app())


def unloc_app() -> Counted:
    """The Unloc simulator with its vendor calls counted (a ``uvicorn --factory``)."""
    from latchflow_unloc.simulator import create_app

    return Counted(create_app())


def simulator(factory: str) -> Node:
    return start_asgi(
        f"access:{factory}", ready_path="/_sim/state", extra_args=["--app-dir", str(HERE)]
    )


def unloc_connection(base: str) -> list[str]:
    """The ``latchflow`` command that adds a connection to the Unloc simulator."""
    from latchflow_unloc.vendors import v2_config

    add = ["connections", "add", UNLOC_CONNECTION, "--vendor", "unloc"]
    return add + [f"--set={key}={value}" for key, value in v2_config(base).items()]


def seed_units(keyvox: str, count: int) -> list[str]:
    """``count`` new KEYVOX units (one lock each); their ids."""
    names = [f"Bench room {n:04d}" for n in range(count)]
    response = httpx.post(f"{keyvox}/_sim/seed", json={"units": [{"name": n} for n in names]})
    response.raise_for_status()
    by_name = {u["unitName"]: u["unitId"] for u in response.json()["units"]}
    return [by_name[name] for name in names]


def save_places(engine: Engine, units: list[str], front_door: str | None) -> list[str]:
    """A place per unit (and the front door); the places' names, unit by unit."""
    grants = engine.access.grants
    names = []
    for n, unit in enumerate(units):
        resource = {"connection": CONNECTION, "kind": "keyvox.unit", "id": unit}
        names.append(grants.save_place({"name": f"Room {n:04d}", "resources": [resource]}).name)
    if front_door is not None:
        resource = {"connection": UNLOC_CONNECTION, "kind": "unloc.lock", "id": front_door}
        grants.save_place({"name": FRONT_DOOR_PLACE, "resources": [resource]})
    return names


def grant(n: int, rooms: list[str], first: datetime, front_door: bool) -> dict[str, Any]:
    """Grant ``n``: the next stay in room ``n`` modulo the rooms."""
    starts = first + STAYS_APART * (n // len(rooms))
    return {
        "reference": f"BENCH-{n}",
        "person": {"name": f"Guest {n}", "phone": f"+47 9{n:07d}", "reference": f"G-{n}"},
        "places": [rooms[n % len(rooms)], *([FRONT_DOOR_PLACE] if front_door else [])],
        "starts": starts.isoformat(),
        "ends": (starts + STAY).isoformat(),
    }


def count(engine: Engine, *where: Any) -> int:
    with engine.store.engine.connect() as connection:
        query = select(func.count()).select_from(CredentialRecord).where(*where)
        return int(connection.execute(query).scalar_one())


def stuck_runs(engine: Engine) -> Counter[str]:
    """Reconcile runs that ended without doing their work, by status."""
    with engine.store.engine.connect() as connection:
        rows = connection.execute(
            select(RunRecord.status, func.count())
            .where(
                RunRecord.flow_id == "access-reconcile",
                col(RunRecord.status).in_(["failed", "needs_attention", "cancelled"]),
            )
            .group_by(RunRecord.status)
        ).all()
    return Counter({status: n for status, n in rows})


def run_errors(engine: Engine, limit: int = 3) -> list[str]:
    """The distinct errors of reconcile runs that failed (at most ``limit``)."""
    with engine.store.engine.connect() as connection:
        rows = connection.execute(
            select(RunRecord.error, func.count())
            .where(RunRecord.flow_id == "access-reconcile", RunRecord.status == "failed")
            .group_by(RunRecord.error)
            .limit(limit)
        ).all()
    return [f"{error} ({n} runs)" for error, n in rows]


def calls(bases: Iterable[str], reset: bool = False) -> Counter[str]:
    total: Counter[str] = Counter()
    for base in bases:
        response = httpx.request("DELETE" if reset else "GET", f"{base}{CALLS}", timeout=30)
        response.raise_for_status()
        total.update(response.json())
    return total


class Phase:
    """One measured phase: the writes, then waiting until ``settled()`` counts every credential
    of the grants written; both within ``timeout`` seconds of the first write."""

    def __init__(self, name: str, per_grant: int, bases: list[str], timeout: float) -> None:
        self.name, self.per_grant, self.bases = name, per_grant, bases
        calls(bases, reset=True)
        self.began = time.monotonic()
        self.deadline = self.began + timeout
        self.grants = 0
        """Grants written (all of them unless the timeout came first)."""
        self.written = 0.0
        self.settled: float | None = None
        self.reached = 0
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return self.grants * self.per_grant

    def write(self, items: int, one: Callable[[int], object]) -> None:
        for n in range(items):
            if time.monotonic() > self.deadline:
                break
            one(n)
            self.grants = n + 1
            if self.grants % 1000 == 0:
                elapsed = time.monotonic() - self.began
                progress(f"{self.name}: {self.grants:,} written in {elapsed:.0f} s")
        self.written = time.monotonic() - self.began

    def wait(self, settled: Callable[[], int]) -> None:
        shown = time.monotonic()
        while True:
            self.reached = settled()
            if self.reached >= self.total:
                self.settled = time.monotonic() - self.began
                break
            if time.monotonic() > self.deadline:
                break
            if time.monotonic() - shown > 30:
                elapsed = time.monotonic() - self.began
                progress(f"{self.name}: {self.reached:,}/{self.total:,} after {elapsed:.0f} s")
                shown = time.monotonic()
            time.sleep(0.5)
        self.calls = calls(self.bases)

    def row(self, what: str) -> str:
        grants = max(self.grants, 1)
        made = sum(self.calls.values())
        kinds = ", ".join(
            f"{name.rsplit('/', 1)[-1] if 'eagle-pms' in name else name} {n / grants:.2f}"
            for name, n in self.calls.most_common()
        )
        writes = f"{self.grants:,} in {self.written:,.0f} s ({self.grants / self.written:,.0f}/s)"
        if self.settled is None:
            settled = f"not within the timeout: {self.reached:,} of {self.total:,} {what}"
        else:
            settled = (
                f"{self.settled:,.0f} s, {self.settled - self.written:,.0f} s after the last"
                f" ({self.grants / self.settled:,.1f} grants/s)"
            )
        return f"| {self.name} | {writes} | {settled} | {made:,} | {made / grants:.2f} ({kinds}) |"


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def active(bases: list[str], units: set[str]) -> str:
    """What works at the simulators: PINs on the units (and keys at the Unloc simulator)."""
    pins = httpx.get(f"{bases[0]}/_sim/state", timeout=120).json()["pins"]
    found = f"{sum(p.get('unitId') in units and p['pinStatus'] != '4' for p in pins):,} PINs"
    if len(bases) > 1:
        from latchflow_unloc.access import LIVE_STATES

        keys = httpx.get(f"{bases[1]}/_sim/state", timeout=120).json()["keys"]
        found += f" and {sum(k['state'] in LIVE_STATES for k in keys):,} Unloc keys"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=100, help="KEYVOX units the grants share")
    parser.add_argument("--front-door", action="store_true", help="an Unloc key on each grant too")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per phase at most")
    parser.add_argument("--workers", type=int, default=16, help="latchflow serve --workers")
    add_server_arguments(parser)
    args = parser.parse_args()
    os.environ.update(BASE_ENV | ENV)  # this process's engine reads the same flows and secrets

    sims = [simulator("keyvox_app")] + ([simulator("unloc_app")] if args.front_door else [])
    try:
        keyvox = sims[0].base
        units = seed_units(keyvox, args.units)
        before = [keyvox_connection(keyvox)]
        front_door = None
        if args.front_door:
            from latchflow_unloc.testing import FRONT_DOOR

            before.append(unloc_connection(sims[1].base))
            front_door = FRONT_DOOR
        with running_server(
            args.database_url,
            ENV,
            workers=args.workers,
            before_start=before,
            serve_options=serve_options(args),
        ) as node:
            engine = Engine(Settings.from_environment(node.data_dir, node.database_url))
            try:
                figures = measure(engine, args, [s.base for s in sims], units, front_door)
            finally:
                engine.store.engine.dispose()
    finally:
        for sim in sims:
            sim.stop()
    print("\n".join(figures))


def measure(
    engine: Engine,
    args: argparse.Namespace,
    bases: list[str],
    units: list[str],
    front_door: str | None,
) -> list[str]:
    rooms = save_places(engine, units, front_door)
    grants = engine.access.grants
    per_grant = 2 if front_door else 1
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)

    issue = Phase("issue", per_grant, bases, args.timeout)
    issue.write(
        args.grants,
        lambda n: grants.grant(grant(n, rooms, first, front_door is not None), actor="bench"),
    )
    issue.wait(lambda: count(engine, col(CredentialRecord.state).in_(["issued", "active"])))
    failed = count(engine, CredentialRecord.state == "failed")
    after_issue = active(bases, set(units))

    cancel = Phase("cancel", per_grant, bases, args.timeout)
    cancel.write(issue.grants, lambda n: grants.cancel(f"BENCH-{n}", actor="bench"))
    cancel.wait(lambda: count(engine, CredentialRecord.state == "revoked"))
    after_cancel = active(bases, set(units))

    kind = "a KEYVOX PIN and an Unloc key" if front_door else "a KEYVOX PIN"
    options = " ".join(serve_options(args)) or "default options"
    return [
        f"access [{issue.grants:,} grants, each {kind}, over {args.units} KEYVOX units;"
        f" latchflow serve --workers {args.workers}, {options}; {os.cpu_count()} CPUs]",
        "| phase | grants written | every credential settled, from the first write"
        " | vendor calls | calls per grant (by request) |",
        "|---|---|---|---|---|",
        issue.row("issued"),
        cancel.row("revoked"),
        f"active at the simulators: {after_issue} after issuing, {after_cancel} after"
        f" cancelling; credentials failed: {failed}; reconcile runs that did not finish their"
        f" work: {dict(stuck_runs(engine)) or 'none'}",
        *(f"  a reconcile run's error: {error}" for error in run_errors(engine)),
    ]


if __name__ == "__main__":
    main()
