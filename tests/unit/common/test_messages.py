import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.common.messages import (
    AttendanceMarked,
    FaceBox,
    FaceRecognized,
    FaceUnknown,
    FrameCaptured,
    identity_event_adapter,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BOX = FaceBox(top=10, right=110, bottom=110, left=10)


def recognized(**overrides: object) -> FaceRecognized:
    fields: dict[str, object] = {
        "camera_id": "room-101",
        "frame_seq": 7,
        "captured_at": NOW,
        "box": BOX,
        "worker": "w1",
        "student_id": 3,
        "student_number": "S3",
        "student_name": "Ada",
        "distance": 0.41,
        "margin": 0.2,
    }
    fields.update(overrides)
    return FaceRecognized(**fields)  # type: ignore[arg-type]


def test_identity_events_round_trip_through_json_by_their_kind() -> None:
    for event in (
        recognized(),
        FaceUnknown(camera_id="c", frame_seq=1, captured_at=NOW, box=BOX, worker="w"),
    ):
        parsed = identity_event_adapter.validate_json(event.model_dump_json())
        assert parsed == event
        assert type(parsed) is type(event)


def test_every_event_gets_its_own_uuid_and_a_schema_version() -> None:
    first, second = recognized(), recognized()
    assert isinstance(first.event_id, uuid.UUID)
    assert first.event_id != second.event_id
    assert first.schema_version == 1


def test_messages_are_frozen_and_refuse_unknown_fields() -> None:
    event = recognized()
    with pytest.raises(ValidationError):
        event.distance = 0.1  # type: ignore[misc]
    payload = event.model_dump(mode="json") | {"encoding": [0.1] * 128}
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        identity_event_adapter.validate_python(payload)


@pytest.mark.parametrize(
    "bad",
    [
        {"camera_id": "room 101"},  # a space would break routing keys
        {"camera_id": "a.b"},  # a dot would too
        {"distance": -0.1},
        {"captured_at": datetime(2026, 12, 1, 9, 0)},  # naive: ambiguous
        {"schema_version": 2},
    ],
)
def test_invalid_identity_events_are_refused(bad: dict[str, object]) -> None:
    payload = recognized().model_dump(mode="json") | {
        k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in bad.items()
    }
    with pytest.raises(ValidationError):
        identity_event_adapter.validate_python(payload)


def test_frame_metadata_survives_amqp_headers() -> None:
    frame = FrameCaptured(camera_id="cam-1", seq=42, captured_at=NOW, width=640, height=360)
    assert FrameCaptured.model_validate(frame.to_headers()) == frame


def test_attendance_marked_requires_a_known_status() -> None:
    fields = {
        "attendance_id": 1,
        "session_id": 1,
        "session_name": "Maths",
        "camera_id": "cam",
        "student_id": 1,
        "student_number": "S1",
        "student_name": "Ada",
        "status": "maybe",
        "first_seen_at": NOW,
        "distance": 0.4,
        "event_id": uuid.uuid4(),
        "marked_at": NOW,
    }
    with pytest.raises(ValidationError):
        AttendanceMarked(**fields)  # type: ignore[arg-type]
    assert AttendanceMarked(**(fields | {"status": "late"})).status == "late"  # type: ignore[arg-type]
