"""Attendance reports (docs/api-contract.md, "Reports"): a session's roll, a student over a
range of days, a course over a term; each as JSON and as CSV (an export, audit-logged).

Admins and viewers see every report; a teacher only their courses' sessions and students, and
in a student's report only their courses' sessions."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, CurrentUser
from services.api.accounts.scope import check_session, check_student, course_scope, may_see_course
from services.api.context import Context
from services.api.errors import ApiError, not_found
from services.api.reports import export
from services.api.reports.queries import (
    CourseReport,
    StudentReport,
    TooManySessionsError,
    course_report,
    get_course_ref,
    get_student_ref,
    session_report,
    student_report,
)
from services.api.reports.schemas import CourseReportOut, SessionReportOut, StudentReportOut
from services.api.schemas import Day, ErrorOut, Responses
from services.common.sessions import get_session, local_day
from services.common.timetable import get_term

router = APIRouter(prefix="/reports", tags=["reports"], responses=AUTH_RESPONSES)

# The longest range of one student's report (a school year and a bit).
MAX_RANGE_DAYS = 366
# Without a start, a student's report covers this many days up to its end.
DEFAULT_RANGE_DAYS = 30

CSV: Responses = {200: {"content": {"text/csv": {}}, "description": "The report as CSV"}}
SESSION_404: Responses = {404: {"model": ErrorOut, "description": "No such session"}}
STUDENT_ERRORS: Responses = {
    404: {"model": ErrorOut, "description": "No such student"},
    422: {"model": ErrorOut, "description": "end before start, a range over 366 days, or a malformed day"},
}
COURSE_ERRORS: Responses = {
    404: {"model": ErrorOut, "description": "No such course, or no such term"},
    422: {"model": ErrorOut, "description": "threshold outside 0-100, or over 1,000 sessions in the term"},
}

StartQuery = Annotated[
    Day | None,
    Query(
        description="First day (YYYY-MM-DD, the school's calendar; "
        f"default: {DEFAULT_RANGE_DAYS - 1} days before end)"
    ),
]
EndQuery = Annotated[Day | None, Query(description="Last day, included (default: today)")]
ThresholdQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="Percent: students whose rate is under it are listed "
        "(default: API_REPORT_THRESHOLD_PERCENT)",
    ),
]


def _csv(text: str, filename: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _range(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    end = end or today
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if end < start:
        raise ApiError(422, f"end ({end.isoformat()}) is before start ({start.isoformat()})")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ApiError(422, f"a report covers at most {MAX_RANGE_DAYS} days; choose a shorter range")
    return start, end


# ---- a session ----


@router.get(
    "/sessions/{session_id}.csv",
    response_class=Response,
    summary="A session's roll as CSV (audit-logged)",
    responses={**SESSION_404, **CSV},
)
def session_report_csv(session_id: int, principal: CurrentUser, context: Context) -> Response:
    with context.engine.begin() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        report = session_report(connection, session, datetime.now(UTC))
        audit.record(
            connection,
            principal,
            "report.export",
            "session",
            session_id,
            detail=f"session report: {len(report.lines)} student(s)",
        )
    return _csv(export.session_csv(report, context.settings.tz), f"report-session-{session_id}.csv")


@router.get(
    "/sessions/{session_id}",
    response_model=SessionReportOut,
    summary="A session's roll: every roster student's status, when first seen, who set it",
    responses=SESSION_404,
)
def session_report_json(session_id: int, principal: CurrentUser, context: Context) -> SessionReportOut:
    with context.engine.connect() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        report = session_report(connection, session, datetime.now(UTC))
    return SessionReportOut.of(report)


# ---- a student ----


def _student_report(
    student_id: int, principal: CurrentUser, context: Context, start: date | None, end: date | None
) -> StudentReport:
    tz = context.settings.tz
    now = datetime.now(UTC)
    with context.engine.connect() as connection:
        student = get_student_ref(connection, student_id)
        if student is None:
            raise not_found("student", student_id)
        check_student(connection, principal, student_id)
        first, last = _range(start, end, local_day(now, tz))
        try:
            return student_report(
                connection, student, first, last, tz=tz, now=now, courses=course_scope(connection, principal)
            )
        except TooManySessionsError as error:
            raise ApiError(422, str(error)) from error


@router.get(
    "/students/{student_id}.csv",
    response_class=Response,
    summary="A student's report as CSV (audit-logged)",
    responses={**STUDENT_ERRORS, **CSV},
)
def student_report_csv(
    student_id: int,
    principal: CurrentUser,
    context: Context,
    start: StartQuery = None,
    end: EndQuery = None,
) -> Response:
    report = _student_report(student_id, principal, context, start, end)
    span = f"{report.first_day.isoformat()}..{report.last_day.isoformat()}"
    with context.engine.begin() as connection:
        audit.record(
            connection,
            principal,
            "report.export",
            "student",
            student_id,
            detail=f"student report {span}: {len(report.lines)} session(s)",
        )
    filename = f"report-student-{student_id}-{report.first_day.isoformat()}-{report.last_day.isoformat()}.csv"
    return _csv(export.student_csv(report, context.settings.tz), filename)


@router.get(
    "/students/{student_id}",
    response_model=StudentReportOut,
    summary="A student over a range of days: each session's status, their rate, lateness, absences",
    responses=STUDENT_ERRORS,
)
def student_report_json(
    student_id: int,
    principal: CurrentUser,
    context: Context,
    start: StartQuery = None,
    end: EndQuery = None,
) -> StudentReportOut:
    return StudentReportOut.of(_student_report(student_id, principal, context, start, end))


# ---- a course over a term ----


def _course_report(
    course_id: int, term_id: int, principal: CurrentUser, context: Context, threshold: float | None
) -> CourseReport:
    with context.engine.connect() as connection:
        course = get_course_ref(connection, course_id)
        if course is None:
            raise not_found("course", course_id)
        term = get_term(connection, term_id)
        if term is None:
            raise not_found("term", term_id)
        if not may_see_course(connection, principal, course_id):
            raise ApiError(403, f"course {course_id} is not a course you teach")
        try:
            return course_report(
                connection,
                course,
                term,
                tz=context.settings.tz,
                now=datetime.now(UTC),
                threshold_percent=context.settings.api_report_threshold_percent
                if threshold is None
                else threshold,
            )
        except TooManySessionsError as error:
            raise ApiError(422, str(error)) from error


@router.get(
    "/courses/{course_id}/terms/{term_id}.csv",
    response_class=Response,
    summary="A course's term as CSV: students by sessions, counts and rates (audit-logged)",
    responses={**COURSE_ERRORS, **CSV},
)
def course_report_csv(
    course_id: int, term_id: int, principal: CurrentUser, context: Context, threshold: ThresholdQuery = None
) -> Response:
    report = _course_report(course_id, term_id, principal, context, threshold)
    with context.engine.begin() as connection:
        audit.record(
            connection,
            principal,
            "report.export",
            "course",
            course_id,
            detail=f"course report, term {term_id}: {len(report.students)} student(s) "
            f"x {len(report.sessions)} session(s)",
        )
    return _csv(
        export.course_csv(report, context.settings.tz), f"report-course-{course_id}-term-{term_id}.csv"
    )


@router.get(
    "/courses/{course_id}/terms/{term_id}",
    response_model=CourseReportOut,
    summary="A course over a term: students by sessions, a rate for each, those below the threshold",
    responses=COURSE_ERRORS,
)
def course_report_json(
    course_id: int, term_id: int, principal: CurrentUser, context: Context, threshold: ThresholdQuery = None
) -> CourseReportOut:
    return CourseReportOut.of(_course_report(course_id, term_id, principal, context, threshold))
