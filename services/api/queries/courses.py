"""Courses and their rosters (who is expected in the course's sessions)."""

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Course:
    id: int
    code: str
    name: str
    student_ids: list[int]
    teacher_ids: list[int]
    late_after_min: int | None = None  # the course's own grace; None: the school's


def _rosters(connection: Connection) -> dict[int, list[int]]:
    # course_students rows are removed when a student is erased, so these are active students.
    rosters: dict[int, list[int]] = {}
    rows = connection.execute(
        sa.text("SELECT course_id, student_id FROM course_students ORDER BY student_id")
    )
    for row in rows:
        rosters.setdefault(int(row.course_id), []).append(int(row.student_id))
    return rosters


def _teachers(connection: Connection) -> dict[int, list[int]]:
    teachers: dict[int, list[int]] = {}
    rows = connection.execute(sa.text("SELECT course_id, user_id FROM course_teachers ORDER BY user_id"))
    for row in rows:
        teachers.setdefault(int(row.course_id), []).append(int(row.user_id))
    return teachers


def list_courses(connection: Connection, only: set[int] | None = None) -> list[Course]:
    """Every course by code, or only those with these ids."""
    rosters, teachers = _rosters(connection), _teachers(connection)
    rows = connection.execute(sa.text("SELECT id, code, name, late_after_min FROM courses ORDER BY code, id"))
    return [
        Course(
            int(r.id),
            r.code,
            r.name,
            rosters.get(int(r.id), []),
            teachers.get(int(r.id), []),
            r.late_after_min,
        )
        for r in rows
        if only is None or int(r.id) in only
    ]


def get_course(connection: Connection, course_id: int) -> Course | None:
    row = connection.execute(
        sa.text("SELECT id, code, name, late_after_min FROM courses WHERE id = :id"), {"id": course_id}
    ).first()
    if row is None:
        return None
    return Course(
        int(row.id),
        row.code,
        row.name,
        roster(connection, course_id),
        teachers_of(connection, course_id),
        row.late_after_min,
    )


def set_late_after(connection: Connection, course_id: int, minutes: int | None) -> None:
    connection.execute(
        sa.text("UPDATE courses SET late_after_min = :minutes WHERE id = :id"),
        {"minutes": minutes, "id": course_id},
    )


def teachers_of(connection: Connection, course_id: int) -> list[int]:
    rows = connection.execute(
        sa.text("SELECT user_id FROM course_teachers WHERE course_id = :id ORDER BY user_id"),
        {"id": course_id},
    )
    return [int(value) for value in rows.scalars()]


def replace_teachers(connection: Connection, course_id: int, user_ids: list[int]) -> None:
    connection.execute(sa.text("DELETE FROM course_teachers WHERE course_id = :id"), {"id": course_id})
    if user_ids:
        connection.execute(
            sa.text("INSERT INTO course_teachers (course_id, user_id) VALUES (:course, :user)"),
            [{"course": course_id, "user": user_id} for user_id in user_ids],
        )


def roster(connection: Connection, course_id: int) -> list[int]:
    rows = connection.execute(
        sa.text("SELECT student_id FROM course_students WHERE course_id = :id ORDER BY student_id"),
        {"id": course_id},
    )
    return [int(value) for value in rows.scalars()]


def create_course(connection: Connection, code: str, name: str) -> Course:
    """Raises sqlalchemy.exc.IntegrityError if the code is taken."""
    result = connection.execute(
        sa.text("INSERT INTO courses (code, name) VALUES (:code, :name)"), {"code": code, "name": name}
    )
    return Course(int(result.lastrowid), code, name, [], [])


def find_course_by_code(connection: Connection, code: str) -> Course | None:
    row = connection.execute(sa.text("SELECT id FROM courses WHERE code = :code"), {"code": code}).first()
    return get_course(connection, int(row.id)) if row else None


def replace_roster(connection: Connection, course_id: int, student_ids: list[int]) -> None:
    connection.execute(sa.text("DELETE FROM course_students WHERE course_id = :id"), {"id": course_id})
    if student_ids:
        connection.execute(
            sa.text("INSERT INTO course_students (course_id, student_id) VALUES (:course, :student)"),
            [{"course": course_id, "student": student_id} for student_id in student_ids],
        )
