"""Phone numbers as Unloc identifies recipients: E.164 mobile numbers."""

from __future__ import annotations

from typing import Any

from latchflow import FatalError
from latchflow.phone import PhoneNumberError, e164


def to_e164(number: str, region: str | None = None, *, field: str = "appUserId") -> str:
    """``number`` in E.164 (``+4799887766``), or FatalError naming ``field`` if it is not valid.

    ``region`` (ISO 3166 alpha-2, e.g. ``NO``) is used for numbers written without ``+country``.
    """
    try:
        return e164(number, region)
    except PhoneNumberError as exc:
        raise FatalError(
            f"{field}: {exc.value!r} {exc}; Unloc needs an E.164 mobile number such as"
            " +4799887766, or a local number and defaultRegion"
        ) from None


def input_phone(input: dict[str, Any]) -> str | None:
    """A step's ``appUserId`` in E.164 (read with its ``defaultRegion``), or None if not set."""
    if not input.get("appUserId"):
        return None
    return to_e164(input["appUserId"], input.get("defaultRegion"))
