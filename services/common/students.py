"""Students and their face encodings in MySQL, shared by enrollment (CLI and API) and the API.

Face encodings are biometric data: they are written here and read only by the recognizer's
gallery loader; nothing here returns or logs them.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import as_utc
from services.common.messages import FaceBox


@dataclass(frozen=True)
class Student:
    id: int
    student_number: str
    name: str
    photo_count: int
    created_at: datetime


STUDENT_COLUMNS = (
    "s.id, s.student_number, s.name, s.created_at, "
    "(SELECT COUNT(*) FROM face_encodings f WHERE f.student_id = s.id) AS photo_count"
)


def student_from_row(row: sa.Row) -> Student:
    """A row selected with STUDENT_COLUMNS."""
    return Student(
        id=int(row.id),
        student_number=row.student_number,
        name=row.name,
        photo_count=int(row.photo_count),
        created_at=as_utc(row.created_at),
    )


def get_student(connection: Connection, student_id: int) -> Student | None:
    row = connection.execute(
        sa.text(f"SELECT {STUDENT_COLUMNS} FROM students s WHERE s.id = :id AND s.deleted_at IS NULL"),
        {"id": student_id},
    ).first()
    return student_from_row(row) if row else None


def find_student_by_number(connection: Connection, student_number: str) -> Student | None:
    row = connection.execute(
        sa.text(f"SELECT {STUDENT_COLUMNS} FROM students s WHERE s.active_number = :number"),
        {"number": student_number},
    ).first()
    return student_from_row(row) if row else None


def create_student(connection: Connection, student_number: str, name: str) -> Student:
    """Raises sqlalchemy.exc.IntegrityError if an active student has this number."""
    result = connection.execute(
        sa.text("INSERT INTO students (student_number, name) VALUES (:number, :name)"),
        {"number": student_number, "name": name},
    )
    student = get_student(connection, int(result.lastrowid))
    assert student is not None
    return student


class EnrolledFace(Protocol):
    """What enrollment stores for one photo (services.faces.enrollment.EnrollmentPhoto)."""

    @property
    def encoding(self) -> np.ndarray: ...
    @property
    def box(self) -> FaceBox: ...
    @property
    def jpeg(self) -> bytes: ...
    @property
    def sha256(self) -> str: ...


def add_face_encoding(connection: Connection, student_id: int, face: EnrolledFace) -> bool:
    """Store one enrollment photo and its encoding; False if this exact photo was already enrolled."""
    result = connection.execute(
        sa.text(
            "INSERT IGNORE INTO face_encodings "
            "(student_id, encoding, photo, photo_sha256, face_top, face_right, face_bottom, face_left) "
            "VALUES (:student_id, :encoding, :photo, :sha256, :top, :right, :bottom, :left)"
        ),
        {
            "student_id": student_id,
            "encoding": np.asarray(face.encoding, dtype="<f8").tobytes(),
            "photo": face.jpeg,
            "sha256": face.sha256,
            "top": face.box.top,
            "right": face.box.right,
            "bottom": face.box.bottom,
            "left": face.box.left,
        },
    )
    return bool(result.rowcount)


def erase_student(connection: Connection, student_id: int) -> bool:
    """Delete a student: their photos and encodings are erased; the row stays, marked deleted,
    so past attendance and the CSV keep their names. False if there was no such student."""
    result = connection.execute(
        sa.text(
            "UPDATE students SET deleted_at = CURRENT_TIMESTAMP(6) WHERE id = :id AND deleted_at IS NULL"
        ),
        {"id": student_id},
    )
    connection.execute(sa.text("DELETE FROM face_encodings WHERE student_id = :id"), {"id": student_id})
    connection.execute(sa.text("DELETE FROM course_students WHERE student_id = :id"), {"id": student_id})
    # Review-queue crops a person said were this student, or the system named as them: their face.
    connection.execute(
        sa.text(
            "DELETE c FROM review_crops c JOIN review_items i ON i.id = c.item_id "
            "WHERE i.resolved_student_id = :id OR (i.kind = 'check' AND i.candidate_id = :id)"
        ),
        {"id": student_id},
    )
    return bool(result.rowcount)
