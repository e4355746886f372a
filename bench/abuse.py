"""Abuse: how fast ``latchflow serve`` refuses oversized requests and what they cost it.

Starts ``latchflow serve`` (SQLite, no plugins), then, while a probe asks ``/healthz`` every
``--probe-ms``, sends in turn: a request with a 1 MB header, a 64 MB JSON body to the management
API without a key, and one with a 256 MB header. For each it prints the time until the refusal
(and its status), the server's RSS growth, and the probe's slowest answer while it lasted.

    .venv/bin/python bench/abuse.py [--probe-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator

import httpx
from harness import percentile, process_sample, running_server

CHUNK = 1024 * 1024


def probe(base: str, every: float, stop: threading.Event, seconds: list[float]) -> None:
    """Ask /healthz every ``every`` seconds; each answer's time goes to ``seconds``."""
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            seconds.append(time.perf_counter() - started)
            stop.wait(every)


def stream(head: bytes, body: Iterator[bytes]) -> bytes:
    """Send ``head`` and then ``body`` until the server answers; its status line."""
    host, port = BASE.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.setblocking(False)
        answer = b""
        for chunk in [head, *body]:
            view = memoryview(chunk)
            while view:
                with contextlib.suppress(BlockingIOError):
                    answer += sock.recv(65536)
                if answer:
                    return answer.split(b"\r\n", 1)[0]
                try:
                    view = view[sock.send(view) :]
                except BlockingIOError:
                    time.sleep(0.0005)
                except (BrokenPipeError, ConnectionResetError):
                    view = view[:0]
        sock.settimeout(600)
        return sock.recv(65536).split(b"\r\n", 1)[0]


def huge_header(size: int) -> tuple[bytes, Iterator[bytes]]:
    head = b"GET /healthz HTTP/1.1\r\nhost: a\r\nx-big: "
    value = (b"x" * min(CHUNK, size - n) for n in range(0, size, CHUNK))
    return head, itertools.chain(value, [b"\r\n\r\n"])


def huge_body(size: int) -> tuple[bytes, Iterator[bytes]]:
    head = (
        b"POST /api/flows HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % size
    )
    return head, (b"[" * min(CHUNK, size - n) for n in range(0, size, CHUNK))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe-ms", type=float, default=20.0)
    args = parser.parse_args()
    global BASE
    with running_server(extra_env={"LATCHFLOW_LOAD_PLUGINS": ""}) as node:
        BASE = node.base
        for name, (head, body) in (
            ("1 MB header", huge_header(1024 * 1024)),
            ("64 MB body, no key", huge_body(64 * 1024 * 1024)),
            ("256 MB header", huge_header(256 * 1024 * 1024)),
        ):
            _, rss_before = process_sample(node.pid)
            seconds: list[float] = []
            stop = threading.Event()
            prober = threading.Thread(
                target=probe, args=(node.base, args.probe_ms / 1000, stop, seconds)
            )
            prober.start()
            time.sleep(0.2)
            started = time.perf_counter()
            status = stream(head, body)
            refused_ms = (time.perf_counter() - started) * 1000
            time.sleep(0.2)
            stop.set()
            prober.join()
            _, rss_after = process_sample(node.pid)
            print(
                f"{name}: {status.decode(errors='replace')} after {refused_ms:.1f} ms;"
                f" server RSS {(rss_after - rss_before) / 2**20:+.1f} MB;"
                f" /healthz meanwhile max {max(seconds) * 1000:.1f} ms,"
                f" p99 {percentile(seconds, 0.99) * 1000:.1f} ms ({len(seconds)} probes)"
            )


BASE = ""

if __name__ == "__main__":
    main()
