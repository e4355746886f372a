"""Versions a client sends back: an ETag in ``If-Match``, so that a change made from an older
version of a record is refused instead of undoing someone else's."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Header

from latchflow.server.errors import Rejected

ETAG = re.compile(r'(W/)?"?([0-9]{1,9})"?')
"""A version's ETag as a client may send it back: ``"3"``, ``W/"3"`` or ``3``."""


def if_match_header(what: str, read: str) -> Any:
    """The ``If-Match`` header of a change to ``what`` (a flow, a grant), read with ``read``."""
    return Header(
        alias="if-match",
        description=(
            f"The ETag of the version the change was made from ({read} sends it, e.g."
            f' "3"), or *: if the {what} is at another version now, nothing is saved (412)'
        ),
        json_schema_extra={"pattern": f"^(\\*|{ETAG.pattern})$"},
    )


def expected_version(if_match: str | None, what: str, read: str) -> int | None:
    """The version an ``If-Match`` header names, or 400 saying what to send."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = ETAG.fullmatch(if_match.strip())
    if match is None:
        raise Rejected(
            400,
            f"If-Match {if_match!r} is not an ETag of a {what} version",
            "header if-match",
            f'send the ETag {read} answered, e.g. "3"',
        )
    return int(match[2])
