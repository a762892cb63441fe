"""The dashboard in Debian's headless Chromium, against the real API and a real broker.

One stack per test session (a fresh MySQL database and RabbitMQ vhost, `python -m
services.api` and `python -m services.web` as real processes): starting them costs seconds
and the 2-core machine is shared. Tests stay independent by using their own students,
cameras and sessions.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from harness.paths import ROOT
from harness.processes import ServiceProcess, free_port
from harness.servers import fresh_database, fresh_vhost, remove_database, remove_vhost
from tests.support.amqp import TestBroker
from tests.support.browser import wait_healthy
from tests.support.proxy import FlakyProxy

# Dates shown in a zone other than UTC prove the dashboard converts them.
TIMEZONE = "Europe/Paris"

pytestmark = pytest.mark.browser


@dataclass
class Stack:
    api_url: str
    web_url: str
    amqp_url: str
    database_url: str
    api: httpx.Client
    # The dashboard reaches RabbitMQ through this, so a test can take the broker away from it alone.
    broker_proxy: FlakyProxy

    def add_student(self, name: str) -> dict[str, Any]:
        number = f"T{uuid.uuid4().hex[:8]}"
        response = self.api.post("/students", json={"student_number": number, "name": name})
        response.raise_for_status()
        return dict(response.json())

    def add_session(self, name: str, camera_id: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        body = {
            "name": name,
            "camera_id": camera_id,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        }
        response = self.api.post("/sessions", json=body)
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    if not (ROOT / "services" / "api" / "__main__.py").exists():
        pytest.fail("the browser tests need the real API (services/api/__main__.py)")
    database_url = fresh_database()
    vhost, amqp_url = fresh_vhost()
    api_port, web_port = free_port(), free_port()
    broker_address = urlsplit(amqp_url)
    proxy = FlakyProxy(broker_address.hostname or "127.0.0.1", broker_address.port or 5672)
    proxied = broker_address._replace(
        netloc=f"{broker_address.username}:{broker_address.password}@127.0.0.1:{proxy.port}"
    )
    common = {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "TIMEZONE": TIMEZONE, "LOG_LEVEL": "INFO"}
    api = ServiceProcess(
        "services.api", {**common, "API_HOST": "127.0.0.1", "API_PORT": str(api_port)}, "browser-api"
    )
    web = ServiceProcess(
        "services.web",
        {
            **common,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(web_port),
            "WEB_THREADS": "16",
            "WEB_API_URL": f"http://127.0.0.1:{api_port}",
            "AMQP_URL": urlunsplit(proxied),
        },
        "browser-web",
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
    try:
        wait_healthy(f"http://127.0.0.1:{api_port}/health", api, "the API")
        wait_healthy(f"http://127.0.0.1:{web_port}/health", web, "the dashboard")
        yield Stack(
            api_url=f"http://127.0.0.1:{api_port}",
            web_url=f"http://127.0.0.1:{web_port}",
            amqp_url=amqp_url,
            database_url=database_url,
            api=client,
            broker_proxy=proxy,
        )
    finally:
        client.close()
        web.stop()
        api.stop()
        proxy.close()
        remove_vhost(vhost)
        remove_database(database_url)


@pytest.fixture
def broker(stack: Stack) -> Iterator[TestBroker]:
    broker = TestBroker(stack.amqp_url)
    yield broker
    broker.close()
