"""The camera preview: the latest of each camera, to those who may read the session, taken
during it, never cached; the API's answer kept briefly."""

from datetime import UTC, datetime

import pytest

from services.common.messages import FramePreviewed
from services.web.live_preview import PreviewStore, deliver_preview
from tests.unit.web.fakes import SESSION, FakeApi, make_app, signed_in_client

DURING = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)  # inside SESSION (07:00-08:00 UTC)
BEFORE = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # the class before, on the same camera
JPEG = b"\xff\xd8\xff\xe0 a picture \xff\xd9"


def preview(camera_id: str, at: datetime, jpeg: bytes = JPEG) -> FramePreviewed:
    return FramePreviewed(
        camera_id=camera_id,
        frame_seq=1,
        captured_at=at,
        worker="w",
        faces=1,
        width=480,
        height=270,
        jpeg=jpeg,
    )


def test_the_store_keeps_the_newest_of_each_camera_and_forgets_a_stale_one() -> None:
    now = [0.0]
    store = PreviewStore(clock=lambda: now[0])
    store.put(preview("cam1", DURING, b"new"))
    store.put(preview("cam1", BEFORE, b"old"))  # a worker that has not caught up yet
    kept = store.latest("cam1")
    assert kept is not None and kept.jpeg == b"new"
    now[0] = 11.0
    assert store.latest("cam1") is None and store.latest("cam2") is None


def test_an_invalid_preview_is_ignored_and_its_content_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = PreviewStore()
    secret = "U0VDUkVULUZBQ0U" * 10
    body = (
        preview("cam1", DURING).model_dump_json().replace('"faces":1', '"faces":-1').replace("/9j/", secret)
    )
    assert not deliver_preview(store, "preview.cam1", body.encode())
    assert not deliver_preview(store, "preview.cam1", b"not json")
    assert store.latest("cam1") is None
    assert secret not in caplog.text
    assert deliver_preview(store, "preview.cam1", preview("cam1", DURING).model_dump_json().encode())


def test_the_sessions_preview_is_served_uncached_to_who_may_read_the_session() -> None:
    api = FakeApi(current={"admin": [SESSION], "teacher": [], "viewer": [SESSION]})
    app = make_app(api)
    store = app.extensions["attendance_web"].previews
    admin = signed_in_client(app, "admin")
    url = f"/sessions/{SESSION['id']}/preview.jpg"

    missing = admin.get(url)  # nothing from the camera yet
    assert missing.status_code == 204 and missing.data == b""

    store.put(preview("cam1", DURING))
    shown = admin.get(url)
    assert shown.status_code == 200 and shown.data == JPEG
    assert shown.mimetype == "image/jpeg"
    assert "no-store" in shown.headers["Cache-Control"]
    for _ in range(5):
        assert admin.get(url).status_code == 200
    assert len(api.calls("GET", f"/sessions/{SESSION['id']}")) == 1  # the API's answer is kept

    teacher = signed_in_client(app, "teacher")  # not their course: the API says 403
    refused = teacher.get(url)
    assert refused.status_code == 403 and refused.mimetype == "application/json"
    assert refused.data != JPEG and teacher.get(url).status_code == 403

    store.put(preview("cam2", DURING))  # another camera's picture is never this session's
    store.put(preview("cam1", DURING.replace(hour=9)))  # after the session: the next class
    assert admin.get(url).status_code == 204


def test_without_sign_in_there_is_no_picture() -> None:
    app = make_app(FakeApi())
    app.extensions["attendance_web"].previews.put(preview("cam1", DURING))
    response = app.test_client().get(f"/sessions/{SESSION['id']}/preview.jpg")
    assert response.status_code == 401 and response.data != JPEG


def test_previews_can_be_turned_off() -> None:
    app = make_app(FakeApi(), web_preview_refresh_s=0)
    app.extensions["attendance_web"].previews.put(preview("cam1", DURING))
    client = signed_in_client(app, "admin")
    assert client.get(f"/sessions/{SESSION['id']}/preview.jpg").status_code == 404
    assert 'class="preview"' not in client.get(f"/sessions/{SESSION['id']}/live").get_data(as_text=True)
