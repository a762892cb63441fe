"""Students and their face encodings in MySQL, shared by enrollment (CLI and API) and the API.

Face encodings are biometric data: they are written here and read only by the recognizer's
gallery loader; nothing here returns or logs them. No photo or encoding is stored for a
student without recorded consent (`consent_at`): `add_face_encoding` is the one writer and
refuses, so no path (API upload, review queue, command line, a script) can forget the rule.
Withdrawing consent erases them, as deleting the student does.
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
    consent_at: datetime | None = None  # None: no consent recorded, no photo may be enrolled
    consent_by: str | None = None
    consent_note: str = ""


STUDENT_COLUMNS = (
    "s.id, s.student_number, s.name, s.created_at, s.consent_at, s.consent_by, s.consent_note, "
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
        consent_at=as_utc(row.consent_at) if row.consent_at is not None else None,
        consent_by=row.consent_by,
        consent_note=row.consent_note or "",
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


@dataclass(frozen=True)
class Consent:
    """Consent to biometric processing as recorded: who recorded it (an actor as the audit log
    names them) and a note (e.g. "signed form, 2026-09-01")."""

    by: str
    note: str = ""


MAX_CONSENT_NOTE = 500


class ConsentMissingError(Exception):
    """An enrollment photo for a student without recorded consent."""

    def __init__(self, student_id: int) -> None:
        super().__init__(
            f"student {student_id} has no recorded consent to biometric processing: "
            "no photo can be enrolled until it is recorded"
        )
        self.student_id = student_id


def create_student(
    connection: Connection, student_number: str, name: str, consent: Consent | None = None
) -> Student:
    """Raises sqlalchemy.exc.IntegrityError if an active student has this number."""
    result = connection.execute(
        sa.text("INSERT INTO students (student_number, name) VALUES (:number, :name)"),
        {"number": student_number, "name": name},
    )
    student_id = int(result.lastrowid)
    if consent is not None:
        give_consent(connection, student_id, consent)
    student = get_student(connection, student_id)
    assert student is not None
    return student


def give_consent(connection: Connection, student_id: int, consent: Consent) -> bool:
    """Record consent now; False if it was already recorded (the first record stands) or there
    is no such active student."""
    result = connection.execute(
        sa.text(
            "UPDATE students SET consent_at = CURRENT_TIMESTAMP(6), consent_by = :by, consent_note = :note "
            "WHERE id = :id AND deleted_at IS NULL AND consent_at IS NULL"
        ),
        {"id": student_id, "by": consent.by[:300], "note": consent.note[:MAX_CONSENT_NOTE]},
    )
    return bool(result.rowcount)


@dataclass(frozen=True)
class Erased:
    """What an erasure of a student's biometric data removed."""

    photos: int  # enrollment photos, each with its encoding
    review_crops: int


def withdraw_consent(connection: Connection, student_id: int) -> tuple[bool, Erased]:
    """Forget the consent and erase the student's photos, encodings and face crops (the same
    erasure as deleting them); the student, their roster places and attendance stay.
    (whether consent was recorded, what was erased)."""
    result = connection.execute(
        sa.text(
            "UPDATE students SET consent_at = NULL, consent_by = NULL, consent_note = '' "
            "WHERE id = :id AND deleted_at IS NULL AND consent_at IS NOT NULL"
        ),
        {"id": student_id},
    )
    return bool(result.rowcount), erase_biometrics(connection, student_id)


def has_consent(connection: Connection, student_id: int, *, lock: bool = False) -> bool:
    """Whether the active student has consent recorded; `lock` holds their row for the rest of
    the transaction, so a withdrawal cannot slip between this check and the insert."""
    row = connection.execute(
        sa.text(
            "SELECT consent_at FROM students WHERE id = :id AND deleted_at IS NULL"
            + (" FOR UPDATE" if lock else "")
        ),
        {"id": student_id},
    ).first()
    return row is not None and row.consent_at is not None


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
    """Store one enrollment photo and its encoding; False if this exact photo was already enrolled.

    Raises ConsentMissingError for a student without recorded consent (or not active)."""
    if not has_consent(connection, student_id, lock=True):
        raise ConsentMissingError(student_id)
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


def erase_student(connection: Connection, student_id: int) -> Erased | None:
    """Delete a student: their photos, encodings and face crops are erased, they leave every
    roster; the row stays, marked deleted, so past attendance and the CSV keep their names.
    What was erased, or None if there was no such student."""
    result = connection.execute(
        sa.text(
            "UPDATE students SET deleted_at = CURRENT_TIMESTAMP(6) WHERE id = :id AND deleted_at IS NULL"
        ),
        {"id": student_id},
    )
    if not result.rowcount:
        return None
    erased = erase_biometrics(connection, student_id)
    connection.execute(sa.text("DELETE FROM course_students WHERE student_id = :id"), {"id": student_id})
    return erased


def erase_biometrics(connection: Connection, student_id: int) -> Erased:
    """Erase the student's enrollment photos and encodings and the review-queue crops of their
    face; what erasure and a withdrawn consent share."""
    photos = connection.execute(
        sa.text("DELETE FROM face_encodings WHERE student_id = :id"), {"id": student_id}
    ).rowcount
    # Review-queue crops a person said were this student, or the system named as them: their face.
    crops = connection.execute(
        sa.text(
            "DELETE c FROM review_crops c JOIN review_items i ON i.id = c.item_id "
            "WHERE i.resolved_student_id = :id OR (i.kind = 'check' AND i.candidate_id = :id)"
        ),
        {"id": student_id},
    ).rowcount
    return Erased(photos=int(photos), review_crops=int(crops))
