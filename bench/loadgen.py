"""Load generation in a separate process: wrk when installed, else a small asyncio HTTP/1.1 client.

``run_load(url, body, concurrency=..., duration=...)`` POSTs ``body`` as JSON over keep-alive
connections for ``duration`` seconds and returns counts and latency percentiles. Run as a
script, this module is the asyncio client itself (``python bench/loadgen.py URL ...``) and
prints one JSON object; ``run_load`` starts it as a child process so the client does not share
an interpreter (or a GIL) with the benchmark's bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) expected = 0; other = 0 end
function response(status, headers, body)
  if status == %(expect)d then expected = expected + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local e, o = 0, 0
  for _, t in ipairs(threads) do e = e + t:get("expected"); o = o + t:get("other") end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"expected\\": %%d, \\"other\\": %%d, \\"errors\\": %%d,"
    .. " \\"seconds\\": %%f, \\"p50_ms\\": %%f, \\"p99_ms\\": %%f}\\n",
    summary.requests, e, o, errors, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    expected: int
    """Answers with the expected status (e.g. 202 accepted)."""
    other: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    tool: str

    @property
    def rate(self) -> float:
        """Expected answers per second."""
        return self.expected / self.seconds if self.seconds else 0.0


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal for ASCII


def run_wrk(
    url: str, body: bytes, concurrency: int, duration: float, expect: int, headers: dict[str, str]
) -> LoadResult:
    header_lines = "\n".join(
        f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()
    )
    script = WRK_SCRIPT % {
        "body": lua_string(body.decode()),
        "headers": header_lines,
        "expect": expect,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    threads = max(1, min(2, concurrency))
    command = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{duration:g}s"]
    command += ["--timeout", "10s", "-s", handle.name, url]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 60, check=True
        )
    finally:
        Path(handle.name).unlink(missing_ok=True)
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return LoadResult(**json.loads(line.removeprefix("RESULT ")), tool="wrk")


def run_load(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    duration: float,
    expect: int = 202,
    headers: dict[str, str] | None = None,
    tool: str = "auto",
) -> LoadResult:
    """POST ``body`` to ``url`` from ``concurrency`` connections for ``duration`` seconds."""
    extra = headers or {}
    if tool == "wrk" or (tool == "auto" and shutil.which("wrk")):
        return run_wrk(url, body, concurrency, duration, expect, extra)
    command = [sys.executable, __file__, url, "--body", body.decode(), "-c", str(concurrency)]
    command += ["-d", str(duration), "--expect", str(expect)]
    for key, value in extra.items():
        command += ["-H", f"{key}: {value}"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, check=True
    )
    return LoadResult(**json.loads(result.stdout), tool="python-asyncio")


# the asyncio client (this module run as a script)


async def _worker(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    expect: int,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            assert reader is not None
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"connection" and value.strip().lower() == b"close":
                    close = True
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            counts["expected" if status == expect else "other"] += 1
            if close:
                writer.close()
                writer = None
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            counts["errors"] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


async def _drive(
    url: str, body: bytes, concurrency: int, duration: float, expect: int, headers: list[str]
) -> dict[str, float | int]:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [
        f"POST {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *headers,
    ]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    latencies: list[float] = []
    counts = {"expected": 0, "other": 0, "errors": 0}
    started = time.perf_counter()
    deadline = started + duration
    await asyncio.gather(
        *(
            _worker(host, port, request, deadline, expect, latencies, counts)
            for _ in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0

    return {
        "requests": len(latencies),
        **counts,
        "seconds": elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="POST JSON over keep-alive connections")
    parser.add_argument("url")
    parser.add_argument("--body", default="{}")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("--expect", type=int, default=202)
    parser.add_argument("-H", "--header", action="append", default=[])
    args = parser.parse_args()
    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(
            _drive(
                args.url,
                args.body.encode(),
                args.concurrency,
                args.duration,
                args.expect,
                args.header,
            )
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
