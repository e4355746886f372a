"""KEYVOX answers turned into data, or into the engine's errors.

Every answer is an envelope ``{"code", "msg", "data"}`` and only ``code == "0"`` is success.
An error names what the user configured (an action or trigger key), the KEYVOX function
that was called and KEYVOX's answer (HTTP status, code, message), and says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from latchflow import ConfigurationError, FatalError, RateLimitedError, RetryableError
from latchflow_keyvox import assumptions as A

LOCK_OFFLINE_RETRY_SECONDS = 60.0
ANSWER_EXCERPT = 200


@dataclass(frozen=True)
class Answer:
    """What KEYVOX answered: the HTTP status and, when there is one, its code and message."""

    status: int
    code: str = ""
    msg: str = ""

    def __str__(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.code:
            parts.append(f"code {self.code}")
        if self.msg:
            parts.append(f"message {self.msg!r}")
        return ", ".join(parts)


class Refused(FatalError):
    """KEYVOX refused the call with a business code; ``answer`` holds its code and message."""

    def __init__(self, message: str, answer: Answer) -> None:
        super().__init__(message)
        self.answer = answer


def data_of(what: str, function: str, response: httpx.Response) -> Any:
    """The ``data`` of a successful answer; the engine's error for any other."""
    envelope = _json(response)
    has_envelope = isinstance(envelope, dict) and "code" in envelope
    answer = _answer(response, envelope, has_envelope)
    if has_envelope and answer.code == "0" and response.status_code < 400:
        return envelope.get("data")
    raise error_for(what, function, answer, response, has_envelope)


def error_for(
    what: str, function: str, answer: Answer, response: httpx.Response, has_envelope: bool
) -> Exception:
    """The engine error for a failed answer (raised by the caller)."""
    head = f"{what}: KEYVOX {function}"
    status = answer.status
    if status == 429 or answer.code == A.E_RATE_LIMITED:
        return RateLimitedError.from_response(
            f"{head} rate-limited this connection ({answer}); waiting before calling again",
            response,
        )
    if status >= 500:
        return RetryableError.from_response(
            f"{head} failed on KEYVOX's side ({answer}); retrying later", response
        )
    if not has_envelope:
        if status in (401, 403):
            return ConfigurationError(
                f"{head} refused access ({answer}); check the API key, the secret and that this"
                " server's IP is whitelisted in the BACS console"
            )
        return FatalError(
            f"{head} gave an answer without a KEYVOX envelope ({answer}); check the"
            " connection's baseUrl"
        )
    if answer.code == A.E_LOCK_OFFLINE:
        return RetryableError(
            f"{head}: the lock is offline ({answer}): battery empty or Wi-Fi down; retrying later",
            retry_after=LOCK_OFFLINE_RETRY_SECONDS,
            maybe_applied=False,
            status=status,
        )
    if answer.code in A.AUTH_CODES or status in (401, 403):
        return ConfigurationError(
            f"{head} refused the connection ({answer}); check the API key and secret, the"
            " server clock, the IP whitelist and that the ids belong to this organization"
        )
    if answer.code == A.E_NOT_FOUND:
        return Refused(
            f"{head} refused it ({answer}): the id does not exist or belongs to another"
            " organization",
            answer,
        )
    if answer.code == A.E_PARAM:
        return Refused(f"{head} refused it ({answer}): check the step's input", answer)
    return Refused(f"{head} refused it ({answer})", answer)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _answer(response: httpx.Response, envelope: Any, has_envelope: bool) -> Answer:
    if has_envelope:
        return Answer(
            response.status_code, str(envelope.get("code")), str(envelope.get("msg") or "")
        )
    if isinstance(envelope, dict) and envelope.get("message"):
        return Answer(response.status_code, msg=str(envelope["message"])[:ANSWER_EXCERPT])
    return Answer(response.status_code, msg=response.text.strip()[:ANSWER_EXCERPT])
