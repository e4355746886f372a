"""The http.request action: non-public targets refused unless allowed, the address checked is the
address connected to (no DNS rebinding), status codes mapped to retry/fail."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpcore
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from latchflow.builtin.egress import ALLOW_ENV, Egress
from latchflow.builtin.http_request import send
from latchflow.plugin.errors import FatalError, RetryableError
from latchflow.plugin.types import RunContext
from latchflow.testing import make_context, serve_app

received: list[dict[str, object]] = []


async def echo(request: Request) -> JSONResponse:
    received.append(
        {
            "body": await request.json(),
            "key": request.headers.get("idempotency-key"),
            "host": request.headers.get("host"),
        }
    )
    return JSONResponse({"ok": True})


async def busy(request: Request) -> JSONResponse:
    return JSONResponse({"error": "busy"}, status_code=503, headers={"retry-after": "7"})


async def missing(request: Request) -> JSONResponse:
    return JSONResponse({"error": "no such booking"}, status_code=404)


@pytest.fixture(autouse=True)
def _fresh_receiver_log() -> None:
    received.clear()


@pytest.fixture
async def ctx() -> AsyncIterator[RunContext]:
    context = make_context(run_id="r1", step_id="notify")
    yield context
    await context.http.aclose()


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/busy", busy, methods=["POST"]),
            Route("/missing", missing, methods=["POST"]),
        ]
    )
    with serve_app(app) as url:
        yield url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class Answers:
    """A resolver giving ``first`` on its first call and ``later`` on every call after it."""

    def __init__(self, first: str, later: str = "127.0.0.1") -> None:
        self.first, self.later = first, later
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return [self.first if len(self.calls) == 1 else self.later]


class Recording(httpcore.AsyncNetworkBackend):
    """Records where it is asked to connect; connects through ``inner``, or refuses."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.inner = inner
        self.connects: list[tuple[str, int]] = []
        self.streams: list[httpcore.AsyncNetworkStream] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if self.inner is None:
            raise httpcore.ConnectError(f"{host}:{port} is unreachable in this test")
        stream = await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        self.streams.append(stream)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AssertionError("no Unix sockets here")

    async def sleep(self, seconds: float) -> None:
        raise AssertionError("nothing should wait here")


async def test_loopback_is_refused_by_default(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    with pytest.raises(
        FatalError,
        match=r"\$\.input\.url: 127\.0\.0\.1 resolves to 127\.0\.0\.1, a non-public address",
    ):
        await send(ctx, {"url": f"{receiver}/echo", "json": {}})
    for url in (
        "http://169.254.169.254/latest",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://2130706433/",  # 127.0.0.1 written as one number
        "ftp://example.com/",
    ):
        with pytest.raises(FatalError, match=r"\$\.input\.url"):
            await send(ctx, {"url": url})
    assert received == []


@pytest.mark.parametrize(
    ("host", "carried"),
    [
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4
        ("64:ff9b::a00:1", "10.0.0.1"),  # NAT64
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),  # Teredo (client obfuscated)
    ],
)
async def test_ipv6_forms_carrying_a_private_ipv4_are_refused_naming_it(
    host: str, carried: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    backend = Recording()
    with pytest.raises(FatalError) as caught:
        await send(ctx, {"url": f"http://[{host}]:8080/"}, Egress(backend=backend))
    message = str(caught.value)
    assert message.startswith(f"$.input.url: {host} resolves to ")
    assert f"carrying the IPv4 address {carried}, which is non-public" in message
    assert ALLOW_ENV in message
    assert backend.connects == []


async def test_ipv6_forms_are_judged_by_the_ipv4_they_carry(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public IPv4 inside NAT64 passes; an allowed IPv4 network admits its mapped form."""
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    backend = Recording()
    for host in ("64:ff9b::808:808", "::ffff:127.0.0.1"):
        with pytest.raises(RetryableError, match="could not be reached"):
            await send(ctx, {"url": f"http://[{host}]:8080/"}, Egress(backend=backend))
    assert backend.connects == [("64:ff9b::808:808", 8080), ("::ffff:127.0.0.1", 8080)]


async def test_a_rebinding_resolver_cannot_reach_loopback(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first answer passes the check and is the only address connected to."""
    monkeypatch.setenv(ALLOW_ENV, "203.0.113.0/24")  # the documentation network, not routed
    resolver, backend = Answers("203.0.113.10", later="127.0.0.1"), Recording()
    port = port_of(receiver)
    with pytest.raises(RetryableError, match="could not be reached"):
        await send(
            ctx,
            {"url": f"http://rebind.test:{port}/echo", "json": {}},
            Egress(resolver, backend=backend),
        )
    assert resolver.calls == ["rebind.test"]
    assert backend.connects == [("203.0.113.10", port)]
    assert received == []


async def test_the_checked_address_is_the_one_connected_to_with_the_host_header_kept(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real connections: a later answer would lead nowhere, yet every request arrives."""
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    resolver = Answers("127.0.0.1", later="203.0.113.10")
    egress = Egress(resolver, backend=Recording(httpcore.AnyIOBackend()))
    port = port_of(receiver)
    url = f"http://pinned.test:{port}/echo"
    result = await send(ctx, {"url": url, "json": {"n": 1}, "timeout": 5}, egress)
    assert result["status"] == 200
    assert received == [{"body": {"n": 1}, "key": "r1:notify", "host": f"pinned.test:{port}"}]
    assert resolver.calls == ["pinned.test"]


async def test_one_resolution_per_request_and_no_connection_left_open(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    resolver = Answers("127.0.0.1")
    backend = Recording(httpcore.AnyIOBackend())
    egress = Egress(resolver, backend=backend)
    url = f"http://twice.test:{port_of(receiver)}/echo"
    for n in range(2):
        await send(ctx, {"url": url, "json": {"n": n}}, egress)
    assert resolver.calls == ["twice.test", "twice.test"]
    assert len(backend.streams) == 2
    assert all(s.get_extra_info("socket").fileno() == -1 for s in backend.streams)


async def test_allowed_network_is_reached_by_address_and_by_name(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8,::1/128")  # localhost may also resolve to ::1
    port = port_of(receiver)
    result = await send(ctx, {"url": f"{receiver}/echo", "json": {"pin": "123456"}})
    assert result["status"] == 200 and result["body"] == {"ok": True}
    await send(ctx, {"url": f"http://localhost:{port}/echo", "json": {"pin": "654321"}})
    assert received == [
        {"body": {"pin": "123456"}, "key": "r1:notify", "host": f"127.0.0.1:{port}"},
        {"body": {"pin": "654321"}, "key": "r1:notify", "host": f"localhost:{port}"},
    ]


async def test_a_proxy_in_the_environment_is_not_used(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens on the discard port
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    result = await send(ctx, {"url": f"{receiver}/echo", "json": {}}, Egress())
    assert result["status"] == 200 and len(received) == 1


async def test_5xx_is_retryable_with_retry_after_and_4xx_is_fatal(
    receiver: str, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    with pytest.raises(RetryableError) as caught:
        await send(ctx, {"url": f"{receiver}/busy", "json": {}})
    assert caught.value.retry_after == 7
    with pytest.raises(FatalError, match=r"answered 404: .*no such booking"):
        await send(ctx, {"url": f"{receiver}/missing", "json": {}})


# https: a local TLS server whose certificate names pms.test only (no IP address), so a
# connection verified against the IP instead of the name would fail.


@dataclass
class TlsServer:
    port: int
    ca: ssl.SSLContext
    """A client context trusting the server's certificate authority."""
    server_names: list[str | None] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """A certificate valid from an hour ago for a day, with (extension, critical) pairs."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def issue_certificates(name: str) -> tuple[bytes, bytes, bytes]:
    """A CA certificate, and a certificate and key for DNS name ``name`` it signed (PEM)."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "latchflow test CA")])
    signs_certificates = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    ca = certificate(
        ca_name,
        ca_name,
        ca_key.public_key(),
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (signs_certificates, True),
            (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False),
        ],
    )
    leaf = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
        ca_name,
        key.public_key(),
        ca_key,
        [
            (x509.SubjectAlternativeName([x509.DNSName(name)]), False),  # no IP address
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False),
        ],
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), leaf.public_bytes(pem), key_pem


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    ca_pem, cert_pem, key_pem = issue_certificates("pms.test")
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    seen = TlsServer(port=0, ca=ssl.create_default_context(cadata=ca_pem.decode()))
    context.sni_callback = lambda _conn, name, _ctx: seen.server_names.append(name)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            seen.hosts += [
                line[5:].strip() for line in head.split("\r\n") if line.lower().startswith("host:")
            ]
            body = b'{"ok": true}'
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    seen.port = server.sockets[0].getsockname()[1]
    async with server:
        yield seen


def tls_egress(server: TlsServer) -> Egress:
    """Every name resolves to the local TLS server; its certificate authority is trusted."""
    return Egress(Answers("127.0.0.1", later="127.0.0.1"), verify=server.ca)


async def test_https_verifies_the_host_name_not_the_pinned_address(
    tls_server: TlsServer, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    url = f"https://pms.test:{tls_server.port}/pins"
    result = await send(ctx, {"url": url, "method": "GET"}, tls_egress(tls_server))
    assert result["body"] == {"ok": True}
    assert tls_server.server_names == ["pms.test"]
    assert tls_server.hosts == [f"pms.test:{tls_server.port}"]


async def test_https_refuses_a_certificate_for_another_name(
    tls_server: TlsServer, ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALLOW_ENV, "127.0.0.0/8")
    url = f"https://other.test:{tls_server.port}/pins"
    with pytest.raises(RetryableError, match="CERTIFICATE_VERIFY_FAILED"):
        await send(ctx, {"url": url, "method": "GET"}, tls_egress(tls_server))
    assert tls_server.server_names == ["other.test"]
    assert tls_server.hosts == []
