"""The KEYVOX credential providers against the simulator over real HTTP, as grants use them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from latchflow import (
    AccessWindow,
    Connection,
    CredentialKind,
    CredentialProvider,
    CredentialRequest,
    FatalError,
    Holder,
    Resource,
    VendorCredential,
)
from latchflow.testing import check_provider, load_registry, make_context
from latchflow_keyvox.access import LOCKER_BOX_PROVIDER, UNIT_PROVIDER
from latchflow_keyvox.client import KeyvoxClient
from latchflow_keyvox.testing import Sim

API = "/api/eagle-pms/v1"


def request(
    sim: Sim,
    resource_kind: str,
    resource: str,
    kind: CredentialKind = CredentialKind.PIN,
    label: str = "Hanako Yamada BK-17",
) -> CredentialRequest:
    now = datetime.fromtimestamp(sim.world.now(), UTC)
    return CredentialRequest(
        credential_id="cred-1",
        resource_kind=resource_kind,
        resource=resource,
        kind=kind,
        holder=Holder("Hanako Yamada", phone="+819012345678"),
        window=AccessWindow(now + timedelta(hours=1), now + timedelta(days=1), "Asia/Tokyo"),
        label=label,
    )


def box(sim: Sim, number: str = "00-03") -> str:
    return f"{sim.state()['lockers'][0]['deviceId']}/{number}"


async def test_unit_provider_behaves_as_grants_need(sim: Sim, conn: Connection) -> None:
    wanted = request(sim, "keyvox.unit", sim.room()["unitId"])
    lost = {"kind": "lost", "path": f"{API}/createLockPin"}
    assert await check_provider(UNIT_PROVIDER, conn, wanted, sim.url, lost=lost) == []


async def test_locker_box_provider_behaves_as_grants_need(sim: Sim, conn: Connection) -> None:
    wanted = request(sim, "keyvox.locker_box", box(sim))
    lost = {"kind": "lost", "path": f"{API}/createLockerPin"}
    assert await check_provider(LOCKER_BOX_PROVIDER, conn, wanted, sim.url, lost=lost) == []


async def resources(provider: CredentialProvider, conn: Connection, kind: str) -> list[Resource]:
    assert provider.resources is not None
    return await provider.resources(make_context(conn), kind)


async def test_resources_list_every_unit_and_locker_box(sim: Sim, conn: Connection) -> None:
    state = sim.state()
    units = await resources(UNIT_PROVIDER, conn, "keyvox.unit")
    assert [(r.id, r.name) for r in units] == [(u["unitId"], u["unitName"]) for u in state["units"]]
    assert sim.room()["unitId"] in [r.id for r in units]
    boxes = await resources(LOCKER_BOX_PROVIDER, conn, "keyvox.locker_box")
    assert len(boxes) == sum(len(lk["boxes"]) for lk in state["lockers"])
    assert Resource(box(sim), f"{state['lockers'][0]['deviceName']} box 00-03") in boxes
    for provider, kind, listed in [
        (UNIT_PROVIDER, "keyvox.unit", units),
        (LOCKER_BOX_PROVIDER, "keyvox.locker_box", boxes),
    ]:
        for resource in listed:
            assert await provider.inspect(make_context(conn), kind, resource.id) == []
    wanted = request(sim, "keyvox.locker_box", boxes[-1].id)
    lost = {"kind": "lost", "path": f"{API}/createLockerPin"}
    assert await check_provider(LOCKER_BOX_PROVIDER, conn, wanted, sim.url, lost=lost) == []


async def test_issue_puts_the_label_where_keyvox_shows_a_name(sim: Sim, conn: Connection) -> None:
    wanted = request(sim, "keyvox.unit", sim.room()["unitId"])
    issued = await UNIT_PROVIDER.issue(make_context(conn), wanted)
    assert isinstance(issued, VendorCredential)
    assert issued.holder == "Hanako Yamada BK-17" and issued.secret and len(issued.secret) == 6
    assert issued.starts_at == wanted.window.starts_at and issued.ends_at == wanted.window.ends_at
    (pin,) = sim.state()["pins"]
    assert pin["targetName"].startswith("Hanako Yamada BK-17 #lf-")

    assert UNIT_PROVIDER.change is not None
    renamed = request(sim, "keyvox.unit", wanted.resource, label="Hanako Sato BK-17")
    changed = await UNIT_PROVIDER.change(make_context(conn), issued, renamed)
    assert isinstance(changed, VendorCredential) and changed.holder == "Hanako Sato BK-17"
    (found,) = await UNIT_PROVIDER.inspect(make_context(conn), "keyvox.unit", wanted.resource)
    assert found.holder == "Hanako Sato BK-17" and found.ids == issued.ids


async def test_inspect_finds_pins_made_in_the_vendor_console(sim: Sim, conn: Connection) -> None:
    unit = sim.room()["unitId"]
    now = sim.world.now()
    api = KeyvoxClient(conn)
    soon = await api.call(
        "createLockPin",
        {"unitId": unit, "sTime": str(now + 600), "eTime": str(now + 7200), "pinCode": "4821"},
    )
    later = {"unitId": unit, "sTime": str(now + 30 * 86400), "eTime": str(now + 31 * 86400)}
    await api.call("createLockPin", {**later, "targetName": "Cleaning staff"})
    found = await UNIT_PROVIDER.inspect(make_context(conn), "keyvox.unit", unit)

    by_id = {c.ids["pinId"]: c for c in found}
    assert len(found) == 2 and all(c.active for c in found)
    staff = by_id[soon["pinId"]]
    assert staff.secret == "4821" and staff.holder is None and staff.delivered is not None
    assert staff.status and staff.status.endswith(")")
    assert staff.starts_at == datetime.fromtimestamp(now + 600, UTC)
    (cleaning,) = [c for c in found if c.holder == "Cleaning staff"]
    assert cleaning.delivered is False  # KEYVOX delivers from 72 h before the start

    device, number = box(sim, "00-01").split("/")
    await api.call(
        "createLockerPin",
        {"deviceId": device, "boxNum": number, "sTime": str(now), "eTime": str(now + 3600)},
    )
    (parcel,) = await LOCKER_BOX_PROVIDER.inspect(
        make_context(conn), "keyvox.locker_box", box(sim, "00-01")
    )
    assert (
        parcel.active
        and parcel.secret
        and parcel.ends_at == datetime.fromtimestamp(now + 3600, UTC)
    )


async def test_impossible_requests_say_what_to_do(sim: Sim, conn: Connection) -> None:
    mobile = request(sim, "keyvox.unit", sim.room()["unitId"], kind=CredentialKind.MOBILE_KEY)
    with pytest.raises(
        FatalError, match=r"only PINs .* not mobile_key: let the grant prefer a PIN"
    ):
        await UNIT_PROVIDER.issue(make_context(conn), mobile)
    device = sim.state()["lockers"][0]["deviceId"]
    no_box = request(sim, "keyvox.locker_box", device)
    with pytest.raises(FatalError, match="give <deviceId>/<boxNum>"):
        await LOCKER_BOX_PROVIDER.issue(make_context(conn), no_box)
    with pytest.raises(FatalError, match="has no box 99-99"):
        await LOCKER_BOX_PROVIDER.inspect(
            make_context(conn), "keyvox.locker_box", f"{device}/99-99"
        )
    assert sim.state()["pins"] == []


async def test_revoking_a_pin_keyvox_never_had_succeeds(sim: Sim, conn: Connection) -> None:
    gone = VendorCredential({"pinId": "0" * 24}, sim.room()["unitId"], CredentialKind.PIN, True)
    assert await UNIT_PROVIDER.revoke(make_context(conn), gone) is None
    assert await LOCKER_BOX_PROVIDER.revoke(make_context(conn), gone) is None


def test_the_plugin_registers_its_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATCHFLOW_LOAD_PLUGINS", "keyvox")
    registry = load_registry()
    assert registry.providers["keyvox.unit"] is UNIT_PROVIDER
    assert registry.providers["keyvox.locker_box"] is LOCKER_BOX_PROVIDER
    for provider in (UNIT_PROVIDER, LOCKER_BOX_PROVIDER):
        assert provider.vendor == "keyvox" and provider.change is not None
        assert provider.weekly_hours is False
