"""Admin pages (users, API tokens, course teachers, audit log): what they send the API, with the
admin's own token, and what they show."""

import json
import re
from typing import Any

import httpx
from flask.testing import FlaskClient

from tests.unit.web.fakes import USERS, FakeApi, form_token, make_app, signed_in_client

TOKENS = [
    {"id": 3, "name": "report script", "role": "viewer", "created_by": 1, "created_at": "2026-03-01T07:00:00Z",
     "last_used_at": None, "revoked_at": None},
    {"id": 2, "name": "old sync", "role": "admin", "created_by": 1, "created_at": "2026-02-01T07:00:00Z",
     "last_used_at": "2026-02-02T07:00:00Z", "revoked_at": "2026-02-03T07:00:00Z"},
]  # fmt: skip
COURSES = [
    {"id": 7, "code": "MATH1", "name": "Maths", "student_ids": [1], "teacher_ids": []},
    {"id": 8, "code": "HIST1", "name": "History", "student_ids": [], "teacher_ids": [2]},
]


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


class AdminApi(FakeApi):
    def __init__(self) -> None:
        super().__init__(
            {
                ("GET", "/users"): lambda r, user: httpx.Response(200, json=list(USERS.values())),
                ("POST", "/users"): self.create_user,
                ("PATCH", "/users/2"): lambda r, user: httpx.Response(
                    200, json={**USERS["teacher"], **body(r)}
                ),
                ("GET", "/tokens"): lambda r, user: httpx.Response(200, json=TOKENS),
                ("POST", "/tokens"): lambda r, user: httpx.Response(
                    201, json={**TOKENS[0], "id": 4, **body(r), "token": "s3cr3t-token-value"}
                ),
                ("DELETE", "/tokens/3"): lambda r, user: httpx.Response(204),
                ("GET", "/courses"): lambda r, user: httpx.Response(200, json=COURSES),
                ("PUT", "/courses/7/teachers"): lambda r, user: httpx.Response(
                    200, json={**COURSES[0], "teacher_ids": body(r)["user_ids"]}
                ),
                ("GET", "/audit"): self.audit,
            }
        )

    def create_user(self, request: httpx.Request, user: dict[str, Any]) -> httpx.Response:
        wanted = body(request)
        if wanted["username"] in USERS:
            return httpx.Response(409, json={"detail": f"username {wanted['username']} is taken"})
        return httpx.Response(
            201, json={"id": 9, "disabled": False, "created_at": "2026-03-02T07:00:00Z", **wanted}
        )

    def audit(self, request: httpx.Request, user: dict[str, Any]) -> httpx.Response:
        page = int(request.url.params["page"])
        items = [
            {"id": 100 - page, "at": "2026-03-02T07:00:00Z", "actor": "user:admin", "action": "student.erase",
             "target_type": "student", "target_id": 5, "detail": "encodings and photos"},
        ]  # fmt: skip
        return httpx.Response(200, json={"items": items, "total": 120, "page": page, "page_size": 50})


def admin() -> tuple[FlaskClient, AdminApi]:
    api = AdminApi()
    return signed_in_client(make_app(api), "admin"), api


def admin_token(api: FakeApi) -> str:
    return next(token for token, user in api.tokens.items() if user["role"] == "admin")


def test_the_users_page_lists_users_and_offers_every_role() -> None:
    client, _ = admin()
    page = client.get("/admin/users").get_data(as_text=True)
    for user in USERS.values():
        assert f'data-user-id="{user["id"]}"' in page
    assert re.findall(r'<select id="role" name="role">(.*?)</select>', page, re.S)[0].count("<option") == 3
    # No one disables themselves by mistake: no button on the admin's own line.
    assert "/admin/users/1/disable" not in page
    assert "/admin/users/2/disable" in page


def test_creating_a_user_sends_role_and_password_and_never_shows_the_password() -> None:
    client, api = admin()
    data = {
        "csrf_token": form_token(client, "/admin/users"),
        "username": "grace",
        "display_name": "Grace Hopper",
        "role": "teacher",
        "password": "twelve chars long",
    }
    response = client.post("/admin/users", data=data)
    assert response.status_code == 303
    sent = api.calls("POST", "/users")[0]
    assert body(sent) == {
        "username": "grace",
        "display_name": "Grace Hopper",
        "role": "teacher",
        "password": "twelve chars long",
    }
    assert sent.headers["Authorization"] == f"Bearer {admin_token(api)}"
    page = client.get("/admin/users").get_data(as_text=True)
    assert "Added grace (teacher)." in page
    assert "twelve chars long" not in page


def test_a_short_password_or_a_taken_name_keeps_the_form() -> None:
    client, api = admin()
    token = form_token(client, "/admin/users")
    short = client.post(
        "/admin/users", data={"csrf_token": token, "username": "x", "role": "viewer", "password": "short"}
    )
    assert short.status_code == 422
    assert "at least 12 characters" in short.get_data(as_text=True)
    assert api.calls("POST", "/users") == []
    taken = client.post(
        "/admin/users",
        data={"csrf_token": token, "username": "viewer", "role": "viewer", "password": "x" * 12},
    )
    assert taken.status_code == 409
    text = taken.get_data(as_text=True)
    assert "User not added: username viewer is taken" in text
    assert 'value="viewer"' in text


def test_disable_reset_password_and_change_role_are_patches() -> None:
    client, api = admin()
    token = form_token(client, "/admin/users")
    assert client.post("/admin/users/2/disable", data={"csrf_token": token}).status_code == 303
    assert (
        client.post(
            "/admin/users/2/password", data={"csrf_token": token, "password": "a new password!"}
        ).status_code
        == 303
    )
    assert client.post("/admin/users/2/role", data={"csrf_token": token, "role": "viewer"}).status_code == 303
    assert [body(r) for r in api.calls("PATCH", "/users/2")] == [
        {"disabled": True},
        {"password": "a new password!"},
        {"role": "viewer"},
    ]
    assert "is now viewer" in client.get("/admin/users").get_data(as_text=True)


def test_an_admin_cannot_disable_themselves_here() -> None:
    client, api = admin()
    client.post("/admin/users/1/disable", data={"csrf_token": form_token(client, "/admin/users")})
    assert api.calls("PATCH", "/users/1") == []


def test_a_new_token_is_shown_once_and_never_kept_in_the_cookie() -> None:
    client, api = admin()
    response = client.post(
        "/admin/tokens",
        data={"csrf_token": form_token(client, "/admin/tokens"), "name": "nightly export", "role": "viewer"},
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    assert '<code class="secret" id="new-token">s3cr3t-token-value</code>' in response.get_data(as_text=True)
    assert body(api.calls("POST", "/tokens")[0]) == {"name": "nightly export", "role": "viewer"}
    assert "s3cr3t" not in " ".join(response.headers.getlist("Set-Cookie"))
    with client.session_transaction() as session:
        assert "s3cr3t" not in repr(dict(session))
    assert "s3cr3t" not in client.get("/admin/tokens").get_data(as_text=True)


def test_tokens_are_listed_and_revoked() -> None:
    client, api = admin()
    page = client.get("/admin/tokens").get_data(as_text=True)
    assert "report script" in page and "revoked 2026-02-03" in page
    assert "/admin/tokens/3/revoke" in page and "/admin/tokens/2/revoke" not in page  # already revoked
    response = client.post("/admin/tokens/3/revoke", data={"csrf_token": form_token(client, "/admin/tokens")})
    assert response.status_code == 303
    assert len(api.calls("DELETE", "/tokens/3")) == 1


def test_course_teachers_are_chosen_among_teachers() -> None:
    client, api = admin()
    page = client.get("/admin/courses").get_data(as_text=True)
    assert 'name="user_ids" value="2"' in page  # the teacher
    assert 'name="user_ids" value="3"' not in page  # a viewer teaches nothing
    assert re.search(r'value="2" checked', page)  # HIST1 already has them
    token = form_token(client, "/admin/courses")
    response = client.post("/admin/courses/7/teachers", data={"csrf_token": token, "user_ids": ["2"]})
    assert response.status_code == 303
    assert body(api.calls("PUT", "/courses/7/teachers")[0]) == {"user_ids": [2]}
    assert "MATH1 now has 1 teacher(s)." in client.get("/admin/courses").get_data(as_text=True)
    client.post("/admin/courses/7/teachers", data={"csrf_token": token})  # none ticked: no teacher
    assert body(api.calls("PUT", "/courses/7/teachers")[1]) == {"user_ids": []}


def test_the_audit_log_is_paged() -> None:
    client, api = admin()
    page = client.get("/admin/audit?page=2").get_data(as_text=True)
    assert "student.erase" in page and "Page 2 of 3" in page
    assert "/admin/audit?page=1" in page and "/admin/audit?page=3" in page
    assert api.calls("GET", "/audit")[0].url.params["page"] == "2"
    client.get(f"/admin/audit?page={10**20}")  # not sent on as is
    assert api.calls("GET", "/audit")[1].url.params["page"] == "1000000"
