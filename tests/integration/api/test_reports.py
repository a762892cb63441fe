"""The reports against the real MariaDB: a course over a term, a session's roll, a student over
a range; their CSVs (safe cells, audit-logged), roles, and every bad input."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient, SignIn, client_of, engine_of
from tests.integration.api.helpers import new_student
from tests.support.record_rows import add_term, change_row, put_row

pytestmark = pytest.mark.integration

TZ = "Europe/Paris"
DAYS = ["2024-09-02", "2024-09-09", "2024-09-16", "2024-09-23"]
# Ada, Alan, Charles, Grace (on the roster) in each of the four Maths sessions; "" is no row.
STATUSES = {
    "ada": ["present", "present", "late", "present"],
    "alan": ["excused", "present", "", "absent"],
    "charles": ["late", "absent", "present", "present"],
    "grace": ["absent", "absent", "absent", "present"],
}
NAMES = {"ada": "Ada Lovelace", "alan": "Alan Turing", "charles": "Charles Babbage", "grace": "Grace Hopper"}


def session_body(name: str, day: str, course_id: int | None, camera: str = "room-1") -> dict[str, Any]:
    return {
        "name": name,
        "camera_id": camera,
        "starts_at": f"{day}T08:00:00+02:00",
        "ends_at": f"{day}T10:00:00+02:00",
        "course_id": course_id,
    }


def at(day: str, clock: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}+02:00")


@pytest.fixture
def paris(make_client: MakeClient) -> TestClient:
    return make_client(BROKER_DOWN_URL, timezone=TZ)


@pytest.fixture
def school(paris: TestClient) -> dict[str, Any]:
    """A Maths course of four over a term of four weekly sessions (STATUSES), one more
    session tomorrow (not held yet, not counted), one after the term; a guest marked in the
    second session; Ada also seen in another room's default session."""
    engine = engine_of(paris)
    students = {key: new_student(paris, f"S{i:03d}", NAMES[key]) for i, key in enumerate(NAMES, 1)}
    guest = new_student(paris, "S900", "=Guest")  # a name a spreadsheet would run as a formula
    course = paris.post("/courses", json={"code": "M1", "name": "Maths"}).json()
    ids = [s["id"] for s in students.values()]
    paris.put(f"/courses/{course['id']}/students", json={"student_ids": ids}).raise_for_status()
    today = datetime.now(UTC).date()
    term = add_term(engine, "Autumn", date(2024, 9, 1), today + timedelta(days=30))
    sessions = [
        paris.post("/sessions", json=session_body(f"Maths {d}", d, course["id"])).json() for d in DAYS
    ]
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = paris.post("/sessions", json=session_body("Maths later", tomorrow, course["id"])).json()
    after = paris.post("/sessions", json=session_body("Maths after", "2099-01-05", course["id"])).json()
    rows = {}
    for key, statuses in STATUSES.items():
        for index, (session, day, status) in enumerate(zip(sessions, DAYS, statuses, strict=True)):
            if status in ("present", "late") and key == "ada":
                rows[key, index] = put_row(
                    engine,
                    session["id"],
                    students[key]["id"],
                    status,
                    seen_at=at(day, "08:10"),
                    confidence="check" if index == 0 else None,
                )
            elif status:
                rows[key, index] = put_row(engine, session["id"], students[key]["id"], status,
                                           reason=f"{status} by hand")  # fmt: skip
    put_row(engine, sessions[1]["id"], guest["id"], "present", seen_at=at(DAYS[1], "08:05"))
    # Charles's absence in the second session is a correction: a report says who set it and why.
    charles = rows["charles", 1]
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE attendance SET status = 'present' WHERE id = :id"), {"id": charles}
        )
    change_row(engine, charles, "absent", actor="Ms Teacher", reason="left before the register")
    other = paris.post("/sessions", json=session_body("Physics", DAYS[0], None, camera="room-2")).json()
    put_row(engine, other["id"], students["ada"]["id"], "present", seen_at=at(DAYS[0], "09:00"))
    return {"students": students, "guest": guest, "course": course, "term": term, "sessions": sessions,
            "later": later, "after": after, "other": other}  # fmt: skip


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def exports(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT action, target_type, target_id FROM audit_log WHERE action = 'report.export' ORDER BY id"
            )
        )
        return [(r.action, r.target_type, r.target_id) for r in rows]


def test_a_course_report_over_a_term(paris: TestClient, school: dict[str, Any]) -> None:
    course, term = school["course"]["id"], school["term"]
    report = paris.get(f"/reports/courses/{course}/terms/{term}").json()
    assert report["course"] == {"id": course, "code": "M1", "name": "Maths"}
    assert report["threshold_percent"] == 80
    # Held sessions of the term only: not tomorrow's, not the one after the term.
    assert [c["session"]["id"] for c in report["sessions"]] == [s["id"] for s in school["sessions"]]
    names = [row["student"]["name"] for row in report["students"]]
    assert names == ["Ada Lovelace", "Alan Turing", "Charles Babbage", "Grace Hopper", "=Guest"]
    by_name = {row["student"]["name"]: row for row in report["students"]}
    for key, statuses in STATUSES.items():
        assert by_name[NAMES[key]]["statuses"] == [s or "not_seen" for s in statuses]
    rates = {name: row["counts"]["rate"] for name, row in by_name.items()}
    # Excused and not yet decided are left out: Alan is 1 of 2, not 1 of 4.
    assert rates == pytest.approx(
        {
            "Ada Lovelace": 1.0,
            "Alan Turing": 0.5,
            "Charles Babbage": 0.75,
            "Grace Hopper": 0.25,
            "=Guest": 1.0,
        }
    )
    assert by_name["Alan Turing"]["counts"] == {
        "present": 1, "late": 0, "absent": 1, "excused": 1, "not_seen": 1, "counted": 2, "rate": 0.5
    }  # fmt: skip
    assert not by_name["=Guest"]["on_roster"]
    # Each session's rate is of the roster (the guest is not counted).
    assert [c["counts"]["rate"] for c in report["sessions"]] == pytest.approx([2 / 3, 2 / 4, 2 / 3, 3 / 4])
    assert (report["counts"]["present"] + report["counts"]["late"], report["counts"]["counted"]) == (9, 14)
    assert [row["student"]["name"] for row in report["below_threshold"]] == [
        "Grace Hopper", "Alan Turing", "Charles Babbage"
    ]  # fmt: skip
    lower = paris.get(f"/reports/courses/{course}/terms/{term}", params={"threshold": 60}).json()
    assert lower["threshold_percent"] == 60
    assert [row["student"]["name"] for row in lower["below_threshold"]] == ["Grace Hopper", "Alan Turing"]

    response = paris.get(f"/reports/courses/{course}/terms/{term}.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="report-course-{course}-term-{term}.csv"'
    )
    header, *rows = rows_of(response.text)
    assert header[:4] == ["student_id", "student_number", "student_name", "on_roster"]
    assert header[4] == "2024-09-02 08:00 Maths 2024-09-02"  # the school's time
    assert header[-7:] == [
        "present",
        "late",
        "absent",
        "excused",
        "not_seen",
        "rate_percent",
        "below_threshold",
    ]
    cells = {row[2]: row for row in rows}
    assert cells["Alan Turing"][4:8] == ["excused", "present", "not_seen", "absent"]
    assert cells["Alan Turing"][-2:] == ["50.0", "yes"]
    assert cells["'=Guest"][3] == "no"  # the formula is neutralised
    assert "=Guest" not in cells
    assert cells["rate per session"][4:8] == ["66.7", "50.0", "66.7", "75.0"]
    assert exports(engine_of(paris)) == [("report.export", "course", str(course))]


def test_a_session_report_is_the_roll_with_who_set_each_status(
    paris: TestClient, school: dict[str, Any]
) -> None:
    first, second = school["sessions"][0]["id"], school["sessions"][1]["id"]
    report = paris.get(f"/reports/sessions/{first}").json()
    assert (report["state"], report["finalized"]) == ("ended", False)
    assert report["course"]["code"] == "M1"
    assert report["counts"] == {
        "present": 1, "late": 1, "absent": 1, "excused": 1, "not_seen": 0, "counted": 3, "rate": pytest.approx(2 / 3)
    }  # fmt: skip
    lines = {line["student"]["name"]: line for line in report["students"]}
    assert list(lines) == ["Ada Lovelace", "Alan Turing", "Charles Babbage", "Grace Hopper"]
    ada, alan = lines["Ada Lovelace"], lines["Alan Turing"]
    assert (ada["status"], ada["source"], ada["confidence"]) == ("present", "recognition", "check")
    assert ada["first_seen_at"] == "2024-09-02T06:10:00+00:00"
    assert (alan["status"], alan["source"], alan["reason"], alan["first_seen_at"]) == (
        "excused", "person", "excused by hand", None
    )  # fmt: skip

    roll = paris.get(f"/reports/sessions/{second}").json()
    lines = {line["student"]["name"]: line for line in roll["students"]}
    assert list(lines)[-1] == "=Guest" and not lines["=Guest"]["on_roster"]
    # The correction shows who set the status now, and why.
    charles = lines["Charles Babbage"]
    assert (charles["status"], charles["source"], charles["reason"]) == (
        "absent",
        "person",
        "left before the register",
    )
    assert roll["counts"]["counted"] == 4  # the guest is not on the roster

    later = paris.get(f"/reports/sessions/{school['later']['id']}").json()
    assert later["state"] == "scheduled"
    assert {line["status"] for line in later["students"]} == {"not_seen"}
    # A session without a course has no roster: its counts are of whoever was marked.
    other = paris.get(f"/reports/sessions/{school['other']['id']}").json()
    assert (other["course"], other["counts"]["present"], other["counts"]["rate"]) == (None, 1, 1.0)

    response = paris.get(f"/reports/sessions/{second}.csv")
    assert response.headers["content-disposition"] == f'attachment; filename="report-session-{second}.csv"'
    header, *rows = rows_of(response.text)
    assert header[:3] == ["session_id", "session_name", "course_code"]
    by_name = {row[header.index("student_name")]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_name) == {"Ada Lovelace", "Alan Turing", "Charles Babbage", "Grace Hopper", "'=Guest"}
    assert by_name["Ada Lovelace"]["first_seen_at"] == "2024-09-09T08:10:00+02:00"
    assert (by_name["Charles Babbage"]["status"], by_name["Charles Babbage"]["reason"]) == (
        "absent", "left before the register"
    )  # fmt: skip
    assert exports(engine_of(paris)) == [("report.export", "session", str(second))]


def test_a_student_report_over_a_range_of_days(paris: TestClient, school: dict[str, Any]) -> None:
    ada, charles = school["students"]["ada"]["id"], school["students"]["charles"]["id"]
    report = paris.get(
        f"/reports/students/{charles}", params={"start": "2024-09-01", "end": "2024-09-30"}
    ).json()
    assert (report["start"], report["end"]) == ("2024-09-01", "2024-09-30")
    assert [line["status"] for line in report["sessions"]] == ["late", "absent", "present", "present"]
    assert (report["counts"]["late"], report["counts"]["absent"], report["counts"]["rate"]) == (1, 1, 0.75)
    assert [entry["course"]["code"] for entry in report["courses"]] == ["M1"]

    # Ada was also seen in a session without a course; only the range's days count.
    ada_report = paris.get(
        f"/reports/students/{ada}", params={"start": "2024-09-02", "end": "2024-09-09"}
    ).json()
    assert [line["session"]["name"] for line in ada_report["sessions"]] == [
        "Maths 2024-09-02", "Physics", "Maths 2024-09-09"
    ]  # fmt: skip
    assert [entry["course"] and entry["course"]["code"] for entry in ada_report["courses"]] == ["M1", None]
    # Without a range: the last 30 days, which hold no session of this school yet.
    recent = paris.get(f"/reports/students/{ada}").json()
    assert date.fromisoformat(recent["end"]) - date.fromisoformat(recent["start"]) == timedelta(days=29)
    assert recent["sessions"] == [] and recent["counts"]["rate"] is None

    response = paris.get(
        f"/reports/students/{charles}.csv", params={"start": "2024-09-01", "end": "2024-09-30"}
    )
    assert response.headers["content-disposition"] == (
        f'attachment; filename="report-student-{charles}-2024-09-01-2024-09-30.csv"'
    )
    header, *rows = rows_of(response.text)
    assert [row[header.index("status")] for row in rows] == ["late", "absent", "present", "present"]
    assert rows[0][header.index("starts_at")] == "2024-09-02T08:00:00+02:00"
    assert exports(engine_of(paris)) == [("report.export", "student", str(charles))]


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/reports/sessions/999", {}, 404, "session 999 does not exist"),
        ("/reports/sessions/999.csv", {}, 404, "session 999 does not exist"),
        ("/reports/students/999", {}, 404, "student 999 does not exist"),
        ("/reports/students/999.csv", {}, 404, "student 999 does not exist"),
        ("/reports/courses/999/terms/{term}", {}, 404, "course 999 does not exist"),
        ("/reports/courses/{course}/terms/999", {}, 404, "term 999 does not exist"),
        ("/reports/courses/{course}/terms/999.csv", {}, 404, "term 999 does not exist"),
        ("/reports/students/{ada}", {"start": "2024-09-10", "end": "2024-09-09"}, 422,
         "end (2024-09-09) is before start (2024-09-10)"),
        ("/reports/students/{ada}.csv", {"start": "2024-01-01", "end": "2025-01-01"}, 422,
         "a report covers at most 366 days; choose a shorter range"),
        ("/reports/students/{ada}", {"start": "2024-02-30"}, 422, None),
        ("/reports/students/{ada}", {"end": "yesterday"}, 422, None),
        ("/reports/courses/{course}/terms/{term}", {"threshold": "101"}, 422, None),
        ("/reports/courses/{course}/terms/{term}", {"threshold": "nan"}, 422, None),
        ("/reports/courses/{course}/terms/{term}.csv", {"threshold": "-1"}, 422, None),
        ("/reports/sessions/first", {}, 422, None),
    ],
)  # fmt: skip
def test_bad_input_is_refused_with_a_sentence(
    paris: TestClient,
    school: dict[str, Any],
    path: str,
    params: dict[str, str],
    status: int,
    detail: str | None,
) -> None:
    ids = {"term": school["term"], "course": school["course"]["id"], "ada": school["students"]["ada"]["id"]}
    response = paris.get(path.format(**ids), params=params)
    assert response.status_code == status, response.text
    if detail:
        assert response.json()["detail"] == detail
    assert exports(engine_of(paris)) == []  # a refused export is not logged as one


def test_a_leap_year_fits_in_a_range(paris: TestClient, school: dict[str, Any]) -> None:
    ada = school["students"]["ada"]["id"]
    response = paris.get(f"/reports/students/{ada}", params={"start": "2024-01-01", "end": "2024-12-31"})
    assert response.status_code == 200
    assert len(response.json()["sessions"]) == 5


def test_teachers_see_only_their_courses_and_viewers_everything(
    paris: TestClient, sign_in: SignIn, school: dict[str, Any]
) -> None:
    engine = engine_of(paris)
    course, term = school["course"]["id"], school["term"]
    ada = school["students"]["ada"]["id"]
    first = school["sessions"][0]["id"]
    physics = paris.post("/courses", json={"code": "P1", "name": "Physics"}).json()
    maths_teacher = sign_in("teacher", "maths-teacher", courses=(course,))
    physics_teacher = sign_in("teacher", "physics-teacher", courses=(physics["id"],))
    viewer = sign_in("viewer", "the-viewer")
    allowed = [
        f"/reports/courses/{course}/terms/{term}",
        f"/reports/courses/{course}/terms/{term}.csv",
        f"/reports/sessions/{first}",
        f"/reports/sessions/{first}.csv",
        f"/reports/students/{ada}?start=2024-09-01&end=2024-09-30",
        f"/reports/students/{ada}.csv?start=2024-09-01&end=2024-09-30",
        "/terms",
    ]
    for who in (maths_teacher, viewer):
        for path in allowed:
            assert who.get(path).status_code == 200, path
    for path in allowed[:-1]:
        response = physics_teacher.get(path)
        assert response.status_code == 403, path
    assert physics_teacher.get(f"/reports/sessions/{school['other']['id']}").status_code == 403
    # A teacher's view of a student has only their courses' sessions (not the default one).
    mine = maths_teacher.get(f"/reports/students/{ada}", params={"start": "2024-09-01", "end": "2024-09-30"})
    assert [line["session"]["course_id"] for line in mine.json()["sessions"]] == [course] * 4
    everything = viewer.get(f"/reports/students/{ada}", params={"start": "2024-09-01", "end": "2024-09-30"})
    assert len(everything.json()["sessions"]) == 5
    assert len(exports(engine)) == 6  # three CSVs by each of the two allowed
    anonymous = client_of(paris.app, None)  # type: ignore[arg-type]
    assert anonymous.get(f"/reports/sessions/{first}").status_code == 401


def test_terms_are_listed_and_every_report_route_is_documented(
    paris: TestClient, school: dict[str, Any]
) -> None:
    assert paris.get("/terms").json() == [
        {"id": school["term"], "name": "Autumn", "first_day": "2024-09-01",
         "last_day": (datetime.now(UTC).date() + timedelta(days=30)).isoformat()}
    ]  # fmt: skip
    spec = paris.get("/openapi.json").json()
    paths = {path: item for path, item in spec["paths"].items() if path.startswith("/reports")}
    assert set(paths) == {
        "/reports/sessions/{session_id}", "/reports/sessions/{session_id}.csv",
        "/reports/students/{student_id}", "/reports/students/{student_id}.csv",
        "/reports/courses/{course_id}/terms/{term_id}", "/reports/courses/{course_id}/terms/{term_id}.csv",
    }  # fmt: skip
    for path, item in paths.items():
        responses = item["get"]["responses"]
        assert {"200", "401", "403", "503"} <= set(responses), path
        if "{" in path:
            assert {"404", "422"} <= set(responses), path
        if path.endswith(".csv"):
            assert "text/csv" in responses["200"]["content"], path
