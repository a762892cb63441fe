"""Attendance as the recorder stores it, read back through the API: roll calls, marks, CSV."""

import csv
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.common.attendance import CSV_COLUMNS
from services.common.messages import FaceBox, FaceRecognized
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient
from tests.integration.api.helpers import new_student

pytestmark = pytest.mark.integration

TZ = "Europe/Paris"
DAY = "2024-09-02"
# 08:00-10:00 in Paris; marks after 08:30 are late.
MATHS = {
    "name": "Maths",
    "camera_id": "room-1",
    "starts_at": f"{DAY}T08:00:00+02:00",
    "ends_at": f"{DAY}T10:00:00+02:00",
}


@pytest.fixture
def paris_client(make_client: MakeClient) -> TestClient:
    return make_client(BROKER_DOWN_URL, timezone=TZ)


def seen(
    student: dict[str, object], at: str, camera: str = "room-1", distance: float = 0.4
) -> FaceRecognized:
    return FaceRecognized(
        camera_id=camera,
        frame_seq=1,
        captured_at=datetime.fromisoformat(at),
        box=FaceBox(top=1, right=100, bottom=100, left=1),
        worker="test",
        student_id=student["id"],
        student_number=student["student_number"],
        student_name=student["name"],
        distance=distance,
    )


@pytest.fixture
def school(paris_client: TestClient, engine: sa.Engine) -> dict[str, dict[str, object]]:
    """Three students; a Maths course of Ada and Charles with a session; Ada (late) and Grace (on
    the roster then) seen in it; Charles seen only later that day in room 2 (its default session)."""
    ada = new_student(paris_client, "S001", "Ada Lovelace")
    charles = new_student(paris_client, "S002", "Charles Babbage")
    grace = new_student(paris_client, "S003", "Grace Hopper")
    course = paris_client.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    roster = f"/courses/{course['id']}/students"
    paris_client.put(roster, json={"student_ids": [ada["id"], charles["id"], grace["id"]]})
    maths = paris_client.post("/sessions", json={**MATHS, "course_id": course["id"]}).json()
    store = AttendanceStore(engine, ZoneInfo(TZ), MarkPolicy(late_after_min=30))
    store.record([seen(grace, f"{DAY}T08:10:00+02:00", distance=0.3)])
    # Grace leaves the course after being marked: a session names only its roster's students,
    # so this is how someone marked but not expected appears in a roll.
    paris_client.put(roster, json={"student_ids": [ada["id"], charles["id"]]})
    store.record([seen(ada, f"{DAY}T08:45:00+02:00"), seen(ada, f"{DAY}T08:50:00+02:00")])
    store.record([seen(charles, f"{DAY}T14:00:00+02:00", camera="room-2")])
    return {"ada": ada, "charles": charles, "grace": grace, "maths": maths, "course": course}


def test_a_roll_call_lists_the_roster_and_who_else_was_seen(
    paris_client: TestClient, school: dict[str, dict[str, object]]
) -> None:
    response = paris_client.get(f"/sessions/{school['maths']['id']}/attendance")
    assert response.status_code == 200
    roll = response.json()
    assert roll["session"] == school["maths"]
    assert (roll["expected"], roll["present"]) == (2, 1)
    assert [(s["student_name"], s["status"], s["expected"]) for s in roll["students"]] == [
        ("Ada Lovelace", "late", True),
        ("Charles Babbage", "not_seen", True),
        ("Grace Hopper", "present", False),
    ]
    ada, charles, _grace = roll["students"]
    assert ada["first_seen_at"] == "2024-09-02T06:45:00+00:00"
    assert ada["last_seen_at"] == "2024-09-02T06:50:00+00:00"
    assert ada["distance"] == pytest.approx(0.4)
    assert (charles["first_seen_at"], charles["last_seen_at"], charles["distance"]) == (None, None, None)
    assert set(ada) == {
        "student_id",
        "student_number",
        "student_name",
        "status",
        "first_seen_at",
        "last_seen_at",
        "distance",
        "expected",
        "confidence",  # of recognition's mark: "check" on thin evidence (the live page flags it)
        "attendance_id",
        "source",
        "reason",
    }


def test_without_a_roster_every_active_student_is_expected(
    paris_client: TestClient, school: dict[str, dict[str, object]]
) -> None:
    room_2 = paris_client.get("/sessions", params={"date": DAY, "camera_id": "room-2"}).json()
    assert [s["is_default"] for s in room_2] == [True]
    roll = paris_client.get(f"/sessions/{room_2[0]['id']}/attendance").json()
    assert (roll["expected"], roll["present"]) == (3, 1)
    assert [(s["student_name"], s["status"]) for s in roll["students"]] == [
        ("Ada Lovelace", "not_seen"),
        ("Charles Babbage", "present"),
        ("Grace Hopper", "not_seen"),
    ]


def test_the_marks_of_a_day_and_of_a_student(
    paris_client: TestClient, school: dict[str, dict[str, object]]
) -> None:
    marks = paris_client.get("/attendance", params={"date": DAY}).json()
    assert [(m["student_name"], m["session_name"], m["status"]) for m in marks] == [
        ("Grace Hopper", "Maths", "present"),
        ("Ada Lovelace", "Maths", "late"),
        ("Charles Babbage", f"room-2 {DAY}", "present"),
    ]
    assert set(marks[0]) == {
        "attendance_id",
        "session_id",
        "session_name",
        "camera_id",
        "student_id",
        "student_number",
        "student_name",
        "status",
        "first_seen_at",
        "last_seen_at",
        "distance",
        "sightings",
        "confidence",
        "event_id",
        "source",
        "set_by",
        "reason",
    }
    assert marks[0]["confidence"] is None  # these events carry no track evidence
    assert marks[1]["sightings"] == 2
    assert marks[1]["first_seen_at"] == "2024-09-02T06:45:00+00:00"
    only_room_2 = paris_client.get("/attendance", params={"date": DAY, "camera_id": "room-2"}).json()
    assert [m["student_name"] for m in only_room_2] == ["Charles Babbage"]
    assert paris_client.get("/attendance", params={"date": "2024-09-03"}).json() == []
    ada_id = school["ada"]["id"]
    assert [m["attendance_id"] for m in paris_client.get(f"/students/{ada_id}/attendance").json()] == [
        marks[1]["attendance_id"]
    ]
    assert paris_client.get("/students/999/attendance").status_code == 404


def test_a_date_that_is_not_a_date_is_refused(client: TestClient) -> None:
    response = client.get("/attendance", params={"date": "2024-13-01"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("date: ")


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_downloads_have_the_recorders_columns_and_one_row_per_mark(
    paris_client: TestClient, engine: sa.Engine, school: dict[str, dict[str, object]]
) -> None:
    response = paris_client.get(f"/sessions/{school['maths']['id']}/attendance.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="attendance-session-{school["maths"]["id"]}.csv"'
    )
    header, *rows = rows_of(response.text)
    assert tuple(header) == CSV_COLUMNS
    assert sorted(row[6] for row in rows) == ["Ada Lovelace", "Grace Hopper"]

    response = paris_client.get("/attendance.csv", params={"date": DAY})
    assert response.headers["content-disposition"] == f'attachment; filename="attendance-{DAY}.csv"'
    header, *rows = rows_of(response.text)
    assert tuple(header) == CSV_COLUMNS
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT id FROM attendance ORDER BY id")).scalars().all()
    assert [int(row[0]) for row in rows] == stored
    # Times in the CSV are the school's local time, as the recorder writes them.
    first_seen = {row[6]: row[8] for row in rows}
    assert first_seen["Ada Lovelace"] == "2024-09-02T08:45:00+02:00"

    empty = rows_of(paris_client.get("/attendance.csv", params={"date": "2024-09-03"}).text)
    assert [tuple(r) for r in empty] == [CSV_COLUMNS]


def test_attendance_of_an_unknown_session_is_not_found(client: TestClient) -> None:
    for path in ["/sessions/999/attendance", "/sessions/999/attendance.csv"]:
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["detail"] == "session 999 does not exist"


def test_marks_of_today_are_empty_without_sightings(client: TestClient) -> None:
    assert client.get("/attendance").json() == []
    assert rows_of(client.get("/attendance.csv").text) == [list(CSV_COLUMNS)]
