"""Listing, searching and editing students (creation and erasure are in services.common.students)."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.students import STUDENT_COLUMNS, Student, get_student, student_from_row


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_students(
    connection: Connection, query: str, page: int, page_size: int, courses: set[int] | None = None
) -> tuple[list[Student], int]:
    """Active students whose name or number contains `query` (the collation ignores case), by name;
    with `courses`, only those on one of these courses' rosters."""
    where = "s.deleted_at IS NULL"
    params: dict[str, object] = {"limit": page_size, "offset": (page - 1) * page_size}
    if query:
        where += " AND (s.name LIKE :pattern OR s.student_number LIKE :pattern)"
        params["pattern"] = like_pattern(query)
    if courses is not None:
        where += " AND s.id IN (SELECT student_id FROM course_students WHERE course_id IN :courses)"
        params["courses"] = sorted(courses)
    expanding: list[sa.BindParameter[Any]] = []
    if courses is not None:
        expanding.append(sa.bindparam("courses", expanding=True))
    count = sa.text(f"SELECT COUNT(*) FROM students s WHERE {where}").bindparams(*expanding)
    total = connection.execute(count, params).scalar_one()
    rows = connection.execute(
        sa.text(
            f"SELECT {STUDENT_COLUMNS} FROM students s WHERE {where} "
            "ORDER BY s.name, s.id LIMIT :limit OFFSET :offset"
        ).bindparams(*expanding),
        params,
    )
    return [student_from_row(row) for row in rows], int(total)


def update_student(
    connection: Connection, student_id: int, student_number: str | None, name: str | None
) -> Student | None:
    """Change the given fields; None if there is no such active student.

    Raises sqlalchemy.exc.IntegrityError if another active student has the new number."""
    changes = {key: value for key, value in (("student_number", student_number), ("name", name)) if value}
    if changes:
        assignments = ", ".join(f"{key} = :{key}" for key in changes)
        connection.execute(
            sa.text(f"UPDATE students SET {assignments} WHERE id = :id AND deleted_at IS NULL"),
            {**changes, "id": student_id},
        )
    return get_student(connection, student_id)


def lock_active_student(connection: Connection, student_id: int) -> bool:
    """Lock the student's row for this transaction; False if there is no such active student.

    Enrollment takes this lock, as erasure's UPDATE does, so photos are never stored for a
    student deleted meanwhile."""
    row = connection.execute(
        sa.text("SELECT id FROM students WHERE id = :id AND deleted_at IS NULL FOR UPDATE"),
        {"id": student_id},
    ).first()
    return row is not None


def active_student_ids(connection: Connection, student_ids: list[int]) -> set[int]:
    if not student_ids:
        return set()
    query = sa.text("SELECT id FROM students WHERE id IN :ids AND deleted_at IS NULL").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    return {int(value) for value in connection.execute(query, {"ids": student_ids}).scalars()}
