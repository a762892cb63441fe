"""Accounts in the real dashboard against the real API: the admin made by create-admin signs in,
sees the live page and signs out; what a viewer and a teacher are shown; API tokens made on
the admin page work at the API once, until revoked."""

import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from services.common import topology
from tests.browser.conftest import ADMIN, PASSWORD, Stack, log_in
from tests.browser.helpers import screenshot
from tests.browser.test_live import marked, open_live
from tests.support.amqp import TestBroker

pytestmark = pytest.mark.browser


def new_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def test_admin_signs_in_sees_the_live_page_and_signs_out(
    page: Page, page_errors: list[str], stack: Stack
) -> None:
    stack.add_session("Signed-in lesson", f"cam-{uuid.uuid4().hex[:6]}")
    page.goto(f"{stack.web_url}/students?q=x")
    expect(page).to_have_url(re.compile(r"/login\?next=/students\?q%3Dx$"))
    page.fill("#username", ADMIN)
    page.fill("#password", "not the password")
    page.click("form button[type=submit]")
    expect(page.locator(".flash.error")).to_have_text("Wrong username or password.")
    page_errors.clear()  # Chrome logs that page's 401 status; from here on, nothing may fail

    page.fill("#password", PASSWORD)
    page.click("form button[type=submit]")
    expect(page).to_have_url(f"{stack.web_url}/students?q=x")  # back where they were going
    expect(page.locator(".signed-in-as")).to_contain_text("Ada Admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > 0

    open_live(page, f"{stack.web_url}/")
    expect(page.locator(".session-panel h1", has_text="Signed-in lesson")).to_be_visible()
    screenshot(page, "accounts-live-signed-in")

    page.click("button.logout")
    expect(page).to_have_url(f"{stack.web_url}/login")
    expect(page.locator(".flash.ok")).to_have_text("Signed out.")
    page.goto(f"{stack.web_url}/")
    expect(page).to_have_url(f"{stack.web_url}/login")
    assert page_errors == []


def test_a_viewer_sees_no_edit_forms(browser: Browser, admin_page: Page, stack: Stack) -> None:
    # The admin adds the viewer through the dashboard's Users page.
    username = f"viewer-{uuid.uuid4().hex[:6]}"
    admin_page.goto(f"{stack.web_url}/admin/users")
    admin_page.fill("#username", username)
    admin_page.fill("#display_name", "Vera Viewer")
    admin_page.select_option("#role", "viewer")
    admin_page.fill("#password", PASSWORD)
    admin_page.click("form.new-user button[type=submit]")
    expect(admin_page.locator(".flash.ok")).to_contain_text(f"Added {username} (viewer).")
    student = stack.add_student("Mary Somerville")

    page = new_page(browser)
    try:
        log_in(page, stack.web_url, username)
        for path in ("/students", f"/students/{student['id']}", "/sessions", "/"):
            page.goto(f"{stack.web_url}{path}")
            expect(page.locator(".signed-in-as")).to_contain_text("Vera Viewer")
            expect(page.locator("main form[method=post]")).to_have_count(0)
            expect(page.locator("a.danger")).to_have_count(0)
            expect(page.locator("nav a[href^='/admin']")).to_have_count(0)
        page.goto(f"{stack.web_url}/students/{student['id']}")
        expect(page.locator("h1")).to_have_text("Mary Somerville")  # reading works
        screenshot(page, "accounts-viewer-student")
        response = page.goto(f"{stack.web_url}/admin/users")
        assert response is not None and response.status == 403
        response = page.goto(f"{stack.web_url}/students/{student['id']}/delete")
        assert response is not None and response.status == 403
    finally:
        page.context.close()


def test_a_teacher_sees_only_their_courses_session_live(
    browser: Browser, stack: Stack, broker: TestBroker
) -> None:
    ada, other = stack.add_student("Ada Byron"), stack.add_student("Someone Else")
    mine = stack.add_course("Poetical Science", [ada["id"]])
    theirs = stack.add_course("Another Course", [other["id"]])
    my_camera, their_camera = f"cam-{uuid.uuid4().hex[:6]}", f"cam-{uuid.uuid4().hex[:6]}"
    my_session = stack.add_session("Poetical Science", my_camera, mine["id"])
    their_session = stack.add_session("Another Course", their_camera, theirs["id"])
    teacher = stack.add_user("teacher")
    stack.api.put(f"/courses/{mine['id']}/teachers", json={"user_ids": [teacher["id"]]}).raise_for_status()

    page = new_page(browser)
    try:
        log_in(page, stack.web_url, teacher["username"])
        open_live(page, f"{stack.web_url}/")
        expect(page.locator(f'.session-panel[data-session-id="{my_session["id"]}"]')).to_be_visible()
        expect(page.locator(f'.session-panel[data-session-id="{their_session["id"]}"]')).to_have_count(0)
        # Listen to the stream as this teacher, then mark one student in each session.
        page.evaluate(
            """() => { window.__seen = []; const source = new EventSource('/events');
            source.addEventListener('attendance', (e) => window.__seen.push(JSON.parse(e.data).session_id));
            return new Promise((ok) => source.addEventListener('broker', ok)); }"""
        )
        now = datetime.now(UTC).replace(microsecond=0)
        broker.publish(
            topology.ATTENDANCE_EXCHANGE,
            topology.attendance_key(their_camera),
            marked(their_session, other, now),
        )
        broker.publish(
            topology.ATTENDANCE_EXCHANGE, topology.attendance_key(my_camera), marked(my_session, ada, now)
        )
        row = page.locator(f'.student[data-student-id="{ada["id"]}"]')
        expect(row).to_have_class(re.compile(r"\bpresent\b"))
        page.wait_for_function(f"window.__seen.includes({my_session['id']})")
        assert page.evaluate("window.__seen") == [my_session["id"]]
        snapshot = page.evaluate(f"fetch('/sessions/{their_session['id']}/state.json').then((r) => r.status)")
        assert snapshot == 403
        screenshot(page, "accounts-teacher-live")
    finally:
        page.context.close()


def test_an_api_token_is_shown_once_and_works_until_revoked(admin_page: Page, stack: Stack) -> None:
    name = f"report-{uuid.uuid4().hex[:6]}"
    admin_page.goto(f"{stack.web_url}/admin/tokens")
    admin_page.fill("#name", name)
    admin_page.select_option("#role", "viewer")
    admin_page.click("form.new-token-form button[type=submit]")
    secret = admin_page.locator("#new-token").inner_text().strip()
    assert len(secret) >= 32
    screenshot(admin_page, "accounts-new-token")

    as_program = httpx.Client(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
    )
    try:
        assert as_program.get("/students").status_code == 200
        assert as_program.post("/students", json={"student_number": "X1", "name": "No"}).status_code == 403
        admin_page.goto(f"{stack.web_url}/admin/tokens")
        assert secret not in admin_page.content()  # shown that once only
        admin_page.locator("tr", has_text=name).locator("button", has_text="Revoke").click()
        expect(admin_page.locator(".flash.ok")).to_contain_text("revoked")
        assert as_program.get("/students").status_code == 401
    finally:
        as_program.close()
