"""Every choice made where the LivionKey documentation is silent, in one place.

Each constant names the row of the "Not publicly documented" table (section 8) of the vendor
facts it follows: ``V1 §8 <row>`` for API V1, ``V2 §8 <row>`` for API V2.
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
"""V1 §8 "Pincode length/format": 6 digits."""

V1_ERROR_CONTENT_TYPE = "text/plain"
"""V1 §8 "Body format of 400 errors": plain text with the exact message."""

V1_WEBHOOK_HEADER = "x-api-key"
"""V1 §7: the legacy push service sends an optional custom header; x-api-key is the doc's example."""

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
"""V2 §8 "Pincode format": 6 digits."""

V2_ERROR_SHAPE = "nestjs"
"""V2 §8 "Error body shape": {"statusCode", "message" (string or list), "error"}."""

V2_GROUP_PICK = "first-active-with-enough-keys"
"""V2 §8 "How an automat is chosen from a group": first active automat with enough free keys."""

V2_WEBHOOK_TOLERANCE_SECONDS = 300
"""V2 §7: suggested Standard Webhooks timestamp tolerance, 5 minutes."""

V2_RETRY_BACKOFF = (1.0, 2.0, 6)
"""V2 §3 / §8 "Rate limit numbers": examples back off 1, 2, 4, 8, 16 s on 429 (initial, factor, attempts)."""

V2_ORG_DEFAULT_NOTIFICATIONS = (
    "contractCreated",
    "contractKeyFetched",
    "contractKeyReturned",
    "contractEndReminder",
    "contractKeysNotReturned",
)
"""V2 §5.6: without ``notifications`` the organisation default decides; the simulator's default
organisation sends these types on every channel the contact switched on (not documented)."""
