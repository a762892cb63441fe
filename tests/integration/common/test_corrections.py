"""Changing a status on the real MariaDB (services/common/corrections.py): a mark is made when
there is no row, a change row otherwise, and a refused change writes nothing."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.common.corrections import (
    RECOGNITION,
    SYSTEM,
    Actor,
    ChangeRefusedError,
    NoSuchTargetError,
    set_status,
)
from services.common.students import create_student

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
TEACHER = Actor("person", "ada (user 1)", None)


@pytest.fixture
def lesson(engine: sa.Engine) -> dict[str, int]:
    """A course session that started an hour ago; Ann is on its roster, Ben is not."""
    with engine.begin() as connection:
        ann = create_student(connection, "S1", "Ann").id
        ben = create_student(connection, "S2", "Ben").id
        course = connection.execute(
            sa.text("INSERT INTO courses (code, name) VALUES ('M1', 'Maths')")
        ).lastrowid
        connection.execute(
            sa.text("INSERT INTO course_students (course_id, student_id) VALUES (:c, :s)"),
            {"c": course, "s": ann},
        )
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('room-1', 'Room 1')"))
        session = connection.execute(
            sa.text(
                "INSERT INTO class_sessions (name, camera_id, course_id, starts_at, ends_at) "
                "VALUES ('Maths', 'room-1', :c, :start, :end)"
            ),
            {
                "c": course,
                "start": (NOW - timedelta(hours=1)).replace(tzinfo=None),
                "end": (NOW + timedelta(hours=1)).replace(tzinfo=None),
            },
        ).lastrowid
    return {"ann": ann, "ben": ben, "session": int(session)}


def counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (
            connection.execute(sa.text("SELECT COUNT(*) FROM attendance")).scalar_one(),
            connection.execute(sa.text("SELECT COUNT(*) FROM attendance_changes")).scalar_one(),
        )


def test_a_mark_then_changes_with_their_history(engine: sa.Engine, lesson: dict[str, int]) -> None:
    session, ann = lesson["session"], lesson["ann"]
    with engine.begin() as connection:
        absent = set_status(connection, session, ann, "absent", actor=SYSTEM)
        back = set_status(connection, session, ann, "late", actor=RECOGNITION)
        excused = set_status(connection, session, ann, "excused", actor=TEACHER, reason=" doctor's note ")
        again = set_status(connection, session, ann, "excused", actor=TEACHER, reason="twice")
    assert absent.action == "marked" and absent.from_status is None
    assert (back.action, back.from_status, back.to_status) == ("changed", "absent", "late")
    assert excused.action == "changed" and excused.change_event_id != back.change_event_id
    assert again.action == "unchanged" and again.change_id is None
    assert back.mark_event_id == absent.mark_event_id == excused.mark_event_id
    with engine.connect() as connection:
        mark = connection.execute(sa.text("SELECT status, source, reason, sightings FROM attendance")).one()
        history = connection.execute(
            sa.text(
                "SELECT source, actor, from_status, to_status, reason FROM attendance_changes ORDER BY id"
            )
        ).all()
    assert tuple(mark) == ("excused", "system", "", 0)  # the mark's own source stays
    assert [tuple(h) for h in history] == [
        ("recognition", "recognition", "absent", "late", ""),
        ("person", "ada (user 1)", "late", "excused", "doctor's note"),
    ]
    # A person set it now: recognition may no longer change it, and nothing is written.
    with pytest.raises(ChangeRefusedError, match="never overrides"), engine.begin() as connection:
        set_status(connection, session, ann, "present", actor=RECOGNITION)
    assert counts(engine) == (1, 2)


def test_refusals_write_nothing(engine: sa.Engine, lesson: dict[str, int]) -> None:
    session = lesson["session"]
    with pytest.raises(ChangeRefusedError, match="not on the roster"), engine.begin() as connection:
        set_status(connection, session, lesson["ben"], "excused", actor=TEACHER, reason="ill")
    with pytest.raises(NoSuchTargetError, match="no session"), engine.begin() as connection:
        set_status(connection, session + 1000, lesson["ann"], "excused", actor=TEACHER, reason="ill")
    with pytest.raises(NoSuchTargetError, match="no student"), engine.begin() as connection:
        set_status(connection, session, lesson["ann"] + 1000, "excused", actor=TEACHER, reason="ill")
    assert counts(engine) == (0, 0)
