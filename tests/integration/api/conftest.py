"""Fixtures for the API tests: the app from `create_app`, driven by TestClient (no server),
against a fresh MariaDB database and, where a test needs it, a fresh RabbitMQ vhost."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.api.settings import ApiSettings

# Nothing listens here: a broker that is down, for tests that must not reach a real one.
BROKER_DOWN_URL = "amqp://guest:guest@127.0.0.1:1/%2F"

MakeClient = Callable[..., TestClient]


def find_key(value: Any, key: str) -> bool:
    if isinstance(value, dict):
        return key in value or any(find_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(find_key(v, key) for v in value)
    return False


def check_response(response: httpx.Response) -> None:
    """Rules every response obeys (ARCHITECTURE.md rule 8, the contract's error format)."""
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
def make_client(database_url: str) -> Iterator[MakeClient]:
    """A client of an app with these settings (DATABASE_URL is the test's; AMQP_URL must be given)."""
    clients: list[TestClient] = []

    def make(amqp_url: str, raise_server_exceptions: bool = True, **overrides: Any) -> TestClient:
        settings = ApiSettings(database_url=database_url, amqp_url=amqp_url, **overrides)
        client = TestClient(create_app(settings), raise_server_exceptions=raise_server_exceptions)
        client.event_hooks["response"].append(check_response)
        client.__enter__()  # runs the app's lifespan; left at teardown, which disposes the engine
        clients.append(client)
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
