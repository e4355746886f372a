"""When a grant's credential should work: its whole window, or one weekly occurrence at a time
for vendors that cannot enforce weekly hours themselves."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from latchflow.plugin.access import DAYS, AccessWindow, WeeklyHours
from latchflow.storage.models import GrantRecord


def grant_window(grant: GrantRecord) -> AccessWindow:
    weekly = None
    if grant.weekly:
        weekly = WeeklyHours(
            days=tuple(grant.weekly["days"]), start=grant.weekly["start"], end=grant.weekly["end"]
        )
    return AccessWindow(grant.starts_at, grant.ends_at, grant.timezone, weekly)


def wanted_window(grant: GrantRecord, now: datetime, vendor_weekly: bool) -> AccessWindow | None:
    """The window a credential of the grant should have at ``now``; None once it should not
    exist (cancelled, ended, no occurrence left)."""
    window = grant_window(grant)
    if grant.state != "active" or now >= window.ends_at:
        return None
    if window.weekly is None or vendor_weekly:
        return window
    occurrence = next_occurrence(window, now)
    if occurrence is None:
        return None
    start, end = occurrence
    return AccessWindow(start, end, window.timezone)


def next_occurrence(window: AccessWindow, now: datetime) -> tuple[datetime, datetime] | None:
    """The weekly occurrence going on at ``now`` or the next one, inside the window."""
    assert window.weekly is not None
    zone = ZoneInfo(window.timezone)
    weekly = window.weekly
    start_time, end_time = _clock(weekly.start), _clock(weekly.end)
    day = max(now, window.starts_at).astimezone(zone).date() - timedelta(days=1)  # overnight
    last = window.ends_at.astimezone(zone).date()
    while day <= last:
        if DAYS[day.weekday()] in weekly.days:
            start = datetime.combine(day, start_time, zone)
            end = datetime.combine(day, end_time, zone)
            if end <= start:
                end += timedelta(days=1)  # overnight hours
            start, end = max(start, window.starts_at), min(end, window.ends_at)
            if end > now and end > start:
                return start, end
        day += timedelta(days=1)
    return None


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def next_change(window: AccessWindow | None, now: datetime) -> datetime | None:
    """When the credential should next be looked at: its start (to become active), its end."""
    if window is None:
        return None
    return window.starts_at if now < window.starts_at else window.ends_at
