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

# Row "Recurrence time zone": lock/project local time; the simulator evaluates recurrence
# windows in this zone (changeable through ``/_sim/settings``).
RECURRENCE_TIME_ZONE = "Europe/Oslo"

# Row "Time for job to finish": configurable delay (default ~1-2 s).
SIM_JOB_DELAY_SECONDS = 2.0

# §4 "Job": ids of created keys are found as ``id``, else ``keyId``, else ``key.id``
# (undocumented; observed by one client, source 13).
CREATED_KEY_ID_FIELDS = ("id", "keyId")

# §9: no signature scheme for webhook deliveries is documented. Access events are checked by
# looking the key up through the API (the key must exist on the event's lock) instead.
VERIFY_ACCESS_EVENTS_BY_LOOKUP = True

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
JOB_STATUSES = ("pending", "inProgress", "succeeded", "failedValidation", "failedJob", "timeout")
JOB_FAILED_STATUSES = ("failedValidation", "failedJob", "timeout")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
