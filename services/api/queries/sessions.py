"""Scheduling class sessions; reading them is services.common.sessions."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import to_db
from services.common.sessions import ClassSession, ensure_cameras, get_session, scheduled_sessions
from services.common.timetable import overlaps


def create_session(
    connection: Connection,
    *,
    name: str,
    camera_id: str,
    starts_at: datetime,
    ends_at: datetime,
    course_id: int | None,
) -> ClassSession:
    ensure_cameras(connection, {camera_id})
    result = connection.execute(
        sa.text(
            "INSERT INTO class_sessions (name, camera_id, course_id, starts_at, ends_at) "
            "VALUES (:name, :camera, :course, :start, :end)"
        ),
        {
            "name": name,
            "camera": camera_id,
            "course": course_id,
            "start": to_db(starts_at),
            "end": to_db(ends_at),
        },
    )
    session = get_session(connection, int(result.lastrowid))
    assert session is not None
    return session


def overlapping_session(
    connection: Connection, camera_id: str, starts_at: datetime, ends_at: datetime
) -> ClassSession | None:
    """A scheduled session on the camera sharing a moment with [starts_at, ends_at). The
    camera's row is locked first (created if new), so two requests cannot both find none."""
    ensure_cameras(connection, {camera_id})
    connection.execute(sa.text("SELECT id FROM cameras WHERE id = :id FOR UPDATE"), {"id": camera_id})
    found = scheduled_sessions(connection, camera_id, starts_at, ends_at)
    clashing = [s for s in found if overlaps((s.starts_at, s.ends_at), (starts_at, ends_at))]
    return min(clashing, key=lambda s: s.starts_at, default=None)
