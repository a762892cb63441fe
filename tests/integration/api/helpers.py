"""Small helpers shared by the API tests."""

from typing import Any

import cv2
import httpx
import numpy as np
from fastapi.testclient import TestClient

from harness.paths import FACES_DIR


def shared(relative: str) -> bytes:
    """A file of the shared faces, read in place: the photos are never copied into the project."""
    path = FACES_DIR / relative
    assert path.is_file(), f"missing shared photo {path}; set FACES_DIR"
    return path.read_bytes()


def face(person: str, number: int = 1) -> bytes:
    return shared(f"people/{person}/{number}.jpg")


def downscaled(data: bytes, scale: float) -> bytes:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", small)
    assert ok
    return bytes(jpeg.tobytes())


def upload(client: TestClient, student_id: int, *files: tuple[str, bytes]) -> httpx.Response:
    return client.post(
        f"/students/{student_id}/photos",
        files=[("photos", (name, data, "image/jpeg")) for name, data in files],
    )


def new_student(
    client: TestClient, number: str = "S001", name: str = "Ada Lovelace", *, consent: bool = True
) -> dict[str, Any]:
    """A student; with consent to biometric processing recorded unless `consent` is False (no
    photo can be enrolled without it)."""
    body = {"student_number": number, "name": name, "consent": consent}
    response = client.post("/students", json=body)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
