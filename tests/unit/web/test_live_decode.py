"""Broker messages become live events for browsers (no broker needed: bodies are decoded directly)."""

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.common.messages import AttendanceMarked, FaceBox, FaceRecognized, FaceUnknown
from services.web.hub import LiveHub, Subscription
from services.web.live import deliver

PARIS = ZoneInfo("Europe/Paris")
SEEN = datetime(2026, 3, 2, 7, 5, 9, tzinfo=UTC)
BOX = FaceBox(top=0, right=100, bottom=100, left=0)


def client(hub: LiveHub) -> Subscription:
    subscription = hub.subscribe()
    subscription.get(0)  # the broker status
    return subscription


def test_an_attendance_mark_is_shown_in_local_time() -> None:
    hub = LiveHub()
    browser = client(hub)
    mark = AttendanceMarked(
        attendance_id=1,
        session_id=4,
        session_name="Maths",
        camera_id="cam1",
        student_id=7,
        student_number="S7",
        student_name="Ada",
        status="present",
        first_seen_at=SEEN,
        distance=0.4,
        event_id=uuid.uuid4(),
        marked_at=SEEN,
    )
    assert deliver(hub, "attendance.marked.cam1", mark.model_dump_json().encode(), PARIS)
    (event,) = browser.get(0)
    assert event.name == "attendance"
    assert event.data["session_id"] == 4
    assert event.data["student_id"] == 7
    assert event.data["label"] == "present 08:05"


def test_recognitions_and_unknown_faces_feed_the_camera() -> None:
    hub = LiveHub()
    browser = client(hub)
    known = FaceRecognized(
        camera_id="cam1",
        frame_seq=1,
        captured_at=SEEN,
        box=BOX,
        worker="w",
        student_id=7,
        student_number="S7",
        student_name="Ada",
        distance=0.41,
    )
    unknown = FaceUnknown(camera_id="cam1", frame_seq=2, captured_at=SEEN, box=BOX, worker="w")
    assert deliver(hub, "face.recognized.cam1", known.model_dump_json().encode(), PARIS)
    assert deliver(hub, "face.unknown.cam1", unknown.model_dump_json().encode(), PARIS)
    first, second = browser.get(0)
    assert (first.data["name"], first.data["known"], first.data["time"]) == ("Ada", True, "08:05:09")
    assert (second.data["name"], second.data["known"]) == ("unknown", False)
    assert [e["name"] for e in hub.recent("cam1")] == ["unknown", "Ada"]


def test_an_invalid_message_is_ignored() -> None:
    hub = LiveHub()
    browser = client(hub)
    assert not deliver(hub, "face.recognized.cam1", b"not json", PARIS)
    assert not deliver(hub, "attendance.marked.cam1", b'{"kind": "attendance.marked"}', PARIS)
    assert browser.get(0) == []
