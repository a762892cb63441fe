"""Signing in and out, the guard in front of every page, the cookie, and each person's own token
on every API call (fake API: tests/unit/web/fakes.py)."""

import re
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from services.web import identity
from tests.unit.web.fakes import (
    PASSWORD,
    FakeApi,
    form_token,
    make_app,
    plant_session,
    sign_in,
    signed_in_client,
)


def cookie_of(response: object) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):  # type: ignore[attr-defined]
        cookie.load(header)
    return cookie


def location(response: object) -> str:
    return str(response.headers["Location"])  # type: ignore[attr-defined]


# Signing in


def test_the_login_page_is_a_form_with_a_form_token() -> None:
    client = make_app(FakeApi()).test_client()
    page = client.get("/login")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'name="username"' in text and 'type="password"' in text
    assert 'name="csrf_token"' in text
    assert page.headers["Cache-Control"] == "no-store"
    assert "Sign out" not in text and 'href="/students"' not in text  # no navigation before sign-in


def test_signing_in_keeps_the_token_expiry_and_user_in_the_session() -> None:
    api = FakeApi()
    client = make_app(api).test_client()
    response = sign_in(client, "teacher")
    assert response.status_code == 303
    assert location(response) == "/"
    with client.session_transaction() as session:
        auth = session["auth"]
    assert auth["token"] in api.tokens
    assert auth["user"] == {
        "id": 2,
        "username": "teacher",
        "display_name": "Teacher Person",
        "role": "teacher",
    }
    expires = datetime.fromisoformat(auth["expires_at"])
    assert timedelta(hours=11.9) < expires - datetime.now(UTC) <= timedelta(hours=12)
    page = client.get("/students").get_data(as_text=True)
    assert "Teacher Person" in page and '<span class="role">teacher</span>' in page


def test_a_wrong_password_says_so_and_keeps_the_username() -> None:
    client = make_app(FakeApi()).test_client()
    response = sign_in(client, "admin", password="not it")
    assert response.status_code == 401
    text = response.get_data(as_text=True)
    assert "Wrong username or password." in text
    assert 'value="admin"' in text
    assert "not it" not in text
    with client.session_transaction() as session:
        assert "auth" not in session


def test_too_many_attempts_show_the_apis_wait() -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"detail": "too many failed logins"}, headers={"Retry-After": "42"})

    client = make_app(limited).test_client()
    response = sign_in(client, "admin")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "42"
    assert "try again in 42 s" in response.get_data(as_text=True)


def test_the_browsers_address_goes_to_the_api_for_its_rate_limit() -> None:
    api = FakeApi()
    client = make_app(api).test_client()
    client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    sign_in(client)
    assert api.calls("POST", "/auth/login")[0].headers["X-Forwarded-For"] == "192.0.2.7"


def test_signing_in_starts_a_new_session() -> None:
    """No session fixation: the anonymous session's form token does not survive sign-in."""
    client = make_app(FakeApi()).test_client()
    before = form_token(client, "/login")
    sign_in(client)
    with client.session_transaction() as session:
        assert session.get("csrf_token") != before


def test_a_signed_in_visit_to_login_goes_home() -> None:
    client = signed_in_client(make_app(FakeApi()))
    response = client.get("/login")
    assert response.status_code == 302
    assert location(response) == "/"


# The cookie


def test_the_cookie_is_httponly_lax_and_lasts_as_long_as_the_token() -> None:
    client = make_app(FakeApi()).test_client()
    response = sign_in(client)
    morsel = cookie_of(response)["session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert not morsel["secure"]  # WEB_COOKIE_SECURE defaults to false (plain HTTP on a school LAN)
    expires = datetime.strptime(morsel["expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    with client.session_transaction() as session:
        token_expires = datetime.fromisoformat(session["auth"]["expires_at"])
    assert abs(expires - token_expires) < timedelta(seconds=2)


def test_behind_tls_the_cookie_is_secure() -> None:
    client = make_app(FakeApi(), web_cookie_secure=True).test_client()
    response = sign_in(client)
    assert cookie_of(response)["session"]["secure"] is True


def test_before_sign_in_the_cookie_ends_with_the_browser() -> None:
    client = make_app(FakeApi()).test_client()
    response = client.get("/login")
    assert cookie_of(response)["session"]["expires"] == ""


# The guard


@pytest.mark.parametrize(
    "path", ["/", "/students", "/students/1", "/sessions", "/sessions/4", "/admin/users"]
)
def test_pages_send_anonymous_people_to_login_with_where_they_were(path: str) -> None:
    api = FakeApi()
    response = make_app(api).test_client().get(path)
    assert response.status_code == 302
    target = urlsplit(location(response))
    assert target.path == "/login"
    assert parse_qs(target.query).get("next", ["/"]) == [path]
    assert [r.url.path for r in api.requests] == []  # the API was not even asked


@pytest.mark.parametrize(
    "path", ["/sessions/4/state.json", "/sessions/current.json", "/events", "/sessions/4/attendance.csv"]
)
def test_json_stream_and_download_urls_answer_401(path: str) -> None:
    api = FakeApi()
    response = make_app(api).test_client().get(path)
    assert response.status_code == 401
    assert response.get_json() == {"detail": "not signed in"}
    assert api.requests == []


def test_an_event_stream_request_gets_401_wherever_it_goes() -> None:
    response = make_app(FakeApi()).test_client().get("/", headers={"Accept": "text/event-stream"})
    assert response.status_code == 401


def test_an_anonymous_post_changes_nothing() -> None:
    api = FakeApi()
    client = make_app(api).test_client()
    token = form_token(client, "/login")  # even with a valid form token
    response = client.post("/students/1/delete", data={"csrf_token": token})
    assert response.status_code == 303
    assert location(response) == "/login"  # a POST is not replayed after sign-in
    assert api.calls("DELETE", "/students/1") == []


def test_the_query_string_comes_back_after_sign_in() -> None:
    client = make_app(FakeApi()).test_client()
    target = location(client.get("/students?q=ada&page=2"))
    next_url = parse_qs(urlsplit(target).query)["next"][0]
    assert next_url == "/students?q=ada&page=2"
    response = sign_in(client, next=next_url)
    assert location(response) == "/students?q=ada&page=2"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "evil.example",
        "/login",
        "/logout",
        "",
    ],
)
def test_next_must_be_a_local_path(target: str) -> None:
    assert identity.safe_next(target) is None
    client = make_app(FakeApi()).test_client()
    response = sign_in(client, next=target)
    assert location(response) == "/"


def test_local_paths_are_accepted_as_next() -> None:
    assert identity.safe_next("/sessions/4/live") == "/sessions/4/live"
    assert identity.safe_next("/students?q=%2F%2Fx") == "/students?q=%2F%2Fx"


def test_an_expired_session_signs_out_with_a_message() -> None:
    api = FakeApi()
    client = make_app(api).test_client()
    plant_session(client, hours=-1)
    response = client.get("/students")
    assert urlsplit(location(response)).path == "/login"
    page = client.get(location(response)).get_data(as_text=True)
    assert "Your session has ended" in page
    with client.session_transaction() as session:
        assert "auth" not in session
    assert api.calls("GET", "/students") == []


def test_a_token_the_api_no_longer_accepts_signs_the_person_out() -> None:
    api = FakeApi()
    client = signed_in_client(make_app(api))
    assert client.get("/students").status_code == 200
    api.revoke_all()  # expired at the API, revoked, or the account disabled
    response = client.get("/students?q=x")
    assert response.status_code == 302
    assert location(response) == "/login?next=/students?q%3Dx"
    assert "Your session has ended" in client.get("/login").get_data(as_text=True)
    with client.session_transaction() as session:
        assert "auth" not in session
    assert client.get("/sessions/4/state.json").status_code == 401


def test_the_snapshot_answers_401_when_the_api_refuses_the_token() -> None:
    api = FakeApi()
    client = signed_in_client(make_app(api))
    api.revoke_all()
    response = client.get("/sessions/4/state.json")
    assert response.status_code == 401
    assert response.get_json() == {"detail": "not signed in"}


# Each person's own token


def test_every_api_call_carries_the_signed_in_persons_own_token() -> None:
    api = FakeApi()
    app = make_app(api)
    admin, viewer = signed_in_client(app, "admin"), signed_in_client(app, "viewer")
    tokens = {user["username"]: token for token, user in api.tokens.items()}
    api.requests.clear()
    admin.get("/students")
    viewer.get("/students")
    admin.get("/sessions/4")
    viewer.get("/sessions/4/state.json")
    seen = [(r.url.path, r.headers.get("Authorization")) for r in api.requests]
    assert seen == [
        ("/students", f"Bearer {tokens['admin']}"),
        ("/students", f"Bearer {tokens['viewer']}"),
        ("/sessions/4/attendance", f"Bearer {tokens['admin']}"),
        ("/sessions/4/attendance/history", f"Bearer {tokens['admin']}"),
        ("/sessions/4/attendance", f"Bearer {tokens['viewer']}"),
    ]


def test_the_dashboard_has_no_key_of_its_own() -> None:
    """Without a person, only /health and /auth/login are called, and with no Authorization."""
    api = FakeApi()
    client = make_app(api).test_client()
    client.get("/health")
    sign_in(client)
    bare = [r for r in api.requests if "Authorization" not in r.headers]
    assert [r.url.path for r in bare] == ["/health", "/auth/login"]


# Signing out


def test_logout_needs_the_form_token() -> None:
    api = FakeApi()
    client = signed_in_client(make_app(api))
    response = client.post("/logout")
    assert response.status_code == 400
    assert api.calls("POST", "/auth/logout") == []
    assert client.get("/students").status_code == 200


def test_logout_revokes_the_token_and_clears_the_session() -> None:
    api = FakeApi()
    client = signed_in_client(make_app(api))
    with client.session_transaction() as session:
        token = session["auth"]["token"]
    page = client.get("/students").get_data(as_text=True)
    assert re.search(r'<form class="account inline" method="post" action="/logout">', page)
    response = client.post("/logout", data={"csrf_token": form_token(client, "/students")})
    assert response.status_code == 303
    assert location(response) == "/login"
    assert api.calls("POST", "/auth/logout")[0].headers["Authorization"] == f"Bearer {token}"
    assert token not in api.tokens
    with client.session_transaction() as session:
        assert "auth" not in session
    assert "Signed out." in client.get("/login").get_data(as_text=True)
    assert client.get("/students").status_code == 302


def test_logout_works_even_when_the_api_is_down() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = make_app(refuse).test_client()
    plant_session(client)
    with client.session_transaction() as session:
        session["csrf_token"] = "t"
    response = client.post("/logout", data={"csrf_token": "t"})
    assert response.status_code == 303
    with client.session_transaction() as session:
        assert "auth" not in session


def test_an_anonymous_logout_goes_to_login() -> None:
    response = make_app(FakeApi()).test_client().post("/logout")
    assert response.status_code == 303
    assert location(response) == "/login"


def test_the_password_is_never_in_the_cookie() -> None:
    client = make_app(FakeApi()).test_client()
    response = sign_in(client)
    assert PASSWORD not in str(cookie_of(response))
    with client.session_transaction() as session:
        assert PASSWORD not in repr(dict(session))
