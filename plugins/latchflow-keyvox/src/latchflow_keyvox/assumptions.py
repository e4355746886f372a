"""Every choice the public KEYVOX material leaves open, in one place.

Each constant names the row of the "Not publicly documented — assumptions" table (§10 of the
vendor facts) or the section it comes from, so a correction from KEYVOX changes one line.
"""

from __future__ import annotations

# §2 "Base URLs": every official sample uses the eagle-pms path on eco.blockchainlock.io.
DEFAULT_BASE_URL = "https://eco.blockchainlock.io/api/eagle-pms/v1"

# Row "Which host/prefix production really uses": the simulator serves both prefixes.
SIM_PREFIXES = ("/v1", "/api/eagle-pms/v1")

# §3: the server rejects a date that differs from its clock by 5 s or more.
MAX_CLOCK_SKEW_SECONDS = 5

# Row "HTTP status + body on auth failure": HTTP 403 with an envelope; codes are invented.
AUTH_FAILED_STATUS = 403
AUTH_ERROR_CODE = "E2001"  # bad signature, digest, date or unknown key (invented code)

# Row "Full error-code catalogue": the four codes seen in public material.
E_PARAM = "E0005"
E_NOT_FOUND = "E0043"
E_LOCK_OFFLINE = "E1012"
E_PERMISSION = "E2003"
# Row "Rate-limit values and response": an envelope error over a per-key rate (invented code).
E_RATE_LIMITED = "E9429"
# Codes the client maps to "credentials or permissions are wrong".
AUTH_CODES = frozenset({AUTH_ERROR_CODE, E_PERMISSION})

# Row "`records` default/max".
DEFAULT_RECORDS = 10
MAX_RECORDS = 100

# Row "PIN auto-generation" and the seed's "4-8 digits".
PIN_PATTERN = r"^[0-9]{4,8}$"
GENERATED_PIN_LENGTH = 6

# Row "PIN delivery timing": status 20 until the next 2-minute batch once now >= sTime - 72 h.
DELIVERY_BATCH_SECONDS = 120
DELIVERY_WINDOW_SECONDS = 72 * 3600
DELIVERY_WAITING = "20"
DELIVERED_STATUSES = frozenset({"30", "31", "32"})

# Vendor event type -> trigger, the defaults of a connection's ``eventTypes`` setting.
# Row "Webhook JSON (unlock history)": {event: "unlock"|"lock", eventTime, data: {lockId,
# unitId, deviceName, userName, etype, value}} is invented (the JSON schema is not public).
# §9 reservation webhook: only booking.checked_in and booking.checked_out are observed;
# booking.created/updated/cancelled are ASSUMED names. A connection whose KEYVOX account
# sends other names maps them in its ``eventTypes`` setting; an unmapped type is kept as a
# dropped event with its raw type.
EVENT_TYPES = {
    "unlock": "keyvox.lock_unlocked",
    "lock": "keyvox.lock_locked",
    "booking.created": "keyvox.booking_created",
    "booking.updated": "keyvox.booking_updated",
    "booking.cancelled": "keyvox.booking_cancelled",
    "booking.checked_in": "keyvox.booking_checked_in",
    "booking.checked_out": "keyvox.booking_checked_out",
}
OBSERVED_EVENT_TYPES = frozenset({"booking.checked_in", "booking.checked_out"})

# §7.1 getLockHistory: entries are {etime, etype, userName, value} and nothing else. A PIN
# (etype 1) or card (etype 2) entry is an unlock. For every other etype (5 button, 6 knob,
# 9 app/API, and types the material does not list, such as auto-lock) the direction is not
# documented: assumed to be in ``value`` as the unlock function's flag ("1" unlock, "0"
# lock). An entry whose direction cannot be told is reported as neither.
HISTORY_UNLOCK_ETYPES = frozenset({"1", "2"})
HISTORY_DIRECTIONS = {"1": "unlock", "0": "lock"}
# The etype of an auto-lock entry is not documented; the simulator writes this one.
SIM_AUTO_LOCK_ETYPE = "8"

# §7.4 "PINs are issued automatically after creation": a reservation's PIN is issued on its
# unit for checkin..checkout. Reservations list it in ``unitPinList`` ({pin, qrShortUrl,
# pinStatus, ...}); that the items also carry the PIN's ``pinId`` is assumed. Whether KEYVOX
# moves or revokes that PIN when the booking changes, is cancelled or checked out is not
# documented: the simulator leaves it as issued, and the example flows move and revoke it.
RESERVATION_PIN_LIST_KEY = "unitPinList"
RESERVATION_PIN_DELETED = "4"

# Row "Idempotency": KEYVOX has none, so the creates tag a name (a PIN's targetName, a
# booking's orderContact) with a suffix derived from the step's idempotency key and look for
# it before creating (see markers.py and actions/reconcile.py).
IDEMPOTENCY_TAG_PREFIX = " #lf-"
IDEMPOTENCY_TAG_LENGTH = 10

# Row "Duplicate-PIN rules": the same pinCode on the same unit with overlapping times -> E0005.
REJECT_DUPLICATE_PIN = True
# Row "card APIs": a card code is registered once per lock or box (another -> E0005). set_card
# relies on it: after a lost answer its retry is refused and finds the registration it made.
REJECT_DUPLICATE_CARD = True

# §7.3 / row "card APIs": card and locker bodies mirror the lock variants (cardId, deviceId+boxNum).
# §9: no webhook signature scheme is documented; webhooks are accepted unsigned.

# Demo credentials of the simulator (sandbox only).
SIM_DEMO_API_KEY = "demo-keyvox-key"
SIM_DEMO_API_SECRET = "demo-keyvox-secret-0123456789"  # noqa: S105 - simulator demo secret

# Row "`locks/events`, locker colour, card APIs, reservation REST bodies": names the public
# material does not show. List wrappers of paginated answers, by function.
HISTORY_LIST_KEY = "historyList"  # getLockHistory (items {etime, etype, userName, value})
EVENT_LIST_KEY = "eventList"  # locks/events
PIN_LIST_KEY = "pinList"  # getUnitPinList / getLockPinList (source 7)
CARD_LIST_KEY = "cardList"  # getLockCardList
# LED colours setBoxColor accepts.
BOX_COLORS = ("off", "white", "red", "green", "blue", "yellow", "purple", "cyan")
# Reservations are polled with getBookingList (MCP listReservations: page + count), filtered
# by updatedFrom (unix s) so a poll only reads what changed, or by searchWord (name/phone).
BOOKING_LIST_FUNCTION = "getBookingList"
# getLockerStatus: only its name is public. Assumed: with deviceId, sTime and eTime it lists
# each box with the PINs that overlap the window (``pinList``), as the simulator does; this is
# how a retried create_locker_pin finds the PIN an earlier attempt made.
LOCKER_BOX_PIN_LIST_KEY = "pinList"

# Row "HTTP status + body on auth failure" (skew part): the simulator compares the date header
# with the wall clock, not the business clock that /_sim/clock moves, so a demo can jump days
# ahead (PIN delivery, expiry) while clients keep signing with their real clocks.
SIM_SKEW_AGAINST_WALL_CLOCK = True
# Row "HTTP status + body on auth failure": also accept the seed page's signed-header variant
# (x-target-host date digest) as the table allows.
SIM_ACCEPT_SEED_HEADER_VARIANT = True
# §4 "Time format: Unix time in seconds everywhere": a time of this value or more is taken
# for milliseconds (it would be after the year 5000) and refused with E0005.
MILLISECONDS_FROM = 10**11
# The first reservation poll looks back this far to find where to start (no events emitted).
BOOKING_POLL_LOOKBACK_SECONDS = 86400
# Row "`records` default/max" and getLockPinList's "keys to be delivered in the next 3 days"
# (source 7): which window getUnitPinList and getLockerStatus list by default is not
# documented, so the credential providers ask for one explicitly, from now to this far ahead.
PIN_LIST_HORIZON_SECONDS = 2 * 366 * 86400
