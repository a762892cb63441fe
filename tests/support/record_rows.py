"""Attendance rows written straight into MySQL, as fixture data for the report tests: the rows
the recorder and the corrections module write, without running them."""

import uuid
from datetime import date, datetime

import sqlalchemy as sa

from services.common.attendance import to_db


def add_term(engine: sa.Engine, name: str, first_day: date, last_day: date) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            sa.text("INSERT INTO terms (name, first_day, last_day) VALUES (:name, :first, :last)"),
            {"name": name, "first": first_day, "last": last_day},
        )
    return int(result.lastrowid)


def put_row(
    engine: sa.Engine,
    session_id: int,
    student_id: int,
    status: str,
    *,
    seen_at: datetime | None = None,
    source: str | None = None,
    reason: str = "",
    confidence: str | None = None,
) -> int:
    """A mark: seen at `seen_at` (by recognition, with a sighting) or made by a person/the
    system without one. Its id."""
    seen = to_db(seen_at) if seen_at else None
    source = source or ("recognition" if seen_at else "person")
    with engine.begin() as connection:
        result = connection.execute(
            sa.text(
                "INSERT INTO attendance (session_id, student_id, status, source, reason, first_seen_at, "
                "last_seen_at, best_distance, mark_distance, sightings, mark_event_id, marked_at, confidence) "
                "VALUES (:session, :student, :status, :source, :reason, :seen, :seen, :distance, :distance, "
                ":sightings, :event, COALESCE(:seen, CURRENT_TIMESTAMP(6)), :confidence)"
            ),
            {
                "session": session_id,
                "student": student_id,
                "status": status,
                "source": source,
                "reason": reason,
                "seen": seen,
                "distance": 0.4 if seen_at else None,
                "sightings": 1 if seen_at else 0,
                "event": str(uuid.uuid4()),
                "confidence": confidence,
            },
        )
    return int(result.lastrowid)


def change_row(engine: sa.Engine, attendance_id: int, to_status: str, *, actor: str, reason: str) -> None:
    """A person's correction of a row, with its history entry."""
    with engine.begin() as connection:
        before = connection.execute(
            sa.text("SELECT status FROM attendance WHERE id = :id"), {"id": attendance_id}
        ).scalar_one()
        connection.execute(
            sa.text("UPDATE attendance SET status = :status WHERE id = :id"),
            {"status": to_status, "id": attendance_id},
        )
        connection.execute(
            sa.text(
                "INSERT INTO attendance_changes (change_event_id, attendance_id, source, actor, from_status, "
                "to_status, reason) VALUES (:event, :attendance, 'person', :actor, :before, :after, :reason)"
            ),
            {
                "event": str(uuid.uuid4()),
                "attendance": attendance_id,
                "actor": actor,
                "before": before,
                "after": to_status,
                "reason": reason,
            },
        )
