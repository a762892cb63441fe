"""What a principal may see. Admins and viewers see everything; a teacher sees the courses an
admin assigned them (`course_teachers`): those courses' sessions and attendance, and the
students on their rosters. A default session (no course) is not a teacher's.
"""

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.api.accounts.tokens import Principal
from services.api.errors import ApiError
from services.common.sessions import ClassSession


def course_scope(connection: Connection, principal: Principal) -> set[int] | None:
    """The course ids a principal is limited to, or None for no limit."""
    if principal.role != "teacher":
        return None
    if principal.user_id is None:  # a teacher API token: no course is its own
        return set()
    rows = connection.execute(
        sa.text("SELECT course_id FROM course_teachers WHERE user_id = :user"), {"user": principal.user_id}
    )
    return {int(value) for value in rows.scalars()}


def may_see_course(connection: Connection, principal: Principal, course_id: int) -> bool:
    scope = course_scope(connection, principal)
    return scope is None or course_id in scope


def may_see_session(connection: Connection, principal: Principal, session: ClassSession) -> bool:
    scope = course_scope(connection, principal)
    return scope is None or (session.course_id is not None and session.course_id in scope)


def visible_sessions(
    connection: Connection, principal: Principal, sessions: list[ClassSession]
) -> list[ClassSession]:
    scope = course_scope(connection, principal)
    if scope is None:
        return sessions
    return [session for session in sessions if session.course_id is not None and session.course_id in scope]


def may_see_student(connection: Connection, principal: Principal, student_id: int) -> bool:
    """On the roster of one of the teacher's courses (always, for admins and viewers)."""
    scope = course_scope(connection, principal)
    if scope is None:
        return True
    if not scope:
        return False
    query = sa.text(
        "SELECT 1 FROM course_students WHERE student_id = :student AND course_id IN :courses LIMIT 1"
    ).bindparams(sa.bindparam("courses", expanding=True))
    return connection.execute(query, {"student": student_id, "courses": sorted(scope)}).first() is not None


def check_session(connection: Connection, principal: Principal, session: ClassSession) -> None:
    if not may_see_session(connection, principal, session):
        raise ApiError(403, f"session {session.id} is not a session of a course you teach")


def check_student(connection: Connection, principal: Principal, student_id: int) -> None:
    if not may_see_student(connection, principal, student_id):
        raise ApiError(403, f"student {student_id} is not on the roster of a course you teach")
