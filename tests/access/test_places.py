"""Places made from what a vendor lists (as ``serve --sandbox`` does at every start)."""

from __future__ import annotations

from .conftest import Sandbox


async def test_places_follow_the_resources_a_connection_lists(sandbox: Sandbox) -> None:
    access = sandbox.engine.access
    stale = {"connection": "keyvox", "kind": "keyvox.unit", "id": "a-unit-of-a-former-simulator"}
    door = {
        "connection": "unloc",
        "kind": "unloc.lock",
        "id": "d6d8812e-48a9-11ee-b8a1-db05e53ca3e5",
    }
    access.grants.save_place(
        {"name": "Room 101", "description": "first floor", "resources": [stale, door]}
    )
    units = {u["unitName"]: u["unitId"] for u in (await sandbox.state("keyvox"))["units"]}

    assert await access.sync_places("keyvox") > 0
    room = access.records.place("Room 101")
    assert room is not None and room.description == "first floor"
    assert room.resources == [
        door,
        {"connection": "keyvox", "kind": "keyvox.unit", "id": units["Room 101"]},
    ]
    names = {p.name for p in access.records.places()}
    assert set(units) <= names and "Lobby lockers box 00-01" in names
    assert await access.sync_places("keyvox") == 0
