"""Issue 9, findings 1 and 2: no request without a valid token gets anything from the API but
401, except `GET /health` and `POST /auth/login`; a cross-site page cannot enroll a face; the
API grants no cross-origin reads.

Every route of the API's own OpenAPI document is walked, so a route added later is covered
without anyone remembering to add it here. Before accounts existed every one of these answered
200/201/204/404/422 to anonymous requests.
"""

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from harness.paths import FACES_DIR
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.common.students import Consent, create_student

pytestmark = [pytest.mark.security, pytest.mark.integration]

BROKER_DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F"
OPEN = {("get", "/health"), ("post", "/auth/login")}
GARBAGE = ["Bearer not-a-token", "Bearer " + "A" * 43, "Basic YWRtaW46YWRtaW4=", "Bearer", "token"]


@pytest.fixture
def app_client(database_url: str) -> Iterator[TestClient]:
    app = create_app(ApiSettings(database_url=database_url, amqp_url=BROKER_DOWN_URL))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def routes(client: TestClient) -> list[tuple[str, str]]:
    document = client.app.openapi()  # type: ignore[attr-defined]
    found = [(method, path) for path, item in document["paths"].items() for method in item]
    assert len(found) >= 25, found
    # A sample of what must be there (admins' roster imports take uploads).
    for route in (
        ("post", "/imports"),
        ("post", "/imports/{import_id}/apply"),
        ("delete", "/imports/{import_id}"),
    ):
        assert route in found, route
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def assert_refused(response: object, what: str) -> None:
    assert response.status_code == 401, (what, response.status_code, response.text)  # type: ignore[attr-defined]
    assert response.json() == {"detail": "not signed in"}, what  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"] == "Bearer", what  # type: ignore[attr-defined]


def test_every_route_but_health_and_login_refuses_no_token_and_bad_tokens(app_client: TestClient) -> None:
    all_routes = routes(app_client)
    assert set(all_routes) >= OPEN
    for method, path in all_routes:
        if (method, path) in OPEN:
            continue
        url = concrete(path)
        body = {"json": {}} if method in {"post", "put", "patch"} else {}
        assert_refused(app_client.request(method, url, **body), f"{method} {path} without a token")
        for header in GARBAGE:
            response = app_client.request(method, url, headers={"Authorization": header}, **body)
            assert_refused(response, f"{method} {path} with {header!r}")


def test_the_open_routes_answer_without_a_token(app_client: TestClient) -> None:
    assert app_client.get("/health").status_code == 503  # the broker is down here, but it answers
    login = app_client.post("/auth/login", json={"username": "nobody", "password": "nothing at all"})
    assert login.status_code == 401
    assert login.json() == {"detail": "wrong username or password"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/openapi.json"),
        ("get", "/docs"),
        ("get", "/redoc"),
        ("get", "/nowhere"),
        ("options", "/students"),
    ],
)
def test_documentation_unknown_paths_and_other_methods_need_a_token_too(
    app_client: TestClient, method: str, path: str
) -> None:
    assert_refused(app_client.request(method, path), f"{method} {path}")


def test_a_cross_site_enrollment_upload_without_a_token_is_refused(
    app_client: TestClient, engine: sa.Engine
) -> None:
    # Finding 2: a page on another site posted a face as multipart with the browser; it was enrolled (201).
    with engine.begin() as connection:
        student = create_student(connection, "S001", "Ada Lovelace", Consent("test"))
    photo = (FACES_DIR / "people" / "eric_clapton" / "2.jpg").read_bytes()
    response = app_client.post(
        f"/students/{student.id}/photos",
        files=[("photos", ("face.jpg", photo, "image/jpeg"))],
        headers={"Origin": "http://evil.example"},
    )
    assert_refused(response, "cross-site upload")
    assert "access-control-allow-origin" not in response.headers
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM face_encodings")).scalar_one() == 0


def test_no_permissive_cors_headers(app_client: TestClient) -> None:
    preflight = app_client.options(
        "/students/1/photos",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 401
    for response in (preflight, app_client.get("/health", headers={"Origin": "http://evil.example"})):
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]
