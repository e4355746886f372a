"""The credential providers against the simulators, the way access grants use them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pytest

from latchflow import (
    AccessWindow,
    Connection,
    CredentialKind,
    CredentialProvider,
    CredentialRequest,
    FatalError,
    Holder,
    VendorCredential,
)
from latchflow.testing import check_provider, load_registry, make_context
from latchflow_livionkey.access import START_MARGIN
from latchflow_livionkey.v1_client import V1Client
from latchflow_livionkey.v2_client import V2Client

HOLDER = Holder(name="Ada Lovelace", phone="+358401234567", email="ada@example.com")


@cache
def provider(kind: str) -> CredentialProvider:
    return load_registry().providers[kind]


def request(
    resource_kind: str, resource: str, starts_at: datetime, **changes: object
) -> CredentialRequest:
    start = starts_at.replace(microsecond=0)
    made = CredentialRequest(
        credential_id="cred-1",
        resource_kind=resource_kind,
        resource=resource,
        kind=CredentialKind.PIN
        if resource_kind == "livionkey.key"
        else CredentialKind.KEY_HANDOVER,
        holder=HOLDER,
        window=AccessWindow(start, start + timedelta(days=2), "Europe/Helsinki"),
        label="Ada Lovelace / booking 1001",
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_plugin_registers_both_providers() -> None:
    providers = load_registry().providers
    assert providers["livionkey.key"].vendor == "livionkey"
    assert providers["livionkey.key_automat"].vendor == "livionkey_v2"
    assert providers["livionkey.automat_group"] is providers["livionkey.key_automat"]
    assert all(
        p.change is not None and not p.weekly_hours
        for p in providers.values()
        if p.vendor.startswith("livionkey")
    )


async def test_v1_key_provider(v1: Connection, v1_url: str) -> None:
    start = v1.clock.now() + timedelta(days=1)
    wanted = request("livionkey.key", "000111/apt-101", start)
    lost = {"kind": "lost", "count": 1, "method": "POST", "path": "/contracts"}
    assert await check_provider(provider("livionkey.key"), v1, wanted, v1_url, lost) == []


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("livionkey.key_automat", "000111/ar-apt-12"),
        ("livionkey.automat_group", "grp-espoo/ar-sauna"),
    ],
)
async def test_v2_providers(v2: Connection, v2_url: str, kind: str, resource: str) -> None:
    start = v2.clock.now() + timedelta(days=1)
    wanted = request(kind, resource, start)
    lost = {"kind": "lost", "count": 1, "method": "POST", "path": "/v2/iloq/keycontracts"}
    assert await check_provider(provider(kind), v2, wanted, v2_url, lost) == []


async def listed(kind: str, connection: Connection) -> dict[str, str]:
    listing = provider(kind).resources
    assert listing is not None
    found = await listing(make_context(connection), kind)
    assert found and len({r.id for r in found}) == len(found)
    for resource in found:
        assert await provider(kind).inspect(make_context(connection), kind, resource.id) == []
    return {r.id: r.name for r in found}


async def test_resources_list_keys_and_locations_with_each_access_right(
    v1: Connection, v2: Connection, v2_url: str
) -> None:
    keys = await listed("livionkey.key", v1)
    assert keys["000111/apt-101"] == "Apartment 101 (Lobby key automat)"
    assert {"000111/apt-102", "000111/sauna", "000222/office-1"} < set(keys)

    automats = await listed("livionkey.key_automat", v2)
    assert automats["000111/ar-apt-12"] == "Apartment 12 (key automat Kamppi automat)"
    assert len(automats) == 3 * 3  # active automats by access rights; 000999 is not installed
    assert not any(r.startswith("000999/") for r in automats)
    groups = await listed("livionkey.automat_group", v2)
    assert groups["grp-espoo/ar-sauna"] == "Sauna (automat group Espoo)"
    assert len(groups) == 2 * 3

    start = v2.clock.now() + timedelta(days=1)
    wanted = request("livionkey.key_automat", "000211/ar-main-door", start)
    lost = {"kind": "lost", "count": 1, "method": "POST", "path": "/v2/iloq/keycontracts"}
    assert await check_provider(provider("livionkey.key_automat"), v2, wanted, v2_url, lost) == []


async def test_v1_start_in_the_past_begins_now_and_a_retry_adopts(
    v1: Connection, v1_url: str, simpost: Any
) -> None:
    started = request("livionkey.key", "000111/sauna", v1.clock.now() - timedelta(hours=1))
    issue = provider("livionkey.key").issue
    ctx = replace(make_context(v1), idempotency_key="cred-1:issue:1")
    first = await issue(ctx, started)
    assert isinstance(first, VendorCredential) and first.active and first.secret
    assert first.starts_at is not None
    assert abs(first.starts_at - (v1.clock.now() + START_MARGIN)) < timedelta(seconds=1)
    assert await issue(replace(ctx, attempt=2), started) == first

    # Once it runs, moving its end keeps its start (V1 refuses a start in the past).
    await simpost(v1_url, "/_sim/clock", {"advance": 120})
    v1.clock.advance(120)  # type: ignore[attr-defined]
    longer = replace(
        started, window=replace(started.window, ends_at=started.window.ends_at + timedelta(days=1))
    )
    change = provider("livionkey.key").change
    assert change is not None
    moved = await change(replace(ctx, idempotency_key="cred-1:change:1"), first, longer)
    assert isinstance(moved, VendorCredential)
    assert (moved.ids, moved.starts_at, moved.ends_at) == (
        first.ids,
        first.starts_at,
        longer.window.ends_at,
    )


async def test_inspect_finds_contracts_made_in_the_vendors_console(
    v1: Connection, v2: Connection
) -> None:
    start = (v1.clock.now() + timedelta(days=3)).isoformat()
    end = (v1.clock.now() + timedelta(days=4)).isoformat()
    made = await V1Client(v1).request(
        "POST",
        "/contracts",
        json_body={
            "contractId": "front-desk-7",
            "devices": [{"id": "000111", "keyId": "apt-102"}],
            "start": start,
            "end": end,
            "person": "Walk-in guest",
            "contacts": [{"email": "guest@example.com", "phoneNumber": "+358400000000"}],
        },
    )
    found = await provider("livionkey.key").inspect(
        make_context(v1), "livionkey.key", "000111/apt-102"
    )
    assert [(c.ids, c.holder, c.secret, c.active) for c in found] == [
        ({"contract": made["id"]}, "Walk-in guest", made["pincode"], True)
    ]
    assert (
        await provider("livionkey.key").inspect(make_context(v1), "livionkey.key", "000111/apt-101")
        == []
    )

    handover = await V2Client(v2).request(
        "POST",
        "/iloq/keycontracts",
        json_body={
            "input": {
                "contractType": 1,
                "keyAutomatId": "000112",
                "numberOfKeys": 1,
                "accessRightIds": ["ar-main-door", "ar-apt-12"],
                "start": start,
                "end": end,
                "contact": {"name": "Staff-made"},
            }
        },
    )
    v2_provider = provider("livionkey.key_automat")
    here = "000112/ar-apt-12,ar-main-door"
    found = await v2_provider.inspect(make_context(v2), "livionkey.key_automat", here)
    assert [(c.ids, c.holder, c.active) for c in found] == [
        ({"contract": handover["id"]}, "Staff-made", True)
    ]
    assert found[0].secret == handover["keys"][0]["storageInfo"]["pincode"]
    # Other resources (fewer rights, another automat, the automat's group) do not list it.
    for kind, other in [
        ("livionkey.key_automat", "000112/ar-apt-12"),
        ("livionkey.key_automat", "000111/ar-apt-12,ar-main-door"),
        ("livionkey.automat_group", "grp-helsinki/ar-apt-12,ar-main-door"),
    ]:
        assert await v2_provider.inspect(make_context(v2), kind, other) == []


async def test_impossible_requests_say_what_to_do(v1: Connection, v2: Connection) -> None:
    start = datetime.now().astimezone() + timedelta(days=1)
    no_rights = request("livionkey.key_automat", "000111", start)
    with pytest.raises(FatalError, match="access right ids"):
        await provider("livionkey.key_automat").issue(make_context(v2), no_rights)
    as_pin = request("livionkey.key_automat", "000111/ar-apt-12", start, kind=CredentialKind.PIN)
    with pytest.raises(FatalError, match="cannot issue a pin credential, only key_handover"):
        await provider("livionkey.key_automat").issue(make_context(v2), as_pin)
    no_key = request("livionkey.key", "000111", start)
    with pytest.raises(FatalError, match="000111/apt-101"):
        await provider("livionkey.key").issue(make_context(v1), no_key)
