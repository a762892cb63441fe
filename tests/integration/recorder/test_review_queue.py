"""The review queue's recorder side on the real MariaDB: the real recognizer on real photos
attaches face crops to a stranger's looks (never to a confidently named student's), the
recorder keeps them as one item per track, and old items and crops are purged."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
import sqlalchemy as sa

from services.common.messages import (
    FaceBox,
    FaceRecognized,
    FaceUnknown,
    FrameCaptured,
    IdentityEvent,
    TrackEvidence,
)
from services.common.students import Consent, add_face_encoding, create_student, erase_student
from services.faces.engine import build_analyzer
from services.faces.enrollment import analyze_photo, enrollment_analyzer
from services.faces.matching import Matcher
from services.recognizer.live_gallery import load_gallery
from services.recognizer.service import FrameRecognizer
from services.recognizer.settings import RecognizerSettings
from services.recorder.retention import purge_review
from services.recorder.store import AttendanceStore, MarkPolicy

pytestmark = [pytest.mark.integration, pytest.mark.faces]

CAMERA = "room-review"


def people(faces_dir: Path) -> dict[str, list[Path]]:
    return {p.name: sorted(p.glob("*.jpg")) for p in sorted((faces_dir / "people").iterdir())}


def rows(engine: sa.Engine, query: str) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text(query)))


def test_a_stranger_seen_by_the_real_recognizer_becomes_one_review_item_with_crops(
    engine: sa.Engine, faces_dir: Path
) -> None:
    everyone = people(faces_dir)
    enrolled = [name for name, files in everyone.items() if len(files) > 1]
    stranger = next(files[0] for files in everyone.values() if len(files) == 1)
    enroller = enrollment_analyzer()
    with engine.begin() as connection:
        for name in enrolled:
            student = create_student(connection, name, name.replace("_", " ").title(), Consent("test"))
            add_face_encoding(connection, student.id, analyze_photo(everyone[name][0].read_bytes(), enroller))
    settings = RecognizerSettings()
    matcher = Matcher(load_gallery(engine), settings.recognizer_tolerance, settings.recognizer_margin)
    worker = FrameRecognizer(
        build_analyzer(**settings.analyzer_options()), lambda: matcher, "test-worker", settings.tracker()
    )
    start = datetime.now(UTC) - timedelta(minutes=5)
    events: list[IdentityEvent] = []
    # A camera that sees the stranger for 8 s, then a student whose own enrollment photo it is.
    for camera, photo in ((CAMERA, stranger), ("room-named", everyone[enrolled[0]][0])):
        image = cv2.imdecode(np.frombuffer(photo.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        jpeg = cv2.imencode(".jpg", image)[1].tobytes()
        for seq in range(8):
            meta = FrameCaptured(
                camera_id=camera,
                seq=seq,
                captured_at=start + timedelta(seconds=seq),
                width=image.shape[1],
                height=image.shape[0],
            )
            events += worker.recognize(meta, jpeg).events
    seen = [e for e in events if e.camera_id == CAMERA]
    assert seen and all(isinstance(e, FaceUnknown) for e in seen)
    with_crops = [e for e in seen if e.crop is not None]
    assert 1 <= len(with_crops) <= 3
    named = [e for e in events if e.camera_id == "room-named"]
    assert any(isinstance(e, FaceRecognized) for e in named)
    assert all(e.crop is None for e in named)

    AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy()).record(events)
    [item] = rows(engine, "SELECT * FROM review_items")
    assert (item.kind, item.camera_id, item.state) == ("unknown", CAMERA, "open")
    assert item.track_id == str(seen[0].track_id) and item.session_id is not None
    assert item.best_distance == pytest.approx(min(e.best_distance for e in with_crops if e.best_distance))
    crops = rows(engine, f"SELECT crop FROM review_crops WHERE item_id = {item.id}")
    assert [c.crop for c in crops] == [e.crop for e in with_crops]
    image = cv2.imdecode(np.frombuffer(crops[0].crop, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and max(image.shape[:2]) <= 160
    # The stranger marked no one; the student was marked, and is no review item.
    [mark] = rows(engine, "SELECT student_id FROM attendance")
    assert mark.student_id == named[-1].student_id  # type: ignore[union-attr]


def look(track: uuid.UUID, at: datetime, crop: bytes | None, **named: object) -> IdentityEvent:
    common = {
        "camera_id": CAMERA,
        "frame_seq": 1,
        "captured_at": at,
        "box": FaceBox(top=0, right=90, bottom=90, left=0),
        "worker": "w",
        "track_id": track,
        "crop": crop,
    }
    if named:
        return FaceRecognized(**common, **named)  # type: ignore[arg-type]
    return FaceUnknown(**common, best_distance=0.7)  # type: ignore[arg-type]


JPEG = cv2.imencode(".jpg", np.full((40, 40, 3), 128, np.uint8))[1].tobytes()


def test_old_review_items_and_crops_are_purged_and_an_erased_students_crops_go(engine: sa.Engine) -> None:
    now = datetime.now(UTC)
    old, recent = uuid.uuid4(), uuid.uuid4()
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    store.record([look(old, now - timedelta(days=8), JPEG), look(recent, now - timedelta(days=6), JPEG)])
    assert len(rows(engine, "SELECT id FROM review_crops")) == 2
    assert purge_review(engine, 0) == 0  # 0 keeps them
    assert purge_review(engine, 7, batch=1) == 1
    assert [r.track_id for r in rows(engine, "SELECT track_id FROM review_items")] == [str(recent)]
    assert len(rows(engine, "SELECT id FROM review_crops")) == 1
    # Assigned to a student who is then erased: the crops of their face go, the item stays.
    with engine.begin() as connection:
        student = create_student(connection, "S9", "Sam").id
        connection.execute(
            sa.text("UPDATE review_items SET state = 'assigned', resolved_student_id = :s"), {"s": student}
        )
        erase_student(connection, student)
    assert rows(engine, "SELECT id FROM review_crops") == []
    assert len(rows(engine, "SELECT id FROM review_items")) == 1


def test_a_track_confidently_named_later_leaves_the_queue_and_crops_are_bounded(engine: sa.Engine) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    track, other = uuid.uuid4(), uuid.uuid4()
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    store.record([look(other, now + timedelta(seconds=n), JPEG) for n in range(8)])
    assert len(rows(engine, "SELECT id FROM review_crops")) == 5  # at most MAX_CROPS, whatever is sent
    store.record([look(track, now, JPEG)])
    with engine.begin() as connection:
        student = create_student(connection, "S1", "Ada")
    evidence = TrackEvidence(
        fresh=4, agreeing=4, best_distance=0.3, mean_distance=0.3, margin=0.3, tier="confident"
    )
    store.record(
        [look(track, now + timedelta(seconds=2), None, student_id=student.id, student_number="S1",
              student_name="Ada", distance=0.3, evidence=evidence)]
    )  # fmt: skip
    assert [r.track_id for r in rows(engine, "SELECT track_id FROM review_items")] == [str(other)]
