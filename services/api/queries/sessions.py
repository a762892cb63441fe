"""Cameras and class sessions, with the recorder's rules for default daily sessions.

A default session covers a camera's whole local day; the recorder creates one when a face is
seen outside any scheduled session. The API creates today's too (same name, span and
uniqueness key, INSERT IGNORE), so the dashboard can list and open it before anyone is seen.
"""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import as_utc, to_db
from services.recorder import rules


@dataclass(frozen=True)
class Camera:
    id: str
    name: str
    source: str | None
    last_frame_at: datetime | None  # aware UTC


@dataclass(frozen=True)
class ClassSession:
    id: int
    name: str
    camera_id: str
    course_id: int | None
    starts_at: datetime  # aware UTC
    ends_at: datetime
    is_default: bool

    def as_rule_session(self) -> rules.Session:
        return rules.Session(
            self.id, self.name, self.camera_id, self.starts_at, self.ends_at, self.is_default
        )


SESSION_COLUMNS = "id, name, camera_id, course_id, starts_at, ends_at, default_day"


def _session(row: sa.Row) -> ClassSession:
    return ClassSession(
        id=int(row.id),
        name=row.name,
        camera_id=row.camera_id,
        course_id=int(row.course_id) if row.course_id is not None else None,
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        is_default=row.default_day is not None,
    )


def list_cameras(connection: Connection) -> list[Camera]:
    rows = connection.execute(sa.text("SELECT id, name, source, last_frame_at FROM cameras ORDER BY id"))
    return [
        Camera(r.id, r.name, r.source, as_utc(r.last_frame_at) if r.last_frame_at else None) for r in rows
    ]


def ensure_camera(connection: Connection, camera_id: str) -> None:
    """A camera first named by a session is created like the recorder does: named after its id."""
    connection.execute(sa.text("INSERT IGNORE INTO cameras (id, name) VALUES (:id, :id)"), {"id": camera_id})


def ensure_default_sessions(connection: Connection, day: date, tz: ZoneInfo) -> None:
    """Make sure every known camera has its default session of `day` (idempotent)."""
    cameras = list_cameras(connection)
    if not cameras:
        return
    start, end = rules.default_session_span(day, tz)
    connection.execute(
        sa.text(
            "INSERT IGNORE INTO class_sessions (name, camera_id, starts_at, ends_at, default_day) "
            "VALUES (:name, :camera, :start, :end, :day)"
        ),
        [
            {
                "name": rules.default_session_name(camera.name, day),
                "camera": camera.id,
                "start": to_db(start),
                "end": to_db(end),
                "day": day,
            }
            for camera in cameras
        ],
    )


def get_session(connection: Connection, session_id: int) -> ClassSession | None:
    row = connection.execute(
        sa.text(f"SELECT {SESSION_COLUMNS} FROM class_sessions WHERE id = :id"), {"id": session_id}
    ).first()
    return _session(row) if row else None


def sessions_of_day(
    connection: Connection, day: date, tz: ZoneInfo, camera_id: str | None = None
) -> list[ClassSession]:
    """Sessions starting on the school's calendar day `day`, by start time."""
    start, end = rules.default_session_span(day, tz)
    where = "starts_at >= :start AND starts_at < :end"
    params: dict[str, object] = {"start": to_db(start), "end": to_db(end)}
    if camera_id is not None:
        where += " AND camera_id = :camera"
        params["camera"] = camera_id
    rows = connection.execute(
        sa.text(
            f"SELECT {SESSION_COLUMNS} FROM class_sessions WHERE {where} ORDER BY starts_at, camera_id, id"
        ),
        params,
    )
    return [_session(row) for row in rows]


def current_sessions(connection: Connection, now: datetime, tz: ZoneInfo) -> list[ClassSession]:
    """For each camera, the session the recorder would file a sighting at `now` under:
    the scheduled one running (the latest to start), else the camera's default of today."""
    today = rules.local_day(now, tz)
    ensure_default_sessions(connection, today, tz)
    rows = connection.execute(
        sa.text(
            f"SELECT {SESSION_COLUMNS} FROM class_sessions "
            "WHERE (default_day IS NULL AND starts_at <= :now AND ends_at > :now) OR default_day = :today "
            "ORDER BY camera_id, id"
        ),
        {"now": to_db(now), "today": today},
    )
    by_camera: dict[str, list[ClassSession]] = {}
    for row in rows:
        session = _session(row)
        by_camera.setdefault(session.camera_id, []).append(session)
    chosen: list[ClassSession] = []
    for sessions in by_camera.values():
        running = rules.scheduled_session_at([s.as_rule_session() for s in sessions], now)
        if running is not None:
            chosen.extend(s for s in sessions if s.id == running.id)
        else:
            chosen.extend(s for s in sessions if s.is_default)
    return chosen


def create_session(
    connection: Connection,
    *,
    name: str,
    camera_id: str,
    starts_at: datetime,
    ends_at: datetime,
    course_id: int | None,
) -> ClassSession:
    ensure_camera(connection, camera_id)
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
