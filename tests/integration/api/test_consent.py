"""Consent to biometric processing, per student, on the real MariaDB and RabbitMQ: recorded at
creation or later (who and when from the caller, audited), required for every enrollment photo
(refused with a 409 that says why, before any photo is analysed), and withdrawn with the
student's photos and encodings erased and the recognizers told."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.common import topology
from tests.integration.api.conftest import SignIn, engine_of
from tests.integration.api.helpers import face, new_student, upload
from tests.support.amqp import TestBroker
from tests.support.infra import scalar

pytestmark = [pytest.mark.integration, pytest.mark.faces]


def encodings_of(engine: sa.Engine, student_id: int) -> int:
    return int(
        str(scalar(engine, "SELECT COUNT(*) FROM face_encodings WHERE student_id = :id", id=student_id))
    )


def audit_details(client: TestClient, action: str) -> list[str]:
    items = client.get("/audit", params={"page_size": 500}).json()["items"]
    return [item["detail"] for item in items if item["action"] == action]


def test_a_photo_of_a_student_without_consent_is_refused_with_the_reason_and_nothing_is_stored(
    client: TestClient, engine: sa.Engine
) -> None:
    student = new_student(client, consent=False)
    assert student["consent_at"] is None
    response = upload(client, student["id"], ("ada.jpg", face("kit_harington", 1)))
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert "no recorded consent" in detail and f"/students/{student['id']}/consent" in detail
    assert encodings_of(engine, student["id"]) == 0
    assert client.get(f"/students/{student['id']}").json()["photo_count"] == 0
    assert audit_details(client, "student.enroll") == []


def test_consent_given_at_creation_records_who_and_when_and_photos_are_accepted(
    client: TestClient, engine: sa.Engine
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = client.post(
        "/students",
        json={"student_number": "S1", "name": "Ada", "consent": True, "consent_note": " signed form "},
    )
    assert response.status_code == 201, response.text
    student = response.json()
    assert datetime.fromisoformat(student["consent_at"]) >= before
    assert student["consent_by"].startswith("admin (user ")  # the caller, as the audit log names them
    assert student["consent_note"] == "signed form"
    assert audit_details(client, "student.consent") == ["given"]
    response = upload(client, student["id"], ("ada.jpg", face("kit_harington", 1)))
    assert response.status_code == 201, response.text
    assert encodings_of(engine, student["id"]) == 1


def test_consent_recorded_later_lets_photos_in_and_giving_it_again_changes_nothing(
    client: TestClient, engine: sa.Engine
) -> None:
    student = new_student(client, consent=False)
    response = client.put(f"/students/{student['id']}/consent", json={"given": True, "note": "form 12"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "given" and body["erased"] == {"photos": 0, "review_crops": 0}
    first = body["student"]
    assert first["consent_at"] is not None and first["consent_note"] == "form 12"
    again = client.put(f"/students/{student['id']}/consent", json={"given": True, "note": "other"}).json()
    assert again["action"] == "unchanged" and again["student"] == first  # the first record stands
    assert upload(client, student["id"], ("a.jpg", face("kit_harington", 1))).status_code == 201
    assert encodings_of(engine, student["id"]) == 1
    assert audit_details(client, "student.consent") == ["given"]


def test_withdrawing_consent_erases_photos_and_encodings_tells_the_recognizers_and_says_what_was_kept(
    broker_client: TestClient, broker: TestBroker, engine: sa.Engine
) -> None:
    client = broker_client
    student = new_student(client)
    course = client.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    client.put(f"/courses/{course['id']}/students", json={"student_ids": [student["id"]]})
    photos = ("a.jpg", face("kit_harington", 1)), ("b.jpg", face("kit_harington", 2))
    assert upload(client, student["id"], *photos).status_code == 201
    assert encodings_of(engine, student["id"]) == 2
    gallery = broker.tap(topology.GALLERY_EXCHANGE)

    response = client.put(f"/students/{student['id']}/consent", json={"given": False})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "withdrawn"
    assert body["erased"] == {"photos": 2, "review_crops": 0}
    assert "attendance" in body["kept"] and "roster" in body["kept"]
    assert body["student"]["consent_at"] is None and body["student"]["photo_count"] == 0
    assert response.headers["X-Gallery-Broadcast"] == "sent"
    assert encodings_of(engine, student["id"]) == 0
    assert [(m["kind"], m["student_id"]) for m in broker.drain(gallery)] == [
        ("gallery.changed", student["id"])
    ]
    # The student stays, on their course.
    assert client.get(f"/students/{student['id']}").status_code == 200
    assert student["id"] in client.get("/courses").json()[0]["student_ids"]
    assert audit_details(client, "student.consent") == [
        "withdrawn: 2 photo(s) and 0 review crop(s) erased",
        "given",
    ]
    # And nothing can be enrolled again until consent is recorded again.
    assert upload(client, student["id"], photos[0]).status_code == 409
    assert encodings_of(engine, student["id"]) == 0


def test_withdrawing_erases_photos_enrolled_before_consent_was_recorded(client: TestClient) -> None:
    # An upgraded database: photos from before migration 0004, nobody's consent recorded.
    student = new_student(client, consent=False)
    engine = engine_of(client)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO face_encodings (student_id, encoding, photo, photo_sha256, face_top, "
                "face_right, face_bottom, face_left) VALUES (:id, :encoding, :photo, :sha, 0, 90, 90, 0)"
            ),
            {
                "id": student["id"],
                "encoding": np.zeros(128, "<f8").tobytes(),
                "photo": b"\xff\xd8",
                "sha": "0" * 64,
            },
        )
    assert client.get(f"/students/{student['id']}").json()["photo_count"] == 1  # kept, and shown
    body = client.put(f"/students/{student['id']}/consent", json={"given": False}).json()
    assert body["action"] == "withdrawn" and body["erased"]["photos"] == 1
    assert encodings_of(engine, student["id"]) == 0
    nothing = client.put(f"/students/{student['id']}/consent", json={"given": False}).json()
    assert nothing["action"] == "unchanged" and nothing["erased"] == {"photos": 0, "review_crops": 0}


def test_consent_is_recorded_by_admins_and_the_students_teachers_only(
    client: TestClient, sign_in: SignIn
) -> None:
    mine, other = (
        new_student(client, "S1", "Ada", consent=False),
        new_student(client, "S2", "Bob", consent=False),
    )
    course = client.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    client.put(f"/courses/{course['id']}/students", json={"student_ids": [mine["id"]]})
    teacher = sign_in("teacher", "tess", courses=(course["id"],))
    response = teacher.put(f"/students/{mine['id']}/consent", json={"given": True, "note": "form"})
    assert response.status_code == 200 and response.json()["student"]["consent_by"].startswith("tess (user ")
    assert teacher.put(f"/students/{other['id']}/consent", json={"given": True}).status_code == 403
    viewer = sign_in("viewer")
    assert viewer.put(f"/students/{mine['id']}/consent", json={"given": False}).status_code == 403
    assert client.put("/students/999999/consent", json={"given": True}).status_code == 404
    too_long = client.put(f"/students/{other['id']}/consent", json={"given": True, "note": "x" * 501})
    assert too_long.status_code == 422 and "note" in too_long.json()["detail"]
    assert client.put(f"/students/{other['id']}/consent", json={}).status_code == 422
