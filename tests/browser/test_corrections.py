"""Corrections from the session page (issue 10): a teacher excuses a roster student with a reason
(without one, nothing changes and the page says why); a real recorder's recognition mark
corrected present -> absent shows in the history (who, from, to, why), in the dashboard's CSV
download and in the recorder's own CSV journal (a new row that `corrects` the mark's event id,
the mark's row as it was)."""

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from tests.browser.conftest import Stack, log_in
from tests.browser.helpers import screenshot
from tests.browser.test_live_page import recorder, sighting  # noqa: F401  (recorder: a real one)
from tests.support.amqp import TestBroker
from tests.support.broker_users import service_user

pytestmark = pytest.mark.browser


def _session(stack: Stack, name: str, camera: str, course_id: int) -> dict[str, Any]:
    """A course session that began five minutes ago: a first sighting now is on time (present)."""
    now = datetime.now(UTC)
    body = {
        "name": name,
        "camera_id": camera,
        "course_id": course_id,
        "starts_at": (now - timedelta(minutes=5)).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
    }
    response = stack.api.post("/sessions", json=body)
    response.raise_for_status()
    return dict(response.json())


def _set_status(page: Page, student_id: int, status: str, reason: str) -> None:
    form = page.locator(f"#student-{student_id} form.set-status")
    form.locator("select[name=status]").select_option(status)
    form.locator("input[name=reason]").fill(reason)
    form.locator("button[type=submit]").click()


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_teacher_excuses_a_roster_student_with_a_reason_and_not_without(page: Page, stack: Stack) -> None:
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    ada, bob = stack.add_student("Ada Excused"), stack.add_student("Bob Stays")
    course = stack.add_course("Excuses", [ada["id"], bob["id"]])
    teacher = stack.add_user("teacher")
    stack.api.put(f"/courses/{course['id']}/teachers", json={"user_ids": [teacher["id"]]}).raise_for_status()
    session = stack.add_session("Excuses, week 1", camera, course_id=course["id"])
    log_in(page, stack.web_url, teacher["username"])
    page.goto(f"{stack.web_url}/sessions/{session['id']}")
    row = page.locator(f"#student-{ada['id']}")
    expect(row).to_have_class(re.compile(r"\bnot_seen\b"))

    # A reason of blanks passes the browser's `required` but not the dashboard: nothing changes.
    _set_status(page, ada["id"], "excused", "   ")
    expect(page.locator(".flash.error")).to_contain_text("every change needs a reason")
    expect(row).to_have_class(re.compile(r"\bnot_seen\b"))
    assert stack.api.get(f"/sessions/{session['id']}/attendance/{ada['id']}").json()["mark"] is None

    _set_status(page, ada["id"], "excused", "doctor's note, 2 days")
    expect(page.locator(".flash.ok")).to_contain_text("Now excused")
    expect(row).to_have_class(re.compile(r"\bexcused\b"))
    expect(row.locator(".status .word")).to_have_text("excused")
    expect(row.locator(".status .why")).to_contain_text("doctor's note, 2 days")
    expect(page.locator(f"#student-{bob['id']}")).to_have_class(re.compile(r"\bnot_seen\b"))
    line = page.locator("table.history tbody tr", has_text="Ada Excused")
    expect(line).to_have_count(1)
    cells = line.locator("td")
    expect(cells.nth(2)).to_have_text("no mark")
    expect(cells.nth(3)).to_have_text("excused")
    expect(cells.nth(4)).to_contain_text(teacher["username"])
    expect(cells.nth(5)).to_have_text("doctor's note, 2 days")
    mark = stack.api.get(f"/sessions/{session['id']}/attendance/{ada['id']}").json()["mark"]
    assert (mark["status"], mark["source"], mark["reason"]) == ("excused", "person", "doctor's note, 2 days")
    screenshot(page, "session-excused")


def test_a_recognition_mark_corrected_to_absent_is_in_the_history_the_csv_and_the_recorders_journal(
    admin_page: Page,
    stack: Stack,
    tmp_path: Path,
    recorder: ServiceProcess,  # noqa: F811
) -> None:
    page = admin_page
    journal = tmp_path / "attendance.csv"  # the recorder fixture's RECORDER_CSV_PATH
    camera = f"cam-{uuid.uuid4().hex[:6]}"
    ada = stack.add_student("Ada Corrected")
    course = stack.add_course("Corrections", [ada["id"]])
    session = _session(stack, "Corrections, week 1", camera, course["id"])
    with service_user(stack.amqp_url, "recognizer") as url:
        recognizer = TestBroker(url)
        try:
            recognizer.publish(
                topology.RECOGNIZER_EXCHANGE,
                topology.recognized_key(camera),
                sighting(ada, camera, "confident"),
            )
        finally:
            recognizer.close()

    one = f"/sessions/{session['id']}/attendance/{ada['id']}"
    wait_until(lambda: stack.api.get(one).json()["mark"] is not None, 20, "the recorder's mark")
    mark = stack.api.get(one).json()["mark"]
    assert (mark["status"], mark["source"]) == ("present", "recognition")
    event_id = mark["event_id"]

    def journal_rows() -> list[dict[str, str]]:
        return _rows(journal.read_text(encoding="utf-8")) if journal.exists() else []

    wait_until(lambda: any(r["event_id"] == event_id for r in journal_rows()), 20, "the mark in the journal")
    [mark_row] = [r for r in journal_rows() if r["event_id"] == event_id]
    assert (mark_row["status"], mark_row["source"], mark_row["corrects"]) == ("present", "recognition", "")

    page.goto(f"{stack.web_url}/sessions/{session['id']}")
    row = page.locator(f"#student-{ada['id']}")
    expect(row).to_have_class(re.compile(r"\bpresent\b"))
    reason = "it was her twin sister at the door"
    _set_status(page, ada["id"], "absent", reason)
    expect(page.locator(".flash.ok")).to_contain_text("Now absent")
    expect(row).to_have_class(re.compile(r"\babsent\b"))
    expect(row.locator(".status .why")).to_contain_text(reason)

    # The history: the mark, then the change, newest first: who, from, to, why.
    change = page.locator("table.history tbody tr.change", has_text="Ada Corrected")
    expect(change).to_have_count(1)
    cells = change.locator("td")
    expect(cells.nth(2)).to_have_text("present")
    expect(cells.nth(3)).to_have_text("absent")
    expect(cells.nth(4)).to_contain_text("admin")
    expect(cells.nth(4)).to_contain_text("(a person)")
    expect(cells.nth(5)).to_have_text(reason)
    expect(page.locator("table.history tbody tr.mark", has_text="Ada Corrected")).to_have_count(1)
    # The new status is the one coloured as absent, not the status it was corrected from.
    absent_colour = row.locator(".status .word").evaluate("e => getComputedStyle(e.closest('td')).color")
    assert cells.nth(3).evaluate("e => getComputedStyle(e).color") == absent_colour
    assert cells.nth(2).evaluate("e => getComputedStyle(e).color") != absent_colour
    screenshot(page, "session-corrected")

    # The dashboard's CSV download: the mark as it was made, then the change with the new status.
    with page.expect_download() as download_info:
        page.click("text=Download CSV")
    downloaded = _rows(Path(download_info.value.path()).read_text(encoding="utf-8"))
    ours = [r for r in downloaded if r["student_id"] == str(ada["id"])]
    assert [(r["status"], r["source"], r["corrects"]) for r in ours] == [
        ("present", "recognition", ""),
        ("absent", "person", event_id),
    ], ours
    assert ours[1]["reason"] == reason

    # The recorder journals the change on its tick: a new row correcting the mark; the mark's row as it was.
    def corrections() -> list[dict[str, str]]:
        return [r for r in journal_rows() if r["corrects"] == event_id]

    wait_until(lambda: bool(corrections()), 20, "the correction in the recorder's journal")
    [correction] = corrections()
    assert (correction["status"], correction["source"], correction["reason"]) == ("absent", "person", reason)
    assert correction["event_id"] != event_id and correction["student_id"] == str(ada["id"])
    assert [r for r in journal_rows() if r["event_id"] == event_id] == [mark_row]
    assert correction == ours[1]  # the download and the journal say the same
