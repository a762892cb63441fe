"""The roster import in Chromium against the real API and MariaDB: a CSV of 30 students on a
course, with their consent to biometric processing, and a ZIP of their photos (the shared faces, read in place and zipped in a temporary
folder; a person's photos reused under several numbers), of which a photo with no face and a
group photo are refused with their reasons in the preview; nothing is written until the
preview is applied; the progress bar follows the job; then the 28 are students, on the course,
each with their photo."""

import uuid
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Stack
from tests.browser.helpers import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.faces]

# Generous: 30 photos are analysed one at a time (about 0.6 s each) on a shared machine.
JOB_TIMEOUT_MS = 240_000


def class_photos(faces_dir: Path) -> list[Path]:
    """Every photo of one face in the shared faces, as many as there are."""
    photos = sorted((faces_dir / "people").glob("*/*.jpg"))
    assert len(photos) >= 10, photos
    return photos


def test_a_roster_of_30_with_photos_is_previewed_applied_and_enrolled(
    admin_page: Page, stack: Stack, faces_dir: Path, tmp_path: Path
) -> None:
    page = admin_page
    prefix = f"I{uuid.uuid4().hex[:5]}"
    code = f"C{uuid.uuid4().hex[:6]}"
    stack.api.post("/courses", json={"code": code, "name": "Imported class"}).raise_for_status()
    numbers = [f"{prefix}-{n:02}" for n in range(1, 31)]
    no_face, group = numbers[6], numbers[19]
    photos = class_photos(faces_dir)
    roster = tmp_path / "class.csv"
    # As a spreadsheet saves it: a byte-order mark, ';' between cells, CRLF.
    lines = ["Student number;Name;Courses;Consent"] + [
        f"{number};Student {number};{code};yes" for number in numbers
    ]
    roster.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as file:
        for index, number in enumerate(numbers):
            source = photos[index % len(photos)]
            if number == no_face:
                source = faces_dir / "no_face" / "chandelier_room_crop.jpg"
            elif number == group:
                source = faces_dir / "groups" / "kit_with_rose.jpg"
            file.write(source, f"class/{number}.jpg")

    page.goto(f"{stack.web_url}/students")
    expect(page.get_by_role("link", name="Import", exact=True)).to_have_attribute("href", "/imports")
    page.get_by_role("link", name="import a roster").click()
    expect(page.locator("h1")).to_have_text("Import a roster")
    page.set_input_files("#roster", str(roster))
    page.set_input_files("#photos", str(archive))
    page.get_by_role("button", name="Preview").click()

    status = page.locator("#import-status")
    expect(page.locator("h1")).to_contain_text("class.csv, photos.zip")
    # 30 photos take seconds: the page opens on the check in progress, its bar counting them.
    expect(page.locator("#import-progress")).to_have_attribute("max", "30")
    # While photos are checked the bar moves; the page reloads itself with the full preview.
    expect(status).to_have_attribute("data-state", "ready", timeout=JOB_TIMEOUT_MS)
    expect(status.locator(".state-word")).to_have_text("preview ready: nothing written yet")
    expect(status.locator(".verdict-create b")).to_have_text("28")
    expect(status.locator(".verdict-refuse b")).to_have_text("2")
    rows = page.locator("table.import-rows tbody tr")
    expect(rows).to_have_count(30)
    refused_no_face = page.locator("tr.row-refuse", has_text=no_face)
    expect(refused_no_face.locator(".reason")).to_have_text(f"photo class/{no_face}.jpg: no face found")
    refused_group = page.locator("tr.row-refuse", has_text=group)
    expect(refused_group.locator(".reason")).to_contain_text(f"photo class/{group}.jpg: 2 faces found")
    expect(page.locator("tr.row-create")).to_have_count(28)
    screenshot(page, "import-preview")
    # Nothing written yet.
    assert stack.api.get("/students", params={"query": prefix}).json()["total"] == 0

    page.get_by_role("button", name="Apply: write 28 student(s)").click()
    expect(status).to_have_attribute("data-state", "applied", timeout=JOB_TIMEOUT_MS)
    expect(status.locator(".outcome-counts")).to_contain_text("28 created")
    expect(page.locator("td.outcome", has_text="created")).to_have_count(28)
    screenshot(page, "import-applied")

    page.goto(f"{stack.web_url}/students?q={prefix}")
    expect(page.locator("h1 .muted")).to_have_text("(28)")
    listed = page.locator("table tbody tr")
    expect(listed).to_have_count(28)
    expect(page.locator("table tbody tr", has_text=no_face)).to_have_count(0)
    expect(page.locator("table tbody tr", has_text=group)).to_have_count(0)
    students = stack.api.get("/students", params={"query": prefix, "page_size": 100}).json()["items"]
    assert sorted(s["student_number"] for s in students) == sorted(set(numbers) - {no_face, group})
    assert all(s["photo_count"] == 1 for s in students)
    course = next(c for c in stack.api.get("/courses").json() if c["code"] == code)
    assert sorted(course["student_ids"]) == sorted(s["id"] for s in students)


def test_a_malformed_roster_is_refused_on_the_page_and_nothing_is_kept(
    admin_page: Page, stack: Stack, tmp_path: Path
) -> None:
    page = admin_page
    before = len(stack.api.get("/imports").json())
    roster = tmp_path / "broken.csv"
    roster.write_bytes(b"S001,Ada\nS002,Bob\n")
    page.goto(f"{stack.web_url}/imports")
    page.set_input_files("#roster", str(roster))
    page.get_by_role("button", name="Preview").click()
    expect(page.locator(".flash.error")).to_contain_text(
        "Not imported: the first line must name the columns student_number, name"
    )
    assert len(stack.api.get("/imports").json()) == before
