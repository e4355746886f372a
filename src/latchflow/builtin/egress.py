"""Guarded egress for ``http.request``: which addresses it may reach, and connecting only there.

A host name is resolved once per connection, where the connection is made (in an httpcore
network backend); every address is checked, and the connection goes to a checked address, so a
resolver that answers differently the second time (DNS rebinding) gains nothing. The host name
stays the request's ``Host`` header, TLS server name and certificate name. IPv6 forms that carry
an IPv4 address (IPv4-mapped, NAT64, 6to4, ...) are judged by the IPv4 address they carry.
Proxies from the environment are not used: through a proxy the address reached cannot be checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence

import anyio
import httpcore
import httpx

from latchflow import FatalError, RetryableError

ALLOW_ENV = "LATCHFLOW_HTTP_ALLOW_NETWORKS"
WHERE = "$.input.url"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""Resolves a host name and port to IP addresses (as text)."""

NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0/96")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
NOT_PUBLIC = [ipaddress.ip_network(n) for n in ("64:ff9b:1::/48", "5f00::/16", "192.0.0.0/24")]
"""Special-purpose networks that older Pythons count as global (local-use NAT64, whose
embedded IPv4 address depends on the local translator; SRv6; IETF protocol assignments)."""


def allowed_networks() -> list[Network]:
    """Networks ``http.request`` may reach despite being non-public (comma list of CIDRs)."""
    networks = []
    for part in os.environ.get(ALLOW_ENV, "").split(","):
        if not part.strip():
            continue
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError as exc:
            raise FatalError(
                f"{ALLOW_ENV}: {part.strip()!r} is not a network ({exc});"
                " write CIDRs separated by commas, e.g. 127.0.0.0/8,::1/128"
            ) from exc
    return networks


def carried_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, with the name of its form; None if none."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address", address.ipv4_mapped
    if address in IPV4_TRANSLATED:
        return "an IPv4-translated address", low32
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1
        return "an IPv4-compatible address", low32
    if address in NAT64:
        return "a NAT64 address", low32
    if address.sixtofour is not None:
        return "a 6to4 address", address.sixtofour
    if address.teredo is not None:
        return "a Teredo address", address.teredo[1]  # the client, where packets go
    return None


def is_public(address: IPAddress) -> bool:
    """Whether an address (one that carries no IPv4 address) is globally reachable."""
    return (
        address.is_global
        and not address.is_multicast
        and not any(address in net for net in NOT_PUBLIC)
    )


def check_address(host: str, address: IPAddress, allowed: Iterable[Network]) -> None:
    """Raise FatalError unless ``address`` is public or inside an allowed network."""
    carried = carried_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    judged = carried[1] if carried else address
    if is_public(judged) or any(judged in net for net in allowed):
        return
    if carried:
        form, ipv4 = carried
        raise FatalError(
            f"{WHERE}: {host} resolves to {address}, {form} carrying the IPv4 address {ipv4},"
            f" which is non-public; allow that IPv4 network in {ALLOW_ENV} (e.g. 127.0.0.0/8)"
            " if this is intended"
        )
    raise FatalError(
        f"{WHERE}: {host} resolves to {address}, a non-public address; allow its network in"
        f" {ALLOW_ENV} (e.g. 127.0.0.0/8) if this is intended"
    )


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system's resolver gives for ``host``."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects by resolving once, checking every address, then connecting to a checked one."""

    def __init__(
        self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` (resolved at most once), every one checked."""
        try:
            ipaddress.ip_address(host)
            answers: Sequence[str] = [host]
        except ValueError:
            try:
                answers = await self.resolver(host, port)
            except OSError as exc:
                raise RetryableError(f"{WHERE}: cannot resolve {host!r}: {exc}") from exc
        if not answers:
            raise RetryableError(f"{WHERE}: {host!r} resolves to no address")
        allowed = allowed_networks()
        for answer in answers:
            check_address(host, ipaddress.ip_address(answer), allowed)
        return list(answers)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):  # resolving and every attempt together
                failure: Exception | None = None
                for address in await self.addresses(host, port):
                    try:
                        return await self.inner.connect_tcp(
                            address, port, None, local_address, socket_options
                        )
                    except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                        failure = exc
                raise failure or httpcore.ConnectError(f"{host}:{port}: nothing to connect to")
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(
                f"resolving and connecting to {host}:{port} took more than {timeout} s"
            ) from exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError(f"{path}: http.request does not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over an httpcore pool that connects through a PinnedBackend only.

    Keep-alive is off: each request opens (so resolves and checks) its own connection, which
    is closed when the response has been read, so nothing stays open between requests.
    """

    def __init__(self, backend: PinnedBackend, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError(  # fail closed should httpx keep its pool elsewhere
                "httpx.AsyncHTTPTransport no longer keeps its connection pool in _pool;"
                " adapt latchflow.builtin.egress.PinnedTransport to this httpx version"
            )
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=0,
            network_backend=backend,
        )


class Egress:
    """The guarded HTTP clients of ``http.request``: a new one for every request, closed after
    it (nothing of a cancelled request stays open), over one TLS context."""

    def __init__(
        self,
        resolver: Resolver = system_resolver,
        *,
        verify: ssl.SSLContext | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.backend = PinnedBackend(resolver, backend)
        self._ssl_context = verify

    def client(self) -> httpx.AsyncClient:
        """A client for one request (use it with ``async with``): no proxies, no redirects,
        connections pinned and checked."""
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()  # httpx's CA bundle, as the engine
        return httpx.AsyncClient(
            transport=PinnedTransport(self.backend, self._ssl_context),
            trust_env=False,  # no proxy (none is mounted beside a given transport), no .netrc
            follow_redirects=False,
        )
