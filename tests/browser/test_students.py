"""Enrollment through the dashboard: the API's reason for a refused photo is shown by its name;
consent is recorded before any photo is taken, and withdrawing it erases them."""

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack
from tests.browser.helpers import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.faces]


def test_refused_photo_shows_its_reason(admin_page: Page, stack: Stack, faces_dir: Path) -> None:
    page = admin_page
    no_face = faces_dir / "no_face" / "noise.jpg"
    face = sorted((faces_dir / "people" / "guido_van_rossum").glob("*.jpg"))[0]
    number = f"E{uuid.uuid4().hex[:8]}"

    page.goto(f"{stack.web_url}/students")
    page.fill("#student_number", number)
    page.fill("#name", "Guido van Rossum")
    page.check("#consent")
    page.set_input_files("#photos", [str(face), str(no_face)])
    page.click("form[enctype] button[type=submit]")

    refused = page.locator(".outcomes li.rejected")
    expect(refused).to_have_count(1, timeout=60_000)  # the API analyses each photo
    expect(refused.locator(".filename")).to_have_text(no_face.name)
    expect(refused.locator(".reason")).to_have_text("no face found")
    accepted = page.locator(".outcomes li.accepted")
    expect(accepted.locator(".filename")).to_have_text(face.name)
    expect(page.locator(".photo-count")).to_have_text("1")
    screenshot(page, "students-refused-photo")

    # The list shows the new student with their photo count, and search finds them.
    page.goto(f"{stack.web_url}/students?q={number}")
    row = page.locator("tbody tr", has_text="Guido van Rossum")
    expect(row).to_have_count(1)
    expect(row.locator("td.num")).to_have_text("1")


def test_delete_asks_for_confirmation(admin_page: Page, stack: Stack) -> None:
    page = admin_page
    student = stack.add_student("Charles Babbage")
    page.goto(f"{stack.web_url}/students/{student['id']}")
    page.click("text=Delete this student")
    expect(page.locator("h1")).to_have_text("Delete Charles Babbage?")
    assert stack.api.get(f"/students/{student['id']}").status_code == 200  # nothing deleted yet
    page.click("button.danger")
    expect(page.locator(".flash.ok")).to_contain_text("Deleted Charles Babbage")
    assert stack.api.get(f"/students/{student['id']}").status_code == 404


def test_consent_is_recorded_before_photos_and_withdrawing_it_erases_them(
    admin_page: Page, stack: Stack, faces_dir: Path
) -> None:
    page = admin_page
    face = sorted((faces_dir / "people" / "guido_van_rossum").glob("*.jpg"))[0]
    number = f"C{uuid.uuid4().hex[:8]}"

    # Added without the box ticked: the photo sent with the form is refused, and the page says why.
    page.goto(f"{stack.web_url}/students")
    page.fill("#student_number", number)
    page.fill("#name", "Ada Consent")
    page.set_input_files("#photos", [str(face)])
    page.click("form[enctype] button[type=submit]")
    expect(page.locator(".flash.error")).to_contain_text("no recorded consent")
    status = page.locator(".consent-status")
    expect(status).to_have_attribute("data-consent", "none")
    expect(status).to_contain_text("no photo can be enrolled")
    expect(page.locator(".photo-count")).to_have_text("0")
    expect(page.locator("#photos")).to_have_count(0)  # no upload offered without consent

    # Recorded from the student's page, with a note: who and when are shown, and photos go in.
    page.click(".consent-give button")
    expect(page.locator(".flash.error")).to_contain_text("Tick the box")
    page.check("#consent_confirm")
    page.fill("#consent_note", "signed form 42")
    page.click(".consent-give button")
    expect(page.locator(".flash.ok")).to_contain_text("Consent recorded")
    expect(status).to_have_attribute("data-consent", "given")
    expect(status).to_contain_text("by admin")
    expect(status).to_contain_text("signed form 42")
    page.set_input_files("#photos", [str(face)])
    page.click("form[enctype] button[type=submit]")
    expect(page.locator(".photo-count")).to_have_text("1", timeout=60_000)

    # Withdrawn: the photo and its face data are erased at once; the student stays.
    page.check("#withdraw_confirm")
    page.click(".consent-withdraw button")
    expect(page.locator(".flash.ok")).to_contain_text("Consent withdrawn: 1 photo(s)")
    expect(page.locator(".photo-count")).to_have_text("0")
    expect(status).to_have_attribute("data-consent", "none")
    screenshot(page, "students-consent-withdrawn")
    page.goto(f"{stack.web_url}/students?q={number}")
    expect(page.locator("tbody tr", has_text="Ada Consent").locator("td.consent")).to_have_text("none")
