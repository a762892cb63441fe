"""Roles and scope: a viewer reads and changes nothing; a teacher sees only their courses'
sessions, attendance and students, gets 403 elsewhere, and enrolls and edits only those students."""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.common.messages import FaceBox, FaceRecognized
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.integration.api.conftest import SignIn
from tests.integration.api.helpers import face, new_student, upload

pytestmark = pytest.mark.integration

School = dict[str, Any]


def seen(student: dict[str, Any], camera: str, at: datetime) -> FaceRecognized:
    return FaceRecognized(
        camera_id=camera,
        frame_seq=1,
        captured_at=at,
        box=FaceBox(top=1, right=100, bottom=100, left=1),
        worker="test",
        student_id=student["id"],
        student_number=student["student_number"],
        student_name=student["name"],
        distance=0.3,
    )


@pytest.fixture
def school(client: TestClient, engine: sa.Engine) -> School:
    """Maths (Ada, on room-1) and Art (Bob, on room-2), each with a session running now in which
    its student was seen; Carol on no roster; room-3 has only its default session."""
    now = datetime.now(UTC)
    # Sessions start today even just after midnight, so one day's listing holds them all.
    start = max(now - timedelta(minutes=30), now.replace(hour=0, minute=0, second=0, microsecond=0))
    ada = new_student(client, "S001", "Ada Lovelace")
    bob = new_student(client, "S002", "Bob Ross")
    carol = new_student(client, "S003", "Carol Shaw")
    sessions, courses = {}, {}
    for code, student, camera in (("MATHS", ada, "room-1"), ("ART", bob, "room-2")):
        course = client.post("/courses", json={"code": code, "name": code.title()}).json()
        client.put(f"/courses/{course['id']}/students", json={"student_ids": [student["id"]]})
        body = {
            "name": code.title(),
            "camera_id": camera,
            "course_id": course["id"],
            "starts_at": start.isoformat(),
            "ends_at": (now + timedelta(minutes=30)).isoformat(),
        }
        response = client.post("/sessions", json=body)
        assert response.status_code == 201, response.text
        sessions[code], courses[code] = response.json(), course
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    for student, camera in ((ada, "room-1"), (bob, "room-2"), (carol, "room-3")):
        store.record([seen(student, camera, now), seen(student, camera, now + timedelta(seconds=1))])
    day = now.date().isoformat()
    return {"ada": ada, "bob": bob, "carol": carol, "sessions": sessions, "courses": courses, "day": day}


@pytest.fixture
def teacher(sign_in: SignIn, school: School) -> TestClient:
    """Teaches Maths only."""
    return sign_in("teacher", "turing", courses=(school["courses"]["MATHS"]["id"],))


def test_a_viewer_reads_everything_and_changes_nothing(sign_in: SignIn, school: School) -> None:
    viewer = sign_in("viewer")
    maths, art = school["sessions"]["MATHS"], school["sessions"]["ART"]
    assert viewer.get("/students").json()["total"] == 3
    assert len(viewer.get("/courses").json()) == 2
    assert {s["camera_id"] for s in viewer.get("/sessions", params={"date": school["day"]}).json()} >= {
        "room-1",
        "room-2",
        "room-3",
    }
    assert viewer.get(f"/sessions/{art['id']}/attendance").status_code == 200
    assert viewer.get(f"/sessions/{maths['id']}/attendance.csv").status_code == 200
    ada = school["ada"]
    for method, path, body in [
        ("POST", "/students", {"student_number": "S9", "name": "X"}),
        ("PATCH", f"/students/{ada['id']}", {"name": "X"}),
        ("DELETE", f"/students/{ada['id']}", None),
        ("POST", "/courses", {"code": "X", "name": "X"}),
        ("PUT", f"/courses/{school['courses']['ART']['id']}/students", {"student_ids": []}),
        ("PUT", f"/courses/{school['courses']['ART']['id']}/teachers", {"user_ids": []}),
        (
            "POST",
            "/sessions",
            {
                "name": "X",
                "camera_id": "room-9",
                "starts_at": maths["starts_at"],
                "ends_at": maths["ends_at"],
            },
        ),
    ]:
        response = viewer.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
    assert upload(viewer, ada["id"], ("a.jpg", face("eric_clapton", 2))).status_code == 403
    assert viewer.get(f"/students/{ada['id']}").json()["name"] == "Ada Lovelace"


def test_a_teacher_lists_only_their_courses_sessions_students_and_marks(
    teacher: TestClient, school: School
) -> None:
    maths = school["sessions"]["MATHS"]
    assert [s["id"] for s in teacher.get("/sessions", params={"date": school["day"]}).json()] == [maths["id"]]
    assert [s["id"] for s in teacher.get("/sessions/current").json()] == [maths["id"]]
    assert [c["code"] for c in teacher.get("/courses").json()] == ["MATHS"]
    students = teacher.get("/students").json()
    assert ([s["name"] for s in students["items"]], students["total"]) == (["Ada Lovelace"], 1)
    assert teacher.get("/students", params={"query": "bob"}).json()["items"] == []
    marks = teacher.get("/attendance", params={"date": school["day"]}).json()
    assert [m["student_name"] for m in marks] == ["Ada Lovelace"]
    roll = teacher.get(f"/sessions/{maths['id']}/attendance").json()
    assert [(s["student_name"], s["status"]) for s in roll["students"]] == [("Ada Lovelace", "present")]
    csv_rows = teacher.get("/attendance.csv", params={"date": school["day"]}).text.strip().splitlines()
    assert len(csv_rows) == 2 and "Ada Lovelace" in csv_rows[1]
    assert len(teacher.get(f"/students/{school['ada']['id']}/attendance").json()) == 1


def test_a_teacher_gets_403_for_another_courses_session_and_students(
    teacher: TestClient, school: School
) -> None:
    art, bob = school["sessions"]["ART"], school["bob"]
    for path in [
        f"/sessions/{art['id']}",
        f"/sessions/{art['id']}/attendance",
        f"/sessions/{art['id']}/attendance.csv",
        f"/students/{bob['id']}",
        f"/students/{bob['id']}/attendance",
        f"/students/{school['carol']['id']}",
    ]:
        response = teacher.get(path)
        assert response.status_code == 403, (path, response.text)
    assert teacher.get(f"/sessions/{art['id']}").json() == {
        "detail": f"session {art['id']} is not a session of a course you teach"
    }


def test_a_teacher_does_not_see_default_sessions(
    teacher: TestClient, client: TestClient, school: School
) -> None:
    defaults = [s for s in client.get("/sessions", params={"date": school["day"]}).json() if s["is_default"]]
    assert defaults, "room-3's sighting made its default session"
    assert teacher.get(f"/sessions/{defaults[0]['id']}").status_code == 403
    assert all(not s["is_default"] for s in teacher.get("/sessions", params={"date": school["day"]}).json())


def test_a_teacher_edits_and_enrolls_only_their_students_and_creates_nothing(
    teacher: TestClient, school: School, engine: sa.Engine
) -> None:
    ada, bob = school["ada"], school["bob"]
    renamed = teacher.patch(f"/students/{ada['id']}", json={"name": "Ada King"})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Ada King"
    assert teacher.patch(f"/students/{bob['id']}", json={"name": "X"}).status_code == 403
    assert upload(teacher, bob["id"], ("a.jpg", face("eric_clapton", 2))).status_code == 403
    enrolled = upload(teacher, ada["id"], ("a.jpg", face("eric_clapton", 2)))
    assert enrolled.status_code == 201, enrolled.text
    for method, path, body in [
        ("POST", "/students", {"student_number": "S9", "name": "X"}),
        ("DELETE", f"/students/{ada['id']}", None),
        ("POST", "/courses", {"code": "X", "name": "X"}),
        ("PUT", f"/courses/{school['courses']['MATHS']['id']}/students", {"student_ids": []}),
    ]:
        assert teacher.request(method, path, json=body).status_code == 403, (method, path)


def test_course_teachers_are_set_by_an_admin(client: TestClient, sign_in: SignIn, school: School) -> None:
    art = school["courses"]["ART"]
    turing = sign_in("teacher", "turing")
    turing_id = turing.get("/auth/me").json()["id"]
    assert turing.get("/courses").json() == []
    response = client.put(f"/courses/{art['id']}/teachers", json={"user_ids": [turing_id]})
    assert response.status_code == 200
    assert response.json()["teacher_ids"] == [turing_id]
    assert [c["code"] for c in turing.get("/courses").json()] == ["ART"]
    assert turing.get(f"/sessions/{school['sessions']['ART']['id']}").status_code == 200
    admin_id = client.get("/auth/me").json()["id"]
    refused = client.put(f"/courses/{art['id']}/teachers", json={"user_ids": [admin_id, 999]})
    assert refused.status_code == 422
    assert refused.json()["detail"] == f"not a teacher: {admin_id}, 999"
    assert client.put("/courses/999/teachers", json={"user_ids": []}).status_code == 404
