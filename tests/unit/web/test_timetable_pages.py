"""Timetable pages: what they send the API, what they show to whom."""

import json
from typing import Any

import httpx

from tests.unit.web.fakes import FakeApi, form_token, make_app, signed_in_client

COURSE = {"id": 7, "code": "BIO1", "name": "Biology", "student_ids": [1], "teacher_ids": []}
TERM = {"id": 3, "name": "Autumn", "first_day": "2026-09-01", "last_day": "2026-12-18"}
SLOT = {"id": 5, "course_id": 7, "term_id": 3, "camera_id": "lab-1", "weekday": 2, "starts_time": "08:00",
        "ends_time": "09:30"}  # fmt: skip
STUDENTS = {"items": [{"id": 1, "student_number": "S1", "name": "Ada"}, {"id": 2, "student_number": "S2",
            "name": "Bob"}], "total": 2, "page": 1, "page_size": 500}  # fmt: skip


class TimetableApi(FakeApi):
    def __init__(self) -> None:
        super().__init__(
            {
                ("GET", "/courses"): lambda r, user: httpx.Response(200, json=[COURSE]),
                ("GET", "/terms"): lambda r, user: httpx.Response(200, json=[TERM]),
                ("GET", "/holidays"): lambda r, user: httpx.Response(200, json=[]),
                ("GET", "/cameras"): lambda r, user: httpx.Response(200, json=[]),
                ("GET", "/students"): lambda r, user: httpx.Response(200, json=STUDENTS),
                ("GET", "/courses/7/slots"): lambda r, user: httpx.Response(200, json=[SLOT]),
                ("POST", "/courses/7/slots"): self.add_slot,
                ("PUT", "/courses/7/students"): lambda r, user: httpx.Response(
                    200, json={**COURSE, "student_ids": json.loads(r.content)["student_ids"]}
                ),
            }
        )

    def add_slot(self, request: httpx.Request, user: dict[str, Any]) -> httpx.Response:
        if json.loads(request.content)["starts_time"] == "09:00":
            return httpx.Response(409, json={"detail": "camera lab-1 is taken on Wednesdays 08:00-09:30"})
        return httpx.Response(201, json={**SLOT, "id": 6})


def test_a_course_page_shows_its_slots_with_day_names_and_the_forms_only_to_admins() -> None:
    api = TimetableApi()
    admin_page = signed_in_client(make_app(api), "admin").get("/timetable/courses/7").get_data(as_text=True)
    assert "Wednesday" in admin_page and "Autumn" in admin_page
    assert "new-slot" in admin_page and 'name="student_ids" value="2"' in admin_page
    viewer_page = signed_in_client(make_app(api), "viewer").get("/timetable/courses/7").get_data(as_text=True)
    assert "Wednesday" in viewer_page and "Ada" in viewer_page
    assert "new-slot" not in viewer_page and "Bob" not in viewer_page  # the roster only, no form


def test_a_slot_is_sent_as_the_api_wants_and_a_clash_comes_back_as_its_sentence() -> None:
    api = TimetableApi()
    client = signed_in_client(make_app(api), "admin")
    token = form_token(client, "/timetable/courses/7")
    form = {"csrf_token": token, "term_id": "3", "weekday": "2", "starts_time": "10:00", "ends_time": "11:00",
            "camera_id": "lab-1"}  # fmt: skip
    assert client.post("/timetable/courses/7/slots", data=form).status_code == 303
    assert json.loads(api.calls("POST", "/courses/7/slots")[0].content) == {
        "term_id": 3, "camera_id": "lab-1", "weekday": 2, "starts_time": "10:00", "ends_time": "11:00",
    }  # fmt: skip
    client.post("/timetable/courses/7/slots", data={**form, "starts_time": "09:00"})
    page = client.get("/timetable/courses/7").get_data(as_text=True)
    assert "Slot not added: camera lab-1 is taken on Wednesdays 08:00-09:30" in page
    client.post("/timetable/courses/7/slots", data={**form, "camera_id": ""})
    assert len(api.calls("POST", "/courses/7/slots")) == 2  # an empty field never reaches the API


def test_a_teacher_may_not_change_the_timetable() -> None:
    api = TimetableApi()
    client = signed_in_client(make_app(api), "teacher")
    token = form_token(client, "/timetable")
    for path in (
        "/timetable/courses",
        "/timetable/courses/7/slots",
        "/timetable/courses/7/roster",
        "/timetable/terms",
    ):
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    assert api.calls("POST", "/courses/7/slots") == [] and api.calls("PUT", "/courses/7/students") == []


def test_a_courses_grace_is_sent_as_minutes_or_null() -> None:
    api = TimetableApi()
    sent: list[Any] = []

    def grace(request: httpx.Request, user: dict[str, Any]) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={**COURSE, "late_after_min": sent[-1]["minutes"]})

    api.routes[("PUT", "/courses/7/late-after")] = grace
    client = signed_in_client(make_app(api), "admin")
    token = form_token(client, "/timetable/courses/7")
    client.post("/timetable/courses/7/late-after", data={"csrf_token": token, "minutes": "10"})
    client.post("/timetable/courses/7/late-after", data={"csrf_token": token, "minutes": ""})
    client.post("/timetable/courses/7/late-after", data={"csrf_token": token, "minutes": "ten"})
    assert sent == [{"minutes": 10}, {"minutes": None}]
    assert "a whole number of minutes" in client.get("/timetable/courses/7").get_data(as_text=True)
