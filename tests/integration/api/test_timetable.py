"""The timetable through the API on MariaDB: terms, holidays and weekly slots, the sessions
they make at once (and the recorder makes ahead), and every bad input."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.common.timetable import slot_span
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient, SignIn

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Europe/Paris")


@pytest.fixture
def api(make_client: MakeClient) -> TestClient:
    return make_client(BROKER_DOWN_URL, timezone="Europe/Paris", timetable_days_ahead=14)


def today() -> date:
    return datetime.now(UTC).astimezone(TZ).date()


def add_term(
    api: TestClient, name: str = "Autumn", first: date | None = None, last: date | None = None
) -> Any:
    body = {
        "name": name,
        "first_day": (first or today() - timedelta(days=7)).isoformat(),
        "last_day": (last or today() + timedelta(days=60)).isoformat(),
    }
    response = api.post("/terms", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def add_course(api: TestClient, code: str = "BIO1") -> Any:
    response = api.post("/courses", json={"code": code, "name": f"Biology {code}"})
    assert response.status_code == 201, response.text
    return response.json()


def slot_body(
    term_id: int, day: date, starts: str = "08:00", ends: str = "09:30", camera: str = "lab-1"
) -> Any:
    return {
        "term_id": term_id,
        "camera_id": camera,
        "weekday": day.weekday(),
        "starts_time": starts,
        "ends_time": ends,
    }


def sessions_on(api: TestClient, day: date) -> list[Any]:
    return [s for s in api.get("/sessions", params={"date": day.isoformat()}).json() if not s["is_default"]]


def test_a_weekly_slot_makes_its_sessions_at_once_in_local_time(api: TestClient) -> None:
    term, course = add_term(api), add_course(api)
    tomorrow = today() + timedelta(days=1)

    response = api.post(f"/courses/{course['id']}/slots", json=slot_body(term["id"], tomorrow))

    assert response.status_code == 201, response.text
    slot = response.json()
    assert slot == {
        "id": slot["id"],
        "course_id": course["id"],
        "term_id": term["id"],
        "camera_id": "lab-1",
        "weekday": tomorrow.weekday(),
        "starts_time": "08:00",
        "ends_time": "09:30",
    }
    assert api.get(f"/courses/{course['id']}/slots").json() == [slot]
    start, end = slot_span(tomorrow, time(8), time(9, 30), TZ)
    [session] = sessions_on(api, tomorrow)
    assert (session["name"], session["course_id"], session["camera_id"]) == (
        "Biology BIO1",
        course["id"],
        "lab-1",
    )
    assert datetime.fromisoformat(session["starts_at"]) == start
    assert datetime.fromisoformat(session["ends_at"]) == end
    assert len(sessions_on(api, tomorrow + timedelta(days=7))) == 1  # the next weeks too
    assert sessions_on(api, tomorrow + timedelta(days=1)) == []


def test_a_holiday_removes_its_days_sessions_and_removing_it_brings_them_back(api: TestClient) -> None:
    term, course = add_term(api), add_course(api)
    tomorrow = today() + timedelta(days=1)
    api.post(f"/courses/{course['id']}/slots", json=slot_body(term["id"], tomorrow)).raise_for_status()

    response = api.post(
        "/holidays",
        json={"name": "Strike", "first_day": tomorrow.isoformat(), "last_day": tomorrow.isoformat()},
    )

    assert response.status_code == 201, response.text
    holiday = response.json()
    assert api.get("/holidays").json() == [holiday]
    assert sessions_on(api, tomorrow) == []
    assert len(sessions_on(api, tomorrow + timedelta(days=7))) == 1
    assert api.delete(f"/holidays/{holiday['id']}").status_code == 204
    assert len(sessions_on(api, tomorrow)) == 1
    assert api.delete(f"/holidays/{holiday['id']}").status_code == 404


def test_removing_a_slot_removes_its_sessions_to_come_and_keeps_those_with_attendance(
    api: TestClient,
) -> None:
    term, course = add_term(api), add_course(api)
    tomorrow = today() + timedelta(days=1)
    slot = api.post(f"/courses/{course['id']}/slots", json=slot_body(term["id"], tomorrow)).json()
    [kept] = sessions_on(api, tomorrow)
    student = api.post("/students", json={"student_number": "S1", "name": "Ada"}).json()
    api.put(f"/courses/{course['id']}/students", json={"student_ids": [student["id"]]}).raise_for_status()
    # An excuse given ahead: a mark in a session still to come.
    excused = api.put(
        f"/sessions/{kept['id']}/attendance/{student['id']}", json={"status": "excused", "reason": "trip"}
    )
    assert excused.status_code == 200, excused.text

    assert api.delete(f"/courses/{course['id']}/slots/{slot['id']}").status_code == 204

    assert [s["id"] for s in sessions_on(api, tomorrow)] == [kept["id"]]
    assert sessions_on(api, tomorrow + timedelta(days=7)) == []
    assert api.get(f"/courses/{course['id']}/slots").json() == []
    assert api.delete(f"/courses/{course['id']}/slots/{slot['id']}").status_code == 404


def test_two_slots_cannot_hold_one_camera_at_once(api: TestClient) -> None:
    term, biology, chemistry = add_term(api), add_course(api, "BIO1"), add_course(api, "CHEM1")
    tomorrow = today() + timedelta(days=1)
    api.post(f"/courses/{biology['id']}/slots", json=slot_body(term["id"], tomorrow)).raise_for_status()

    clash = api.post(
        f"/courses/{chemistry['id']}/slots", json=slot_body(term["id"], tomorrow, "09:00", "10:00")
    )

    assert clash.status_code == 409
    assert clash.json()["detail"].startswith("camera lab-1 is taken on ")
    after = api.post(
        f"/courses/{chemistry['id']}/slots", json=slot_body(term["id"], tomorrow, "09:30", "10:30")
    )
    assert after.status_code == 201, after.text  # back to back is fine
    elsewhere = slot_body(term["id"], tomorrow, "09:00", "10:00", camera="lab-2")
    assert api.post(f"/courses/{chemistry['id']}/slots", json=elsewhere).status_code == 201


def test_a_one_off_session_and_a_slot_session_never_overlap_on_a_camera(api: TestClient) -> None:
    term, course = add_term(api), add_course(api)
    tomorrow = today() + timedelta(days=1)
    start, end = slot_span(tomorrow, time(8), time(9), TZ)
    one_off = {
        "name": "Exam",
        "camera_id": "lab-1",
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
    }
    exam = api.post("/sessions", json=one_off)
    assert exam.status_code == 201, exam.text

    # The slot's day with the exam is skipped; the next week's session is made.
    api.post(
        f"/courses/{course['id']}/slots", json=slot_body(term["id"], tomorrow, "08:30", "10:00")
    ).raise_for_status()
    assert [s["name"] for s in sessions_on(api, tomorrow)] == ["Exam"]
    [next_week] = sessions_on(api, tomorrow + timedelta(days=7))

    clash = api.post(
        "/sessions", json={**one_off, "starts_at": next_week["starts_at"], "ends_at": next_week["ends_at"]}
    )
    assert clash.status_code == 409
    assert clash.json()["detail"].startswith(
        f"camera lab-1 already has session {next_week['id']} (Biology BIO1)"
    )
    assert api.post("/sessions", json={**one_off, "camera_id": "lab-2"}).status_code == 201


def test_the_recorders_tick_makes_the_sessions_of_a_slot_nobody_made(
    api: TestClient, engine: sa.Engine
) -> None:
    term, course = add_term(api), add_course(api)
    with engine.begin() as connection:  # a slot as an older version, or a restore, left it: no sessions
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('lab-9', 'Lab 9')"))
        connection.execute(
            sa.text(
                "INSERT INTO timetable_slots (course_id, term_id, camera_id, weekday, starts_time, ends_time) "
                "VALUES (:course, :term, 'lab-9', :weekday, '10:00', '11:00')"
            ),
            {"course": course["id"], "term": term["id"], "weekday": today().weekday()},
        )
    store = AttendanceStore(engine, TZ, MarkPolicy())

    assert (
        store.make_timetable_sessions(datetime.now(UTC), 14) == 3
    )  # today, in a week and in two (the window's last day)
    assert store.make_timetable_sessions(datetime.now(UTC), 14) == 0
    assert [s["camera_id"] for s in sessions_on(api, today())] == ["lab-9"]


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"starts_time": "8am"}, 422, "starts_time: a time of day is written HH:MM"),
        ({"starts_time": 28800}, 422, "starts_time: a time of day is written HH:MM"),
        (
            {"starts_time": "10:00", "ends_time": "09:00"},
            422,
            "ends_time (09:00) must be after starts_time (10:00)",
        ),
        ({"weekday": 7}, 422, "weekday: Input should be less than or equal to 6"),
        ({"term_id": 999}, 422, "term 999 does not exist"),
        ({"camera_id": "lab 1"}, 422, "camera_id: String should match pattern"),
        ({"room": "x"}, 422, "room: Extra inputs are not permitted"),
    ],
)
def test_a_bad_slot_is_refused_and_makes_nothing(
    api: TestClient, change: dict[str, object], status: int, detail: str
) -> None:
    term, course = add_term(api), add_course(api)
    response = api.post(f"/courses/{course['id']}/slots", json={**slot_body(term["id"], today()), **change})
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(detail), response.json()["detail"]
    assert api.get(f"/courses/{course['id']}/slots").json() == []


def test_a_slot_of_an_unknown_course_is_not_found(api: TestClient) -> None:
    term = add_term(api)
    response = api.post("/courses/999/slots", json=slot_body(term["id"], today()))
    assert response.status_code == 404
    assert response.json()["detail"] == "course 999 does not exist"
    assert api.get("/courses/999/slots").status_code == 404


@pytest.mark.parametrize("route", ["/terms", "/holidays"])
def test_a_day_span_ending_before_it_starts_is_refused(api: TestClient, route: str) -> None:
    response = api.post(route, json={"name": "Odd", "first_day": "2024-09-02", "last_day": "2024-09-01"})
    assert response.status_code == 422
    assert response.json()["detail"] == "last_day (2024-09-01) is before first_day (2024-09-02)"
    bad_day = api.post(route, json={"name": "Odd", "first_day": "2 Sept", "last_day": "2024-09-01"})
    assert bad_day.status_code == 422
    too_long = api.post(route, json={"name": "Odd", "first_day": "2026-09-01", "last_day": "2062-07-01"})
    assert too_long.status_code == 422
    assert too_long.json()["detail"].startswith("2026-09-01 to 2062-07-01 is 13088 days; ")
    a_year = api.post(route, json={"name": "Year", "first_day": "2028-01-01", "last_day": "2028-12-31"})
    assert a_year.status_code == 201  # a leap year's 366 days


def test_a_terms_name_is_unique(api: TestClient) -> None:
    add_term(api, "Autumn")
    response = api.post(
        "/terms", json={"name": "Autumn", "first_day": "2024-09-02", "last_day": "2024-12-20"}
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "a term named 'Autumn' exists already"


def test_only_admins_change_the_timetable_and_a_teacher_reads_their_own_courses(
    api: TestClient, sign_in: SignIn
) -> None:
    term, mine, theirs = add_term(api), add_course(api, "BIO1"), add_course(api, "CHEM1")
    api.post(f"/courses/{mine['id']}/slots", json=slot_body(term["id"], today())).raise_for_status()
    teacher = sign_in("teacher", courses=(mine["id"],))
    viewer = sign_in("viewer")

    assert len(teacher.get(f"/courses/{mine['id']}/slots").json()) == 1
    assert teacher.get(f"/courses/{theirs['id']}/slots").status_code == 404
    assert len(viewer.get(f"/courses/{mine['id']}/slots").json()) == 1
    assert viewer.get("/terms").json() == [term]
    for client in (teacher, viewer):
        assert (
            client.post(f"/courses/{mine['id']}/slots", json=slot_body(term["id"], today())).status_code
            == 403
        )
        assert (
            client.post(
                "/terms", json={"name": "X", "first_day": "2024-09-02", "last_day": "2024-09-03"}
            ).status_code
            == 403
        )
        assert (
            client.post(
                "/holidays", json={"name": "X", "first_day": "2024-09-02", "last_day": "2024-09-03"}
            ).status_code
            == 403
        )


def test_a_courses_grace_is_set_shown_and_reset_and_bad_values_are_refused(
    api: TestClient, sign_in: SignIn
) -> None:
    course = add_course(api)
    assert course["late_after_min"] is None
    response = api.put(f"/courses/{course['id']}/late-after", json={"minutes": 10})
    assert response.status_code == 200, response.text
    assert response.json()["late_after_min"] == 10
    assert [c["late_after_min"] for c in api.get("/courses").json()] == [10]
    assert (
        api.put(f"/courses/{course['id']}/late-after", json={"minutes": None}).json()["late_after_min"]
        is None
    )
    for bad in ({"minutes": -1}, {"minutes": 601}, {"minutes": "10"}, {}):
        assert api.put(f"/courses/{course['id']}/late-after", json=bad).status_code == 422, bad
    assert api.put("/courses/999/late-after", json={"minutes": 5}).status_code == 404
    teacher = sign_in("teacher", courses=(course["id"],))
    assert teacher.put(f"/courses/{course['id']}/late-after", json={"minutes": 5}).status_code == 403
