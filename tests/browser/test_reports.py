"""The reports in Chromium, against the real API and MariaDB: a course over a term (its table
per session, the students below the threshold, its server-drawn chart), chosen from the
picker reached through the navigation; its CSV downloaded through the dashboard with a
formula-looking name made safe; a teacher of another course refused with the API's reason.

A term is inserted with SQL (as the API's report tests do); sessions are one-off ones in the
past days; statuses are set by a person through PUT /sessions/{id}/attendance/{student}."""

import csv
import io
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.browser.conftest import TIMEZONE, Stack, log_in
from tests.browser.helpers import screenshot
from tests.support.record_rows import add_term

pytestmark = pytest.mark.browser

FORMULA = '=HYPERLINK("http://evil.test","click")'
# Per student, their status in each of the three sessions (oldest first).
STATUSES = {
    "Ada Report": ["present", "present", "late"],  # 3/3
    "Alan Report": ["present", "absent", "excused"],  # 1/2: excused is left out
    "Grace Report": ["absent", "absent", "present"],  # 1/3
    FORMULA: ["present", "present", "present"],  # 3/3
}
# Each session's rate, of the roster: 3/4, 2/4, 3/3 (the excused is left out).
SESSION_RATES = ["75.0%", "50.0%", "100.0%"]


def _school(stack: Stack) -> dict[str, Any]:
    """A course of four over a term around today, three sessions held on the past three days."""
    students = {name: stack.add_student(name) for name in STATUSES}
    course = stack.add_course(f"Logic & <Proof> {uuid.uuid4().hex[:4]}", [s["id"] for s in students.values()])
    tz = ZoneInfo(TIMEZONE)
    today = datetime.now(tz).date()
    engine = sa.create_engine(stack.database_url)
    try:
        term_name = f"Term {uuid.uuid4().hex[:6]}"
        term_id = add_term(engine, term_name, today - timedelta(days=30), today + timedelta(days=30))
    finally:
        engine.dispose()
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    sessions = []
    for back in (3, 2, 1):
        starts = datetime.combine(today - timedelta(days=back), datetime.min.time(), tz).replace(hour=9)
        body = {"name": f"Logic, day -{back}", "camera_id": camera, "course_id": course["id"],
                "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat()}  # fmt: skip
        response = stack.api.post("/sessions", json=body)
        response.raise_for_status()
        sessions.append(response.json())
    for name, statuses in STATUSES.items():
        for session, status in zip(sessions, statuses, strict=True):
            stack.api.put(
                f"/sessions/{session['id']}/attendance/{students[name]['id']}",
                json={"status": status, "reason": "set for the report test"},
            ).raise_for_status()
    return {"students": students, "course": course, "term": {"id": term_id, "name": term_name},
            "sessions": sessions}  # fmt: skip


def _cells(page: Page, table: str, column: str) -> list[str]:
    return [text.strip() for text in page.locator(f"table.{table} tbody td.{column}").all_inner_texts()]


def test_a_course_report_with_its_chart_and_its_safe_csv(admin_page: Page, stack: Stack) -> None:
    page = admin_page
    school = _school(stack)
    course, term = school["course"], school["term"]

    page.click("nav >> text=Reports")
    page.select_option("#course_id", str(course["id"]))
    page.select_option("#term_id", str(term["id"]))
    page.click("form.report-picker button[type=submit]")
    expect(page).to_have_url(f"{stack.web_url}/reports/courses/{course['id']}/terms/{term['id']}")
    expect(page.locator("h1")).to_contain_text(course["name"])  # "<Proof>" shown as text

    # The table per session: one row each, oldest first, with the roster's rate.
    expect(page.locator("table.per-session tbody tr")).to_have_count(3)
    assert _cells(page, "per-session", "rate") == SESSION_RATES
    assert _cells(page, "per-session", "absent") == ["1", "2", "0"]
    assert _cells(page, "per-session", "excused") == ["0", "0", "1"]
    expect(page.locator(".overall-rate")).to_have_text("72.7%")  # 8 of 11 counted
    # Below the default threshold (80%): lowest first.
    below = page.locator("table.below-threshold tbody tr")
    expect(below).to_have_count(2)
    expect(below.nth(0)).to_contain_text("Grace Report")
    expect(below.nth(1)).to_contain_text("Alan Report")
    assert _cells(page, "below-threshold", "rate") == ["33.3%", "50.0%"]

    # The chart: an image the browser decoded, an SVG with a bar per session.
    chart = page.locator("figure.chart img")
    expect(chart).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart.element_handle())
    src = chart.get_attribute("src")
    assert src
    answer = page.request.get(f"{stack.web_url}{src}")
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    svg = answer.text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert all(f'id="session-bar-{index}"' in svg for index in range(3))
    assert "&lt;Proof&gt;" in svg and "<Proof>" not in svg
    screenshot(page, "course-report")

    # A lower threshold from the form: only Grace is below 40%.
    page.fill("#threshold", "40")
    page.click("form.report-picker button[type=submit]")
    expect(page.locator(".threshold")).to_have_text("40%")
    expect(page.locator("table.below-threshold tbody tr")).to_have_count(1)
    expect(page.locator("table.below-threshold")).to_contain_text("Grace Report")

    # The CSV through the dashboard: an attachment, the formula-looking name made text.
    with page.expect_download() as downloaded:
        page.click("text=Download CSV")
    download = downloaded.value
    assert download.suggested_filename == f"report-course-{course['id']}-term-{term['id']}.csv"
    path = download.path()
    assert path is not None
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    header = rows[0]
    names = [row[header.index("student_name")] for row in rows[1:-1]]
    assert "'" + FORMULA in names and FORMULA not in names
    response = page.request.get(f"{stack.web_url}/reports/courses/{course['id']}/terms/{term['id']}.csv")
    assert response.headers["content-disposition"].startswith("attachment;")


def test_a_teacher_of_another_course_is_told_why_not(admin_page: Page, stack: Stack) -> None:
    school = _school(stack)
    course, term = school["course"], school["term"]
    other = stack.add_user("teacher")
    browser = admin_page.context.browser
    assert browser is not None
    context = browser.new_context()
    try:
        page = context.new_page()
        log_in(page, stack.web_url, other["username"])
        answer = page.goto(f"{stack.web_url}/reports/courses/{course['id']}/terms/{term['id']}")
        assert answer is not None and answer.status == 403
        expect(page.locator(".report-error")).to_contain_text("not a course you teach")
        # Their own picker offers no course of others.
        expect(page.locator(f"#course_id option[value='{course['id']}']")).to_have_count(0)
        chart = page.request.get(
            f"{stack.web_url}/reports/courses/{course['id']}/terms/{term['id']}/chart.svg"
        )
        assert chart.status == 403
    finally:
        context.close()


def test_a_sessions_roll_and_a_students_report_from_their_pages(admin_page: Page, stack: Stack) -> None:
    page = admin_page
    school = _school(stack)
    last = school["sessions"][-1]
    ada = school["students"]["Ada Report"]

    # The session page links to its report: the roll with each status and who set it.
    page.goto(f"{stack.web_url}/sessions/{last['id']}")
    page.click("a.report-link")
    expect(page).to_have_url(f"{stack.web_url}/reports/sessions/{last['id']}")
    roll = page.locator("table.roll tbody tr")
    expect(roll).to_have_count(4)
    expect(page.locator(f"table.roll tr[data-student-id='{ada['id']}'] td.status")).to_contain_text("late")
    expect(page.locator("table.roll")).to_contain_text("set for the report test")
    with page.expect_download() as downloaded:
        page.click("text=Download CSV")
    path = downloaded.value.path()
    assert path is not None
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert {row["student_name"]: row["status"] for row in rows} == {
        "Ada Report": "late", "Alan Report": "excused", "Grace Report": "present", "'" + FORMULA: "present"
    }  # fmt: skip

    # The student page links to their report over the last 30 days: three sessions, late once.
    page.goto(f"{stack.web_url}/students/{ada['id']}")
    page.click("a.report-link")
    expect(page.locator("table.student-sessions tbody tr")).to_have_count(3)
    expect(page.locator(".overall-rate")).to_have_text("100.0%")
    expect(page.locator(".lateness")).to_contain_text("late 1 time(s)")
