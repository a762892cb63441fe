"""Enrollment photos through the API, checked by the workers' own detector and encoder, and the
erasure of a student's biometric data, each announced to the recognizers on RabbitMQ."""

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.api import photos
from services.common import topology
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient
from tests.integration.api.helpers import downscaled, face, new_student, shared, upload
from tests.support.amqp import TestBroker
from tests.support.infra import scalar

pytestmark = [pytest.mark.integration, pytest.mark.faces]


def encodings_of(engine: sa.Engine, student_id: int) -> int:
    count = scalar(engine, "SELECT COUNT(*) FROM face_encodings WHERE student_id = :id", id=student_id)
    return int(str(count))


def test_good_photos_are_enrolled_and_the_recognizers_told(
    broker_client: TestClient, broker: TestBroker, engine: sa.Engine
) -> None:
    student = new_student(broker_client)
    gallery = broker.tap(topology.GALLERY_EXCHANGE)
    response = upload(
        broker_client, student["id"], ("a.jpg", face("kit_harington", 1)), ("b.jpg", face("kit_harington", 2))
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["student_id"] == student["id"]
    assert [p["filename"] for p in body["accepted"]] == ["a.jpg", "b.jpg"]
    assert all(p["face_px"] >= 80 for p in body["accepted"])
    assert body["rejected"] == []
    assert body["photo_count"] == 2
    assert response.headers["X-Gallery-Broadcast"] == "sent"
    assert encodings_of(engine, student["id"]) == 2
    assert client_photo_count(broker_client, student["id"]) == 2
    messages = broker.drain(gallery)
    assert [(m["kind"], m["student_id"]) for m in messages] == [("gallery.changed", student["id"])]


def client_photo_count(client: TestClient, student_id: int) -> int:
    return int(client.get(f"/students/{student_id}").json()["photo_count"])


def test_the_same_photo_twice_is_stored_once(client: TestClient, engine: sa.Engine) -> None:
    student = new_student(client)
    photo = face("eric_clapton", 2)
    assert upload(client, student["id"], ("one.jpg", photo)).status_code == 201
    response = upload(client, student["id"], ("again.jpg", photo))
    assert response.status_code == 201
    assert response.json()["photo_count"] == 1
    assert response.headers["X-Gallery-Broadcast"] == "unchanged"
    assert encodings_of(engine, student["id"]) == 1


@pytest.mark.parametrize(
    ("filename", "data", "reason"),
    [
        ("empty_room.jpg", lambda: shared("no_face/chandelier_room_crop.jpg"), "no face found"),
        ("couple.jpg", lambda: shared("groups/kit_with_rose.jpg"), "2 faces found; "),
        ("random.jpg", lambda: os.urandom(5000), "not an image that can be read ("),
        ("truncated.jpg", lambda: face("eric_clapton", 2)[:4000], "not an image that can be read ("),
        ("tiny.jpg", lambda: downscaled(face("eric_clapton", 2), 0.1), "face too small: "),
    ],
)
def test_a_bad_photo_is_refused_with_its_reason(
    client: TestClient, engine: sa.Engine, filename: str, data: Callable[[], bytes], reason: str
) -> None:
    student = new_student(client)
    response = upload(client, student["id"], (filename, data()))
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"].startswith(f"{filename}: {reason}")
    assert body["accepted"] == []
    assert [r["filename"] for r in body["rejected"]] == [filename]
    assert body["rejected"][0]["reason"].startswith(reason)
    assert body["photo_count"] == 0
    assert encodings_of(engine, student["id"]) == 0


def test_a_face_too_small_says_how_small_and_the_limit(client: TestClient) -> None:
    student = new_student(client)
    response = upload(client, student["id"], ("tiny.jpg", downscaled(face("eric_clapton", 2), 0.1)))
    reason = response.json()["rejected"][0]["reason"]
    size = int(reason.removeprefix("face too small: ").split(" px")[0])
    assert 10 <= size < 40
    assert reason == f"face too small: {size} px, need 40"


def test_accepted_photos_are_kept_when_others_are_refused(
    broker_client: TestClient, broker: TestBroker, engine: sa.Engine
) -> None:
    student = new_student(broker_client)
    gallery = broker.tap(topology.GALLERY_EXCHANGE)
    response = upload(
        broker_client,
        student["id"],
        ("good.jpg", face("paul_allen", 1)),
        ("group.jpg", shared("groups/kit_with_rose.jpg")),
        ("nothing.jpg", shared("no_face/whitehouse_logo_crop.jpg")),
    )
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "group.jpg: 2 faces found; an enrollment photo must show exactly one"
    assert [p["filename"] for p in body["accepted"]] == ["good.jpg"]
    assert body["rejected"] == [
        {"filename": "group.jpg", "reason": "2 faces found; an enrollment photo must show exactly one"},
        {"filename": "nothing.jpg", "reason": "no face found"},
    ]
    assert body["photo_count"] == 1
    assert encodings_of(engine, student["id"]) == 1
    assert response.headers["X-Gallery-Broadcast"] == "sent"
    assert len(broker.drain(gallery)) == 1


def test_a_photo_over_the_size_limit_is_refused_with_both_sizes(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, api_max_photo_bytes=100_000)
    student = new_student(client)
    big = face("alex_lacamoire", 2)  # 191 kB
    response = upload(client, student["id"], ("big.jpg", big), ("small.jpg", face("alex_lacamoire", 1)))
    assert response.status_code == 422
    assert response.json()["detail"] == f"big.jpg: photo too large: {len(big) / 2**20:.1f} MB, limit 0.1 MB"
    assert [p["filename"] for p in response.json()["accepted"]] == ["small.jpg"]


def test_a_request_over_the_request_limit_is_refused_before_reading(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, api_max_photo_bytes=100_000, api_max_request_bytes=150_000)
    student = new_student(client)
    response = upload(client, student["id"], ("big.jpg", face("alex_lacamoire", 2)))
    assert response.status_code == 413
    assert response.json()["detail"].startswith("request too large: 0.2 MB, limit 0.1 MB")
    # Without Content-Length (chunked), the body is counted as it arrives.
    form = httpx.Request(
        "POST", "/", files=[("photos", ("big.jpg", face("alex_lacamoire", 2), "image/jpeg"))]
    )
    body = form.read()
    chunks = (body[i : i + 16_384] for i in range(0, len(body), 16_384))
    response = client.post(
        f"/students/{student['id']}/photos",
        content=chunks,
        headers={"content-type": form.headers["content-type"]},
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "request too large: over the limit of 0.1 MB"


def test_photos_for_an_unknown_student_are_not_found(client: TestClient) -> None:
    response = upload(client, 999, ("a.jpg", face("eric_clapton", 2)))
    assert response.status_code == 404
    assert response.json()["detail"] == "student 999 does not exist"


def test_an_upload_without_photos_is_refused(client: TestClient) -> None:
    student = new_student(client)
    response = client.post(f"/students/{student['id']}/photos", data={"other": "x"})
    assert response.status_code == 422
    assert response.json()["detail"] == "photos: Field required"


def test_with_the_broker_down_an_upload_still_succeeds_and_says_so(
    client: TestClient, engine: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    student = new_student(client)
    response = upload(client, student["id"], ("a.jpg", face("eric_clapton", 2)))
    assert response.status_code == 201
    assert response.headers["X-Gallery-Broadcast"] == "failed"
    assert encodings_of(engine, student["id"]) == 1
    assert "not broadcast" in caplog.text


def test_deleting_a_student_erases_their_encodings_and_tells_the_recognizers(
    broker_client: TestClient, broker: TestBroker, engine: sa.Engine
) -> None:
    student = new_student(broker_client)
    keep = new_student(broker_client, "S002", "Someone Else")
    upload(broker_client, student["id"], ("a.jpg", face("joe_biden", 1)), ("b.jpg", face("joe_biden", 2)))
    upload(broker_client, keep["id"], ("c.jpg", face("paul_allen", 1)))
    assert encodings_of(engine, student["id"]) == 2
    gallery = broker.tap(topology.GALLERY_EXCHANGE)

    response = broker_client.delete(f"/students/{student['id']}")

    assert response.status_code == 200
    report = response.json()
    assert report["student_id"] == student["id"]
    assert report["erased"] == {"photos": 2, "review_crops": 0}
    assert report["kept"].startswith("kept: the student's name and number on their past attendance")
    assert response.headers["X-Gallery-Broadcast"] == "sent"
    assert encodings_of(engine, student["id"]) == 0
    assert encodings_of(engine, keep["id"]) == 1
    messages = broker.drain(gallery)
    assert [(m["kind"], m["student_id"]) for m in messages] == [("gallery.changed", student["id"])]
    assert broker_client.get(f"/students/{student['id']}").status_code == 404
    assert broker_client.delete(f"/students/{student['id']}").status_code == 404
    assert [s["id"] for s in broker_client.get("/students").json()["items"]] == [keep["id"]]
    # The number is free again for a new student.
    assert new_student(broker_client, student["student_number"], "Ada Again")["id"] != student["id"]
    # A deleted student gets no new photos.
    assert upload(broker_client, student["id"], ("d.jpg", face("joe_biden", 1))).status_code == 404


def test_photos_are_analysed_one_at_a_time(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    active = peak = 0
    lock = threading.Lock()
    real_analysis = photos.analyze_photo

    def counted_analysis(*args: Any) -> Any:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            time.sleep(0.2)  # long enough for concurrent uploads to overlap, were they allowed to
            return real_analysis(*args)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(photos, "analyze_photo", counted_analysis)
    students = [new_student(client, f"S{n}", f"Student {n}") for n in range(3)]
    with ThreadPoolExecutor(3) as pool:
        uploads = [pool.submit(upload, client, s["id"], ("a.jpg", face("eric_clapton", 2))) for s in students]
        # Queued uploads hold no request thread: the rest of the API keeps answering meanwhile.
        assert client.get("/students").status_code == 200
        assert [u.result().status_code for u in uploads] == [201, 201, 201]
    assert peak == 1
