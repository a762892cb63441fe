"""Scheduling class sessions; reading them is services.common.sessions."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import to_db
from services.common.sessions import ClassSession, ensure_cameras, get_session


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
