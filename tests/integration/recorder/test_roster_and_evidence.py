"""The recorder's part of trustworthy recognition, on the real MariaDB: a session with a roster
names only its roster's students, the roster rule's candidate is marked only from its roster,
and a mark keeps the evidence it was made on."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from services.common.messages import FaceBox, FaceRecognized, FaceUnknown, TrackEvidence
from services.common.students import create_student
from services.recorder.store import AttendanceStore, MarkPolicy

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def face(frame_seq: int) -> dict[str, Any]:
    """Where, when and which face: the same camera and box for every event, a new track each."""
    box = FaceBox(top=0, right=90, bottom=90, left=0)
    return {
        "camera_id": "room-1",
        "frame_seq": frame_seq,
        "captured_at": NOW,
        "box": box,
        "worker": "w",
        "track_id": uuid.uuid4(),
    }


def named(student_id: int, number: str, tier: str = "confident") -> FaceRecognized:
    return FaceRecognized(
        **face(frame_seq=1),
        student_id=student_id,
        student_number=number,
        student_name=number,
        distance=0.41,
        margin=0.2,
        evidence=TrackEvidence(
            fresh=4,
            agreeing=3,
            best_distance=0.39,
            mean_distance=0.43,
            margin=0.12,
            tier=tier,  # type: ignore[arg-type]
        ),
    )


@pytest.fixture
def class_session(engine: sa.Engine) -> dict[str, int]:
    """Ada is on the course's roster; Bob is enrolled, but in another class."""
    with engine.begin() as connection:
        ada = create_student(connection, "S1", "Ada").id
        bob = create_student(connection, "S2", "Bob").id
        course = connection.execute(
            sa.text("INSERT INTO courses (code, name) VALUES ('M1', 'Maths')")
        ).lastrowid
        connection.execute(
            sa.text("INSERT INTO course_students (course_id, student_id) VALUES (:c, :s)"),
            {"c": course, "s": ada},
        )
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('room-1', 'Room 1')"))
        connection.execute(
            sa.text(
                "INSERT INTO class_sessions (name, camera_id, course_id, starts_at, ends_at) "
                "VALUES ('Maths', 'room-1', :c, :start, :end)"
            ),
            {
                "c": course,
                "start": (NOW - timedelta(hours=1)).replace(tzinfo=None),
                "end": (NOW + timedelta(hours=1)).replace(tzinfo=None),
            },
        )
    return {"ada": ada, "bob": bob}


def test_a_face_named_as_a_student_outside_the_roster_is_unknown_for_that_session(
    engine: sa.Engine, class_session: dict[str, int]
) -> None:
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    bob_event = named(class_session["bob"], "S2")
    batch = store.record([bob_event])
    assert batch.marks == []  # Bob is not in this class: nobody is marked
    with engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT kind, student_id, candidate_id, track_id FROM identity_events")
        ).one()
    # Kept for review, as an unknown face whose closest student was Bob.
    assert (row.kind, row.student_id, row.candidate_id) == ("unknown", None, class_session["bob"])
    assert row.track_id == str(bob_event.track_id)


def test_a_roster_students_mark_keeps_its_evidence_and_tier(
    engine: sa.Engine, class_session: dict[str, int]
) -> None:
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    event = named(class_session["ada"], "S1", tier="check")
    [mark] = store.record([event]).marks
    assert mark.student_id == class_session["ada"] and mark.confidence == "check"
    with engine.connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT evidence_fresh, evidence_agreeing, mean_distance, mark_margin, confidence, "
                "mark_track_id FROM attendance"
            )
        ).one()
    assert (row.evidence_fresh, row.evidence_agreeing, row.confidence) == (4, 3, "check")
    assert row.mean_distance == pytest.approx(0.43, abs=1e-4) and row.mark_margin == pytest.approx(
        0.12, abs=1e-4
    )
    assert row.mark_track_id == str(event.track_id)


def near(candidate_id: int) -> FaceUnknown:
    """An unknown face whose looks name `candidate_id` by the roster rule only."""
    return FaceUnknown(
        **face(frame_seq=2),
        best_distance=0.49,
        candidate_id=candidate_id,
        roster_evidence=TrackEvidence(
            fresh=4, agreeing=4, best_distance=0.48, mean_distance=0.49, margin=0.06, tier="check"
        ),
    )


def test_the_roster_rules_candidate_is_marked_check_only_when_on_the_sessions_roster(
    engine: sa.Engine, class_session: dict[str, int]
) -> None:
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    assert store.record([near(class_session["bob"])]).marks == []  # Bob: another class
    ada_event = near(class_session["ada"])
    [mark] = store.record([ada_event]).marks
    assert (mark.student_id, mark.confidence) == (class_session["ada"], "check")
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT kind, student_id, candidate_id, distance FROM identity_events ORDER BY frame_seq, id"
            )
        ).all()
        margin = connection.execute(sa.text("SELECT mark_margin FROM attendance")).scalar_one()
    assert sorted((r.kind, r.student_id, r.candidate_id) for r in rows) == [
        ("recognized", class_session["ada"], None),
        ("unknown", None, class_session["bob"]),
    ]
    assert margin == pytest.approx(0.06, abs=1e-4)


def test_without_a_roster_the_roster_rules_candidate_stays_unknown(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        ada = create_student(connection, "S1", "Ada").id
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    assert store.record([near(ada)]).marks == []  # a default session: no roster, no looser rule
    with engine.connect() as connection:
        kind = connection.execute(sa.text("SELECT kind FROM identity_events")).scalar_one()
    assert kind == "unknown"
