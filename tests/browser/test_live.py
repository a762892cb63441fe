"""The live page turns a student present when the recorder's event arrives, without a reload."""

import re
import time
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from services.common import topology
from services.common.db import create_engine
from services.common.messages import AttendanceMarked, FaceBox, FaceRecognized, FaceUnknown
from services.common.settings import DatabaseSettings
from tests.browser.conftest import TIMEZONE, Stack, log_in
from tests.browser.helpers import screenshot
from tests.support.amqp import TestBroker

pytestmark = pytest.mark.browser

BOX = FaceBox(top=10, right=110, bottom=110, left=10)


def marked(session: dict, student: dict, first_seen_at: datetime) -> AttendanceMarked:
    return AttendanceMarked(
        attendance_id=1,
        session_id=session["id"],
        session_name=session["name"],
        camera_id=session["camera_id"],
        student_id=student["id"],
        student_number=student["student_number"],
        student_name=student["name"],
        status="present",
        first_seen_at=first_seen_at,
        distance=0.41,
        event_id=uuid.uuid4(),
        marked_at=first_seen_at,
    )


def open_live(page: Page, url: str) -> None:
    page.goto(url)
    # "live": the event stream is open and the dashboard's queue is bound on the broker.
    expect(page.locator("body")).to_have_attribute("data-live", "live")
    page.evaluate("window.__sameDocument = 'yes'")


def test_student_turns_present_live_without_reload(
    admin_page: Page, page_errors: list[str], stack: Stack, broker: TestBroker
) -> None:
    page = admin_page
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    ada = stack.add_student("Ada Lovelace")
    alan = stack.add_student("Alan Turing")
    session = stack.add_session("Analytical Engines", camera)

    open_live(page, f"{stack.web_url}/")
    panel = page.locator(f'.session-panel[data-session-id="{session["id"]}"]')
    row = panel.locator(f'.student[data-student-id="{ada["id"]}"]')
    expect(row).to_have_class(re.compile(r"\bnot_seen\b"))
    expect(row).to_contain_text("not yet seen")
    expect(panel.locator(".present-count")).to_have_text("0")
    screenshot(page, "live-before")

    first_seen = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()
    broker.publish(
        topology.ATTENDANCE_EXCHANGE,
        topology.attendance_key(camera),
        marked(session, ada, first_seen),
    )
    expect(row).to_have_class(re.compile(r"\bpresent\b"), timeout=2000)
    elapsed = time.monotonic() - started

    local = first_seen.astimezone(ZoneInfo(TIMEZONE)).strftime("%H:%M")
    expect(row).to_contain_text(f"present {local}")
    expect(panel.locator(".present-count")).to_have_text("1")
    expect(panel.locator(f'.student[data-student-id="{alan["id"]}"]')).to_contain_text("not yet seen")
    assert page.evaluate("window.__sameDocument") == "yes", "the page was reloaded"
    assert elapsed < 2.0, f"took {elapsed:.2f}s"

    # Recognitions feed the recent list: a name, then "unknown", newest first.
    broker.publish(
        topology.RECOGNIZER_EXCHANGE,
        topology.recognized_key(camera),
        FaceRecognized(
            camera_id=camera,
            frame_seq=1,
            captured_at=first_seen,
            box=BOX,
            worker="test",
            student_id=ada["id"],
            student_number=ada["student_number"],
            student_name=ada["name"],
            distance=0.41,
        ),
    )
    broker.publish(
        topology.RECOGNIZER_EXCHANGE,
        topology.unknown_key(camera),
        FaceUnknown(camera_id=camera, frame_seq=2, captured_at=first_seen, box=BOX, worker="test"),
    )
    feed = panel.locator(".feed .feed-item")
    expect(feed).to_have_count(2)
    expect(feed.nth(0)).to_contain_text("unknown")
    expect(feed.nth(1)).to_contain_text("Ada Lovelace")
    expect(feed.nth(1)).to_contain_text(camera)
    assert page.evaluate("window.__sameDocument") == "yes"
    assert page_errors == []
    screenshot(page, "live-after")


def test_live_page_fits_a_phone(browser: Browser, stack: Stack) -> None:
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    stack.add_student("Grace Hopper")
    session = stack.add_session("Compilers", camera)
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    try:
        page = context.new_page()
        log_in(page, stack.web_url)
        open_live(page, f"{stack.web_url}/sessions/{session['id']}/live")
        expect(page.locator(".session-panel h1")).to_contain_text("Compilers")
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "live-phone")
    finally:
        context.close()


def test_after_losing_the_broker_the_page_catches_up_from_its_snapshot(
    admin_page: Page, stack: Stack
) -> None:
    page = admin_page
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    student = stack.add_student("Katherine Johnson")
    session = stack.add_session("Orbits", camera)
    open_live(page, f"{stack.web_url}/sessions/{session['id']}/live")
    row = page.locator(f'.student[data-student-id="{student["id"]}"]')
    expect(row).to_contain_text("not yet seen")

    stack.broker_proxy.cut()
    try:
        expect(page.locator("body")).to_have_attribute("data-live", "degraded", timeout=30_000)
        expect(page.locator("#live-status")).to_contain_text("RabbitMQ unreachable")
        # Marked while the dashboard is away from the broker: its event never reaches the page.
        mark_in_database(stack.database_url, session["id"], student["id"])
    finally:
        stack.broker_proxy.restore()
    expect(page.locator("body")).to_have_attribute("data-live", "live", timeout=60_000)
    expect(row).to_have_class(re.compile(r"\bpresent\b"), timeout=10_000)
    assert page.evaluate("window.__sameDocument") == "yes", "the page was reloaded"
    screenshot(page, "live-after-broker-restart")


def mark_in_database(database_url: str, session_id: int, student_id: int) -> None:
    """What the recorder commits before it publishes AttendanceMarked."""
    now = datetime.now(UTC).replace(tzinfo=None)
    engine = create_engine(DatabaseSettings(database_url=database_url))
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO attendance (session_id, student_id, status, first_seen_at, last_seen_at, "
                    "best_distance, mark_distance, sightings, mark_event_id, marked_at) "
                    "VALUES (:session, :student, 'present', :now, :now, 0.4, 0.4, 1, :event, :now)"
                ),
                {"session": session_id, "student": student_id, "now": now, "event": str(uuid.uuid4())},
            )
    finally:
        engine.dispose()
