"""Courses and their rosters: who is expected in the course's sessions."""

import logging

import sqlalchemy as sa
from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin, CurrentUser
from services.api.accounts.scope import course_scope
from services.api.context import Context
from services.api.errors import ApiError, not_found
from services.api.queries.courses import (
    create_course,
    find_course_by_code,
    get_course,
    list_courses,
    replace_roster,
    replace_teachers,
)
from services.api.queries.courses import set_late_after as set_course_late_after
from services.api.queries.students import active_student_ids
from services.api.schemas import CourseIn, CourseOut, ErrorOut, LateAfterIn, RosterIn, TeachersIn

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/courses", tags=["courses"], responses=AUTH_RESPONSES)


def _taken(code: str) -> ApiError:
    return ApiError(409, f"course code {code} is already taken by another course")


@router.post(
    "",
    status_code=201,
    response_model=CourseOut,
    summary="Add a course",
    responses={409: {"model": ErrorOut, "description": "Another course has this code"}},
)
def add_course(body: CourseIn, admin: Admin, context: Context) -> CourseOut:
    try:
        with context.engine.begin() as connection:
            if find_course_by_code(connection, body.code) is not None:
                raise _taken(body.code)
            course = create_course(connection, body.code, body.name)
            audit.record(connection, admin, "course.create", "course", course.id, detail=course.code)
    except IntegrityError as error:  # a concurrent insert won the race
        raise _taken(body.code) from error
    logger.info("course %d (%s) created", course.id, course.code)
    return CourseOut.model_validate(course)


@router.get(
    "", response_model=list[CourseOut], summary="Every course with its roster, by code (a teacher's own)"
)
def courses(principal: CurrentUser, context: Context) -> list[CourseOut]:
    with context.engine.connect() as connection:
        scope = course_scope(connection, principal)
        return [CourseOut.model_validate(course) for course in list_courses(connection, scope)]


@router.put(
    "/{course_id}/students",
    response_model=CourseOut,
    summary="Replace a course's roster",
    responses={
        404: {"model": ErrorOut, "description": "No such course"},
        422: {"model": ErrorOut, "description": "A student id is unknown or deleted"},
    },
)
def set_roster(course_id: int, body: RosterIn, admin: Admin, context: Context) -> CourseOut:
    wanted = sorted(set(body.student_ids))
    with context.engine.begin() as connection:
        if get_course(connection, course_id) is None:
            raise not_found("course", course_id)
        unknown = sorted(set(wanted) - active_student_ids(connection, wanted))
        if unknown:
            listed = ", ".join(str(student_id) for student_id in unknown)
            raise ApiError(422, f"no such student: {listed}", {"unknown_student_ids": unknown})
        replace_roster(connection, course_id, wanted)
        audit.record(
            connection, admin, "course.roster", "course", course_id, detail=f"{len(wanted)} student(s)"
        )
        course = get_course(connection, course_id)
    assert course is not None
    return CourseOut.model_validate(course)


@router.put(
    "/{course_id}/teachers",
    response_model=CourseOut,
    summary="Replace who teaches a course",
    description="A teacher sees the sessions, attendance and rostered students of the courses they teach.",
    responses={
        404: {"model": ErrorOut, "description": "No such course"},
        422: {"model": ErrorOut, "description": "A user id is unknown or not a teacher"},
    },
)
def set_teachers(course_id: int, body: TeachersIn, admin: Admin, context: Context) -> CourseOut:
    wanted = sorted(set(body.user_ids))
    with context.engine.begin() as connection:
        if get_course(connection, course_id) is None:
            raise not_found("course", course_id)
        teachers: set[int] = set()
        if wanted:
            query = sa.text("SELECT id FROM users WHERE id IN :ids AND role = 'teacher'").bindparams(
                sa.bindparam("ids", expanding=True)
            )
            teachers = {int(value) for value in connection.execute(query, {"ids": wanted}).scalars()}
        refused = sorted(set(wanted) - teachers)
        if refused:
            listed = ", ".join(str(user_id) for user_id in refused)
            raise ApiError(422, f"not a teacher: {listed}", {"refused_user_ids": refused})
        replace_teachers(connection, course_id, wanted)
        listed = ", ".join(str(user_id) for user_id in wanted) or "none"
        audit.record(connection, admin, "course.teachers", "course", course_id, detail=f"teachers: {listed}")
        course = get_course(connection, course_id)
    assert course is not None
    return CourseOut.model_validate(course)


@router.put(
    "/{course_id}/late-after",
    response_model=CourseOut,
    summary="Set a course's grace: minutes after a session's start from which a first sighting is late",
    description="null: the school's RECORDER_LATE_AFTER_MIN again. Marks already made keep their status.",
    responses={404: {"model": ErrorOut, "description": "No such course"}},
)
def set_late_after(course_id: int, body: LateAfterIn, admin: Admin, context: Context) -> CourseOut:
    with context.engine.begin() as connection:
        if get_course(connection, course_id) is None:
            raise not_found("course", course_id)
        set_course_late_after(connection, course_id, body.minutes)
        grace = "the school's" if body.minutes is None else f"{body.minutes} min"
        audit.record(connection, admin, "course.grace", "course", course_id, detail=f"late after: {grace}")
        course = get_course(connection, course_id)
    assert course is not None
    return CourseOut.model_validate(course)
