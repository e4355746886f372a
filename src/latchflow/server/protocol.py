"""HTTP/1.1 with limits on a request's head, enforced while it arrives.

httptools (uvicorn's fastest parser) puts no limit on the request line and headers: it gathers
a header of any size, more slowly the larger it grows, and hands the whole of it to the app. A
request whose head is larger than ``MAX_HEAD_BYTES`` is therefore refused with 431 as soon as
that many bytes have arrived without the blank line that ends the head, before the parser sees
them; one with more than ``MAX_HEADERS`` headers also gets 431, and a target (path and query)
longer than ``MAX_TARGET_BYTES`` 414. The answer is a JSON error and the connection is closed
shortly after.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
MAX_TARGET_BYTES = 8 * 1024
END_OF_HEAD = b"\r\n\r\n"
LINGER_SECONDS = 2.0


class HeadTooLarge(Exception):
    """Raised from a parser callback; ``refusal`` says what the client is answered."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counting each request's head as it arrives."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._refusal: tuple[int, str, str] | None = None
        self._new_head()

    def _new_head(self) -> None:
        self._head_bytes = 0
        self._in_head = True
        self._tail = b""
        self._header_count = 0

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:  # answered and closing
            return
        if self._in_head:
            window = self._tail + data
            end = window.find(END_OF_HEAD)
            if end < 0:
                self._head_bytes += len(data)
                self._tail = window[-(len(END_OF_HEAD) - 1) :]
            else:
                self._head_bytes += end + len(END_OF_HEAD) - len(self._tail)
                self._in_head = False
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refusal = (
                    431,
                    f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes",
                    "headers",
                )
                self.send_400_response("")
                return
        super().data_received(data)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            self._refusal = (
                414,
                f"the request target is longer than {MAX_TARGET_BYTES} bytes",
                "path",
            )
            raise HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refusal = (431, f"the request has more than {MAX_HEADERS} headers", "headers")
            raise HeadTooLarge
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._new_head()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, or the refusal of a head too large."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        status, error, where = self._refusal
        body = json.dumps(
            {"error": error, "where": where, "hint": "send a smaller request"}
        ).encode()
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        # Close once the client had time to read the answer: closing with its request still
        # arriving would reset the connection, and the answer with it. Meanwhile what arrives
        # is dropped (``data_received``).
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self.transport.close)
