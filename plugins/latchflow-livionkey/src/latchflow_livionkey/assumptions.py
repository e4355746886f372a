"""Every choice made where the LivionKey documentation is silent, in one place.

Each constant names the row of the "Not publicly documented" table (section 8) of the vendor
facts it follows (``V1 §8 <row>``, ``V2 §8 <row>``), or the section it is read from. Where
neither says, the constant says "assumed" and why.
"""

from __future__ import annotations

# --- API V1 ---------------------------------------------------------------------------------

V1_BASE_URL = "https://api.livionkey.com"
"""V1 §2: no version prefix in paths."""

V1_TOKEN_LIFETIME_SECONDS = 3600
"""V1 §8 "JWT contents / signing": tokens live one hour (the simulator issues them so)."""

V1_REFRESH_MARGIN_SECONDS = 300
"""V1 §3 client duties: refresh a few minutes early (less than 5 min left -> log in again)."""

V1_LOGIN_LIMIT_PER_MINUTE = 10
"""V1 §8 "Login throttle limit": 10 logins per minute per account, then 429 + Retry-After."""

V1_PINCODE_DIGITS = 6
"""V1 §8 "Pincode length/format": 6 digits; the simulator refuses any other pincode."""

V1_ERROR_CONTENT_TYPE = "text/plain"
"""V1 §8 "Body format of 400 errors": plain text with the exact message."""

V1_WEBHOOK_HEADER = "x-api-key"
"""V1 §7: the legacy push service sends an optional custom header; x-api-key is the doc's example."""

V1_REFUSALS = {
    "perm_with_end": "End time should be null for permanent contracts",
    "bad_type": "Invalid contract type",
    "bad_time": "Invalid date format",
    "bad_pincode": "Invalid pincode",
    "no_key_name": "keyName is required",
    "bad_locker_index": "malformed locker index",
}
"""V1 §5.2/§5.3 state these rules (``perm`` means no end, ``type`` is default/fetch/return,
ISO times, ``keyName`` required, numeric locker indexes) but not the refusals' texts. Assumed:
a 400 in the style of the documented ones; "malformed locker index" is documented (§5.1)."""

V1_BUSY_MESSAGES = ("Device busy",)
"""V1 §5.1 lists "Device busy" among the 400s of ``opendoor``; assumed to pass, so retried."""

V1_WEBHOOK_ATTEMPTS = 3
"""V1 §7: pushes are retried with exponential backoff on 5xx and 429; how often is not said
(assumed: 3 attempts in the simulator)."""

V1_EVENT_TYPES = {
    "key-status:key-fetched": "livionkey.key_fetched",
    "key-status:key-returned": "livionkey.key_returned",
    "key-status:key-not-returned": "livionkey.key_not_returned",
    "key-status:key-not-fetched": "livionkey.key_not_fetched",
    "contract-update": "livionkey.contract_updated",
}
"""V1 §7: which trigger each push starts, by default (a connection's ``eventTypes`` overrides
it). Every name is documented; ``key-status:<state>`` is how latchflow names a key-status push
with that ``state``. ``code-entered`` and ``device-alarm`` start no V1 trigger."""

# --- API V2 ---------------------------------------------------------------------------------

V2_BASE_URL = "https://api.livionkey.com/v2"
"""V2 §2."""

V2_TIMESTAMP_TOLERANCE_SECONDS = 300
"""V2 §8 "Allowed clock skew for x-timestamp": +-5 minutes (the simulator checks wall time)."""

V2_SIGN_QUERY_STRING = True
"""V2 §8 "Whether the signed URL includes the query string": yes, the exact requested URL."""

V2_PAGE_LIMIT_MAX = 100
"""V2 §4: limit <= 100; V2 §8 "after cursor semantics": decimal offset as a string."""

V2_PINCODE_DIGITS = 6
"""V2 §8 "Pincode format": 6 digits; the simulator refuses any other pincode."""

V2_PINCODES_UNIQUE = "per automat, among contracts whose windows overlap"
"""Not documented: a pincode typed at an automat must name one key, so the simulator refuses a
pincode that a contract at the same automat with an overlapping window already has (assumed)."""

V2_ERROR_SHAPE = "nestjs"
"""V2 §8 "Error body shape": {"statusCode", "message" (string or list), "error"}."""

V2_UNKNOWN_FIELD = "property {} should not exist"
"""V2 §8 "Error body shape" (NestJS): a field the API does not know is refused with NestJS's
whitelist message, in a ``message`` list (assumed: the API validates with forbidNonWhitelisted)."""

V2_REFUSALS = {
    "time": "{} must be a valid ISO 8601 date string with a time zone",
    "ended": "end must be in the future",
    "pincode": "each value in pincodes must be a string of {} digits",
    "pincode_taken": "pincode {} is already in use at automat {} at that time",
    "overlap": "overlapping contract",
}
"""V2 §5.1 documents 400 for a bad request and 409 "overlapping contract" on PATCH, but not the
texts. Assumed: class-validator's wording; times are OpenAPI ``date-time`` (RFC 3339, with a
zone); a window that has already ended is refused; pincodes follow "Pincode format"."""

V2_GROUP_PICK = "first-active-with-enough-keys"
"""V2 §8 "How an automat is chosen from a group": first active automat with enough free keys."""

V2_CONTRACT_FILTERS = ("ongoing", "future")
"""V2 §5.1: ``GET /iloq/keycontracts`` filters by ongoing/ended/future; whether several filters
combine as "and" or "or" is not said, so a lookup asks once per filter."""

V2_WEBHOOK_TOLERANCE_SECONDS = 300
"""V2 §7: suggested Standard Webhooks timestamp tolerance, 5 minutes."""

V2_WEBHOOK_ATTEMPTS = 20
"""V2 §7: a delivery is tried up to 20 times (the simulator keeps the count and shortens the
waits between attempts)."""

V2_EVENT_TYPES = {
    "key-status:key-fetched": "livionkey.v2_key_fetched",
    "key-status:key-returned": "livionkey.v2_key_returned",
    "key-status:key-not-returned": "livionkey.v2_key_not_returned",
    "key-status:key-not-fetched": "livionkey.v2_key_not_fetched",
    "contract-update": "livionkey.v2_contract_updated",
    "code-entered": "livionkey.v2_code_entered",
    "device-alarm": "livionkey.v2_device_alarm",
}
"""V2 §7: which trigger each webhook event type starts, by default (a connection's
``eventTypes`` overrides it). Every name is documented; ``key-status:<state>`` is how latchflow
names a key-status event with that ``data.state``."""

V2_ORG_DEFAULT_NOTIFICATIONS = (
    "contractCreated",
    "contractKeyFetched",
    "contractKeyReturned",
    "contractEndReminder",
    "contractKeysNotReturned",
)
"""V2 §5.6: without ``notifications`` the organisation default decides; the simulator's default
organisation sends these types on every channel the contact switched on (not documented)."""
