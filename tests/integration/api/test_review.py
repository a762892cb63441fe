"""The review queue's API on the real MariaDB: items the recorder kept (from real face crops) are
listed per session, their crops served as JPEG to those who may see the session, and each action
(assign, dismiss, undo) changes attendance through the corrections, or is refused with a reason."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.common.messages import FaceBox, FaceRecognized, FaceUnknown, IdentityEvent, TrackEvidence
from services.faces.engine import decode_image
from services.faces.enrollment import enrollment_analyzer
from services.recognizer.crops import face_crop
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.integration.api.conftest import SignIn, engine_of
from tests.integration.api.helpers import face, new_student

pytestmark = pytest.mark.integration

CAMERA = "room-review"


def real_crop(person: str, number: int = 1) -> bytes:
    """A face crop as the recognizer makes it, from a real photo."""
    rgb = decode_image(face(person, number))
    [box] = enrollment_analyzer().detect(rgb)
    return face_crop(rgb, box)


def look(crop: bytes, track: uuid.UUID, at: datetime, **named: Any) -> IdentityEvent:
    common: dict[str, Any] = {
        "camera_id": CAMERA,
        "frame_seq": 1,
        "captured_at": at,
        "box": FaceBox(top=0, right=90, bottom=90, left=0),
        "worker": "w",
        "track_id": track,
        "crop": crop,
    }
    if named:
        evidence = TrackEvidence(
            fresh=4, agreeing=3, best_distance=0.45, mean_distance=0.47, margin=0.05, tier="check"
        )
        return FaceRecognized(**common, **named, distance=0.47, evidence=evidence)
    return FaceUnknown(**common, best_distance=0.66)


@pytest.fixture
def queue(client: TestClient, engine: sa.Engine) -> dict[str, Any]:
    """A course session (Ada and Grace on the roster, Bob not), and what the recorder kept of
    it: an unknown face (two looks) and a face named Ada on thin evidence (it marked her)."""
    ada = new_student(client, "S1", "Ada Lovelace")
    grace = new_student(client, "S2", "Grace Hopper")
    bob = new_student(client, "S3", "Bob Other")
    course = client.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    client.put(f"/courses/{course['id']}/students", json={"student_ids": [ada["id"], grace["id"]]})
    now = datetime.now(UTC)
    session = client.post(
        "/sessions",
        json={
            "name": "Maths",
            "camera_id": CAMERA,
            "course_id": course["id"],
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    ).json()
    crop = real_crop("kate_siegel")
    unknown, check = uuid.uuid4(), uuid.uuid4()
    at = now - timedelta(minutes=5)
    AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy()).record(
        [
            look(crop, unknown, at),
            look(crop, unknown, at + timedelta(seconds=1)),
            look(crop, check, at, student_id=ada["id"], student_number="S1", student_name="Ada Lovelace"),
        ]
    )
    items = {i["kind"]: i for i in client.get(f"/sessions/{session['id']}/review").json()["items"]}
    return {"session": session, "course": course, "ada": ada, "grace": grace, "bob": bob, **items}


def status_of(client: TestClient, session_id: int, student_id: int) -> tuple[str, str] | None:
    with engine_of(client).connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT a.status, COALESCE((SELECT c.source FROM attendance_changes c WHERE c.attendance_id = a.id "
                "ORDER BY c.id DESC LIMIT 1), a.source) AS source FROM attendance a "
                "WHERE a.session_id = :s AND a.student_id = :t"
            ),
            {"s": session_id, "t": student_id},
        ).first()
    return None if row is None else (row.status, row.source)


def test_a_sessions_queue_lists_items_by_track_with_counts_and_serves_crops_as_jpeg(
    client: TestClient, queue: dict[str, Any]
) -> None:
    session_id = queue["session"]["id"]
    page = client.get(f"/sessions/{session_id}/review").json()
    assert page["counts"] == {"open": 2, "assigned": 0, "dismissed": 0, "undone": 0}
    assert page["total"] == 2 and len(page["items"]) == 2
    unknown, check = queue["unknown"], queue["check"]
    assert len(unknown["crops"]) == 2 and unknown["candidate"] is None
    assert check["candidate"]["name"] == "Ada Lovelace" and check["attendance_id"] is not None
    assert "crop" not in str(page).replace("crops", "")  # no JPEG inside JSON
    crop = client.get(f"/review/crops/{unknown['crops'][0]['id']}")
    assert crop.status_code == 200 and crop.headers["content-type"] == "image/jpeg"
    assert crop.content.startswith(b"\xff\xd8") and "no-store" in crop.headers["cache-control"]
    assert client.get(f"/sessions/{session_id}/review/count").json() == {"session_id": session_id, "open": 2}
    one = client.get(f"/sessions/{session_id}/review", params={"page_size": 1, "page": 2}).json()
    assert one["total"] == 2 and len(one["items"]) == 1
    assert client.get(f"/sessions/{session_id}/review", params={"state": "assigned"}).json()["items"] == []
    assert client.get(f"/sessions/{session_id}/review", params={"page_size": 101}).status_code == 422
    assert client.get(f"/sessions/{session_id}/review", params={"state": "gone"}).status_code == 422
    assert client.get("/sessions/999999/review").status_code == 404
    assert client.get("/review/crops/999999").status_code == 404


def test_this_is_a_student_marks_them_present_and_can_enroll_the_crop(
    client: TestClient, queue: dict[str, Any]
) -> None:
    session_id, grace = queue["session"]["id"], queue["grace"]
    response = client.post(
        f"/review/items/{queue['unknown']['id']}/assign", json={"student_id": grace["id"], "enroll": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item"]["state"] == "assigned" and body["item"]["resolved_student_id"] == grace["id"]
    assert [(m["student_id"], m["action"], m["to_status"]) for m in body["marks"]] == [
        (grace["id"], "marked", "present")
    ]
    assert status_of(client, session_id, grace["id"]) == ("present", "person")
    assert len(body["enrollment"]["accepted"]) == 1 and body["enrollment"]["photo_count"] == 1
    assert client.get(f"/students/{grace['id']}").json()["photo_count"] == 1
    actions = [e["action"] for e in client.get("/audit").json()["items"]]
    assert "review.assign" in actions and "student.enroll" in actions
    counts = client.get(f"/sessions/{session_id}/review").json()["counts"]
    assert counts["open"] == 1 and counts["assigned"] == 1


def test_enrolling_the_crop_of_a_student_without_consent_is_refused_before_anything_is_marked(
    client: TestClient, queue: dict[str, Any]
) -> None:
    session_id, grace = queue["session"]["id"], queue["grace"]
    client.put(f"/students/{grace['id']}/consent", json={"given": False}).raise_for_status()
    item = f"/review/items/{queue['unknown']['id']}"
    response = client.post(f"{item}/assign", json={"student_id": grace["id"], "enroll": True})
    assert response.status_code == 409, response.text
    assert "no recorded consent" in response.json()["detail"]
    assert status_of(client, session_id, grace["id"]) is None
    assert client.get(item).json()["state"] == "open"
    assert client.get(f"/students/{grace['id']}").json()["photo_count"] == 0
    # Without enrollment the same answer is taken: consent is only needed to keep the face.
    response = client.post(f"{item}/assign", json={"student_id": grace["id"]})
    assert response.status_code == 200 and response.json()["enrollment"] is None
    assert status_of(client, session_id, grace["id"]) == ("present", "person")


def test_assigning_a_check_face_to_someone_else_undoes_the_wrong_mark(
    client: TestClient, queue: dict[str, Any]
) -> None:
    session_id, ada, grace = queue["session"]["id"], queue["ada"], queue["grace"]
    assert status_of(client, session_id, ada["id"]) == ("present", "recognition")
    body = client.post(
        f"/review/items/{queue['check']['id']}/assign", json={"student_id": grace["id"]}
    ).json()
    assert [(m["student_id"], m["to_status"]) for m in body["marks"]] == [
        (ada["id"], "absent"),
        (grace["id"], "present"),
    ]
    assert status_of(client, session_id, ada["id"]) == ("absent", "person")


def test_not_this_person_undoes_the_mark_and_not_a_student_dismisses(
    client: TestClient, queue: dict[str, Any]
) -> None:
    session_id, ada = queue["session"]["id"], queue["ada"]
    refused = client.post(f"/review/items/{queue['unknown']['id']}/undo", json={})
    assert refused.status_code == 409 and "no mark" in refused.json()["detail"]
    undone = client.post(f"/review/items/{queue['check']['id']}/undo", json={"reason": "her twin"})
    assert undone.status_code == 200 and undone.json()["item"]["state"] == "undone"
    assert status_of(client, session_id, ada["id"]) == ("absent", "person")
    with engine_of(client).connect() as connection:
        reason = connection.execute(sa.text("SELECT reason FROM attendance_changes")).scalar_one()
    assert reason == "her twin"
    dismissed = client.post(f"/review/items/{queue['unknown']['id']}/dismiss")
    assert dismissed.status_code == 200 and dismissed.json()["item"]["state"] == "dismissed"
    assert dismissed.json()["marks"] == []
    assert client.get(f"/sessions/{session_id}/review/count").json()["open"] == 0


def test_bad_review_actions_are_refused_with_a_reason_and_change_nothing(
    client: TestClient, queue: dict[str, Any], sign_in: SignIn
) -> None:
    session_id, unknown, bob, grace = (
        queue["session"]["id"],
        queue["unknown"]["id"],
        queue["bob"],
        queue["grace"],
    )
    missing = client.post("/review/items/999999/assign", json={"student_id": grace["id"]})
    assert missing.status_code == 404 and "does not exist" in missing.json()["detail"]
    off_roster = client.post(f"/review/items/{unknown}/assign", json={"student_id": bob["id"]})
    assert off_roster.status_code == 409 and "not on the roster" in off_roster.json()["detail"]
    assert client.post(f"/review/items/{unknown}/assign", json={"student_id": 999999}).status_code == 422
    assert client.post(f"/review/items/{unknown}/assign", json={"student_id": 0}).status_code == 422
    assert (
        client.post(f"/review/items/{unknown}/assign", json={"student_id": grace["id"], "x": 1}).status_code
        == 422
    )
    too_long = client.post(f"/review/items/{unknown}/dismiss", json={"reason": "x" * 501})
    assert too_long.status_code == 422
    viewer = sign_in("viewer")
    assert viewer.get(f"/sessions/{session_id}/review").status_code == 200  # a viewer reads
    refused = viewer.post(f"/review/items/{unknown}/dismiss")
    assert refused.status_code == 403 and "role" in refused.json()["detail"]
    stranger = sign_in("teacher")  # teaches no course: not their session
    assert stranger.get(f"/sessions/{session_id}/review").status_code == 403
    assert stranger.get(f"/review/crops/{queue['unknown']['crops'][0]['id']}").status_code == 403
    assert stranger.post(f"/review/items/{unknown}/dismiss").status_code == 403
    assert status_of(client, session_id, bob["id"]) is None
    assert client.get(f"/sessions/{session_id}/review/count").json()["open"] == 2  # nothing changed
    teacher = sign_in("teacher", courses=(queue["course"]["id"],))
    assert (
        teacher.post(f"/review/items/{unknown}/assign", json={"student_id": grace["id"]}).status_code == 200
    )
    again = client.post(f"/review/items/{unknown}/dismiss")
    assert again.status_code == 409 and "already assigned" in again.json()["detail"]
