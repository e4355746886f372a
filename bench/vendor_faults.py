"""Vendor faults: 500 webhooks per fault, each a 3-step flow around a signed
``keyvox.create_lock_pin`` against the KEYVOX simulator in its own process; prints per fault
the runs' final statuses, the requests the fault met at the simulator, and the guests left
with more than one active PIN.

- ``outage``: every simulator request answers 503 for ``--outage`` seconds from the first
  webhook; then the vendor is back.
- ``rate_limit``: a storm of 429s with ``Retry-After: 1`` (the first ``--storm`` requests).
- ``late``: the first ``--late-count`` PIN creations answer 504 at once and are applied
  ``--late-delay`` seconds later (after the retry has looked for the PIN).

    .venv/bin/python bench/vendor_faults.py [--faults outage,rate_limit,late] [--runs 500]
        [--simulator URL]   (a KEYVOX simulator already running, e.g. one that has the
                             ``late`` fault for a latchflow from before it had)
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from typing import Any

import httpx
from end_to_end import CONNECTION, SIMULATOR, keyvox_connection, wait_for_runs
from harness import (
    add_server_arguments,
    percentile,
    running_server,
    serve_options,
    start_asgi,
    webhook_flow,
)
from sqlmodel import select

from latchflow.storage.database import make_engine
from latchflow.storage.models import RunRecord, StepRecord
from latchflow_keyvox import assumptions

CREATE_PATH = f"{assumptions.SIM_PREFIXES[1]}/createLockPin"


def flow(unit_id: str) -> dict[str, Any]:
    return webhook_flow(
        "faults",
        [
            {
                "id": "booking",
                "action": "core.set",
                "input": {"values": {"guest": "{{ trigger.body.guest }}", "unit": unit_id}},
            },
            {
                "id": "pin",
                "action": "keyvox.create_lock_pin",
                "connection": CONNECTION,
                "input": {
                    "unitId": "{{ steps.booking.unit }}",
                    "startTime": "{{ trigger.body.start }}",
                    "endTime": "{{ trigger.body.end }}",
                    "targetName": "{{ steps.booking.guest }}",
                },
            },
            {
                "id": "report",
                "action": "core.set",
                "input": {
                    "values": {"guest": "{{ steps.booking.guest }}", "pin": "{{ steps.pin.pinId }}"}
                },
            },
        ],
    )


async def offer(url: str, runs: int, concurrency: int = 16) -> None:
    """POST ``runs`` webhooks, one guest each."""
    now = int(time.time())
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(runs):
        queue.put_nowait(n)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = {"guest": f"guest-{n}", "start": now + 3600, "end": now + 86400}
            (await client.post(url, json=body)).raise_for_status()

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))


def start_fault(sim: str, fault: str, args: argparse.Namespace) -> None:
    spec: dict[str, Any] = {
        "outage": {"kind": "error", "status": 503, "count": 10**9},
        "rate_limit": {"kind": "rate_limit", "retry_after": 1, "count": args.storm},
        "late": {
            "kind": "late",
            "path": CREATE_PATH,
            "delay": args.late_delay,
            "count": args.late_count,
        },
    }[fault]
    httpx.post(f"{sim}/_sim/faults", json=spec).raise_for_status()


def finished(runs: list[RunRecord], fraction: float) -> float:
    """Seconds from the first run's start by which ``fraction`` of the runs had finished."""
    first = min(r.created_at for r in runs)
    ends = [(r.finished_at - first).total_seconds() for r in runs if r.finished_at]
    return percentile(ends, fraction)


def failed_pin_attempts(database_url: str) -> int:
    """Attempts of the PIN step that did not succeed (every attempt is a call to KEYVOX)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(StepRecord.attempts, StepRecord.status).where(StepRecord.step_id == "pin")
            ).all()
    finally:
        engine.dispose()
    return sum(attempts - (status == "succeeded") for attempts, status in rows)


def measure(fault: str, args: argparse.Namespace) -> str:
    simulator = None if args.simulator else start_asgi(SIMULATOR)
    sim = simulator.base if simulator else args.simulator
    try:
        unit = next(
            u
            for u in httpx.get(f"{sim}/_sim/state").json()["units"]
            if u["unitName"].startswith("Room")
        )
        add = keyvox_connection(sim)
        with running_server(
            args.database_url,
            flows=[flow(unit["unitId"])],
            before_start=[add],
            serve_options=serve_options(args),
        ) as node:
            start_fault(sim, fault, args)
            began = time.monotonic()
            asyncio.run(offer(node.hook_url("faults"), args.runs))
            if fault == "outage":
                time.sleep(max(0.0, args.outage - (time.monotonic() - began)))
                met = httpx.get(f"{sim}/_sim/faults").json().get("injected", {})
                httpx.delete(f"{sim}/_sim/faults").raise_for_status()
            runs = wait_for_runs(node.database_url, args.drain_timeout)
            settled = time.monotonic() - began
            failed_attempts = failed_pin_attempts(node.database_url)
            with node.api() as api:
                failed = api.get("/api/runs", params={"status": "failed", "limit": 3}).json()
            errors = sorted({str(run["error"]) for run in failed})
            if fault != "outage":
                met = httpx.get(f"{sim}/_sim/faults").json().get("injected", {})
            # requests applied late land before the PINs are counted
            settle_seconds = args.late_delay + 60
            httpx.get(f"{sim}/_sim/webhooks", params={"settle": "true"}, timeout=settle_seconds)
            pins = httpx.get(f"{sim}/_sim/state").json()["pins"]
    finally:
        if simulator is not None:
            simulator.stop()
    statuses = collections.Counter(r.status for r in runs)
    active = collections.Counter(
        p["targetName"].split(" #")[0] for p in pins if p.get("pinStatus") != "4"
    )
    doubled = sum(count > 1 for count in active.values())
    return (
        f"vendor_faults [{fault}, {args.runs} webhooks]: runs {dict(sorted(statuses.items()))},"
        f" failed PIN attempts {failed_attempts}"
        f" (requests the fault met: {sum(met.values()) if met else 'not counted'}),"
        f" guests with more than one active PIN {doubled}, {len(active)} with one or more,"
        f" finished after the first webhook: half by {finished(runs, 0.5):.0f} s,"
        f" 99% by {finished(runs, 0.99):.0f} s, all by {settled:.0f} s (a create that needed"
        " a retry checks for a late copy before it finishes)"
        + "".join(f"\n  a failed run: {error}" for error in errors)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default="outage,rate_limit,late")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the vendor is down")
    parser.add_argument("--storm", type=int, default=1000, help="429s in the storm")
    parser.add_argument("--late-count", type=int, default=8)
    parser.add_argument("--late-delay", type=float, default=45.0)
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    parser.add_argument(
        "--simulator", default="", help="URL of a KEYVOX simulator already running (one fault)"
    )
    add_server_arguments(parser)
    args = parser.parse_args()
    for fault in args.faults.split(","):
        print(measure(fault, args), flush=True)


if __name__ == "__main__":
    main()
