"""Cameras and class sessions: which session a sighting belongs to, in one home for the
recorder (which files sightings under sessions) and the API (which lists and schedules them).

A sighting belongs to the scheduled session running on its camera at capture time (of
overlapping ones, the latest to start), else to the camera's default session of that local
day, which covers the whole day and is created by the recorder: when a face is first seen,
or when the camera's first heartbeat of the day arrives, so the dashboard can open it before
anyone is seen. Readers (the API's GETs) never create rows.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import as_utc, to_db


@dataclass(frozen=True)
class ClassSession:
    id: int
    name: str
    camera_id: str
    course_id: int | None
    starts_at: datetime  # aware UTC
    ends_at: datetime
    is_default: bool


@dataclass(frozen=True)
class Camera:
    id: str
    name: str
    source: str | None
    last_frame_at: datetime | None  # aware UTC


# ---- the rules, as pure functions ----


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


def scheduled_session_at(sessions: list[ClassSession], moment: datetime) -> ClassSession | None:
    """The scheduled session running at `moment`; of overlapping ones, the latest to start."""
    running = [s for s in sessions if not s.is_default and s.starts_at <= moment < s.ends_at]
    return max(running, key=lambda s: (s.starts_at, s.id), default=None)


# ---- MySQL ----

SESSION_COLUMNS = "id, name, camera_id, course_id, starts_at, ends_at, default_day"


def session_from_row(row: sa.Row) -> ClassSession:
    """A row selected with SESSION_COLUMNS."""
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


def ensure_cameras(connection: Connection, camera_ids: set[str]) -> None:
    """A camera first named by a sighting or a session is created named after its id."""
    if camera_ids:
        connection.execute(
            sa.text("INSERT IGNORE INTO cameras (id, name) VALUES (:id, :id)"),
            [{"id": c} for c in sorted(camera_ids)],
        )


def get_session(connection: Connection, session_id: int) -> ClassSession | None:
    row = connection.execute(
        sa.text(f"SELECT {SESSION_COLUMNS} FROM class_sessions WHERE id = :id"), {"id": session_id}
    ).first()
    return session_from_row(row) if row else None


def scheduled_sessions(
    connection: Connection, camera_id: str, first: datetime, last: datetime
) -> list[ClassSession]:
    """A camera's scheduled sessions running at some moment between `first` and `last`."""
    rows = connection.execute(
        sa.text(
            f"SELECT {SESSION_COLUMNS} FROM class_sessions WHERE camera_id = :camera "
            "AND default_day IS NULL AND starts_at <= :last AND ends_at > :first"
        ),
        {"camera": camera_id, "first": to_db(first), "last": to_db(last)},
    )
    return [session_from_row(r) for r in rows]


def ensure_default_session(connection: Connection, camera_id: str, day: date, tz: ZoneInfo) -> ClassSession:
    """The camera's default session of `day`, created if missing (idempotent; the camera must exist)."""
    start, end = default_session_span(day, tz)
    camera_name = connection.execute(
        sa.text("SELECT name FROM cameras WHERE id = :id"), {"id": camera_id}
    ).scalar_one()
    connection.execute(
        sa.text(
            "INSERT IGNORE INTO class_sessions (name, camera_id, starts_at, ends_at, default_day) "
            "VALUES (:name, :camera, :start, :end, :day)"
        ),
        {
            "name": default_session_name(camera_name, day),
            "camera": camera_id,
            "start": to_db(start),
            "end": to_db(end),
            "day": day,
        },
    )
    row = connection.execute(
        sa.text(
            f"SELECT {SESSION_COLUMNS} FROM class_sessions WHERE camera_id = :camera AND default_day = :day"
        ),
        {"camera": camera_id, "day": day},
    ).one()
    return session_from_row(row)


def sessions_of_day(
    connection: Connection, day: date, tz: ZoneInfo, camera_id: str | None = None
) -> list[ClassSession]:
    """Sessions starting on the school's calendar day `day`, by start time."""
    start, end = default_session_span(day, tz)
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
    return [session_from_row(row) for row in rows]


def current_sessions(connection: Connection, now: datetime, tz: ZoneInfo) -> list[ClassSession]:
    """For each camera, the session a sighting at `now` is filed under: the scheduled one
    running (the latest to start), else the camera's default of today if it exists yet."""
    today = local_day(now, tz)
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
        session = session_from_row(row)
        by_camera.setdefault(session.camera_id, []).append(session)
    chosen: list[ClassSession] = []
    for sessions in by_camera.values():
        running = scheduled_session_at(sessions, now)
        chosen.extend(s for s in sessions if (s.id == running.id if running else s.is_default))
    return chosen
