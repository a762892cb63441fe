"""A person's change of a status through the API, on the real MariaDB: each bad input gets its
status and a sentence and writes nothing; a correction keeps its history, reaches the CSV
export as a row of its own and the audit log; roles as docs/auth-contract.md says."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.common.messages import FaceBox, FaceRecognized
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.integration.api.conftest import SignIn, engine_of
from tests.integration.api.helpers import new_student

pytestmark = pytest.mark.integration

School = dict[str, Any]


@pytest.fixture
def school(client: TestClient, engine: sa.Engine) -> School:
    """Maths, running now on room-1: Ada (seen by the camera) and Bob on its roster; Carol on no
    roster; a Maths session of tomorrow."""
    now = datetime.now(UTC)
    ada, bob = new_student(client, "S001", "Ada Lovelace"), new_student(client, "S002", "Bob Ross")
    carol = new_student(client, "S003", "Carol Shaw")
    course = client.post("/courses", json={"code": "MATHS", "name": "Maths"}).json()
    client.put(f"/courses/{course['id']}/students", json={"student_ids": [ada["id"], bob["id"]]})
    sessions = {}
    for name, start in (("now", now - timedelta(minutes=20)), ("tomorrow", now + timedelta(days=1))):
        body = {
            "name": f"Maths {name}",
            "camera_id": "room-1",
            "course_id": course["id"],
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        }
        response = client.post("/sessions", json=body)
        assert response.status_code == 201, response.text
        sessions[name] = response.json()
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    sighting = FaceRecognized(
        camera_id="room-1",
        frame_seq=1,
        captured_at=now - timedelta(minutes=5),
        box=FaceBox(top=1, right=90, bottom=90, left=1),
        worker="test",
        student_id=ada["id"],
        student_number=ada["student_number"],
        student_name=ada["name"],
        distance=0.41,
    )
    [mark] = store.record([sighting]).marks
    return {"ada": ada, "bob": bob, "carol": carol, "course": course, "sessions": sessions, "mark": mark}


def put(client: TestClient, session_id: int, student_id: int, body: object) -> Any:
    return client.put(f"/sessions/{session_id}/attendance/{student_id}", json=body)


def counts(client: TestClient) -> tuple[int, int]:
    with engine_of(client).connect() as connection:
        return (
            connection.execute(sa.text("SELECT COUNT(*) FROM attendance")).scalar_one(),
            connection.execute(sa.text("SELECT COUNT(*) FROM attendance_changes")).scalar_one(),
        )


def test_each_bad_input_gets_its_status_and_changes_nothing(client: TestClient, school: School) -> None:
    session, ada = school["sessions"]["now"]["id"], school["ada"]["id"]
    cases = [
        (put(client, 999_999, ada, {"status": "absent", "reason": "x"}), 404, "session 999999 does not exist"),
        (put(client, session, 999_999, {"status": "absent", "reason": "x"}), 404, "student 999999 does not exist"),
        (put(client, session, ada, {"status": "gone", "reason": "x"}), 422, "status"),
        (put(client, session, ada, {"status": "absent"}), 422, "reason: Field required"),
        (put(client, session, ada, {"status": "absent", "reason": "   "}), 422, "reason"),
        (put(client, session, ada, {"status": "excused", "reason": ""}), 422, "reason"),
        (put(client, session, ada, {"status": "absent", "reason": "x" * 501}), 422, "reason"),
        (put(client, session, ada, {"status": "absent", "reason": "x", "by": "me"}), 422, "by"),
        (put(client, session, school["carol"]["id"], {"status": "excused", "reason": "x"}), 409, "not on the roster"),
        (put(client, school["sessions"]["tomorrow"]["id"], ada, {"status": "present", "reason": "x"}), 409, "not started"),
        (client.put(f"/sessions/{session}/attendance/{2**64}", json={"status": "absent", "reason": "x"}), 422, ""),
    ]  # fmt: skip
    for response, status, says in cases:
        assert response.status_code == status, response.text
        assert says in response.json()["detail"]
        if status == 422 and "by" not in says:
            assert response.json()["errors"]  # the documented shape: a sentence and each problem
    assert counts(client) == (1, 0)
    with engine_of(client).connect() as connection:
        assert (
            connection.execute(
                sa.text("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'attendance.%'")
            ).scalar()
            == 0
        )


def test_a_correction_keeps_its_history_and_reaches_the_csv_and_the_audit_log(
    client: TestClient, school: School
) -> None:
    session, ada, bob = school["sessions"]["now"]["id"], school["ada"]["id"], school["bob"]["id"]
    corrected = put(client, session, ada, {"status": "absent", "reason": "not her: her twin"})
    assert corrected.status_code == 200, corrected.text
    assert corrected.json() | {"change_id": None} == {
        "action": "changed",
        "attendance_id": school["mark"].attendance_id,
        "from_status": "present",
        "to_status": "absent",
        "change_id": None,
    }
    excused = put(client, session, bob, {"status": "excused", "reason": "doctor's note"}).json()
    assert (excused["action"], excused["from_status"], excused["change_id"]) == ("marked", None, None)
    again = put(client, session, bob, {"status": "excused", "reason": "twice"}).json()
    assert again["action"] == "unchanged"

    roll = client.get(f"/sessions/{session}/attendance").json()
    assert (roll["present"], roll["absent"], roll["excused"], roll["finalized"]) == (0, 1, 1, False)
    lines = {s["student_name"]: s for s in roll["students"]}
    assert (lines["Ada Lovelace"]["status"], lines["Ada Lovelace"]["source"]) == ("absent", "person")
    assert lines["Bob Ross"]["reason"] == "doctor's note"

    history = client.get(f"/sessions/{session}/attendance/history").json()
    assert [(h["kind"], h["student_id"], h["from_status"], h["to_status"], h["source"]) for h in history] == [
        ("mark", ada, None, "present", "recognition"),
        ("change", ada, "present", "absent", "person"),
        ("mark", bob, None, "excused", "person"),
    ]
    assert history[1]["corrects"] == history[0]["event_id"] == school["mark"].event_id
    assert history[1]["actor"] == history[2]["actor"] == "admin (user 1)"
    row = client.get(f"/sessions/{session}/attendance/{ada}").json()
    assert row["mark"]["status"] == "absent" and row["mark"]["set_by"] == "person"
    assert row["mark"]["reason"] == "not her: her twin"
    assert [h["kind"] for h in row["history"]] == ["mark", "change"]
    carol = client.get(f"/sessions/{session}/attendance/{school['carol']['id']}").json()
    assert carol == {"mark": None, "history": []}

    exported = client.get(f"/sessions/{session}/attendance.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["student_id"], r["status"], r["source"], r["reason"], r["corrects"]) for r in rows] == [
        (str(ada), "present", "recognition", "", ""),  # the mark as it was made
        (str(ada), "absent", "person", "not her: her twin", school["mark"].event_id),
        (str(bob), "excused", "person", "doctor's note", ""),
    ]
    day = school["sessions"]["now"]["starts_at"][:10]  # UTC, the test app's zone
    assert "not her: her twin" in client.get("/attendance.csv", params={"date": day}).text  # the day's too
    with engine_of(client).connect() as connection:
        audit = connection.execute(
            sa.text(
                "SELECT action, target_id, detail FROM audit_log WHERE action LIKE 'attendance.%' ORDER BY id"
            )
        ).all()
    assert [a.action for a in audit] == [
        "attendance.changed",
        "attendance.marked",
        "attendance.export",
        "attendance.export",
    ]
    assert "present -> absent: not her: her twin" in audit[0].detail


def test_roles_a_viewer_reads_a_teacher_corrects_only_their_courses(
    client: TestClient, school: School, sign_in: SignIn
) -> None:
    session, ada = school["sessions"]["now"]["id"], school["ada"]["id"]
    body = {"status": "excused", "reason": "ill"}
    viewer = sign_in("viewer")
    assert put(viewer, session, ada, body).status_code == 403
    assert viewer.get(f"/sessions/{session}/attendance/history").status_code == 200
    stranger = sign_in("teacher", "stranger")  # teaches nothing
    assert put(stranger, session, ada, body).status_code == 403
    assert stranger.get(f"/sessions/{session}/attendance/history").status_code == 403
    assert stranger.get(f"/sessions/{session}/attendance/{ada}").status_code == 403
    assert counts(client) == (1, 0)
    teacher = sign_in("teacher", f"t-{uuid.uuid4().hex[:4]}", courses=(school["course"]["id"],))
    done = put(teacher, session, ada, body)
    assert done.status_code == 200 and done.json()["to_status"] == "excused"
    [change] = [
        h for h in teacher.get(f"/sessions/{session}/attendance/history").json() if h["kind"] == "change"
    ]
    assert change["actor"].startswith("t-")


def test_the_routes_are_documented_with_every_status_they_give(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    put_doc = paths["/sessions/{session_id}/attendance/{student_id}"]["put"]["responses"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(put_doc)
    assert put_doc["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ValidationErrorOut")
    for path in (
        "/sessions/{session_id}/attendance/history",
        "/sessions/{session_id}/attendance/{student_id}",
    ):
        assert {"200", "401", "403", "404"} <= set(paths[path]["get"]["responses"])
