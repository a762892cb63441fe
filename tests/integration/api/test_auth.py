"""Signing in and out, tokens and accounts (docs/auth-contract.md), on the real MariaDB."""

import hashlib
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.integration.api.conftest import (
    BROKER_DOWN_URL,
    PASSWORD,
    MakeClient,
    SignIn,
    add_user,
    check_response,
    client_of,
    engine_of,
    now,
)

pytestmark = pytest.mark.integration

USER_KEYS = {"id", "username", "display_name", "role", "disabled", "created_at"}


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, object]:
    response = client.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_not_signed_in(response: object) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.json() == {"detail": "not signed in"}  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"] == "Bearer"  # type: ignore[attr-defined]


def test_login_me_and_logout(anonymous: TestClient) -> None:
    add_user(engine_of(anonymous), "grace", "teacher")
    body = login(anonymous, "grace")
    assert set(body) == {"token", "expires_at", "user"}
    user = body["user"]
    assert isinstance(user, dict) and set(user) == USER_KEYS
    assert (user["username"], user["role"], user["disabled"]) == ("grace", "teacher", False)
    expires = datetime.fromisoformat(str(body["expires_at"]))
    assert timedelta(hours=11, minutes=59) < expires - now() <= timedelta(hours=12)

    me = anonymous.get("/auth/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json() == user
    assert anonymous.post("/auth/logout", headers=bearer(body["token"])).status_code == 204
    assert_not_signed_in(anonymous.get("/auth/me", headers=bearer(body["token"])))


def test_the_username_is_matched_whatever_its_case(anonymous: TestClient) -> None:
    add_user(engine_of(anonymous), "Grace", "viewer")
    assert login(anonymous, "grace")["user"]["username"] == "Grace"  # type: ignore[index]


def test_session_hours_come_from_the_settings(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, role=None, api_session_hours=2)
    add_user(engine_of(client), "grace", "viewer")
    expires = datetime.fromisoformat(str(login(client, "grace")["expires_at"]))
    assert expires - now() <= timedelta(hours=2)


@pytest.mark.parametrize(("username", "password"), [("grace", "not her password"), ("nobody", PASSWORD)])
def test_a_wrong_password_or_unknown_user_gets_the_same_401(
    anonymous: TestClient, username: str, password: str
) -> None:
    add_user(engine_of(anonymous), "grace", "viewer")
    response = anonymous.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"detail": "wrong username or password"}


def test_failed_logins_are_limited_per_username_and_per_address(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, role=None, api_login_attempts=3, api_login_window_s=60)
    add_user(engine_of(client), "grace", "viewer")
    add_user(engine_of(client), "alan", "viewer")
    for _ in range(3):
        wrong = client.post("/auth/login", json={"username": "grace", "password": "guess guess guess"})
        assert wrong.status_code == 401
    # Past the limit even the right password is refused, before it is checked.
    refused = client.post("/auth/login", json={"username": "grace", "password": PASSWORD})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["detail"].startswith("too many failed logins; try again in ")

    # The same address, another username: the address is past its limit too.
    same_address = client.post("/auth/login", json={"username": "alan", "password": PASSWORD})
    assert same_address.status_code == 429
    # Another address: alan may sign in, grace may not (her username is past its limit).
    elsewhere = TestClient(client.app, client=("192.0.2.7", 1234))
    elsewhere.event_hooks["response"].append(check_response)
    assert elsewhere.post("/auth/login", json={"username": "alan", "password": PASSWORD}).status_code == 200
    assert elsewhere.post("/auth/login", json={"username": "grace", "password": PASSWORD}).status_code == 429


def test_successful_logins_are_not_limited(make_client: MakeClient) -> None:
    client = make_client(BROKER_DOWN_URL, role=None, api_login_attempts=2)
    add_user(engine_of(client), "grace", "viewer")
    for _ in range(4):
        login(client, "grace")


def test_a_disabled_user_cannot_sign_in_and_is_signed_out(client: TestClient) -> None:
    user_id = add_user(engine_of(client), "grace", "teacher")
    token = login(client, "grace")["token"]
    response = client.patch(f"/users/{user_id}", json={"disabled": True})
    assert response.status_code == 200
    assert response.json()["disabled"] is True
    assert_not_signed_in(client.get("/auth/me", headers=bearer(token)))
    refused = client.post("/auth/login", json={"username": "grace", "password": PASSWORD})
    assert refused.status_code == 401
    assert refused.json() == {"detail": "wrong username or password"}


def test_a_new_password_signs_the_user_out_and_replaces_the_old(client: TestClient) -> None:
    user_id = add_user(engine_of(client), "grace", "viewer")
    token = login(client, "grace")["token"]
    assert client.patch(f"/users/{user_id}", json={"password": "a brand new passphrase"}).status_code == 200
    assert_not_signed_in(client.get("/cameras", headers=bearer(token)))
    assert client.post("/auth/login", json={"username": "grace", "password": PASSWORD}).status_code == 401
    login(client, "grace", "a brand new passphrase")


def test_an_expired_token_is_refused(client: TestClient) -> None:
    add_user(engine_of(client), "grace", "viewer")
    token = login(client, "grace")["token"]
    assert client.get("/cameras", headers=bearer(token)).status_code == 200
    with engine_of(client).begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE auth_tokens SET expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE token_sha256 = :h"
            ),
            {"h": hashlib.sha256(str(token).encode()).hexdigest()},
        )
    assert_not_signed_in(client.get("/cameras", headers=bearer(token)))


def test_a_revoked_session_token_is_refused(client: TestClient) -> None:
    add_user(engine_of(client), "grace", "viewer")
    token = login(client, "grace")["token"]
    client.post("/auth/logout", headers=bearer(token))
    assert_not_signed_in(client.get("/cameras", headers=bearer(token)))


def test_users_are_created_listed_and_changed_by_an_admin(client: TestClient) -> None:
    response = client.post(
        "/users",
        json={"username": "grace", "display_name": "Grace Hopper", "role": "teacher", "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == USER_KEYS
    assert "password" not in response.text and "argon2" not in response.text
    assert [u["username"] for u in client.get("/users").json()] == ["admin", "grace"]
    changed = client.patch(f"/users/{created['id']}", json={"role": "viewer", "display_name": "G. Hopper"})
    assert (changed.json()["role"], changed.json()["display_name"]) == ("viewer", "G. Hopper")
    assert client.patch("/users/999", json={"role": "viewer"}).status_code == 404


def test_a_duplicate_username_is_a_conflict_and_a_short_password_refused(client: TestClient) -> None:
    body = {"username": "grace", "display_name": "Grace", "role": "viewer", "password": PASSWORD}
    assert client.post("/users", json=body).status_code == 201
    duplicate = client.post("/users", json={**body, "username": "GRACE"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "username GRACE is already taken"}
    short = client.post("/users", json={**body, "username": "alan", "password": "eleven char"})
    assert short.status_code == 422
    assert short.json()["detail"] == "password: String should have at least 12 characters"


def test_the_only_admin_cannot_be_demoted_or_disabled(client: TestClient) -> None:
    admin_id = client.get("/auth/me").json()["id"]
    for change in ({"role": "viewer"}, {"disabled": True}):
        response = client.patch(f"/users/{admin_id}", json=change)
        assert response.status_code == 409
        assert "only enabled admin" in response.json()["detail"]
    assert client.get("/auth/me").json()["role"] == "admin"


def test_an_api_token_is_shown_once_stored_hashed_and_revocable(client: TestClient) -> None:
    response = client.post("/tokens", json={"name": "nightly export", "role": "viewer"})
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created.pop("token")
    assert len(secret) >= 43
    assert created["created_by"] == "admin" and created["revoked_at"] is None
    listed = client.get("/tokens").json()
    assert listed == [created]
    assert secret not in client.get("/tokens").text

    with engine_of(client).connect() as connection:
        rows = [
            dict(r._mapping)
            for r in connection.execute(sa.text("SELECT * FROM auth_tokens WHERE kind = 'api'"))
        ]
    assert len(rows) == 1
    assert rows[0]["token_sha256"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in rows[0].values())

    program = client_of(client.app, secret)  # type: ignore[arg-type]
    assert program.get("/cameras").status_code == 200
    forbidden = program.post("/students", json={"student_number": "S1", "name": "Ada"})
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "this needs the admin role; you are a viewer"}
    me = program.get("/auth/me")
    assert me.status_code == 403
    assert client.get("/tokens").json()[0]["last_used_at"] is not None

    assert client.delete(f"/tokens/{created['id']}").status_code == 204
    assert_not_signed_in(program.get("/cameras"))
    assert client.get("/tokens").json()[0]["revoked_at"] is not None
    assert client.delete(f"/tokens/{created['id']}").status_code == 204  # again: no change
    assert client.delete("/tokens/999").status_code == 404


def test_an_api_token_is_an_admin_or_a_viewer(client: TestClient) -> None:
    response = client.post("/tokens", json={"name": "x", "role": "teacher"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("role: Input should be 'admin' or 'viewer'")


@pytest.mark.parametrize("role", ["viewer", "teacher"])
def test_only_admins_manage_users_tokens_and_read_the_audit_log(sign_in: SignIn, role: str) -> None:
    other = sign_in(role)
    for method, path, body in [
        ("GET", "/users", None),
        ("POST", "/users", {"username": "x", "display_name": "X", "role": "admin", "password": PASSWORD}),
        ("PATCH", "/users/1", {"role": "admin"}),
        ("GET", "/tokens", None),
        ("POST", "/tokens", {"name": "x", "role": "admin"}),
        ("DELETE", "/tokens/1", None),
        ("GET", "/audit", None),
    ]:
        response = other.request(method, path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["detail"] == f"this needs the admin role; you are a {role}"
