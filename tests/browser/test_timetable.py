"""The timetable in Chromium: an admin adds a term, a course and a weekly slot through the
dashboard's forms, and today's session is there at once; after a slot's session has ended, a
real recorder decides that the roster student nobody saw is absent (and the one a recognizer
named is present)."""

import re
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from harness.processes import ServiceProcess
from services.common import topology
from tests.browser.conftest import TIMEZONE, Stack
from tests.browser.test_live_page import recorder, sighting  # noqa: F401  (recorder: a real one)
from tests.support.amqp import TestBroker
from tests.support.broker_users import service_user

pytestmark = pytest.mark.browser

TZ = ZoneInfo(TIMEZONE)


def local_now() -> datetime:
    return datetime.now(UTC).astimezone(TZ)


def add_term_through_the_form(page: Page, stack: Stack) -> str:
    name = f"Term {uuid.uuid4().hex[:6]}"
    today = local_now().date()
    page.goto(f"{stack.web_url}/timetable/terms")
    page.fill("#term-name", name)
    page.fill("#term-first", (today - timedelta(days=7)).isoformat())
    page.fill("#term-last", (today + timedelta(days=90)).isoformat())
    page.click("form.new-term button[type=submit]")
    expect(page.locator(".flash.ok")).to_have_text(f"Term {name} added.")
    return name


def send_slot_form(page: Page, term: str, starts: time, ends: time, camera: str) -> None:
    page.select_option(
        "#slot-term", value=page.locator("#slot-term option", has_text=term).get_attribute("value")
    )
    page.select_option("#slot-weekday", value=str(local_now().weekday()))
    page.fill("#slot-starts", starts.strftime("%H:%M"))
    page.fill("#slot-ends", ends.strftime("%H:%M"))
    page.fill("#slot-camera", camera)
    page.click("form.new-slot button[type=submit]")


def add_slot_through_the_form(page: Page, term: str, starts: time, ends: time, camera: str) -> None:
    send_slot_form(page, term, starts, ends, camera)
    expect(page.locator(".flash.ok")).to_contain_text("Slot added")


def test_a_course_with_a_weekly_timetable_has_todays_session(admin_page: Page, stack: Stack) -> None:
    page = admin_page
    now = local_now()
    if now.time() >= time(23, 58):
        pytest.skip("a slot around now must fit in today (the school's day ends within 2 minutes)")
    ada = stack.add_student("Ada Timetable")
    term = add_term_through_the_form(page, stack)
    code, camera = f"TT{uuid.uuid4().hex[:5]}", f"tt-{uuid.uuid4().hex[:6]}"

    page.goto(f"{stack.web_url}/timetable")
    page.fill("#course-code", code)
    page.fill("#course-name", f"Biology {code}")
    page.click("form.new-course button[type=submit]")
    expect(page.locator("h1")).to_contain_text(code)
    page.locator(f"form.roster input[value='{ada['id']}']").check()
    page.click("form.roster button[type=submit]")
    expect(page.locator(".flash.ok")).to_have_text(f"{code} has 1 student(s).")
    starts = max(now - timedelta(hours=1), now.replace(hour=0, minute=0)).time()
    ends = min(now + timedelta(hours=1), now.replace(hour=23, minute=59)).time()
    add_slot_through_the_form(page, term, starts, ends, camera)
    expect(page.locator("table.slots tr.slot")).to_have_count(1)

    page.goto(f"{stack.web_url}/sessions?camera_id={camera}")
    row = page.locator("tbody tr", has_text=f"Biology {code}")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"{starts:%H:%M}")
    row.locator("a", has_text=f"Biology {code}").click()
    expect(page.locator(f"#student-{ada['id']}")).to_be_visible()  # the course's roster is expected

    # The same slot again on that camera is a clash, said beside the form.
    add_again = page.goto(f"{stack.web_url}/timetable")
    assert add_again is not None and add_again.ok
    page.locator(".course h2 a", has_text=code).click()
    send_slot_form(page, term, starts, ends, camera)
    expect(page.locator(".flash.error")).to_contain_text(f"Slot not added: camera {camera} is taken on")


def test_a_student_not_seen_is_absent_after_the_session_ends(
    admin_page: Page,
    stack: Stack,
    recorder: ServiceProcess,  # noqa: F811
) -> None:
    page = admin_page
    now = local_now()
    if now.time() < time(0, 15):
        pytest.skip("a slot that has already ended today needs the school's day to be 15 minutes old")
    ada, bob = stack.add_student("Ada Absent"), stack.add_student("Bob Present")
    course = stack.add_course("Ended lesson", [ada["id"], bob["id"]])
    term = add_term_through_the_form(page, stack)
    camera = f"tt-{uuid.uuid4().hex[:6]}"
    starts = max(now - timedelta(hours=2), now.replace(hour=0, minute=0, second=0, microsecond=0))
    ends = now - timedelta(minutes=1)
    page.goto(f"{stack.web_url}/timetable/courses/{course['id']}")
    add_slot_through_the_form(page, term, starts.time(), ends.time(), camera)
    # A recognizer named Bob during the lesson (the recorder files a sighting by capture time).
    seen = sighting(bob, camera, "confident").model_copy(
        update={"captured_at": starts.replace(second=0, microsecond=0).astimezone(UTC) + timedelta(minutes=2)}
    )
    with service_user(stack.amqp_url, "recognizer") as url:
        broker = TestBroker(url)
        try:
            broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key(camera), seen)
        finally:
            broker.close()

    page.goto(f"{stack.web_url}/sessions?camera_id={camera}")
    page.locator("tbody tr a", has_text="Ended lesson").first.click()
    ada_row, bob_row = page.locator(f"#student-{ada['id']}"), page.locator(f"#student-{bob['id']}")
    for _ in range(40):  # the recorder's tick (every second) decides once the session has ended
        if "absent" in (ada_row.get_attribute("class") or ""):
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(ada_row).to_have_class(re.compile(r"\babsent\b"))
    expect(bob_row).to_have_class(re.compile(r"\bpresent\b"))
    expect(page.locator(".finalized")).to_be_visible()
