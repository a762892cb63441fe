"""Attendance reads and CSV exports (the recorder is the only writer of attendance)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, CurrentUser
from services.api.accounts.scope import check_session, check_student, course_scope
from services.api.context import Context
from services.api.errors import not_found
from services.api.queries.attendance import marks_of_day, marks_of_session, marks_of_student, session_roll
from services.api.schemas import (
    DayQuery,
    ErrorOut,
    MarkOut,
    Responses,
    RollEntryOut,
    SessionAttendanceOut,
    SessionOut,
)
from services.common.attendance import csv_text
from services.common.sessions import get_session, local_day
from services.common.settings import CAMERA_ID_PATTERN
from services.common.students import get_student

router = APIRouter(tags=["attendance"], responses=AUTH_RESPONSES)

CameraQuery = Annotated[str | None, Query(pattern=CAMERA_ID_PATTERN, description="Only this camera")]
SESSION_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such session"}}
CSV_RESPONSE: Responses = {
    200: {"content": {"text/csv": {}}, "description": "The recorder's CSV columns, one row per mark"}
}


def _csv_download(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/sessions/{session_id}/attendance",
    response_model=SessionAttendanceOut,
    summary="Roll call of a session: every expected student, present, late or not seen",
    responses=SESSION_NOT_FOUND,
)
def session_attendance(session_id: int, principal: CurrentUser, context: Context) -> SessionAttendanceOut:
    with context.engine.connect() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        roll = session_roll(connection, session)
    return SessionAttendanceOut(
        session=SessionOut.model_validate(session),
        expected=roll.expected,
        present=roll.present,
        students=[RollEntryOut.model_validate(entry) for entry in roll.entries],
    )


@router.get(
    "/sessions/{session_id}/attendance.csv",
    response_class=Response,
    summary="A session's marks as CSV",
    responses={**SESSION_NOT_FOUND, **CSV_RESPONSE},
)
def session_attendance_csv(session_id: int, principal: CurrentUser, context: Context) -> Response:
    with context.engine.begin() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        marks = marks_of_session(connection, session_id)
        audit.record(
            connection, principal, "attendance.export", "session", session_id, detail=f"{len(marks)} mark(s)"
        )
    return _csv_download(csv_text(marks, context.settings.tz), f"attendance-session-{session_id}.csv")


@router.get(
    "/attendance", response_model=list[MarkOut], summary="The marks of a day's sessions (a teacher's own)"
)
def day_attendance(
    principal: CurrentUser, context: Context, date: DayQuery = None, camera_id: CameraQuery = None
) -> list[MarkOut]:
    tz = context.settings.tz
    day = date or local_day(datetime.now(UTC), tz)
    with context.engine.connect() as connection:
        marks = marks_of_day(connection, day, tz, camera_id, course_scope(connection, principal))
    return [MarkOut.model_validate(mark) for mark in marks]


@router.get(
    "/attendance.csv",
    response_class=Response,
    summary="The marks of a day's sessions as CSV",
    responses=CSV_RESPONSE,
)
def day_attendance_csv(
    principal: CurrentUser, context: Context, date: DayQuery = None, camera_id: CameraQuery = None
) -> Response:
    tz = context.settings.tz
    day = date or local_day(datetime.now(UTC), tz)
    with context.engine.begin() as connection:
        marks = marks_of_day(connection, day, tz, camera_id, course_scope(connection, principal))
        what = f"{day.isoformat()}{f' camera {camera_id}' if camera_id else ''}: {len(marks)} mark(s)"
        audit.record(connection, principal, "attendance.export", "day", day.isoformat(), detail=what)
    suffix = f"-{camera_id}" if camera_id else ""
    return _csv_download(csv_text(marks, tz), f"attendance-{day.isoformat()}{suffix}.csv")


@router.get(
    "/students/{student_id}/attendance",
    response_model=list[MarkOut],
    summary="Every mark of a student",
    responses={404: {"model": ErrorOut, "description": "No such student"}},
)
def student_attendance(student_id: int, principal: CurrentUser, context: Context) -> list[MarkOut]:
    """A teacher sees a student of their rosters, and only the marks of their courses' sessions."""
    with context.engine.connect() as connection:
        if get_student(connection, student_id) is None:
            raise not_found("student", student_id)
        check_student(connection, principal, student_id)
        marks = marks_of_student(connection, student_id, course_scope(connection, principal))
    return [MarkOut.model_validate(mark) for mark in marks]
