"""The review page: an unknown face's item (made by a real recorder from a FaceUnknown with a
crop) is identified as a roster student, who turns present; another course's teacher is refused."""

import re
import uuid
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from harness.processes import ServiceProcess
from services.common import topology
from services.common.messages import FaceBox, FaceUnknown
from tests.browser.conftest import Stack, log_in
from tests.browser.test_live_page import recorder, sighting  # noqa: F401  (recorder: a real one)
from tests.support.amqp import TestBroker
from tests.support.broker_users import service_user

pytestmark = pytest.mark.browser


def _crop() -> bytes:
    ok, jpeg = cv2.imencode(".jpg", np.full((96, 96, 3), 128, dtype=np.uint8))
    assert ok
    return bytes(jpeg)


def test_an_unknown_face_is_identified_from_the_review_page(
    admin_page: Page,
    stack: Stack,
    recorder: ServiceProcess,  # noqa: F811
) -> None:
    page = admin_page
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    ada = stack.add_student("Ada Review")
    course = stack.add_course("Review", [ada["id"]])
    session = stack.add_session("Review, week 1", camera, course_id=course["id"])
    unknown = FaceUnknown(
        camera_id=camera,
        frame_seq=1,
        captured_at=datetime.now(UTC),
        box=FaceBox(top=10, right=110, bottom=110, left=10),
        worker="test",
        track_id=uuid.uuid4(),
        best_distance=0.58,
        crop=_crop(),
    )
    with service_user(stack.amqp_url, "recognizer") as url:
        broker = TestBroker(url)
        try:
            broker.publish(topology.RECOGNIZER_EXCHANGE, topology.unknown_key(camera), unknown)
        finally:
            broker.close()
    review_url = f"{stack.web_url}/sessions/{session['id']}/review"
    item = page.locator(".review-item.unknown")
    for _ in range(20):
        page.goto(review_url)
        if item.count():
            break
        page.wait_for_timeout(500)
    expect(item).to_have_count(1)
    expect(item.locator(".distance")).to_have_text("0.580")
    crop_src = item.locator(".crops img").first.get_attribute("src")
    assert crop_src
    answer = page.request.get(f"{stack.web_url}{crop_src}")
    assert answer.status == 200 and answer.headers["content-type"] == "image/jpeg"
    assert "no-store" in answer.headers["cache-control"]

    item.locator("select[name=student_id]").select_option(str(ada["id"]))
    item.locator("form.assign button").click()
    expect(page.locator(".flash.ok")).to_contain_text("Identified")
    expect(page.locator(".review-item")).to_have_count(0)

    page.goto(f"{stack.web_url}/sessions/{session['id']}")
    expect(page.locator(f"#student-{ada['id']}")).to_have_class(re.compile(r"\bpresent\b"))

    # Another course's teacher: 403 on the page and on the crop.
    other = stack.add_user("teacher")
    context = page.context.browser.new_context() if page.context.browser else None
    assert context is not None
    try:
        stranger = context.new_page()
        log_in(stranger, stack.web_url, other["username"])
        assert stranger.goto(review_url).status == 403  # type: ignore[union-attr]
        assert stranger.request.get(f"{stack.web_url}{crop_src}").status == 403
    finally:
        context.close()


def _publish(stack: Stack, routing_key: str, event: object) -> None:
    with service_user(stack.amqp_url, "recognizer") as url:
        broker = TestBroker(url)
        try:
            broker.publish(topology.RECOGNIZER_EXCHANGE, routing_key, event)  # type: ignore[arg-type]
        finally:
            broker.close()


def _open_item(page: Page, review_url: str, selector: str) -> None:
    for _ in range(20):
        page.goto(review_url)
        if page.locator(selector).count():
            return
        page.wait_for_timeout(500)


def test_not_this_person_undoes_a_thin_mark_and_dismiss_marks_nobody(
    admin_page: Page,
    stack: Stack,
    recorder: ServiceProcess,  # noqa: F811
) -> None:
    page = admin_page
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    ada = stack.add_student("Ada Thin")
    course = stack.add_course("Thin", [ada["id"]])
    session = stack.add_session("Thin, week 1", camera, course_id=course["id"])
    thin = sighting(ada, camera, "check").model_copy(update={"crop": _crop()})
    _publish(stack, topology.recognized_key(camera), thin)
    review_url = f"{stack.web_url}/sessions/{session['id']}/review"
    _open_item(page, review_url, ".review-item.check")
    item = page.locator(".review-item.check")
    expect(item).to_have_count(1)
    item.locator("form.undo button").click()
    expect(page.locator(".flash.ok")).to_contain_text("Undone")
    page.goto(f"{stack.web_url}/sessions/{session['id']}")
    expect(page.locator(f"#student-{ada['id']}")).to_have_class(re.compile(r"\babsent\b"))
    expect(page.locator("table.history")).to_contain_text("not this person")

    # An unknown face that is nobody's: dismissed, nobody marked.
    unknown = FaceUnknown(
        camera_id=camera,
        frame_seq=2,
        captured_at=datetime.now(UTC),
        box=FaceBox(top=10, right=110, bottom=110, left=10),
        worker="test",
        track_id=uuid.uuid4(),
        crop=_crop(),
    )
    _publish(stack, topology.unknown_key(camera), unknown)
    _open_item(page, review_url, ".review-item.unknown")
    page.locator(".review-item.unknown form.dismiss button").click()
    expect(page.locator(".flash.ok")).to_contain_text("Dismissed")
    expect(page.locator(".review-item")).to_have_count(0)
    page.goto(f"{review_url}?state=done")
    expect(page.locator(".review-item.dismissed")).to_have_count(1)
    expect(page.locator(".review-item.undone")).to_have_count(1)
