"""The import pages against a fake API: what each state of a job shows (the progress and its
poller while it runs, Apply and Discard when ready, the outcomes once applied, Continue after a
failed apply), the refused-only filter, and the API's refusals as messages."""

import io
import re
from typing import Any

import httpx

from tests.unit.web.fakes import FakeApi, form_token, make_app, ok, signed_in_client


def row(line: int, number: str, verdict: str, **extra: Any) -> dict[str, Any]:
    return {
        "line": line, "student_number": number, "name": f"Student {number}", "course_codes": ["MATH101"],
        "verdict": verdict, "reason": "", "changes": [], "student_id": None, "photo": None, "outcome": None,
        "outcome_reason": "", **extra,
    }  # fmt: skip


def job(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": 3, "state": state, "created_by": "admin (user 1)", "created_at": "2026-03-02T07:00:00+00:00",
        "updated_at": "2026-03-02T07:00:01+00:00", "csv_filename": "class.csv", "zip_filename": "photos.zip",
        "delimiter": ";", "processed": 1, "total": 2, "error": "", "ignored_columns": ["Email"],
        "unmatched_files": ["readme.txt"], "verdicts": {"create": 1, "update": 1, "unchanged": 0, "refuse": 1},
        "outcomes": {"created": 0, "updated": 0, "unchanged": 0, "refused": 0}, "applied_by": None,
        "applied_at": None, "finished_at": None,
        "rows": [
            row(2, "S001", "create", photo={"name": "S001.jpg", "state": "accepted", "face_px": 120}),
            row(3, "S002", "update", changes=["name", "courses +MATH101"], student_id=9),
            row(4, "S003", "refuse", reason="photo S003.jpg: no face found",
                photo={"name": "S003.jpg", "state": "refused", "face_px": None}),
        ],
        **extra,
    }  # fmt: skip


def page_of(body: dict[str, Any], path: str = "/imports/3") -> str:
    api = FakeApi({("GET", "/imports/3"): ok(body)})
    response = signed_in_client(make_app(api), "admin").get(path)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def forms(page: str) -> list[str]:
    return [a for a in re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', page) if a != "/logout"]


def test_a_running_check_shows_its_progress_and_polls() -> None:
    page = page_of(job("checking"))
    assert '<progress id="import-progress" max="2" value="1">50%</progress>' in page
    assert "1 of 2 photos checked" in page
    assert "/static/import.js" in page and 'data-state-url="/imports/3/state.json"' in page
    assert forms(page) == []  # neither applied nor discarded while it runs


def test_a_ready_preview_shows_every_verdict_and_offers_apply_and_discard() -> None:
    page = page_of(job("ready"))
    assert forms(page) == ["/imports/3/apply", "/imports/3/discard"]
    assert "Apply: write 2 student(s)" in page
    assert "photo S003.jpg: no face found" in page and "name, courses +MATH101" in page
    assert "face 120 px" in page and "Columns not read: Email" in page and "readme.txt" in page
    assert "<progress" not in page and "import.js" not in page
    assert '<a href="/students/9">S002</a>' in page


def test_the_refused_filter_shows_only_refused_rows() -> None:
    page = page_of(job("ready"), "/imports/3?show=refused")
    assert "S003" in page and "S001" not in page and "S002" not in page


def test_an_applied_import_shows_its_outcomes_and_a_failed_apply_can_continue() -> None:
    done = job("applied", applied_at="2026-03-02T07:01:00+00:00", finished_at="2026-03-02T07:01:05+00:00",
               outcomes={"created": 1, "updated": 0, "unchanged": 0, "refused": 1})  # fmt: skip
    done["rows"][1]["outcome"], done["rows"][1]["outcome_reason"] = "refused", "student S002 was deleted"
    page = page_of(done)
    assert forms(page) == []
    assert "<b>1</b> created" in page and "refused: student S002 was deleted" in page
    failed = job(
        "failed", error="interrupted: the API stopped while it ran", applied_at="2026-03-02T07:01:00Z"
    )
    page = page_of(failed)
    assert forms(page) == ["/imports/3/apply"]  # continue; never discarded once writing began
    assert "Continue applying" in page and "interrupted: the API stopped while it ran" in page


def test_the_api_refusals_are_messages() -> None:
    refuse = httpx.Response(422, json={"detail": "the CSV is empty: it needs a header line"})
    busy = httpx.Response(409, json={"detail": "import 3 is still checking its photos (1 of 2)"})
    api = FakeApi({("POST", "/imports"): lambda r, u: refuse, ("POST", "/imports/3/apply"): lambda r, u: busy,
                   ("GET", "/imports"): ok([]), ("GET", "/imports/3"): ok(job("checking"))})  # fmt: skip
    client = signed_in_client(make_app(api), "admin")
    token = form_token(client, "/imports")
    upload = client.post(
        "/imports", data={"csrf_token": token, "roster": (io.BytesIO(b""), "r.csv")},
        content_type="multipart/form-data", follow_redirects=True,
    )  # fmt: skip
    assert "Not imported: the CSV is empty: it needs a header line" in upload.get_data(as_text=True)
    applied = client.post("/imports/3/apply", data={"csrf_token": token}, follow_redirects=True)
    assert "Not applied: import 3 is still checking its photos (1 of 2)" in applied.get_data(as_text=True)
    none = client.post("/imports", data={"csrf_token": token}, follow_redirects=True)
    assert "Choose the CSV of students to import." in none.get_data(as_text=True)
