"""Issue 9: no face encoding is stored for a student without recorded consent to biometric
processing, by any path: the API's photo upload (even an admin's), the one function every
enrollment stores through (so a script or a new route cannot forget the rule), and the command
line. Before consent was recorded, each of these stored the face."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from harness.paths import FACES_DIR
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common import students
from services.faces.enrollment import analyze_photo, enrollment_analyzer
from services.recognizer import enroll
from tests.integration.api.conftest import session_token

pytestmark = [pytest.mark.security, pytest.mark.integration, pytest.mark.faces]

BROKER_DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F"
PHOTO = FACES_DIR / "people" / "eric_clapton" / "2.jpg"


@pytest.fixture
def admin_client(database_url: str, engine: sa.Engine) -> Iterator[TestClient]:
    app = create_app(ApiSettings(database_url=database_url, amqp_url=BROKER_DOWN_URL))
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {session_token(engine, 'admin')}"
        yield client


def stored_faces(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text("SELECT COUNT(*) FROM face_encodings")).scalar_one())


def test_an_admins_upload_for_a_student_without_consent_is_refused_and_nothing_is_stored(
    admin_client: TestClient, engine: sa.Engine
) -> None:
    student = admin_client.post("/students", json={"student_number": "S1", "name": "Ada Lovelace"})
    assert student.status_code == 201, student.text
    response = admin_client.post(
        f"/students/{student.json()['id']}/photos",
        files=[("photos", ("face.jpg", PHOTO.read_bytes(), "image/jpeg"))],
    )
    assert response.status_code == 409, (response.status_code, response.text)
    assert "consent" in response.json()["detail"]
    assert stored_faces(engine) == 0


def test_the_function_every_enrollment_stores_through_refuses_without_consent(engine: sa.Engine) -> None:
    photo = analyze_photo(PHOTO.read_bytes(), enrollment_analyzer(), 40)
    with engine.begin() as connection:
        student = students.create_student(connection, "S1", "Ada Lovelace")
    with pytest.raises(students.ConsentMissingError), engine.begin() as connection:
        students.add_face_encoding(connection, student.id, photo)
    assert stored_faces(engine) == 0


def test_the_command_line_enrolls_nobody_without_consent(
    database_url: str, engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AMQP_URL", BROKER_DOWN_URL)
    assert enroll.main(["--number", "S1", "--name", "Ada Lovelace", str(PHOTO)]) == 1
    assert stored_faces(engine) == 0
