"""``latchflow why`` against the vendors' simulators names the link that fails (no grant, a
window not started, a PIN not yet delivered to the lock, a vendor that errs, a cancelled
grant), and ``latchflow audit verify`` passes on a real history and names an edited entry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from typer.testing import CliRunner, Result

from latchflow.cli import app

from .conftest import Sandbox
from .test_grants import booking, places


async def cli(sandbox: Sandbox, *args: str) -> Result:
    """``latchflow ARGS --data-dir <the sandbox's>``, in a thread (``why`` runs its own loop)."""
    data_dir = str(sandbox.engine.settings.data_dir)
    runner = CliRunner()
    return await asyncio.to_thread(lambda: runner.invoke(app, [*args, "--data-dir", data_dir]))


def inside(grant: dict[str, str]) -> str:
    """A moment an hour into the grant's window."""
    return (datetime.fromisoformat(grant["starts"]) + timedelta(hours=1)).isoformat()


async def why(sandbox: Sandbox, at: str | None = None, place: str = "Room 12") -> Result:
    moment = ["--at", at] if at else []
    return await cli(sandbox, "why", "Ada Lovelace", place, *moment)


async def test_no_grant_for_the_place(sandbox: Sandbox) -> None:
    await places(sandbox)
    grant = {**booking(sandbox), "places": ["Front door"]}
    sandbox.engine.access.grants.grant(grant, actor="test")
    await sandbox.settle(horizon=60)

    result = await why(sandbox, inside(grant))
    assert result.exit_code == 1, result.output
    assert "✗ grant: no grant lets Ada Lovelace open Room 12" in result.output
    assert (await why(sandbox, inside(grant), "Front door")).exit_code == 0

    unknown = await cli(sandbox, "why", "Bob", "Room 12", "--json")
    assert unknown.exit_code == 1
    assert '"broken": "person"' in unknown.output and "'Bob'" in unknown.output


async def test_a_window_not_started(sandbox: Sandbox) -> None:
    await places(sandbox)
    grant = booking(sandbox)
    sandbox.engine.access.grants.grant(grant, actor="test")
    await sandbox.settle(horizon=60)

    result = await why(sandbox, sandbox.clock.now().isoformat())
    assert result.exit_code == 1, result.output
    assert "✗ window: grant B-1001's window has not started" in result.output
    assert "cannot open Room 12" in result.output
    ok = await why(sandbox, inside(grant), "Front door")
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("✓") >= 3 and "✗" not in ok.output
    assert "Ada Lovelace can open Front door" in ok.output


async def test_a_pin_waiting_for_delivery_to_the_lock(sandbox: Sandbox) -> None:
    """KEYVOX pushes PINs to locks in batches every 2 minutes: a PIN made just after a batch
    waits for the next one (the simulator's clock is set just past a batch first)."""
    keyvox = sandbox.sims["keyvox"]
    now = (await keyvox.get("/_sim/clock")).json()["unix"]
    batch = datetime.fromtimestamp((now // 120 + 1) * 120 + 1, UTC)
    (await keyvox.post("/_sim/clock", json={"set": batch.isoformat()})).raise_for_status()
    await places(sandbox)
    started = sandbox.clock.now().isoformat()  # the guest is at the door now
    grant = {**booking(sandbox), "places": ["Room 12"], "starts": started}
    sandbox.engine.access.grants.grant(grant, actor="test")
    await sandbox.settle(horizon=60)

    pending = await why(sandbox)
    assert pending.exit_code == 1, pending.output
    assert "✓ credential on keyvox.unit" in pending.output
    assert "✗ delivery: the vendor has not delivered it to the device yet" in pending.output
    assert "waiting for delivery (20)" in pending.output

    (await keyvox.post("/_sim/clock", json={"advance": 120})).raise_for_status()
    delivered = await why(sandbox)
    assert delivered.exit_code == 0, delivered.output
    assert "active at the vendor (delivered (30))" in delivered.output


async def test_a_vendor_that_errs(sandbox: Sandbox) -> None:
    await places(sandbox)
    grant = {**booking(sandbox), "places": ["Front door"]}
    sandbox.engine.access.grants.grant(grant, actor="test")
    await sandbox.settle(horizon=60)
    fault = {"kind": "error", "status": 500, "count": 20}
    (await sandbox.sims["unloc"].post("/_sim/faults", json=fault)).raise_for_status()

    result = await why(sandbox, inside(grant), "Front door")
    assert result.exit_code == 1, result.output
    assert "✓ credential on unloc.lock" in result.output
    assert "✗ vendor: the vendor could not be asked" in result.output
    assert "500" in result.output
    (await sandbox.sims["unloc"].delete("/_sim/faults")).raise_for_status()


async def test_a_cancelled_grant(sandbox: Sandbox) -> None:
    await places(sandbox)
    grant = booking(sandbox)
    grants = sandbox.engine.access.grants
    grants.grant(grant, actor="test")
    await sandbox.settle(horizon=60)
    grants.cancel("B-1001", actor="test")
    await sandbox.settle(horizon=60)

    result = await why(sandbox, inside(grant), "Key automat")
    assert result.exit_code == 1, result.output
    assert "✗ grant: grant B-1001 was cancelled at" in result.output
    shown = await cli(sandbox, "grants", "show", "B-1001")
    assert shown.exit_code == 0 and shown.output.count('"state": "revoked"') == 3


async def test_audit_verify_after_a_grant_made_changed_and_cancelled(sandbox: Sandbox) -> None:
    keyvox = await sandbox.state("keyvox")
    room = next(u for u in keyvox["units"] if u["unitName"].startswith("Room"))["unitId"]
    saved = await cli(
        sandbox, "places", "save", "Room 12", "--resource", f"keyvox:keyvox.unit:{room}"
    )
    assert saved.exit_code == 0, saved.output
    data = booking(sandbox)
    made = await cli(
        sandbox,
        "grants", "create",
        "--person", "Ada Lovelace", "--phone", "+47 998 87 766",
        "--place", "Room 12",
        "--starts", data["starts"], "--ends", data["ends"],
        "--reference", "B-1001",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    await sandbox.settle(horizon=60)
    later = (datetime.fromisoformat(data["ends"]) + timedelta(days=1)).isoformat()
    assert (await cli(sandbox, "grants", "update", "B-1001", "--ends", later)).exit_code == 0
    await sandbox.settle(horizon=60)
    assert (await cli(sandbox, "grants", "cancel", "B-1001")).exit_code == 0
    await sandbox.settle(horizon=60)
    listed = await cli(sandbox, "grants", "list", "--state", "cancelled")
    assert "B-1001" in listed.output and "Room 12: revoked" in listed.output

    verified = await cli(sandbox, "audit", "verify")
    assert verified.exit_code == 0, verified.output
    audit = sandbox.engine.store.audit
    count, head, _ = audit.verify()
    assert count >= 6 and f"{count} entries checked" in verified.output and head in verified.output
    actions = [e.action for e in audit.events()]
    assert {"grant.created", "grant.changed", "grant.cancelled"} <= set(actions)
    assert {"credential.issued", "credential.changed", "credential.revoked"} <= set(actions)

    changed = next(e for e in audit.events() if e.action == "grant.changed")
    with sandbox.engine.store.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET detail = :detail WHERE seq = :seq"),
            {"detail": '{"ends": "2099-01-01T00:00:00+00:00"}', "seq": changed.seq},
        )
    broken = await cli(sandbox, "audit", "verify")
    assert broken.exit_code == 1
    assert f"entry {changed.seq} ({changed.id})" in broken.output
    assert "was edited" in broken.output


async def test_refusals_name_the_json_path(sandbox: Sandbox) -> None:
    await places(sandbox)
    made = await cli(
        sandbox,
        "grants", "create", "--person", "Ada Lovelace", "--place", "Attic",
        "--starts", "soon", "--ends", "2030-01-01T00:00:00Z", "--weekly", "mon,fun 08:00-18:00",
    )  # fmt: skip
    assert made.exit_code == 1
    assert "$.weekly.days[1]: 'fun' is not one of" in made.output
    made = await cli(
        sandbox,
        "grants", "create", "--person", "Ada Lovelace", "--place", "Attic",
        "--starts", "soon", "--ends", "2030-01-01T00:00:00Z",
    )  # fmt: skip
    assert made.exit_code == 1
    assert "$.places[0]: no place is named 'Attic'" in made.output
    assert "$.starts: 'soon' is not an ISO 8601 date-time" in made.output
    saved = await cli(sandbox, "places", "save", "Attic", "--resource", "keyvox:keyvox.attic:A-1")
    assert saved.exit_code == 1 and "$.resources[0].kind: unknown resource kind" in saved.output
    missing = await cli(sandbox, "grants", "cancel", "B-404")
    assert missing.exit_code == 1
    assert "no grant has the id or reference 'B-404'" in missing.output
