"""Which window a credential should have: the grant's, or one weekly occurrence at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from latchflow.access.windows import next_change, wanted_window
from latchflow.storage.models import GrantRecord

OSLO = ZoneInfo("Europe/Oslo")


def grant(weekly: dict[str, object] | None = None, state: str = "active") -> GrantRecord:
    return GrantRecord(
        id="g",
        person_id="p",
        places=[],
        starts_at=datetime(2026, 3, 23, 0, 0, tzinfo=OSLO),  # a Monday
        ends_at=datetime(2026, 4, 6, 0, 0, tzinfo=OSLO),
        timezone="Europe/Oslo",
        weekly=weekly,
        kinds=[],
        state=state,
    )


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=OSLO)


def test_a_grant_without_weekly_hours_wants_its_whole_window_until_it_ends() -> None:
    window = wanted_window(grant(), at(20, 9), vendor_weekly=False)
    assert window is not None and (window.starts_at, window.ends_at) == (
        at(23, 0),
        at(30, 0) + timedelta(days=7),
    )
    assert next_change(window, at(20, 9)) == window.starts_at
    assert next_change(window, at(24, 9)) == window.ends_at
    assert wanted_window(grant(), at(30, 0) + timedelta(days=7), vendor_weekly=False) is None
    assert wanted_window(grant(state="cancelled"), at(24, 9), vendor_weekly=False) is None


def test_weekly_hours_are_issued_one_occurrence_at_a_time_where_the_vendor_cannot_keep_them() -> (
    None
):
    office = {"days": ["mon", "wed"], "start": "08:00", "end": "18:00"}
    during = wanted_window(grant(office), at(23, 9), vendor_weekly=False)
    assert during is not None and (during.starts_at, during.ends_at) == (at(23, 8), at(23, 18))
    after = wanted_window(grant(office), at(23, 18), vendor_weekly=False)
    assert after is not None and (after.starts_at, after.ends_at) == (at(25, 8), at(25, 18))
    vendor = wanted_window(grant(office), at(23, 18), vendor_weekly=True)
    assert vendor is not None and vendor.weekly is not None and vendor.starts_at == at(23, 0)


def test_overnight_hours_and_the_change_to_summer_time() -> None:
    night = {"days": ["sat"], "start": "22:00", "end": "06:00"}
    # the night of 28 to 29 March 2026 has the change to summer time at 02:00 in Oslo
    window = wanted_window(grant(night), at(29, 1), vendor_weekly=False)
    assert window is not None
    assert (window.starts_at, window.ends_at) == (at(28, 22), at(29, 6))
    starts, ends = window.starts_at.astimezone(UTC), window.ends_at.astimezone(UTC)
    assert (starts.hour, ends.hour, ends - starts) == (21, 4, timedelta(hours=7))
