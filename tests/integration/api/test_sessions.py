"""Cameras, courses and sessions, including each camera's default session of the day (which
the recorder creates on a camera's heartbeat, and the API only reads)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.common.messages import CameraHeartbeat
from services.common.sessions import default_session_name, default_session_span, local_day
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient
from tests.integration.api.helpers import new_student

pytestmark = pytest.mark.integration

TZ = "Europe/Paris"


@pytest.fixture
def paris_client(make_client: MakeClient) -> TestClient:
    return make_client(BROKER_DOWN_URL, timezone=TZ)


def add_camera(engine: sa.Engine, camera_id: str, name: str, last_frame_at: datetime | None = None) -> None:
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO cameras (id, name, source, last_frame_at) VALUES (:id, :name, 'device 0', :last)"
            ),
            {"id": camera_id, "name": name, "last": last_frame_at},
        )


def heartbeat(engine: sa.Engine, camera_id: str, name: str) -> None:
    """What the recorder does when a capturing camera says it is alive."""
    store = AttendanceStore(engine, ZoneInfo(TZ), MarkPolicy())
    store.record_heartbeat(
        CameraHeartbeat(
            camera_id=camera_id,
            camera_name=name,
            source="device 0",
            last_frame_at=datetime.now(UTC),
            frames_published=1,
            status="streaming",
        )
    )


def new_session(client: TestClient, **fields: object) -> dict[str, object]:
    now = datetime.now(UTC)
    body = {
        "name": "Maths",
        "camera_id": "room-1",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        **fields,
    }
    response = client.post("/sessions", json=body)
    assert response.status_code == 201, response.text
    session: dict[str, object] = response.json()
    return session


def test_cameras_are_listed_with_their_last_frame(client: TestClient, engine: sa.Engine) -> None:
    assert client.get("/cameras").json() == []
    add_camera(engine, "room-2", "Room 2", datetime(2024, 9, 2, 6, 30))
    add_camera(engine, "room-1", "Room 1")
    assert client.get("/cameras").json() == [
        {"id": "room-1", "name": "Room 1", "source": "device 0", "last_frame_at": None},
        {
            "id": "room-2",
            "name": "Room 2",
            "source": "device 0",
            "last_frame_at": "2024-09-02T06:30:00+00:00",
        },
    ]


def test_a_cameras_heartbeat_creates_its_default_session_of_today_and_listing_writes_nothing(
    paris_client: TestClient, engine: sa.Engine
) -> None:
    add_camera(engine, "room-1", "Room 1")
    assert paris_client.get("/sessions").json() == []  # a read never creates rows
    heartbeat(engine, "room-1", "Room 1")
    heartbeat(engine, "room-2", "Room 2")
    tz = ZoneInfo(TZ)
    today = local_day(datetime.now(UTC), tz)
    start, end = default_session_span(today, tz)

    sessions = paris_client.get("/sessions").json()

    assert [(s["camera_id"], s["name"], s["is_default"]) for s in sessions] == [
        ("room-1", default_session_name("Room 1", today), True),
        ("room-2", default_session_name("Room 2", today), True),
    ]
    assert all(datetime.fromisoformat(s["starts_at"]) == start for s in sessions)
    assert all(datetime.fromisoformat(s["ends_at"]) == end for s in sessions)
    assert all(s["course_id"] is None for s in sessions)
    heartbeat(engine, "room-2", "Room 2")
    assert paris_client.get("/sessions").json() == sessions  # created once
    assert paris_client.get("/sessions", params={"camera_id": "room-2"}).json() == sessions[1:]
    yesterday = (today - timedelta(days=1)).isoformat()
    assert paris_client.get("/sessions", params={"date": yesterday}).json() == []


def test_a_scheduled_session_is_created_with_its_camera(paris_client: TestClient) -> None:
    session = new_session(
        paris_client,
        camera_id="lab-3",
        starts_at="2024-09-02T08:00:00+02:00",
        ends_at="2024-09-02T10:00:00+02:00",
    )
    assert session["starts_at"] == "2024-09-02T06:00:00+00:00"
    assert session["ends_at"] == "2024-09-02T08:00:00+00:00"
    assert session["is_default"] is False
    assert paris_client.get(f"/sessions/{session['id']}").json() == session
    assert [c["id"] for c in paris_client.get("/cameras").json()] == ["lab-3"]
    on_that_day = paris_client.get("/sessions", params={"date": "2024-09-02"}).json()
    assert [s["id"] for s in on_that_day] == [session["id"]]


@pytest.mark.parametrize("ends_at", ["2024-09-02T08:00:00+02:00", "2024-09-02T07:59:00+02:00"])
def test_a_session_must_end_after_it_starts(client: TestClient, ends_at: str) -> None:
    response = client.post(
        "/sessions",
        json={
            "name": "Maths",
            "camera_id": "room-1",
            "starts_at": "2024-09-02T08:00:00+02:00",
            "ends_at": ends_at,
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        f"ends_at ({datetime.fromisoformat(ends_at).isoformat()}) must be after starts_at (2024-09-02T08:00:00+02:00)"
    )
    assert client.get("/cameras").json() == []  # nothing was created


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"starts_at": "2024-09-02T08:00:00"}, "starts_at: Input should have timezone info"),
        ({"camera_id": "room 1"}, "camera_id: String should match pattern"),
        ({"course_id": 42}, "course 42 does not exist"),
    ],
)
def test_an_invalid_session_is_refused(client: TestClient, fields: dict[str, object], detail: str) -> None:
    body = {
        "name": "Maths",
        "camera_id": "room-1",
        "starts_at": "2024-09-02T08:00:00+00:00",
        "ends_at": "2024-09-02T09:00:00+00:00",
        **fields,
    }
    response = client.post("/sessions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)


def test_an_unknown_session_is_not_found(client: TestClient) -> None:
    response = client.get("/sessions/999")
    assert response.status_code == 404
    assert response.json()["detail"] == "session 999 does not exist"


def test_current_sessions_are_the_scheduled_ones_running_else_the_default(
    paris_client: TestClient, engine: sa.Engine
) -> None:
    heartbeat(engine, "room-1", "Room 1")
    heartbeat(engine, "room-2", "Room 2")
    now = datetime.now(UTC)
    running = new_session(paris_client, camera_id="room-1", name="Maths")
    new_session(
        paris_client,
        camera_id="room-2",
        name="Finished",
        starts_at=(now - timedelta(hours=3)).isoformat(),
        ends_at=(now - timedelta(hours=2)).isoformat(),
    )

    current = paris_client.get("/sessions/current").json()

    assert [(s["camera_id"], s["name"], s["is_default"]) for s in current] == [
        ("room-1", "Maths", False),
        ("room-2", default_session_name("Room 2", local_day(now, ZoneInfo(TZ))), True),
    ]
    assert current[0]["id"] == running["id"]


def test_courses_are_created_listed_and_given_a_roster(client: TestClient) -> None:
    ada = new_student(client, "S001", "Ada Lovelace")
    charles = new_student(client, "S002", "Charles Babbage")
    response = client.post("/courses", json={"code": "CS101", "name": "Computing"})
    assert response.status_code == 201
    course = response.json()
    assert course == {
        "id": course["id"],
        "code": "CS101",
        "name": "Computing",
        "student_ids": [],
        "teacher_ids": [],
        "late_after_min": None,  # the school's grace
    }
    client.post("/courses", json={"code": "AA100", "name": "Art"})

    response = client.put(
        f"/courses/{course['id']}/students", json={"student_ids": [charles["id"], ada["id"]]}
    )

    assert response.status_code == 200
    assert response.json()["student_ids"] == sorted([ada["id"], charles["id"]])
    assert [(c["code"], c["student_ids"]) for c in client.get("/courses").json()] == [
        ("AA100", []),
        ("CS101", sorted([ada["id"], charles["id"]])),
    ]
    session = new_session(client, course_id=course["id"])
    assert session["course_id"] == course["id"]
    # A deleted student leaves the roster.
    client.delete(f"/students/{ada['id']}")
    assert client.get("/courses").json()[1]["student_ids"] == [charles["id"]]


def test_a_duplicate_course_code_is_a_conflict(client: TestClient) -> None:
    client.post("/courses", json={"code": "CS101", "name": "Computing"})
    response = client.post("/courses", json={"code": "CS101", "name": "Again"})
    assert response.status_code == 409
    assert response.json()["detail"] == "course code CS101 is already taken by another course"


def test_a_roster_of_unknown_students_or_for_an_unknown_course_is_refused(client: TestClient) -> None:
    ada = new_student(client)
    course = client.post("/courses", json={"code": "CS101", "name": "Computing"}).json()
    response = client.put(f"/courses/{course['id']}/students", json={"student_ids": [ada["id"], 998, 999]})
    assert response.status_code == 422
    assert response.json()["detail"] == "no such student: 998, 999"
    assert client.get("/courses").json()[0]["student_ids"] == []
    response = client.put("/courses/999/students", json={"student_ids": []})
    assert response.status_code == 404
    assert response.json()["detail"] == "course 999 does not exist"
