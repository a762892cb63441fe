"""Attendance rules, as pure functions: which session a sighting belongs to, when a student
counts as present, and with which status."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Session:
    id: int
    name: str
    camera_id: str
    starts_at: datetime  # aware UTC
    ends_at: datetime
    is_default: bool


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    """The school's calendar day of a moment."""
    return moment.astimezone(tz).date()


def default_session_span(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A default session covers the whole local day (DST days are 23 or 25 hours long)."""
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def default_session_name(camera_name: str, day: date) -> str:
    return f"{camera_name} {day.isoformat()}"


def scheduled_session_at(sessions: list[Session], moment: datetime) -> Session | None:
    """The scheduled session running at `moment`; of overlapping ones, the latest to start."""
    running = [s for s in sessions if not s.is_default and s.starts_at <= moment < s.ends_at]
    return max(running, key=lambda s: (s.starts_at, s.id), default=None)


def status_for(session: Session, first_seen: datetime, late_after_min: float | None) -> str:
    if late_after_min is None or session.is_default:
        return "present"
    return "late" if first_seen > session.starts_at + timedelta(minutes=late_after_min) else "present"


def mark_span(sightings: list[datetime], min_sightings: int, window: timedelta) -> tuple[int, int] | None:
    """The first run of `min_sightings` sightings within `window`, as (first, last) indexes.

    `sightings` are one student's recognitions in one session, sorted by time. None: not yet.
    """
    start = 0
    for end, moment in enumerate(sightings):
        while moment - sightings[start] > window:
            start += 1
        if end - start + 1 >= min_sightings:
            return start, end
    return None
