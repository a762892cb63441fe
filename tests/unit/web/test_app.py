"""Pages and JSON routes with a fake API behind httpx.MockTransport (no network, no broker),
signed in as an admin (tests/unit/web/fakes.py; sign-in itself is tested in test_auth.py)."""

import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from services.common.settings import describe
from services.web.hub import LiveHub
from services.web.settings import WebSettings
from tests.unit.web.fakes import STUDENT, fake_api, form_token, make_app, ok, plant_session, signed_in_client


@pytest.fixture
def client() -> Iterator[FlaskClient]:
    yield signed_in_client(make_app(fake_api()))


def csrf(client: FlaskClient, path: str = "/students") -> str:
    return form_token(client, path)


def test_live_page_shows_the_current_session_in_local_time(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'data-session-id="4"' in page
    assert "present 08:03" in page
    assert "Ada &lt;b&gt;" in page  # names are escaped
    assert 'src="/static/live.js"' in page
    assert "http" not in re.sub(r'href="[^"]*"', "", page.split("<body")[0])  # nothing from elsewhere


def test_pages_may_only_load_from_the_dashboard_itself(client: FlaskClient) -> None:
    policy = client.get("/students").headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy


def test_state_json_is_the_snapshot(client: FlaskClient) -> None:
    response = client.get("/sessions/4/state.json")
    assert response.headers["Cache-Control"] == "no-store"
    state: dict[str, Any] = response.get_json()
    assert (state["present"], state["expected"], state["students"][0]["label"]) == (1, 1, "present 08:03")
    assert client.get("/sessions/current.json").get_json() == {"session_ids": [4]}


def test_api_down_shows_where_it_was_expected_not_a_500() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = make_app(refuse).test_client()
    plant_session(client)  # signed in before the API went away
    page = client.get("/students")
    assert page.status_code == 503
    assert "API unreachable at http://api.test (Connection refused)" in page.get_data(as_text=True)
    assert 'http-equiv="refresh"' in page.get_data(as_text=True)
    snapshot = client.get("/sessions/4/state.json")
    assert snapshot.status_code == 503
    assert snapshot.get_json()["detail"].startswith("API unreachable at")
    health = client.get("/health").get_json()
    assert health["status"] == "degraded"
    assert health["api"].startswith("unreachable")


def test_an_unknown_session_is_a_404_with_the_apis_reason(client: FlaskClient) -> None:
    response = client.get("/sessions/99")
    assert response.status_code == 404
    assert "no /sessions/99/attendance here" in response.get_data(as_text=True)


def test_csv_is_served_by_the_dashboard(client: FlaskClient) -> None:
    response = client.get("/sessions/4/attendance.csv")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="s4.csv"'
    assert response.data == b"attendance_id\n"


def test_posts_need_the_form_token(client: FlaskClient) -> None:
    refused = client.post("/students/1/delete")
    assert refused.status_code == 400
    assert "expired" in refused.get_data(as_text=True)
    done = client.post("/students/1/delete", data={"csrf_token": csrf(client)})
    assert done.status_code == 302
    assert "Deleted Ada" in client.get("/students").get_data(as_text=True)


def test_refused_photos_show_their_reasons_next_to_their_names() -> None:
    body = {
        "detail": "noise.jpg: no face found",
        "accepted": [],
        "rejected": [{"filename": "noise.jpg", "reason": "no face found"}],
        "photo_count": 0,
    }
    app = make_app(fake_api({("POST", "/students/1/photos"): lambda r, user: httpx.Response(422, json=body)}))
    client = signed_in_client(app)
    data = {
        "csrf_token": csrf(client),
        "student_number": "S1",
        "name": "Ada",
        "photos": [(io.BytesIO(b"x"), "noise.jpg"), (io.BytesIO(b""), "")],
    }
    page = client.post("/students", data=data, content_type="multipart/form-data").get_data(as_text=True)
    assert re.search(
        r'<span class="filename">noise\.jpg</span><span class="reason">no face found</span>', page
    )
    assert "1 of 1 photo(s) refused" in page


def test_a_taken_number_keeps_the_form() -> None:
    app = make_app(
        fake_api(
            {
                ("POST", "/students"): lambda r, user: httpx.Response(
                    409, json={"detail": "number S1 is taken"}
                )
            }
        )
    )
    client = signed_in_client(app)
    data = {"csrf_token": csrf(client), "student_number": "S1", "name": "Ada Again"}
    response = client.post("/students", data=data)
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Student not added: number S1 is taken" in page
    assert 'value="Ada Again"' in page


def test_events_stream_starts_with_the_broker_status(client: FlaskClient) -> None:
    response = client.get("/events", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert next(chunks) == b"retry: 2000\n\n"
    assert next(chunks).startswith(b'event: broker\ndata: {"connected":false')
    response.close()


def test_too_many_live_pages_is_a_503_the_page_retries() -> None:
    app = make_app(fake_api())
    hub: LiveHub = app.extensions["attendance_web"].hub
    for _ in range(hub.max_clients):
        hub.subscribe()
    response = signed_in_client(app).get("/events")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"


def test_the_secret_key_is_never_shown() -> None:
    settings = WebSettings(web_secret_key="very-secret")
    assert "very-secret" not in describe(settings)
    assert settings.max_live_clients == settings.web_threads - 4


def test_a_long_list_links_its_neighbouring_pages_and_keeps_the_search() -> None:
    students = ok({"items": [STUDENT], "total": 120})
    client = signed_in_client(make_app(fake_api({("GET", "/students"): students})))
    html = client.get("/students?q=ada&page=2").get_data(as_text=True)
    assert "Page 2 of 3" in html
    assert 'href="/students?page=1&amp;q=ada"' in html and 'href="/students?page=3&amp;q=ada"' in html
    assert "Page 1 of 1" not in signed_in_client(make_app(fake_api())).get("/students").get_data(as_text=True)
