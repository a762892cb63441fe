"""A fake API behind httpx.MockTransport (no network, no broker) that knows accounts as
docs/auth-contract.md describes them: POST /auth/login hands out a token per sign-in, and every
other call but /health needs `Authorization: Bearer <a live token>`, else 401.

Routes are (method, path) -> handler(request, user); `overrides` replace or add some. Every
request is kept in `requests`, so a test can see which token each call carried.
"""

import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from flask import Flask
from flask.testing import FlaskClient

from services.web.api_client import ApiClient
from services.web.app import create_app
from services.web.hub import LiveHub
from services.web.settings import WebSettings

PASSWORD = "a long enough password"

SESSION = {
    "id": 4,
    "name": "Maths",
    "camera_id": "cam1",
    "course_id": 7,
    "starts_at": "2026-03-02T07:00:00+00:00",
    "ends_at": "2026-03-02T08:00:00+00:00",
    "is_default": False,
}
OTHER_SESSION = {**SESSION, "id": 5, "name": "History", "camera_id": "cam2", "course_id": 8}
ATTENDANCE = {
    "session": SESSION,
    "expected": 1,
    "present": 1,
    "students": [
        {"student_id": 1, "student_number": "S1", "student_name": "Ada <b>", "status": "present",
         "first_seen_at": "2026-03-02T07:03:00+00:00", "last_seen_at": "2026-03-02T07:04:00+00:00"},
    ],
}  # fmt: skip
STUDENT = {
    "id": 1,
    "student_number": "S1",
    "name": "Ada",
    "photo_count": 0,
    "created_at": "2026-03-02T07:00:00Z",
    "consent_at": "2026-03-01T07:00:00Z",
    "consent_by": "admin (user 1)",
    "consent_note": "signed form",
}
USERS: dict[str, dict[str, Any]] = {
    role: {
        "id": number,
        "username": role,
        "display_name": f"{role.title()} Person",
        "role": role,
        "disabled": False,
        "created_at": "2026-03-01T07:00:00Z",
    }
    for number, role in enumerate(("admin", "teacher", "viewer"), start=1)
}
# What GET /sessions/current answers each role, unless a test says otherwise.
CURRENT: dict[str, list[dict[str, Any]]] = {role: [SESSION] for role in USERS}

Route = Callable[[httpx.Request, dict[str, Any]], httpx.Response]


def ok(body: Any, status: int = 200) -> Route:
    return lambda request, user: httpx.Response(status, json=body)


class FakeApi:
    def __init__(
        self,
        overrides: dict[tuple[str, str], Route] | None = None,
        token_hours: float = 12,
        current: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.current = current or CURRENT
        self.routes: dict[tuple[str, str], Route] = {
            ("GET", "/sessions/current"): lambda r, user: httpx.Response(
                200, json=self.current[user["role"]]
            ),
            ("GET", "/sessions/4"): lambda r, user: self._session_of(user, 4),
            ("GET", "/sessions/5"): lambda r, user: self._session_of(user, 5),
            ("GET", "/sessions/4/attendance"): ok(ATTENDANCE),
            ("GET", "/sessions/4/attendance/history"): ok([]),
            ("GET", "/sessions/4/attendance.csv"): lambda r, user: httpx.Response(
                200,
                content=b"attendance_id\n",
                headers={"content-disposition": 'attachment; filename="s4.csv"'},
            ),
            ("GET", "/sessions"): ok([SESSION]),
            ("GET", "/cameras"): ok([{"id": "cam1", "name": "Room 1"}]),
            ("GET", "/students"): ok({"items": [STUDENT], "total": 1}),
            ("GET", "/students/1"): ok(STUDENT),
            ("GET", "/students/1/attendance"): ok([]),
            ("POST", "/students"): ok(STUDENT, 201),
            ("DELETE", "/students/1"): ok(
                {
                    "student_id": 1,
                    "erased": {"photos": 2, "review_crops": 0},
                    "kept": "kept: their attendance",
                }
            ),
            ("POST", "/auth/logout"): self._logout,
            ("GET", "/auth/me"): lambda r, user: httpx.Response(200, json=user),
            **(overrides or {}),
        }
        self.token_hours = token_hours
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self._numbers = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if (request.method, path) == ("POST", "/auth/login"):
            return self._login(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        user = self.tokens.get(token)
        if user is None:
            return httpx.Response(
                401, json={"detail": "not signed in"}, headers={"WWW-Authenticate": "Bearer"}
            )
        route = self.routes.get((request.method, path))
        if route is None:
            return httpx.Response(404, json={"detail": f"no {path} here"})
        return route(request, user)

    def _session_of(self, user: dict[str, Any], session_id: int) -> httpx.Response:
        """A session the person's role may read (one of their current ones here), else 403."""
        for session in self.current[user["role"]]:
            if session["id"] == session_id:
                return httpx.Response(200, json=session)
        if session_id in (SESSION["id"], OTHER_SESSION["id"]):
            return httpx.Response(403, json={"detail": "not a session of your courses"})
        return httpx.Response(404, json={"detail": f"no session {session_id}"})

    def _login(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        user = USERS.get(body.get("username"))
        if user is None or body.get("password") != PASSWORD:
            return httpx.Response(401, json={"detail": "wrong username or password"})
        token = f"token-{user['username']}-{next(self._numbers)}"
        self.tokens[token] = user
        expires = datetime.now(UTC) + timedelta(hours=self.token_hours)
        return httpx.Response(200, json={"token": token, "expires_at": expires.isoformat(), "user": user})

    def _logout(self, request: httpx.Request, user: dict[str, Any]) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        del self.tokens[token]
        return httpx.Response(204)

    def revoke_all(self) -> None:
        """What the API does when an admin disables everyone (or the tokens expire)."""
        self.tokens.clear()

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]


def fake_api(overrides: dict[tuple[str, str], Route] | None = None) -> FakeApi:
    return FakeApi(overrides)


def make_app(handler: Callable[[httpx.Request], httpx.Response], **settings: Any) -> Flask:
    web_settings = WebSettings(timezone="Europe/Paris", web_api_url="http://api.test", **settings)
    api = ApiClient(web_settings.web_api_url, transport=httpx.MockTransport(handler))
    return create_app(web_settings, {"TESTING": True}, api=api, hub=LiveHub())


def form_token(client: FlaskClient, path: str = "/login") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no form token on {path}"
    return match.group(1)


def sign_in(client: FlaskClient, role: str = "admin", password: str = PASSWORD, **extra: str) -> Any:
    """Sign in through the login form, as a person would; the answer to the POST."""
    data = {"csrf_token": form_token(client, "/login"), "username": role, "password": password, **extra}
    return client.post("/login", data=data)


def signed_in_client(app: Flask, role: str = "admin") -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, role)
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def plant_session(client: FlaskClient, role: str = "admin", token: str = "planted", hours: float = 1) -> None:
    """A signed-in session without asking the API (for an API that is down or refuses)."""
    user = USERS[role]
    with client.session_transaction() as session:
        session["auth"] = {
            "token": token,
            "expires_at": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
            "user": {key: user[key] for key in ("id", "username", "display_name", "role")},
        }
        session.permanent = True
