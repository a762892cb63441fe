"""The live page of a session: its roster's statuses and counts follow the recorder's marks, and
the camera preview a real recognizer draws appears, for those allowed to see the session only."""

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.db import create_engine
from services.common.messages import AttendanceMarked, FrameCaptured
from services.common.settings import DatabaseSettings
from tests.browser.conftest import PASSWORD, Stack, log_in
from tests.browser.helpers import screenshot
from tests.support.amqp import TestBroker
from tests.support.broker_users import service_user

pytestmark = pytest.mark.browser


def counts(page: Page) -> dict[str, str]:
    return {
        status: page.locator(f".{status}-count").inner_text()
        for status in ("present", "late", "absent", "excused", "not_seen", "expected")
    }


def record_mark(
    stack: Stack,
    broker: TestBroker,
    session: dict[str, Any],
    student: dict[str, Any],
    status: str,
    **extra: Any,
) -> None:
    """What the recorder does for a first sighting: commit the mark, then announce it."""
    now = datetime.now(UTC).replace(microsecond=0)
    event_id = uuid.uuid4()
    engine = create_engine(DatabaseSettings(database_url=stack.database_url))
    try:
        with engine.begin() as connection:
            attendance_id = connection.execute(
                sa.text(
                    "INSERT INTO attendance (session_id, student_id, status, first_seen_at, last_seen_at, "
                    "best_distance, mark_distance, sightings, mark_event_id, marked_at, confidence) "
                    "VALUES (:session, :student, :status, :now, :now, 0.4, 0.4, 1, :event, :now, :confidence)"
                ),
                {
                    "session": session["id"],
                    "student": student["id"],
                    "status": status,
                    "now": now.replace(tzinfo=None),
                    "event": str(event_id),
                    "confidence": extra.get("confidence"),
                },
            ).lastrowid
    finally:
        engine.dispose()
    mark = AttendanceMarked(
        attendance_id=attendance_id,
        session_id=session["id"],
        session_name=session["name"],
        camera_id=session["camera_id"],
        student_id=student["id"],
        student_number=student["student_number"],
        student_name=student["name"],
        status=status,  # type: ignore[arg-type]
        first_seen_at=now,
        distance=0.4,
        event_id=event_id,
        marked_at=now,
        **extra,
    )
    broker.publish(topology.ATTENDANCE_EXCHANGE, topology.attendance_key(session["camera_id"]), mark)


def test_the_roster_and_its_counts_follow_the_marks(
    admin_page: Page, page_errors: list[str], stack: Stack, broker: TestBroker
) -> None:
    page = admin_page
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    ada, alan, grace = (stack.add_student(name) for name in ("Ada Byron", "Alan Mathison", "Grace Brewster"))
    course = stack.add_course("Logic", [ada["id"], alan["id"], grace["id"]])
    session = stack.add_session("Logic, week 1", camera, course_id=course["id"])
    page.goto(f"{stack.web_url}/sessions/{session['id']}/live")
    expect(page.locator("body")).to_have_attribute("data-live", "live")
    assert counts(page) == {
        "present": "0", "late": "0", "absent": "0", "excused": "0", "not_seen": "3", "expected": "3"
    }  # fmt: skip

    row = {s["id"]: page.locator(f'.student[data-student-id="{s["id"]}"]') for s in (ada, alan, grace)}
    record_mark(stack, broker, session, ada, "present", confidence="check")
    expect(row[ada["id"]]).to_have_class(re.compile(r"\bpresent\b.*\bcheck\b"))
    expect(row[ada["id"]].locator(".flag")).to_be_visible()  # thin evidence: a person should look
    expect(page.locator(".present-count")).to_have_text("1")
    expect(page.locator(".not_seen-count")).to_have_text("2")

    record_mark(stack, broker, session, alan, "late", confidence="confident")
    expect(row[alan["id"]]).to_have_class(re.compile(r"\blate\b"))
    expect(row[alan["id"]]).to_contain_text("late")
    expect(row[alan["id"]].locator(".flag")).to_be_hidden()
    expect(page.locator(".late-count")).to_have_text("1")
    expect(page.locator(".not_seen-count")).to_have_text("1")
    expect(row[grace["id"]]).to_contain_text("not yet seen")
    screenshot(page, "live-roster-counts")

    # The page's first render says the same as its live updates did.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "live")
    assert counts(page) == {
        "present": "1", "late": "1", "absent": "0", "excused": "0", "not_seen": "1", "expected": "3"
    }  # fmt: skip
    expect(row[ada["id"]].locator(".flag")).to_be_visible()
    assert page_errors == []


@pytest.fixture
def recognizer(stack: Stack) -> Iterator[ServiceProcess]:
    """A real recognizer on the stack's database and vhost, as the recognizer broker user."""
    with service_user(stack.amqp_url, "recognizer") as url:
        worker = ServiceProcess(
            "services.recognizer",
            {"DATABASE_URL": stack.database_url, "AMQP_URL": url, "RECOGNIZER_PREVIEW_FPS": "2"},
            "browser-recognizer",
        )
        try:
            wait_until(lambda: "consuming recognizer.frames" in worker.log(), 120, "the recognizer bound")
            yield worker
        finally:
            worker.stop()


def teacher_page(browser: Browser, stack: Stack, course_ids: list[int]) -> Page:
    teacher = stack.add_user("teacher")
    for course_id in course_ids:
        stack.api.put(f"/courses/{course_id}/teachers", json={"user_ids": [teacher["id"]]}).raise_for_status()
    page = browser.new_context().new_page()
    log_in(page, stack.web_url, teacher["username"], PASSWORD)
    return page


def test_the_camera_preview_appears_when_frames_flow_and_only_for_the_sessions_teachers(
    admin_page: Page, browser: Browser, stack: Stack, faces_dir: Path, recognizer: ServiceProcess
) -> None:
    page = admin_page
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    photos = sorted((faces_dir / "people" / "kit_harington").glob("*.jpg"))
    student = stack.add_student("Kit Harington")
    stack.api.post(
        f"/students/{student['id']}/photos",
        files=[("photos", (photos[0].name, photos[0].read_bytes(), "image/jpeg"))],
    ).raise_for_status()
    course = stack.add_course("Drama", [student["id"]])
    session = stack.add_session("Drama, week 1", camera, course_id=course["id"])
    page.goto(f"{stack.web_url}/sessions/{session['id']}/live")
    expect(page.locator("body")).to_have_attribute("data-live", "live")
    preview = page.locator(".preview")
    expect(preview).to_have_attribute("data-state", "waiting")
    expect(preview.locator(".preview-state")).to_contain_text("No picture")

    image = cv2.imread(str(photos[1]))
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    with service_user(stack.amqp_url, "capture") as capture_url:
        capture = TestBroker(capture_url)  # frames as capture sends them, with capture's rights
        try:
            started = time.monotonic()
            seq = 0
            while time.monotonic() - started < 20:
                meta = FrameCaptured(
                    camera_id=camera, seq=seq, captured_at=datetime.now(UTC),
                    width=image.shape[1], height=image.shape[0],
                )  # fmt: skip
                capture.publish_raw(
                    topology.FRAMES_EXCHANGE, topology.frame_key(camera), jpeg,
                    headers=meta.to_headers(), content_type="image/jpeg",
                )  # fmt: skip
                seq += 1
                capture.connection.sleep(0.25)
                if preview.get_attribute("data-state") == "showing" and seq >= 8:
                    break
        finally:
            capture.close()
    expect(preview).to_have_attribute("data-state", "showing")
    img = preview.locator("img")
    expect(img).to_be_visible()
    width = img.evaluate("img => img.naturalWidth")
    assert width == min(480, image.shape[1]), width
    screenshot(page, "live-camera-preview")

    url = f"{stack.web_url}/sessions/{session['id']}/preview.jpg"
    shown = page.request.get(url)
    assert shown.status == 200 and shown.headers["content-type"] == "image/jpeg"
    assert "no-store" in shown.headers["cache-control"]
    assert shown.body()[:2] == b"\xff\xd8"

    # The session's own teacher sees it; a teacher of another course gets 403 and no picture.
    other_course = stack.add_course("Chemistry", [])
    theirs, not_theirs = (
        teacher_page(browser, stack, [course["id"]]),
        teacher_page(browser, stack, [other_course["id"]]),
    )
    try:
        assert theirs.request.get(url).status == 200
        refused = not_theirs.request.get(url)
        assert refused.status == 403 and refused.body()[:2] != b"\xff\xd8"
        not_theirs.goto(f"{stack.web_url}/sessions/{session['id']}/live")
        expect(not_theirs.locator(".preview img")).to_have_count(0)
    finally:
        theirs.context.close()
        not_theirs.context.close()
    assert "ACCESS_REFUSED" not in recognizer.log()
