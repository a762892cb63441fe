"""Roster imports through the API on the real MariaDB: the preview writes nothing, each bad
input is refused with its reason (a malformed CSV, a ZIP bomb or no ZIP, unknown course codes,
duplicate numbers, bad photos), applying writes students, rosters and photos with their audit
entries, and a 500-student import stays fast."""

import io
import struct
import time
import zipfile
import zlib
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from services.api.limits import MB
from services.common import topology
from tests.integration.api.conftest import BROKER_DOWN_URL, MakeClient, SignIn
from tests.integration.api.helpers import face, new_student, shared
from tests.support.amqp import TestBroker
from tests.support.infra import scalar

pytestmark = pytest.mark.integration


def post_import(
    client: TestClient, csv_text: str | bytes, photos: bytes | None = None, csv_name: str = "roster.csv"
) -> httpx.Response:
    data = csv_text.encode() if isinstance(csv_text, str) else csv_text
    files: list[tuple[str, tuple[str, bytes, str]]] = [("roster", (csv_name, data, "text/csv"))]
    if photos is not None:
        files.append(("photos", ("photos.zip", photos, "application/zip")))
    return client.post("/imports", files=files)


def wait_for(client: TestClient, job_id: int, timeout_s: float = 120) -> dict[str, Any]:
    """The job once it has stopped running (ready, applied, failed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/imports/{job_id}").json()
        if job["state"] not in ("checking", "applying"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"import {job_id} still running after {timeout_s} s")


def preview(client: TestClient, csv_text: str | bytes, photos: bytes | None = None) -> dict[str, Any]:
    response = post_import(client, csv_text, photos)
    assert response.status_code == 202, response.text
    return wait_for(client, response.json()["id"])


def apply(client: TestClient, job_id: int) -> dict[str, Any]:
    response = client.post(f"/imports/{job_id}/apply")
    assert response.status_code == 202, response.text
    return wait_for(client, job_id)


def a_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as file:
        for name, data in members.items():
            file.writestr(name, data)
    return buffer.getvalue()


def add_course(engine: sa.Engine, code: str) -> int:
    with engine.begin() as connection:
        result = connection.execute(
            sa.text("INSERT INTO courses (code, name) VALUES (:code, :code)"), {"code": code}
        )
        return int(result.lastrowid)


def count(engine: sa.Engine, sql: str, **params: object) -> int:
    return int(str(scalar(engine, sql, **params)))


def verdicts(job: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(row["student_number"], row["verdict"], row["reason"]) for row in job["rows"]]


def test_a_preview_writes_nothing_then_apply_creates_updates_and_fills_the_rosters(
    client: TestClient, engine: sa.Engine
) -> None:
    math = add_course(engine, "MATH101")
    add_course(engine, "PHY2")
    ada = new_student(client, "S001", "Ada Lovelace")
    csv_text = (
        "\ufeffstudent_number;name;courses\r\n"
        "S001;Ada King;math101\r\n"  # an update: new name, on a course
        "S002;Bob Babbage;MATH101 PHY2\r\n"
        "S003;Cy Clone;CHEM9\r\n"
        "S002;Bob Babbage;MATH101 PHY2\r\n"
    )
    job = preview(client, csv_text)
    assert job["state"] == "ready"
    assert job["delimiter"] == ";"
    assert verdicts(job) == [
        ("S001", "update", ""),
        ("S002", "create", ""),
        ("S003", "refuse", "unknown course code: CHEM9"),
        ("S002", "refuse", "duplicate row: student number S002 is on line 3"),
    ]
    assert job["rows"][0]["changes"] == ["name", "courses +MATH101"]
    assert job["verdicts"] == {"create": 1, "update": 1, "unchanged": 0, "refuse": 2}
    # Nothing written yet.
    assert count(engine, "SELECT COUNT(*) FROM students") == 1
    assert count(engine, "SELECT COUNT(*) FROM course_students") == 0

    done = apply(client, job["id"])
    assert done["state"] == "applied", done
    assert (done["processed"], done["total"]) == (2, 2)
    assert done["outcomes"] == {"created": 1, "updated": 1, "unchanged": 0, "refused": 0}
    assert [row["outcome"] for row in done["rows"]] == ["updated", "created", None, None]
    assert client.get(f"/students/{ada['id']}").json()["name"] == "Ada King"
    bob = done["rows"][1]["student_id"]
    course = next(c for c in client.get("/courses").json() if c["id"] == math)
    assert course["student_ids"] == sorted([ada["id"], bob])
    actions = [e["action"] for e in client.get("/audit", params={"page_size": 50}).json()["items"]]
    for action in (
        "import.create",
        "import.apply",
        "import.applied",
        "student.create",
        "student.change",
        "course.roster",
    ):
        assert action in actions, actions
    # Applied once: never again.
    again = client.post(f"/imports/{job['id']}/apply")
    assert again.status_code == 409
    assert again.json()["detail"] == f"import {job['id']} is applied: it cannot be applied"


@pytest.mark.parametrize(
    ("csv_data", "says"),
    [
        (b"", "the CSV is empty"),
        (b"S001,Ada\nS002,Bob\n", "the first line must name the columns student_number, name"),
        (b'student_number,name\nS001,"Ada\n', "the CSV is malformed at line"),
        ("student_number,name\nS001,Zoë\n".encode("cp1252"), "the CSV is not UTF-8 text"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "the CSV"),
    ],
)
def test_a_malformed_csv_is_a_422_saying_why(client: TestClient, csv_data: bytes, says: str) -> None:
    response = post_import(client, csv_data)
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(says)
    assert client.get("/imports").json() == []


def test_a_csv_over_its_limits_is_refused(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, api_import_max_csv_bytes=100, api_import_max_rows=3)
    big = post_import(client, "student_number,name\n" + "S001,Ada Lovelace the First\n" * 10)
    assert big.status_code == 422
    assert big.json()["detail"] == "the CSV is larger than 0.0 MB (API_IMPORT_MAX_CSV_BYTES): split it"
    many = post_import(client, "student_number,name\nA,a\nB,b\nC,c\nD,d\n")
    assert many.status_code == 422
    assert "at most 3 are imported at once (API_IMPORT_MAX_ROWS)" in many.json()["detail"]


def test_photos_that_are_no_zip_or_a_zip_bomb_are_refused_before_extraction(
    make_client: MakeClient,
) -> None:
    client = make_client(BROKER_DOWN_URL, api_import_max_rows=5, api_import_max_unzipped_mb=1)
    roster = "student_number,name\nS001,Ada\n"
    cases = [
        (b"this is not a zip", "the photos file is not a ZIP archive"),
        (face("eric_clapton", 2), "the photos file is not a ZIP archive"),
        # 20 MB of zeros compress to ~20 KB: refused from the directory, never inflated.
        (
            a_zip({"S001.jpg": bytes(20 * MB)}),
            "the ZIP's files add up to 20.0 MB uncompressed; at most 1.0 MB",
        ),
        (a_zip({f"S{n:03}.jpg": b"x" for n in range(6)}), "the ZIP holds 6 files; at most 5"),
    ]
    for photos, says in cases:
        response = post_import(client, roster, photos)
        assert response.status_code == 422, response.text
        assert response.json()["detail"].startswith(says), response.json()
    assert client.get("/imports").json() == []


def test_a_bomb_within_the_total_is_refused_by_its_ratio(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL)
    response = post_import(client, "student_number,name\nS001,Ada\n", a_zip({"S001.jpg": bytes(5 * MB)}))
    assert response.status_code == 422
    assert response.json()["detail"].startswith("S001.jpg compresses ")


def huge_png_header() -> bytes:
    """A PNG that says it is 30000x30000 pixels (900 MP): refused from its header."""
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.faces
def test_photos_go_through_the_enrollment_checks_and_are_enrolled_on_apply(
    broker_client: TestClient, broker: TestBroker, engine: sa.Engine
) -> None:
    client = broker_client
    numbers = ["S001", "S002", "S003", "S004", "S005", "S006", "S007"]
    csv_text = "student_number,name,consent\n" + "".join(f"{n},Student {n},yes\n" for n in numbers)
    csv_text += "S008,Student S008,\n"  # a photo, but no consent: refused, the photo never analysed
    csv_text += "S009,,yes\n"  # refused for its empty name: its photo is never read
    photos = a_zip(
        {
            "class/S001.jpg": face("kit_harington", 1),
            "class/S008.jpg": face("kit_harington", 2),
            "class/S002.JPG": face("eric_clapton", 2),
            "class/S003.jpg": shared("no_face/chandelier_room_crop.jpg"),
            "class/S004.jpg": shared("groups/kit_with_rose.jpg"),
            "class/S005.png": face("eric_clapton", 2)[:3000],
            "class/S006.png": huge_png_header(),
            "class/S009.jpg": face("john_lennon", 1),
            "class/S999.jpg": face("john_lennon", 1),
            "readme.txt": b"class photos",
        }
    )
    response = post_import(client, csv_text, photos)
    assert response.status_code == 202, response.text
    first = response.json()
    assert first["zip_filename"] == "photos.zip"
    assert first["unmatched_files"] == ["class/S999.jpg", "readme.txt"]
    job = wait_for(client, first["id"])
    assert job["state"] == "ready", job
    assert (job["processed"], job["total"]) == (6, 6)
    reasons = {row["student_number"]: (row["verdict"], row["reason"]) for row in job["rows"]}
    assert reasons["S001"] == ("create", "")
    assert reasons["S002"] == ("create", "")
    assert reasons["S003"] == ("refuse", "photo class/S003.jpg: no face found")
    assert reasons["S004"][1].startswith("photo class/S004.jpg: 2 faces found")
    assert reasons["S005"][1].startswith("photo class/S005.png: not an image that can be read (")
    assert reasons["S006"][1].startswith(
        "photo class/S006.png: not an image that can be read (image too large: 30000x30000 px"
    )
    assert reasons["S007"] == ("refuse", "photo missing: no S007.jpg (or .jpeg, .png) in the ZIP")
    assert reasons["S008"][0] == "refuse"
    assert reasons["S008"][1].startswith("no consent to biometric processing recorded for S008")
    assert job["rows"][7]["photo"] == {"name": "class/S008.jpg", "state": "not_checked", "face_px": None}
    assert job["rows"][0]["changes"] == ["consent"]
    assert job["rows"][0]["photo"]["state"] == "accepted"
    assert (job["rows"][8]["reason"], job["rows"][8]["photo"]["state"]) == ("empty name", "not_checked")
    assert job["rows"][0]["photo"]["face_px"] >= 80
    assert count(engine, "SELECT COUNT(*) FROM face_encodings") == 0

    gallery = broker.tap(topology.GALLERY_EXCHANGE)
    done = apply(client, job["id"])
    assert done["outcomes"] == {"created": 2, "updated": 0, "unchanged": 0, "refused": 0}
    students = client.get("/students").json()["items"]
    assert sorted((s["student_number"], s["photo_count"]) for s in students) == [("S001", 1), ("S002", 1)]
    assert all(s["consent_at"] and s["consent_by"].startswith("admin (user ") for s in students)
    assert {s["consent_note"] for s in students} == {f"roster import {job['id']}"}
    # The staged photos are erased from the import once applied.
    assert (
        count(
            engine, "SELECT COUNT(*) FROM roster_import_rows WHERE photo IS NOT NULL OR encoding IS NOT NULL"
        )
        == 0
    )
    assert [m["kind"] for m in broker.drain(gallery)] == ["gallery.changed"]


def test_only_admins_import(client: TestClient, sign_in: SignIn) -> None:
    job = preview(client, "student_number,name\nS001,Ada\n")
    for role in ("teacher", "viewer"):
        other = sign_in(role)
        assert post_import(other, "student_number,name\nS002,Bob\n").status_code == 403
        assert other.get(f"/imports/{job['id']}").status_code == 403
        assert other.post(f"/imports/{job['id']}/apply").status_code == 403
        assert other.get("/imports").status_code == 403


def test_an_unknown_import_is_404_and_a_discarded_one_cannot_be_applied(client: TestClient) -> None:
    assert client.get("/imports/999").status_code == 404
    assert client.post("/imports/999/apply").status_code == 404
    job = preview(client, "student_number,name\nS001,Ada\n")
    assert client.delete(f"/imports/{job['id']}").status_code == 204
    refused = client.post(f"/imports/{job['id']}/apply")
    assert refused.status_code == 409
    assert client.get(f"/imports/{job['id']}").json()["state"] == "discarded"


def test_a_number_taken_between_preview_and_apply_is_refused_at_apply(client: TestClient) -> None:
    job = preview(client, "student_number,name\nS001,Ada\nS002,Bob\n")
    new_student(client, "S002", "Someone Else")
    done = apply(client, job["id"])
    outcomes = [(row["outcome"], row["outcome_reason"]) for row in done["rows"]]
    assert outcomes == [
        ("created", ""),
        ("refused", "student number S002 was taken after the preview: import the file again"),
    ]


def test_500_students_are_imported_within_a_minute(client: TestClient, engine: sa.Engine) -> None:
    for code in ("MATH101", "PHY2", "BIO3"):
        add_course(engine, code)
    lines = [f"S{n:04},Student {n:04},{('MATH101', 'PHY2 BIO3', '')[n % 3]}" for n in range(500)]
    started = time.monotonic()
    job = preview(client, "student_number,name,courses\n" + "\n".join(lines) + "\n")
    previewed = time.monotonic() - started
    assert job["verdicts"]["create"] == 500
    done = apply(client, job["id"])
    elapsed = time.monotonic() - started
    print(f"500-row import: preview {previewed:.2f} s, preview and apply {elapsed:.2f} s")
    assert done["outcomes"]["created"] == 500
    assert count(engine, "SELECT COUNT(*) FROM students") == 500
    assert count(engine, "SELECT COUNT(*) FROM course_students") == 500 // 3 + 1 + 2 * (500 // 3 + 1)
    assert elapsed < 60


def test_an_import_has_its_own_request_limit(make_client: MakeClient) -> None:
    client = make_client(
        BROKER_DOWN_URL,
        api_max_photo_bytes=1000,
        api_max_request_bytes=2000,
        api_import_max_request_bytes=20_000,
    )
    student = new_student(client)
    roster = "student_number,name\n" + "".join(f"S{n:04},Student number {n}\n" for n in range(200))
    assert 2000 < len(roster) < 20_000
    assert post_import(client, roster).status_code == 202
    photo = client.post(
        f"/students/{student['id']}/photos", files=[("photos", ("a.jpg", roster.encode(), "image/jpeg"))]
    )
    assert photo.status_code == 413
    assert post_import(client, roster * 5).status_code == 413


def test_a_job_whose_process_died_is_failed_and_its_apply_continues_with_the_rows_left(
    client: TestClient, engine: sa.Engine
) -> None:
    job = preview(client, "student_number,name\nS001,Ada\nS002,Bob\nS003,Cy\n")
    # As if an API had applied line 2 and died: the job says "applying" and has been silent.
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S001', 'Ada')"))
        connection.execute(
            sa.text("UPDATE roster_import_rows SET outcome = 'created' WHERE import_id = :id AND line = 2"),
            {"id": job["id"]},
        )
        connection.execute(
            sa.text(
                "UPDATE roster_imports SET state = 'applying', applied_at = NOW(6), "
                "updated_at = NOW(6) - INTERVAL 10 MINUTE WHERE id = :id"
            ),
            {"id": job["id"]},
        )
    stopped = client.get(f"/imports/{job['id']}", params={"rows": "false"}).json()
    assert (stopped["state"], stopped["error"]) == ("failed", "interrupted: the API stopped while it ran")
    assert stopped["rows"] is None
    done = apply(client, job["id"])
    assert done["state"] == "applied"
    assert [row["outcome"] for row in done["rows"]] == ["created", "created", "created"]
    assert count(engine, "SELECT COUNT(*) FROM students") == 3


def test_a_preview_never_applied_expires_and_the_list_counts_verdicts(
    client: TestClient, engine: sa.Engine
) -> None:
    old = preview(client, "student_number,name\nS001,Ada\nbad number,Bob\n")
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE roster_imports SET updated_at = NOW(6) - INTERVAL 25 HOUR WHERE id = :id"),
            {"id": old["id"]},
        )
    new = preview(client, "student_number,name\nS002,Cy\n")
    listed = {job["id"]: job for job in client.get("/imports").json()}
    assert listed[old["id"]]["state"] == "discarded"
    assert listed[old["id"]]["error"] == "expired: not applied within 24 h"
    assert listed[old["id"]]["verdicts"] == {"create": 1, "update": 0, "unchanged": 0, "refuse": 1}
    assert listed[new["id"]]["state"] == "ready"
    assert client.post(f"/imports/{old['id']}/apply").status_code == 409
