"""Attendance rules, as pure functions: when a student counts as present, and with which
status. Which session a sighting belongs to is services.common.sessions."""

from datetime import datetime, timedelta

from services.common.sessions import ClassSession


def status_for(session: ClassSession, first_seen: datetime, late_after_min: float | None) -> str:
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
