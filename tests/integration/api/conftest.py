"""Fixtures for the API tests: the app from `create_app`, driven by TestClient (no server),
against a fresh MariaDB database and, where a test needs it, a fresh RabbitMQ vhost.

Every client is signed in as an admin unless asked otherwise (`make_client(..., role=None)`),
so the tests of what the API does run with the rights to do it; `sign_in` gives a client of
the same app signed in with another role.
"""

import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.accounts.passwords import hash_password
from services.api.accounts.tokens import issue_session
from services.api.accounts.users import Role, create_user, find_user
from services.api.app import create_app
from services.api.settings import ApiSettings
from tests.support.db_users import service_db_user

# Nothing listens here: a broker that is down, for tests that must not reach a real one.
BROKER_DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F"

MakeClient = Callable[..., TestClient]
SignIn = Callable[..., TestClient]

PASSWORD = "a long test password"


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    """Argon2 is slow on purpose: hashed once per test run."""
    return hash_password(password)


def add_user(
    engine: sa.Engine, username: str, role: Role, password: str = PASSWORD, courses: tuple[int, ...] = ()
) -> int:
    """A user (teaching these courses), made directly in the database; their id."""
    with engine.begin() as connection:
        user = create_user(connection, username, username.title(), role, password_hash(password))
        for course_id in courses:
            connection.execute(
                sa.text("INSERT INTO course_teachers (course_id, user_id) VALUES (:c, :u)"),
                {"c": course_id, "u": user.id},
            )
    return user.id


def session_token(engine: sa.Engine, username: str, role: Role = "admin") -> str:
    """A session token for this user, made first if missing."""
    with engine.begin() as connection:
        user = find_user(connection, username)
    user_id = user.id if user else add_user(engine, username, role)
    with engine.begin() as connection:
        secret, _expires = issue_session(connection, user_id, role, hours=1)
    return secret


def client_of(app: FastAPI, token: str | None, raise_server_exceptions: bool = True) -> TestClient:
    """Another client of a running app (its lifespan is the first client's), with this token."""
    client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
    client.event_hooks["response"].append(check_response)
    if token:
        client.headers["Authorization"] = f"Bearer {token}"
    return client


def engine_of(client: TestClient) -> sa.Engine:
    engine: sa.Engine = client.app.state.context.engine  # type: ignore[attr-defined]
    return engine


def now() -> datetime:
    return datetime.now(UTC)


def find_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(find_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(find_key(v, key) for v in value)
    return False


def check_response(response: httpx.Response) -> None:
    """Rules every response obeys (docs/architecture.md rule 8, the contract's error format)."""
    response.read()
    content_type = response.headers.get("content-type", "")
    if response.status_code >= 400:
        assert content_type.startswith("application/json"), (
            f"{response.status_code} not JSON: {response.text}"
        )
        detail = response.json().get("detail")
        assert isinstance(detail, str) and detail, f"no readable detail: {response.text}"
    if content_type.startswith("application/json"):
        assert not find_key(response.json(), "encoding"), f"an encoding key leaked: {response.text[:200]}"


@pytest.fixture
def api_database_url(database_url: str) -> Iterator[str]:
    """The test's database as the API's own MySQL user (db_grants: what compose grants it)."""
    with service_db_user(database_url, "api") as url:
        yield url


@pytest.fixture
def make_client(api_database_url: str) -> Iterator[MakeClient]:
    """A client of an app with these settings (DATABASE_URL is the test's, as the API's MySQL
    user, so a query beyond the API's privileges fails here; AMQP_URL must be given)."""
    database_url = api_database_url
    clients: list[TestClient] = []

    def make(
        amqp_url: str, raise_server_exceptions: bool = True, role: Role | None = "admin", **overrides: Any
    ) -> TestClient:
        """Signed in as the user `admin` (or with a user named after `role`; None: anonymous)."""
        settings = ApiSettings(database_url=database_url, amqp_url=amqp_url, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=raise_server_exceptions)
        client.event_hooks["response"].append(check_response)
        client.__enter__()  # runs the app's lifespan; left at teardown, which disposes the engine
        clients.append(client)
        if role is not None:
            token = session_token(engine_of(client), role, role)
            client.headers["Authorization"] = f"Bearer {token}"
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    """The API without a broker: for tests that do not change enrolled faces."""
    return make_client(BROKER_DOWN_URL)


@pytest.fixture
def broker_client(make_client: MakeClient, amqp_url: str) -> TestClient:
    """The API with its own fresh RabbitMQ vhost."""
    return make_client(amqp_url)


@pytest.fixture
def anonymous(make_client: MakeClient) -> TestClient:
    """The API without a broker, and without a token."""
    return make_client(BROKER_DOWN_URL, role=None)


@pytest.fixture
def sign_in(client: TestClient) -> SignIn:
    """`sign_in(role, username=None, courses=())`: a client of `client`'s app signed in as a
    new user with this role (teaching these courses)."""

    def make(role: Role, username: str | None = None, courses: tuple[int, ...] = ()) -> TestClient:
        engine = engine_of(client)
        name = username or f"{role}-{len(find_all_users(engine))}"
        add_user(engine, name, role, courses=courses)
        return client_of(client.app, session_token(engine, name, role))  # type: ignore[arg-type]

    return make


def find_all_users(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT username FROM users")).scalars())
