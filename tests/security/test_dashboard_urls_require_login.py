"""Finding 1 (no authentication anywhere), the dashboard's side: every URL rule of the Flask app,
asked anonymously with each of its methods, is sent to /login or answers 401/403, except
/login, /health and the static files. Behind it, an API that would answer anything: if a page
reached it, the page would succeed, and this test would fail (as it did before the sign-in
guard, when all of them answered 200 or 302 to somewhere else).
"""

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from flask import Flask
from werkzeug.routing import Rule

from services.web.api_client import ApiClient
from services.web.app import create_app
from services.web.hub import LiveHub
from services.web.settings import WebSettings

OPEN = {"/login", "/health", "/static/<path:filename>"}
SAMPLE_VALUES = {"int": "1", "path": "style.css", "string": "x"}
ANYTHING = {
    "id": 1,
    "items": [],
    "total": 0,
    "session": {"id": 1, "name": "x", "camera_id": "c", "starts_at": None, "ends_at": None},
    "students": [],
    "status": "ok",
}


class AnsweringApi:
    """Answers every call with success, so only the dashboard's own guard stands in the way."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        lists = (
            "/current",
            "/sessions",
            "/cameras",
            "/users",
            "/tokens",
            "/courses",
            "/students/1/attendance",
        )
        return httpx.Response(200, json=[] if request.url.path.endswith(lists) else ANYTHING)


@pytest.fixture
def app_and_api() -> Iterator[tuple[Flask, AnsweringApi]]:
    api = AnsweringApi()
    settings = WebSettings(web_api_url="http://api.test")
    client = ApiClient(settings.web_api_url, transport=httpx.MockTransport(api))
    # A page that breaks answers 500 like in production (not an exception): counted as let through.
    yield (
        create_app(settings, {"TESTING": True, "PROPAGATE_EXCEPTIONS": False}, api=client, hub=LiveHub()),
        api,
    )


def sample_url(rule: Rule) -> str:
    return re.sub(
        r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>",
        lambda m: SAMPLE_VALUES.get(m.group(1) or "string", "x"),
        rule.rule,
    )


def rules(app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    return found


def test_the_walk_covers_the_whole_dashboard(app_and_api: tuple[Flask, AnsweringApi]) -> None:
    app, _ = app_and_api
    walked = {rule for _, rule in rules(app)}
    # A sample of what must be there: if a blueprint went missing, the walk would prove little.
    for rule in ("/", "/events", "/students", "/students/<int:student_id>/delete", "/sessions/<int:session_id>/state.json",
                 "/sessions/<int:session_id>/attendance.csv", "/admin/users", "/admin/tokens", "/admin/audit", "/logout",
                 "/reports", "/reports/courses/<int:course_id>/terms/<int:term_id>",
                 "/reports/courses/<int:course_id>/terms/<int:term_id>/chart.svg",
                 "/reports/courses/<int:course_id>/terms/<int:term_id>.csv", "/reports/sessions/<int:session_id>.csv",
                 "/reports/students/<int:student_id>", "/reports/students/<int:student_id>.csv",
                 "/imports", "/imports/<int:import_id>", "/imports/<int:import_id>/state.json",
                 "/imports/<int:import_id>/apply", "/imports/<int:import_id>/discard"):  # fmt: skip
        assert rule in walked


def test_every_dashboard_url_requires_a_sign_in(app_and_api: tuple[Flask, AnsweringApi]) -> None:
    app, api = app_and_api
    client = app.test_client()
    # A valid form token in the anonymous session, so a POST is refused for want of a sign-in,
    # not for want of a form token.
    with client.session_transaction() as session:
        session["csrf_token"] = "anonymous-form-token"
    let_through = []
    for method, rule_text in rules(app):
        if rule_text in OPEN:
            continue
        rule = next(r for r in app.url_map.iter_rules() if r.rule == rule_text)
        url = sample_url(rule)
        response = client.open(url, method=method, data={"csrf_token": "anonymous-form-token"})
        if response.status_code in (401, 403):
            continue
        target = urlsplit(response.headers.get("Location", ""))
        if response.status_code in (302, 303) and target.path == "/login" and not target.netloc:
            continue
        let_through.append(f"{method} {url}: {response.status_code} {response.headers.get('Location', '')}")
    assert let_through == []
    assert [r for r in api.requests if r.url.path != "/health"] == []


def test_only_login_health_and_static_files_are_open(app_and_api: tuple[Flask, AnsweringApi]) -> None:
    app, _ = app_and_api
    client = app.test_client()
    assert client.get("/login").status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/no/such/page").status_code == 302  # unknown URLs say nothing either


def test_a_forged_or_foreign_cookie_is_not_a_sign_in(app_and_api: tuple[Flask, AnsweringApi]) -> None:
    app, api = app_and_api
    other = create_app(
        WebSettings(web_secret_key="another dashboard's key"), {"TESTING": True}, hub=LiveHub()
    )
    auth = {"token": "t", "expires_at": "2999-01-01T00:00:00+00:00", "user": {"id": 1, "role": "admin"}}
    serializer = other.session_interface.get_signing_serializer(other)  # type: ignore[attr-defined]
    cookie = serializer.dumps({"auth": auth})
    client = app.test_client()
    client.set_cookie("session", cookie)
    assert client.get("/students").status_code == 302
    assert client.get("/sessions/1/state.json").status_code == 401
    assert api.requests == []
