"""Every choice made where the Unloc documentation is silent, in one place.

Each constant names the row of the "assumptions" table (section 10) or the section of the vendor
facts it follows, so a reader can check it against what Unloc later documents.
"""

from __future__ import annotations

# §1 Hosts: production API host.
DEFAULT_BASE_URL = "https://api.unloc.app"

# §2.1 / row "Token format/expiry": tokens live ``expires_in`` seconds (3600); refresh this many
# seconds early so a token never expires in flight.
TOKEN_REFRESH_MARGIN = 60.0
TOKEN_LIFETIME = 3600

# §3 Pagination: ``limit`` default and maximum.
MAX_PAGE_SIZE = 2500

# Row "excludeStates format": comma-separated list of states.
EXCLUDE_STATES_SEPARATOR = ","

# Row "Revoke success code/body": 204 No Content; 404 unknown id; 409 for expired keys.
# Row "Bulk revoke response": unknown; the simulator answers 204, the client accepts any 2xx.
REVOKE_STATUS = 204
BULK_REVOKE_STATUS = 204

# §4 "Revoke Keys": the query parameters the bulk revoke takes. Assumed: Unloc refuses others
# (400) as it refuses unknown key fields, so a misspelt filter cannot widen a revoke to every key.
BULK_REVOKE_FILTERS = ("appUserId", "lockId", "excludeSubprojectKeys")

# Row "Full POST …/keys option list": a key for a lock outside the project, an end before its
# start or an end already past fails validation (400, whole batch) with these reasons.
UNKNOWN_LOCK_REASON = "must be the id of a lock in the project"
END_BEFORE_START_REASON = "must be after start"
END_IN_PAST_REASON = "must be in the future"

# Row "Recurrence time zone": lock/project local time; the simulator evaluates recurrence
# windows in this zone (changeable through ``/_sim/settings``).
RECURRENCE_TIME_ZONE = "Europe/Oslo"

# Row "Time for job to finish": configurable delay (default ~1-2 s).
SIM_JOB_DELAY_SECONDS = 2.0

# §4 "Job": ids of created keys are found as ``id``, else ``keyId``, else ``key.id``
# (undocumented; observed by one client, source 13).
CREATED_KEY_ID_FIELDS = ("id", "keyId")

# §4 KeyInput ``metadata`` (source 13): a string map kept with the key. Assumed: Get Keys returns
# it, so a step can find the key it made by a metadata entry holding its idempotency key.
MARKER_METADATA_FIELD = "latchflowRef"

# §7 integrators keys carry no metadata; their ``start`` is the only field a client chooses that
# the listing returns. Assumed: Unloc keeps the milliseconds it is given (§3 writes them), so the
# milliseconds of ``start`` mark which step made the key.
START_MARKER_MILLISECONDS = 1000

# §7: lock holders have no client-chosen id and cannot be deleted. A retried creation adopts the
# holder with the same organizationId, organizationIdSuffix and name.
LOCK_HOLDER_IDENTITY = ("organizationId", "organizationIdSuffix", "name")

# How long after a create that needed a retry the step checks for a copy the vendor applied late
# (a request answered 504 that Unloc still carried out), unless the step's input says otherwise.
DEFAULT_VERIFY_DELAY_SECONDS = 120.0

# §9: no signature scheme for webhook deliveries is documented. Access events are checked by
# looking the key up through the API (the key must exist on the event's lock) instead.
VERIFY_ACCESS_EVENTS_BY_LOOKUP = True

# §9: which trigger each event's ``action`` starts, unless the connection's ``eventTypes`` says
# otherwise. ``unlocked`` is documented for both APIs (source 8); ``locked`` is assumed for the
# integrators key events from the partner v1 event list (§8: locked | unlocked).
V2_EVENT_TYPES = {"unlocked": "unloc.lock_unlocked"}
INTEGRATORS_EVENT_TYPES = {
    "unlocked": "unloc_integrators.key_used",
    "locked": "unloc_integrators.key_used",
}

# §9: Unloc documents no retries of webhook deliveries; the simulator tries each delivery this
# often, this many seconds apart (growing with each attempt).
SIM_WEBHOOK_ATTEMPTS = 3
SIM_WEBHOOK_RETRY_DELAY = 0.2

# §5 (source 13): keys revoked in Unloc Control Center can vanish from the key listing; a key
# that disappears while not revoked/expired is reported as revoked.
VANISHED_KEY_STATE = "revoked"

# How often ``unloc.create_key`` checks its job again, and how long it waits in all, unless the
# step's input says otherwise. One client polls every 0.4-0.8 s for ~10 s (source 13); a durable
# wait can afford a slower cadence.
DEFAULT_POLL_INTERVAL_SECONDS = 5.0
DEFAULT_MAX_WAIT_SECONDS = 900.0

# Row "Token format/expiry" and §2.2: the simulator's demo account.
SIM_CLIENT_ID = "demo-client"
SIM_CLIENT_SECRET = "demo-secret-unloc"  # noqa: S105 - the simulator's published demo secret
SIM_PROJECT_ID = "5b8f0a3e-9c1d-4e7a-8f00-0000000000a1"
SIM_ORGANIZATION_ID = "5b8f0a3e-9c1d-4e7a-8f00-0000000000f1"
SIM_INTEGRATOR_CLIENT_ID = "demo-integrator"
SIM_INTEGRATOR_CLIENT_SECRET = "demo-secret-integrator"  # noqa: S105 - simulator demo secret
SIM_LOCK_HOLDER_ID = "866b8a35-4184-44c5-8ffd-448a77e5a91c"

KEY_STATES = ("creating", "scheduled", "active", "inactive", "error", "revoked", "expired")
TERMINAL_KEY_STATES = ("revoked", "expired", "error")
GONE_KEY_STATES = ("revoked", "expired")
JOB_STATUSES = ("pending", "inProgress", "succeeded", "failedValidation", "failedJob", "timeout")
JOB_FAILED_STATUSES = ("failedValidation", "failedJob", "timeout")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
