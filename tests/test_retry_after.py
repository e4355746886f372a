"""One Retry-After reading for the engine and every plugin: seconds, or an HTTP date."""

from __future__ import annotations

import httpx
import pytest

from latchflow import RateLimitedError, RetryableError


def answer(**headers: str) -> httpx.Response:
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": " 1.5 "}, 1.5),
        (  # an HTTP date counts from the answer's own Date, whatever this machine's clock says
            {
                "retry-after": "Wed, 21 Oct 2026 07:28:30 GMT",
                "date": "Wed, 21 Oct 2026 07:28:00 GMT",
            },
            30.0,
        ),
        (
            {
                "retry-after": "Wed, 21 Oct 2026 07:27:00 GMT",
                "date": "Wed, 21 Oct 2026 07:28:00 GMT",
            },
            0.0,
        ),
        ({}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "nan"}, None),
    ],
)
def test_retry_after_is_read_from_seconds_or_an_http_date(
    headers: dict[str, str], seconds: float | None
) -> None:
    error = RateLimitedError.from_response("rate limited", answer(**headers))
    assert isinstance(error, RateLimitedError) and str(error) == "rate limited"
    assert error.retry_after == seconds


def test_every_retryable_error_reads_it() -> None:
    error = RetryableError.from_response("busy", httpx.Response(503, headers={"retry-after": "2"}))
    assert type(error) is RetryableError and error.retry_after == 2.0
