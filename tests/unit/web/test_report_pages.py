"""The report pages against a fake API: what they ask (with the person's own token), what they
show, the API's refusals as messages, the chart as an SVG image, the CSV passed on as a download."""

from typing import Any

import httpx

from tests.unit.web.fakes import SESSION, FakeApi, Route, make_app, ok, signed_in_client

COURSE = {"id": 7, "code": "M1", "name": "Maths <b>", "student_ids": [1, 2], "teacher_ids": [2]}
TERM = {"id": 3, "name": "Autumn", "first_day": "2026-09-01", "last_day": "2026-12-18"}


def counts(present: int, late: int, absent: int, excused: int = 0, not_seen: int = 0) -> dict[str, Any]:
    counted = present + late + absent
    return {"present": present, "late": late, "absent": absent, "excused": excused, "not_seen": not_seen,
            "counted": counted, "rate": (present + late) / counted if counted else None}  # fmt: skip


def row(student_id: int, name: str, c: dict[str, Any], below: bool) -> dict[str, Any]:
    return {"student": {"id": student_id, "student_number": f"S{student_id}", "name": name},
            "on_roster": True, "statuses": [], "counts": c, "below_threshold": below}  # fmt: skip


ADA, GRACE = row(1, "Ada", counts(2, 0, 0), False), row(2, "Grace <i>", counts(0, 1, 1), True)
REPORT = {
    "course": {"id": 7, "code": "M1", "name": "Maths <b>"},
    "term": TERM,
    "threshold_percent": 80.0,
    "counts": counts(2, 1, 1),
    "sessions": [
        {"session": {**SESSION, "id": 4, "name": "Maths 1"}, "state": "ended", "counts": counts(2, 0, 0)},
        {
            "session": {**SESSION, "id": 6, "name": "Maths 2", "starts_at": "2026-09-09T07:00:00+00:00"},
            "state": "ended",
            "counts": counts(0, 1, 1),
        },
    ],
    "students": [ADA, GRACE],
    "below_threshold": [GRACE],
}
REPORT_PATH = "/reports/courses/7/terms/3"


def report_api(route: Route | None = None) -> FakeApi:
    csv = httpx.Response(200, content=b"student_name\r\n'=HYPERLINK(1)\r\n",
                         headers={"content-disposition": 'attachment; filename="report-course-7-term-3.csv"'})  # fmt: skip
    return FakeApi(
        {
            ("GET", "/courses"): ok([COURSE]),
            ("GET", "/terms"): ok([TERM]),
            ("GET", REPORT_PATH): route or ok(REPORT),
            ("GET", f"{REPORT_PATH}.csv"): lambda r, user: csv,
        }
    )


def test_the_course_report_shows_sessions_the_students_below_and_the_chart() -> None:
    api = report_api()
    client = signed_in_client(make_app(api), "teacher")
    page = client.get(f"{REPORT_PATH}?threshold=75")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Maths &lt;b&gt;" in html and "<b>" not in html.split("<main>")[1].split("Maths &lt;b&gt;")[0]
    assert 'class="below-threshold"' in html and "Grace &lt;i&gt;" in html
    assert "66.7%" in html or "50.0%" in html
    assert f'src="{REPORT_PATH}/chart.svg?threshold=75"' in html
    assert f'href="{REPORT_PATH}.csv?threshold=75"' in html
    [asked] = api.calls("GET", REPORT_PATH)
    assert asked.url.params["threshold"] == "75.0"
    assert asked.headers["authorization"].startswith("Bearer token-teacher-")


def test_the_chart_is_an_svg_image_that_runs_nothing() -> None:
    client = signed_in_client(make_app(report_api()), "viewer")
    answer = client.get(f"{REPORT_PATH}/chart.svg")
    assert answer.status_code == 200
    assert answer.mimetype == "image/svg+xml"
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    svg = answer.get_data(as_text=True)
    assert svg.startswith("<?xml") and "session-bar-1" in svg
    assert "Maths &lt;b&gt;" in svg  # the course's name, escaped, in a comment


def test_the_apis_refusals_are_messages_on_the_page() -> None:
    for status, detail in ((403, "course 7 is not a course you teach"), (404, "no term 3"),
                           (422, "threshold: Input should be less than or equal to 100")):  # fmt: skip
        api = report_api(lambda r, user, s=status, d=detail: httpx.Response(s, json={"detail": d}))
        client = signed_in_client(make_app(api), "teacher")
        page = client.get(f"{REPORT_PATH}?threshold=150")
        assert page.status_code == status
        html = page.get_data(as_text=True)
        assert "report-error" in html and detail in html
        assert 'id="course_id"' in html  # the picker, to choose again


def test_a_threshold_that_is_not_a_number_is_not_sent() -> None:
    api = report_api()
    client = signed_in_client(make_app(api), "admin")
    page = client.get(f"{REPORT_PATH}?threshold=lots")
    assert page.status_code == 422 and "Not a percent" in page.get_data(as_text=True)
    assert api.calls("GET", REPORT_PATH) == []


def test_the_picker_goes_to_the_reports_own_url() -> None:
    client = signed_in_client(make_app(report_api()), "admin")
    index = client.get("/reports").get_data(as_text=True)
    assert '<option value="7">M1 Maths &lt;b&gt;</option>' in index and "Autumn (2026-09-01" in index
    answer = client.get("/reports/course?course_id=7&term_id=3&threshold=")
    assert answer.status_code == 302 and answer.headers["Location"] == REPORT_PATH
    assert client.get("/reports/course?course_id=&term_id=3").status_code == 422


def test_the_csv_is_the_apis_passed_on_as_a_download() -> None:
    client = signed_in_client(make_app(report_api()), "viewer")
    answer = client.get(f"{REPORT_PATH}.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="report-course-7-term-3.csv"'
    assert answer.data == b"student_name\r\n'=HYPERLINK(1)\r\n"


def test_anonymous_people_are_sent_to_sign_in_and_the_chart_answers_401() -> None:
    client = make_app(report_api()).test_client()
    assert client.get(REPORT_PATH).headers["Location"].startswith("/login")
    assert client.get(f"{REPORT_PATH}/chart.svg").status_code == 401
    assert client.get(f"{REPORT_PATH}.csv").status_code == 401


ROLL = {
    "session": SESSION,
    "course": {"id": 7, "code": "M1", "name": "Maths"},
    "state": "ended",
    "finalized": True,
    "counts": counts(0, 1, 1),
    "students": [
        {"student": {"id": 1, "student_number": "S1", "name": "Ada"}, "on_roster": True, "status": "late",
         "first_seen_at": "2026-03-02T07:12:30+00:00", "last_seen_at": "2026-03-02T07:40:00+00:00",
         "source": "recognition", "reason": "", "confidence": "check"},
        {"student": {"id": 2, "student_number": "S2", "name": "Grace"}, "on_roster": True, "status": "absent",
         "first_seen_at": None, "last_seen_at": None, "source": "system", "reason": "not seen", "confidence": None},
    ],
}  # fmt: skip
STUDENT_REPORT = {
    "student": {"id": 1, "student_number": "S1", "name": "Ada"},
    "start": "2026-02-01",
    "end": "2026-03-02",
    "counts": counts(0, 1, 0),
    "courses": [{"course": {"id": 7, "code": "M1", "name": "Maths"}, "counts": counts(0, 1, 0)}],
    "sessions": [{**{k: v for k, v in ROLL["students"][0].items() if k not in ("student", "on_roster")},
                  "session": SESSION, "course": {"id": 7, "code": "M1", "name": "Maths"}, "state": "ended"}],
}  # fmt: skip


def test_a_sessions_roll_says_who_was_late_by_how_much_and_who_set_what() -> None:
    api = FakeApi({("GET", "/reports/sessions/4"): ok(ROLL)})
    client = signed_in_client(make_app(api), "viewer")
    html = client.get("/reports/sessions/4").get_data(as_text=True)
    assert 'late <span class="why">(12 min)</span>' in html  # 08:12:30 local, the session began 08:00
    assert "08:12" in html and "the system" in html and "not seen" in html and ">check<" in html
    assert 'href="/reports/sessions/4.csv"' in html
    # The session page links to the report and its CSV.
    session_page = client.get("/sessions/4").get_data(as_text=True)
    assert 'href="/reports/sessions/4"' in session_page and 'href="/reports/sessions/4.csv"' in session_page


def test_a_students_report_over_days_and_the_apis_refusals() -> None:
    api = FakeApi(
        {
            ("GET", "/reports/students/1"): lambda r, user: (
                httpx.Response(200, json=STUDENT_REPORT)
                if r.url.params.get("start") != "2025-01-01"
                else httpx.Response(
                    422, json={"detail": "a report covers at most 366 days; choose a shorter range"}
                )
            ),
        }
    )
    client = signed_in_client(make_app(api), "teacher")
    html = client.get("/reports/students/1").get_data(as_text=True)
    assert 'value="2026-02-01"' in html and 'value="2026-03-02"' in html  # the API's default range
    assert "late 1 time(s), by 12 min on average" in html and "M1 Maths" in html
    refused = client.get("/reports/students/1?start=2025-01-01&end=2026-03-02")
    assert refused.status_code == 422 and "at most 366 days" in refused.get_data(as_text=True)
    malformed = client.get("/reports/students/1?start=March")
    assert malformed.status_code == 422 and "Not a day" in malformed.get_data(as_text=True)
    assert len(api.calls("GET", "/reports/students/1")) == 2  # the malformed day was not sent
    assert 'href="/reports/students/1"' in client.get("/students/1").get_data(as_text=True)


def test_the_chart_and_csvs_answer_a_wrong_input_with_422_and_why() -> None:
    refusing = report_api(lambda r, user: httpx.Response(422, json={"detail": "threshold: at most 100"}))
    refusing.routes[("GET", f"{REPORT_PATH}.csv")] = refusing.routes[("GET", REPORT_PATH)]
    client = signed_in_client(make_app(refusing), "admin")
    for url in (f"{REPORT_PATH}/chart.svg?threshold=150", f"{REPORT_PATH}.csv?threshold=150"):
        answer = client.get(url)
        assert (answer.status_code, answer.get_json()) == (422, {"detail": "threshold: at most 100"})
    asked = len(refusing.requests)
    for url in (f"{REPORT_PATH}/chart.svg?threshold=many", "/reports/students/1.csv?end=soon"):
        answer = client.get(url)
        assert answer.status_code == 422 and answer.get_json()["detail"].startswith("Not a")
    assert len(refusing.requests) == asked  # never sent on


def test_without_terms_the_picker_says_where_they_come_from() -> None:
    api = FakeApi({("GET", "/courses"): ok([COURSE]), ("GET", "/terms"): ok([])})
    html = signed_in_client(make_app(api), "viewer").get("/reports").get_data(as_text=True)
    assert "No terms yet" in html and 'href="/timetable/terms"' in html
