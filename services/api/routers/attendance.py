"""Attendance: reads, CSV exports, and a person's changes of a status (docs/attendance-record.md).

Recognition and the system write marks through the recorder; a person's change goes through
services.common.corrections like theirs, in the same transaction as its audit entry. The
recorder journals it to the CSV and announces it on its next tick.
"""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, CurrentUser, require
from services.api.accounts.scope import check_session, check_student, course_scope
from services.api.accounts.tokens import Principal
from services.api.context import Context
from services.api.errors import ApiError, not_found
from services.api.queries.attendance import (
    changes_of_day,
    changes_of_session,
    is_finalized,
    marks_of_day,
    marks_of_session,
    marks_of_student,
    session_roll,
)
from services.api.schemas import (
    DayQuery,
    ErrorOut,
    HistoryEntryOut,
    MarkOut,
    Responses,
    RollEntryOut,
    RowHistoryOut,
    SessionAttendanceOut,
    SessionOut,
    StatusChangeOut,
    StatusIn,
)
from services.common import corrections
from services.common.attendance import csv_text, fetch_changes, fetch_marks, history
from services.common.sessions import get_session, local_day
from services.common.settings import CAMERA_ID_PATTERN
from services.common.students import get_student

router = APIRouter(tags=["attendance"], responses=AUTH_RESPONSES)

CameraQuery = Annotated[str | None, Query(pattern=CAMERA_ID_PATTERN, description="Only this camera")]
SESSION_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such session"}}
ROW_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such session, or no such student"}}
# Database ids are unsigned 64-bit; anything larger cannot name a row (and must not reach MySQL).
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Corrector = Annotated[Principal, Depends(require("admin", "teacher"))]
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
        finalized = is_finalized(connection, session_id)
    return SessionAttendanceOut(
        session=SessionOut.model_validate(session),
        expected=roll.expected,
        present=roll.present,
        late=roll.late,
        absent=roll.absent,
        excused=roll.excused,
        finalized=finalized,
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
        changes = changes_of_session(connection, session_id)
        what = f"{len(marks)} mark(s), {len(changes)} change(s)"
        audit.record(connection, principal, "attendance.export", "session", session_id, detail=what)
    text = csv_text(marks, context.settings.tz, changes)
    return _csv_download(text, f"attendance-session-{session_id}.csv")


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
        scope = course_scope(connection, principal)
        marks = marks_of_day(connection, day, tz, camera_id, scope)
        changes = changes_of_day(connection, day, tz, camera_id, scope)
        what = (
            f"{day.isoformat()}{f' camera {camera_id}' if camera_id else ''}: "
            f"{len(marks)} mark(s), {len(changes)} change(s)"
        )
        audit.record(connection, principal, "attendance.export", "day", day.isoformat(), detail=what)
    suffix = f"-{camera_id}" if camera_id else ""
    return _csv_download(csv_text(marks, tz, changes), f"attendance-{day.isoformat()}{suffix}.csv")


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


# `:int` in the two paths of a student's row: otherwise PUT .../attendance/history is this route
# with a student id "history" (a 422) where no PUT of that path exists (405, found by schemathesis).
# The document's paths are the same; a student id that is not digits is a 404 (no such row).
@router.put(
    "/sessions/{session_id}/attendance/{student_id:int}",
    response_model=StatusChangeOut,
    summary="Set a student's status in a session (a correction, an excuse), with a reason",
    description=(
        "A mark if the student has none in this session, else a change of it: MySQL keeps the "
        "history (GET .../changes) and the recorder journals it to the CSV as a new row that "
        "refers to the mark (`corrects`). Admins, and teachers of the session's course. The "
        "status already being that changes nothing (`unchanged`)."
    ),
    responses={
        **ROW_NOT_FOUND,
        409: {
            "model": ErrorOut,
            "description": "A rule forbids it: the student is not on the roster, is deleted, "
            "or the session has not started (present, late)",
        },
    },
)
def set_status(
    session_id: Id, student_id: Id, body: StatusIn, principal: Corrector, context: Context
) -> StatusChangeOut:
    with context.engine.begin() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        actor = corrections.Actor("person", principal.actor, principal.user_id)
        try:
            outcome = corrections.set_status(
                connection, session_id, student_id, body.status, actor=actor, reason=body.reason
            )
        except corrections.NoSuchTargetError:
            raise not_found("student", student_id) from None
        except corrections.ChangeRefusedError as refused:
            raise ApiError(409, str(refused)) from None
        except corrections.InvalidChangeError as invalid:  # the schema checks first: a safety net
            raise ApiError(422, str(invalid)) from None
        if outcome.action != "unchanged":
            audit.record(
                connection,
                principal,
                f"attendance.{outcome.action}",
                "attendance",
                outcome.attendance_id,
                detail=f"session {session_id}, student {student_id}: "
                f"{outcome.from_status or 'no mark'} -> {outcome.to_status}: {body.reason}",
            )
    return StatusChangeOut.model_validate(outcome, from_attributes=True)


@router.get(
    "/sessions/{session_id}/attendance/history",
    response_model=list[HistoryEntryOut],
    summary="A session's attendance journal: every mark made and every change of a status, oldest first",
    responses=SESSION_NOT_FOUND,
)
def session_history(session_id: Id, principal: CurrentUser, context: Context) -> list[HistoryEntryOut]:
    with context.engine.connect() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        entries = history(
            marks_of_session(connection, session_id), changes_of_session(connection, session_id)
        )
    return [HistoryEntryOut.model_validate(entry) for entry in entries]


@router.get(
    "/sessions/{session_id}/attendance/{student_id:int}",
    response_model=RowHistoryOut,
    summary="A student's row in a session: the mark and its history",
    responses=ROW_NOT_FOUND,
)
def row_history(session_id: Id, student_id: Id, principal: CurrentUser, context: Context) -> RowHistoryOut:
    with context.engine.connect() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        if get_student(connection, student_id) is None:
            raise not_found("student", student_id)
        where = "a.session_id = :session AND a.student_id = :student"
        params: dict[str, object] = {"session": session_id, "student": student_id}
        marks = fetch_marks(connection, where, params)
        changes = fetch_changes(connection, where, params)
    return RowHistoryOut(
        mark=MarkOut.model_validate(marks[0]) if marks else None,
        history=[HistoryEntryOut.model_validate(entry) for entry in history(marks, changes)],
    )
