"""Live connections: per configured account one httpx client, a concurrency bound and its holds.

A connection's holds (``runs.holds``) are how a vendor's 429 or outage slows that connection and
no other: the executor does not let calls on a held connection wait inside a worker, it
reschedules their runs (``due_at``) and frees the worker, so runs on other connections keep
every worker.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from jsonschema import Draft202012Validator

from latchflow.flows.document import schema_errors
from latchflow.plugin.clock import Clock
from latchflow.plugin.errors import ConfigurationError, ErrorDetail, ValidationError
from latchflow.plugin.host import Registry
from latchflow.plugin.types import JSON, Connection
from latchflow.runs.holds import Holds
from latchflow.storage.models import ConnectionRecord
from latchflow.storage.secrets import secret_fields
from latchflow.storage.store import StaleWrite, Store


def _networks(sources: list[str], errors: list[ErrorDetail]) -> list[str]:
    """The sources as CIDR networks; each one that is not is added to ``errors``."""
    networks = []
    for index, source in enumerate(sources):
        try:
            networks.append(str(ipaddress.ip_network(source.strip(), strict=False)))
        except ValueError as exc:
            errors.append(
                ErrorDetail(
                    f"$.webhook_sources[{index}]", f"{exc}; write a network such as 203.0.113.0/24"
                )
            )
    return networks


def revision(record: ConnectionRecord) -> str:
    """A connection's ETag: it changes with every save."""
    return f'"{int(record.updated_at.timestamp() * 1_000_000)}"'


def shown(record: ConnectionRecord) -> JSON:
    """A connection as users see it: its settings without secrets and its revision."""
    return {
        "id": record.id,
        "vendor": record.vendor,
        "name": record.name,
        "config": record.config,
        "webhook_sources": record.webhook_sources,
        "revision": revision(record),
    }


def new_webhook_token() -> str:
    """The unguessable part of a connection's vendor webhook URL (192 random bits)."""
    return secrets.token_urlsafe(24)


TransportFactory = Callable[[str], httpx.AsyncBaseTransport | None]
HTTP_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=16, keepalive_expiry=5.0)


def pooled_transport() -> httpx.AsyncBaseTransport | None:
    """httpx's API over aiohttp's connection pool, which costs much less CPU per request than
    httpx's own pool (README, Performance), with httpx's CA bundle. Where the environment sets a proxy (``HTTPS_PROXY``, ...), None: httpx's
    own pool, which honours it (aiohttp would also read ``.netrc`` on every request)."""
    if urllib.request.getproxies():
        return None
    ssl_context = httpx.create_ssl_context()

    def session() -> aiohttp.ClientSession:  # made on first use, inside the event loop
        connector = aiohttp.TCPConnector(
            limit=HTTP_LIMITS.max_connections or 0,
            keepalive_timeout=HTTP_LIMITS.keepalive_expiry,
            ssl=ssl_context,
        )
        return aiohttp.ClientSession(connector=connector)

    return AiohttpTransport(client=session)


@dataclass
class LiveConnection:
    connection: Connection
    slots: asyncio.Semaphore
    version: object
    """The record's ``Store.connection_version`` when it was opened."""


RELEASES_PER_SLOT = 10.0


class Connections:
    """Opens each connection once (client, cache) and reopens it when its record changes."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        transport: TransportFactory | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.transport = transport or (lambda _vendor: None)
        self.processes = 1
        """Processes calling the same connections at once: each gets its share of a vendor's
        ``max_concurrency``."""
        self._live: dict[str, LiveConnection] = {}
        self._secret_values: frozenset[str] | None = None
        """``secret_values()`` of the open connections, recomputed when one opens or closes."""
        self.holds = Holds(store, clock)
        self.http = httpx.AsyncClient(
            timeout=30.0, limits=HTTP_LIMITS, transport=pooled_transport()
        )

    def resolve(self, vendor: str, connection_id: str | None, where: str) -> str:
        """The connection id a step or trigger uses: the given one, or the vendor's only one."""
        if connection_id is not None:
            return connection_id
        candidates = [c.id for c in self.store.list_connections(vendor)]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise ConfigurationError(
                f"needs a {vendor!r} connection and there is none; add one",
                path=f"{where}.connection",
            )
        raise ConfigurationError(
            f"several {vendor!r} connections exist ({', '.join(candidates)}); name one",
            path=f"{where}.connection",
        )

    def admit(self, connection_id: str, vendor: str) -> datetime | None:
        """None if a call on the connection may go out now; else when to come back (a hold
        releases the runs it kept waiting at up to ``RELEASES_PER_SLOT`` times the vendor's
        ``max_concurrency`` a second: they then queue for the connection's slots in memory)."""
        max_concurrency = self.registry.vendors[vendor].max_concurrency
        return self.holds.admit(connection_id, RELEASES_PER_SLOT * max_concurrency)

    async def get(self, connection_id: str) -> LiveConnection:
        live = self._live.get(connection_id)
        version = self.store.connection_version(connection_id)
        if live is not None and live.version == version:
            return live
        record, config = self.store.connection_config(connection_id)
        if live is not None:
            await live.connection.http.aclose()
        vendor = self.registry.vendors.get(record.vendor)
        if vendor is None:
            raise ConfigurationError(
                f"connection {connection_id!r} is for vendor {record.vendor!r}, whose plugin is not loaded"
            )
        client = httpx.AsyncClient(  # the limits apply where httpx's own pool is used
            timeout=30.0,
            limits=HTTP_LIMITS,
            transport=self.transport(record.vendor) or pooled_transport(),
        )
        live = LiveConnection(
            connection=Connection(
                id=connection_id, vendor=record.vendor, config=config, http=client, clock=self.clock
            ),
            slots=asyncio.Semaphore(max(1, vendor.max_concurrency // self.processes)),
            version=version,
        )
        self._live[connection_id] = live
        self._secret_values = None
        return live

    def secret_values(self) -> frozenset[str]:
        """The secret settings of the open connections, to redact wherever they might show."""
        if self._secret_values is not None:
            return self._secret_values
        values: set[str] = set()
        for live in self._live.values():
            hidden = secret_fields(self.registry.vendors[live.connection.vendor].connection_schema)
            values.update(
                str(live.connection.config[k]) for k in hidden if live.connection.config.get(k)
            )
        self._secret_values = frozenset(values)
        return self._secret_values

    async def save(
        self,
        connection_id: str,
        vendor_key: str,
        name: str,
        config: JSON,
        test: bool = False,
        webhook_token: str | None = None,
        webhook_sources: list[str] | None = None,
        expected: str | None = None,
    ) -> JSON:
        """Validate and store a connection (secrets encrypted), optionally testing it.

        Secret fields left out of an update keep their stored values. A new connection to a
        vendor that sends webhooks gets the token of its webhook URL (``webhook_token`` when
        given); ``webhook_sources`` (CIDR networks; empty: any) limit where its webhooks may
        come from. ``expected`` is the ``revision`` the change was made from (a client's
        ``If-Match``); a change made from another one, or a save that races another, raises
        ``StaleWrite``. Returns the connection as shown to users: settings without secrets, its
        revision, the token when it was just made (shown this once), and the test result.
        """
        vendor = self.registry.vendors.get(vendor_key)
        if vendor is None:
            raise ValidationError.at(
                "$.vendor",
                f"unknown vendor {vendor_key!r}; installed: {', '.join(sorted(self.registry.vendors))}",
            )
        merged, based_on = dict(config), None
        if self.store.get_connection(connection_id) is not None:
            record, stored = self.store.connection_config(connection_id)
            merged, based_on = {**stored, **config}, record.updated_at
            if expected is not None and expected != revision(record):
                raise StaleWrite(f"connection {connection_id!r}")
        elif vendor.webhook is not None and webhook_token is None:
            webhook_token = new_webhook_token()
        errors = schema_errors(Draft202012Validator(vendor.connection_schema), merged, "$.config")
        if webhook_sources is not None:
            webhook_sources = _networks(webhook_sources, errors)
        if errors:
            raise ValidationError(errors)
        record = self.store.save_connection(
            connection_id, vendor, name, merged, webhook_token, webhook_sources, based_on
        )
        answer = shown(record)
        if webhook_token is not None:
            answer["webhook_token"] = webhook_token
        if test:
            live = await self.get(connection_id)
            answer["test"] = await vendor.test_connection(live.connection)
        return answer

    async def close(self) -> None:
        for live in self._live.values():
            await live.connection.http.aclose()
        self._live.clear()
        self._secret_values = None
        await self.http.aclose()
