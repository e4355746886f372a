"""Phone numbers in E.164 (``+4799887766``), the form vendors identify people by.

One parser for the whole program, built on the phonenumbers library (Google's libphonenumber
metadata): the flow function ``e164()`` and vendor plugins use it.
"""

from __future__ import annotations

import re

import phonenumbers

REGION = re.compile(r"[A-Za-z]{2}\Z")
LONGEST = 64
"""Longer text is not a phone number (and is not handed to the parser)."""


class PhoneNumberError(ValueError):
    """``value`` (the number, or the region) cannot be used; the message says why, starting
    with a verb so that callers can put the value, shown their way, in front of it."""

    def __init__(self, value: str, problem: str) -> None:
        super().__init__(problem)
        self.value = value


def e164(number: str | int, region: str | None = None) -> str:
    """``number`` in E.164. ``region`` (ISO 3166 alpha-2, e.g. ``NO``) reads numbers written
    without ``+country``."""
    text = str(number).strip()
    where = f" (region {region})" if region else ""
    if region is not None and not REGION.match(region):
        raise PhoneNumberError(region, "is not a two-letter region code (e.g. 'DE', 'US')")
    if len(text) > LONGEST:
        raise PhoneNumberError(text, "is not a phone number")
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        hint = "" if region or text.startswith("+") else "; give a region or a +country code"
        raise PhoneNumberError(text, f"is not a phone number{where}{hint}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneNumberError(text, f"is not a valid phone number{where}")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
