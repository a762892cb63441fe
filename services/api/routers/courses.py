"""Courses and their rosters: who is expected in the course's sessions."""

import logging

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from services.api.context import Context
from services.api.errors import ApiError, not_found
from services.api.queries.courses import (
    create_course,
    find_course_by_code,
    get_course,
    list_courses,
    replace_roster,
)
from services.api.queries.students import active_student_ids
from services.api.schemas import CourseIn, CourseOut, ErrorOut, RosterIn

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/courses", tags=["courses"])


def _taken(code: str) -> ApiError:
    return ApiError(409, f"course code {code} is already taken by another course")


@router.post(
    "",
    status_code=201,
    response_model=CourseOut,
    summary="Add a course",
    responses={409: {"model": ErrorOut, "description": "Another course has this code"}},
)
def add_course(body: CourseIn, context: Context) -> CourseOut:
    try:
        with context.engine.begin() as connection:
            if find_course_by_code(connection, body.code) is not None:
                raise _taken(body.code)
            course = create_course(connection, body.code, body.name)
    except IntegrityError as error:  # a concurrent insert won the race
        raise _taken(body.code) from error
    logger.info("course %d (%s) created", course.id, course.code)
    return CourseOut.model_validate(course)


@router.get("", response_model=list[CourseOut], summary="Every course with its roster, by code")
def courses(context: Context) -> list[CourseOut]:
    with context.engine.connect() as connection:
        return [CourseOut.model_validate(course) for course in list_courses(connection)]


@router.put(
    "/{course_id}/students",
    response_model=CourseOut,
    summary="Replace a course's roster",
    responses={
        404: {"model": ErrorOut, "description": "No such course"},
        422: {"model": ErrorOut, "description": "A student id is unknown or deleted"},
    },
)
def set_roster(course_id: int, body: RosterIn, context: Context) -> CourseOut:
    wanted = sorted(set(body.student_ids))
    with context.engine.begin() as connection:
        if get_course(connection, course_id) is None:
            raise not_found("course", course_id)
        unknown = sorted(set(wanted) - active_student_ids(connection, wanted))
        if unknown:
            listed = ", ".join(str(student_id) for student_id in unknown)
            raise ApiError(422, f"no such student: {listed}", {"unknown_student_ids": unknown})
        replace_roster(connection, course_id, wanted)
        course = get_course(connection, course_id)
    assert course is not None
    return CourseOut.model_validate(course)
