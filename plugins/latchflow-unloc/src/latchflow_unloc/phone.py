"""Phone numbers as Unloc identifies recipients: E.164 mobile numbers."""

from __future__ import annotations

import phonenumbers

from latchflow import FatalError


def to_e164(number: str, region: str | None = None, *, field: str = "appUserId") -> str:
    """``number`` in E.164 (``+4799887766``), or FatalError naming ``field`` if it is not valid.

    ``region`` (ISO 3166 alpha-2, e.g. ``NO``) is used for numbers written without ``+country``.
    """
    text = str(number).strip()
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        hint = (
            ""
            if region or text.startswith("+")
            else "; give it as +<country><number> or set defaultRegion"
        )
        raise FatalError(f"{field}: {text!r} is not a phone number ({exc}){hint}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise FatalError(
            f"{field}: {text!r} is not a valid phone number for its country; Unloc needs an"
            " E.164 mobile number such as +4799887766"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
