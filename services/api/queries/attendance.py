"""Attendance reads: a session's roll call and the marks of a day (the recorder writes them)."""

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.api.queries.courses import roster
from services.common.attendance import AttendanceChange, AttendanceMark, fetch_changes, fetch_marks, to_db
from services.common.sessions import ClassSession, default_session_span


@dataclass(frozen=True)
class RollEntry:
    student_id: int
    student_number: str
    student_name: str
    status: str  # present | late | absent | excused | not_seen (no mark)
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    distance: float | None
    expected: bool
    confidence: str | None = None  # of recognition's mark: "check" when named on thin evidence
    attendance_id: int | None = None
    source: str | None = None  # who set the status now
    reason: str = ""


@dataclass(frozen=True)
class Roll:
    expected: int
    present: int  # expected students present or late
    entries: list[RollEntry]
    late: int = 0
    absent: int = 0
    excused: int = 0


def session_roll(connection: Connection, session: ClassSession) -> Roll:
    """Who was expected and who was seen. Expected: the course roster if the session's course has
    one, else every active student. Someone marked but not expected is listed too (a guest, or a
    student deleted since), flagged `expected: false` and not counted in `present`."""
    expected_ids = roster(connection, session.course_id) if session.course_id is not None else []
    if expected_ids:
        query = sa.text("SELECT id, student_number, name FROM students WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)
        )
        rows = list(connection.execute(query, {"ids": expected_ids}))
    else:
        rows = list(
            connection.execute(
                sa.text("SELECT id, student_number, name FROM students WHERE deleted_at IS NULL")
            )
        )
    expected = {int(r.id): r for r in rows}
    marks = {
        m.student_id: m for m in fetch_marks(connection, "a.session_id = :session", {"session": session.id})
    }
    entries = [
        _entry(student_id, row.student_number, row.name, marks.get(student_id), expected=True)
        for student_id, row in expected.items()
    ]
    entries += [
        _entry(mark.student_id, mark.student_number, mark.student_name, mark, expected=False)
        for mark in marks.values()
        if mark.student_id not in expected
    ]
    entries.sort(key=lambda e: (e.student_name.casefold(), e.student_id))
    counts = Counter(e.status for e in entries if e.expected)
    return Roll(
        expected=len(expected),
        present=counts["present"] + counts["late"],
        entries=entries,
        late=counts["late"],
        absent=counts["absent"],
        excused=counts["excused"],
    )


def _entry(
    student_id: int, number: str, name: str, mark: AttendanceMark | None, *, expected: bool
) -> RollEntry:
    if mark is None:
        return RollEntry(student_id, number, name, "not_seen", None, None, None, expected)
    return RollEntry(
        student_id,
        number,
        name,
        mark.status,
        mark.first_seen_at,
        mark.last_seen_at,
        mark.distance,
        expected,
        mark.confidence,
        attendance_id=mark.attendance_id,
        source=mark.current_source,
        reason=mark.current_reason,
    )


def _in_courses(where: str, params: dict[str, object], courses: set[int] | None) -> str:
    """Limit a marks query to sessions of these courses (None: no limit)."""
    if courses is None:
        return where
    params["courses"] = sorted(courses)
    return f"{where} AND cs.course_id IN :courses"


def _day_where(
    day: date, tz: ZoneInfo, camera_id: str | None, courses: set[int] | None
) -> tuple[str, dict[str, object]]:
    """The sessions starting on the school's calendar day `day` (of this camera, these courses)."""
    start, end = default_session_span(day, tz)
    where = "cs.starts_at >= :start AND cs.starts_at < :end"
    params: dict[str, object] = {"start": to_db(start), "end": to_db(end)}
    if camera_id is not None:
        where += " AND cs.camera_id = :camera"
        params["camera"] = camera_id
    return _in_courses(where, params, courses), params


def marks_of_day(
    connection: Connection,
    day: date,
    tz: ZoneInfo,
    camera_id: str | None = None,
    courses: set[int] | None = None,
) -> list[AttendanceMark]:
    """Marks in the sessions starting on the school's calendar day `day` (of these courses)."""
    return fetch_marks(connection, *_day_where(day, tz, camera_id, courses))


def marks_of_session(connection: Connection, session_id: int) -> list[AttendanceMark]:
    return fetch_marks(connection, "a.session_id = :session", {"session": session_id})


def marks_of_student(
    connection: Connection, student_id: int, courses: set[int] | None = None
) -> list[AttendanceMark]:
    params: dict[str, object] = {"student": student_id}
    return fetch_marks(connection, _in_courses("a.student_id = :student", params, courses), params)


def changes_of_session(connection: Connection, session_id: int) -> list[AttendanceChange]:
    return fetch_changes(connection, "a.session_id = :session", {"session": session_id})


def changes_of_day(
    connection: Connection,
    day: date,
    tz: ZoneInfo,
    camera_id: str | None = None,
    courses: set[int] | None = None,
) -> list[AttendanceChange]:
    """The changes of the marks `marks_of_day` gives (for the day's CSV)."""
    return fetch_changes(connection, *_day_where(day, tz, camera_id, courses))


def is_finalized(connection: Connection, session_id: int) -> bool:
    """Whether the session's absences were decided (the recorder does, once it has ended)."""
    query = sa.text("SELECT finalized_at IS NOT NULL FROM class_sessions WHERE id = :id")
    return bool(connection.execute(query, {"id": session_id}).scalar())
