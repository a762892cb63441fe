"""The live page of a session: its roster's statuses and counts follow the recorder's marks, and
the camera preview a real recognizer draws appears, for those allowed to see the session only."""

import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import pytest
from playwright.sync_api import Browser, Page, expect

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.messages import FaceBox, FaceRecognized, FrameCaptured, TrackEvidence
from tests.browser.conftest import PASSWORD, TIMEZONE, Stack, log_in
from tests.browser.helpers import screenshot
from tests.support.amqp import TestBroker
from tests.support.broker_users import service_user
from tests.support.db_users import service_db_user

pytestmark = pytest.mark.browser


def counts(page: Page) -> dict[str, str]:
    return {
        status: page.locator(f".{status}-count").inner_text()
        for status in ("present", "late", "absent", "excused", "not_seen", "expected")
    }


@pytest.fixture
def recorder(stack: Stack, tmp_path: Path) -> Iterator[ServiceProcess]:
    """A real recorder on the stack's database and vhost, as the recorder's broker and MySQL users: it marks
    who the recognizers name, and announces marks and every change of a status (its tick).
    A first sighting later than 30 minutes after the start is late."""
    with (
        service_user(stack.amqp_url, "recorder") as url,
        service_db_user(stack.database_url, "recorder") as db,
    ):
        process = ServiceProcess(
            "services.recorder",
            {
                "DATABASE_URL": db,
                "AMQP_URL": url,
                "TIMEZONE": TIMEZONE,
                "RECORDER_CSV_PATH": str(tmp_path / "attendance.csv"),
                "RECORDER_TICK_S": "1",
                "RECORDER_LATE_AFTER_MIN": "30",
            },
            "browser-recorder",
        )
        try:
            wait_until(lambda: "consuming recorder.identity" in process.log(), 60, "the recorder")
            yield process
        finally:
            process.stop()


def sighting(student: dict[str, Any], camera: str, tier: str) -> FaceRecognized:
    """What a recognizer publishes when a track is named (its evidence on thin or firm looks)."""
    return FaceRecognized(
        camera_id=camera,
        frame_seq=1,
        captured_at=datetime.now(UTC),
        box=FaceBox(top=10, right=110, bottom=110, left=10),
        worker="test",
        track_id=uuid.uuid4(),
        student_id=student["id"],
        student_number=student["student_number"],
        student_name=student["name"],
        distance=0.42,
        margin=0.1,
        evidence=TrackEvidence(
            fresh=3, agreeing=3, best_distance=0.4, mean_distance=0.42, margin=0.1, tier=tier
        ),
    )


def test_the_roster_and_its_counts_follow_the_recorder(
    admin_page: Page, page_errors: list[str], stack: Stack, recorder: ServiceProcess
) -> None:
    page = admin_page
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    names = ("Ada Byron", "Alan Mathison", "Grace Brewster", "Edsger Wybe")
    ada, alan, grace, edsger = (stack.add_student(name) for name in names)
    course = stack.add_course("Logic", [s["id"] for s in (ada, alan, grace, edsger)])
    session = stack.add_session("Logic, week 1", camera, course_id=course["id"])  # began an hour ago
    page.goto(f"{stack.web_url}/sessions/{session['id']}/live")
    expect(page.locator("body")).to_have_attribute("data-live", "live")
    assert counts(page) == {
        "present": "0", "late": "0", "absent": "0", "excused": "0", "not_seen": "4", "expected": "4"
    }  # fmt: skip
    row = {
        s["id"]: page.locator(f'.student[data-student-id="{s["id"]}"]') for s in (ada, alan, grace, edsger)
    }

    # A recognizer names Ada on thin evidence: the recorder marks her late (an hour in) and says so.
    with service_user(stack.amqp_url, "recognizer") as recognizer_url:
        recognizer = TestBroker(recognizer_url)
        try:
            recognizer.publish(
                topology.RECOGNIZER_EXCHANGE, topology.recognized_key(camera), sighting(ada, camera, "check")
            )
        finally:
            recognizer.close()
    expect(row[ada["id"]]).to_have_class(re.compile(r"\blate\b.*\bcheck\b"), timeout=10_000)
    expect(row[ada["id"]].locator(".flag")).to_be_visible()  # thin evidence: a person should look
    expect(page.locator(".late-count")).to_have_text("1")
    expect(page.locator(".not_seen-count")).to_have_text("3")

    # A teacher's corrections and an excuse, through the API; the recorder's tick announces each.
    for student, status, reason in (
        (alan, "present", "seen at the door, the camera missed him"),
        (grace, "excused", "doctor's note"),
        (edsger, "absent", "left before the start"),
    ):
        stack.api.put(
            f"/sessions/{session['id']}/attendance/{student['id']}", json={"status": status, "reason": reason}
        ).raise_for_status()
        expect(row[student["id"]]).to_have_class(re.compile(rf"\b{status}\b"), timeout=10_000)
    expect(row[grace["id"]]).to_have_attribute("title", "doctor's note")
    assert counts(page) == {
        "present": "1", "late": "1", "absent": "1", "excused": "1", "not_seen": "0", "expected": "4"
    }  # fmt: skip
    screenshot(page, "live-roster-counts")

    # The page's first render says the same as its live updates did.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-live", "live")
    assert counts(page) == {
        "present": "1", "late": "1", "absent": "1", "excused": "1", "not_seen": "0", "expected": "4"
    }  # fmt: skip
    expect(row[ada["id"]].locator(".flag")).to_be_visible()
    assert page_errors == []


@pytest.fixture
def recognizer(stack: Stack) -> Iterator[ServiceProcess]:
    """A real recognizer on the stack's database and vhost, as the recognizer's broker and MySQL users."""
    with (
        service_user(stack.amqp_url, "recognizer") as url,
        service_db_user(stack.database_url, "recognizer") as db,
    ):
        worker = ServiceProcess(
            "services.recognizer",
            {"DATABASE_URL": db, "AMQP_URL": url, "RECOGNIZER_PREVIEW_FPS": "2"},
            "browser-recognizer",
        )
        try:
            wait_until(lambda: "consuming recognizer.frames" in worker.log(), 120, "the recognizer bound")
            yield worker
        finally:
            worker.stop()


def set_visibility(page: Page, state: str) -> None:
    """What the browser does when the tab is put in the background, or back."""
    page.evaluate(
        """state => {
            Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        state,
    )


def teacher_page(browser: Browser, stack: Stack, course_ids: list[int]) -> Page:
    teacher = stack.add_user("teacher")
    for course_id in course_ids:
        stack.api.put(f"/courses/{course_id}/teachers", json={"user_ids": [teacher["id"]]}).raise_for_status()
    page = browser.new_context().new_page()
    log_in(page, stack.web_url, teacher["username"], PASSWORD)
    return page


class Frames:
    """A camera's frames at 4 a second, as capture sends them (with capture's own broker user),
    from a thread of their own while the test looks at the page."""

    def __init__(self, amqp_url: str, camera: str, photo: Path) -> None:
        image = cv2.imread(str(photo))
        self.jpeg = cv2.imencode(".jpg", image)[1].tobytes()
        self.height, self.width = image.shape[:2]
        self.amqp_url, self.camera = amqp_url, camera
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Frames":
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        capture = TestBroker(self.amqp_url)
        try:
            seq = 0
            while not self.stop.is_set():
                meta = FrameCaptured(
                    camera_id=self.camera, seq=seq, captured_at=datetime.now(UTC),
                    width=self.width, height=self.height,
                )  # fmt: skip
                capture.publish_raw(
                    topology.FRAMES_EXCHANGE, topology.frame_key(self.camera), self.jpeg,
                    headers=meta.to_headers(), content_type="image/jpeg",
                )  # fmt: skip
                seq += 1
                capture.connection.sleep(0.25)
        finally:
            capture.close()


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

    with (
        service_user(stack.amqp_url, "capture") as capture_url,
        Frames(capture_url, camera, photos[1]) as frames,
    ):
        expect(preview).to_have_attribute("data-state", "showing", timeout=30_000)
        img = preview.locator("img")
        expect(img).to_be_visible()
        width = img.evaluate("img => img.naturalWidth")
        assert width == min(480, frames.width), width
        screenshot(page, "live-camera-preview")

        # A few times a second at most, and not at all while the page is hidden.
        asked: list[float] = []
        page.on("request", lambda r: asked.append(time.monotonic()) if "/preview.jpg" in r.url else None)
        page.wait_for_timeout(3000)
        assert 2 <= len(asked) <= 3 / 0.5 + 1, len(asked)
        set_visibility(page, "hidden")
        page.wait_for_timeout(600)  # a request already on its way may still go
        hidden_from = len(asked)
        page.wait_for_timeout(2000)
        assert len(asked) == hidden_from, "asked for pictures while hidden"
        set_visibility(page, "visible")
        page.wait_for_timeout(1500)  # (Playwright delivers its events while it waits, not in time.sleep)
        assert len(asked) > hidden_from, "did not ask again once visible"

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
