"""Migration 0004's statuses section on the real MariaDB: a database at 0003 holding
attendance is upgraded in place; its marks keep their meaning (made by recognition, their
statuses and sightings as they were) and the new statuses and their history are usable."""

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from harness.servers import MYSQL_SERVER_URL, remove_database
from services.common.corrections import Actor, set_status
from services.common.migrations import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def url() -> Iterator[str]:
    url = f"{MYSQL_SERVER_URL}/test_mig4_{uuid.uuid4().hex[:10]}"
    yield url
    remove_database(url)


def test_attendance_at_0003_is_upgraded_to_four_statuses_with_history(url: str) -> None:
    migrate(url, target=3)
    engine = sa.create_engine(url)
    events = [str(uuid.uuid4()), str(uuid.uuid4())]
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO students (student_number, name) VALUES ('S1', 'Ada'), ('S2', 'Bob')")
        )
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('room-1', 'Room 1')"))
        connection.execute(
            sa.text(
                "INSERT INTO class_sessions (name, camera_id, starts_at, ends_at) "
                "VALUES ('Maths', 'room-1', '2026-03-02 08:00:00', '2026-03-02 10:00:00')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO attendance (session_id, student_id, status, first_seen_at, last_seen_at, "
                "best_distance, mark_distance, sightings, mark_event_id, marked_at) VALUES "
                "(1, 1, 'present', '2026-03-02 08:03:00', '2026-03-02 09:50:00', 0.38, 0.41, 40, :e0, "
                "'2026-03-02 08:03:01'), "
                "(1, 2, 'late', '2026-03-02 08:40:00', '2026-03-02 08:45:00', 0.44, 0.45, 3, :e1, "
                "'2026-03-02 08:40:01')"
            ),
            {"e0": events[0], "e1": events[1]},
        )
    migrate(url)
    with engine.begin() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT student_id, status, source, reason, marked_by, sightings, mark_distance, "
                "mark_event_id FROM attendance ORDER BY id"
            )
        ).all()
        assert [tuple(r) for r in rows] == [
            (1, "present", "recognition", "", None, 40, pytest.approx(0.41), events[0]),
            (2, "late", "recognition", "", None, 3, pytest.approx(0.45), events[1]),
        ]
        # A mark no camera made (no sightings) and a change with its history fit the new schema.
        teacher = Actor("person", "teacher (user 1)", 1)
        outcome = set_status(connection, 1, 2, "excused", actor=teacher, reason="doctor's note")
        assert (outcome.action, outcome.from_status) == ("changed", "late")
        history = connection.execute(
            sa.text("SELECT from_status, to_status, source, reason FROM attendance_changes")
        ).all()
        assert [tuple(h) for h in history] == [("late", "excused", "person", "doctor's note")]
        connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S3', 'Cy')"))
        connection.execute(
            sa.text(
                "INSERT INTO attendance (session_id, student_id, status, source, mark_event_id, marked_at) "
                "VALUES (1, 3, 'absent', 'system', :e, NOW(6))"
            ),
            {"e": str(uuid.uuid4())},
        )
    # The checks hold: no status or source outside the contract's.
    for column, value in (("status", "gone"), ("source", "camera")):
        with pytest.raises(sa.exc.DBAPIError, match="ck_attendance"), engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE attendance SET {column} = :v WHERE id = 1"), {"v": value})
    engine.dispose()
