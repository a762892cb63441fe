"""The dashboard in Debian's headless Chromium, against the real API and a real broker.

One stack per test session (a fresh MySQL database and RabbitMQ vhost, `python -m
services.api` and `python -m services.web` as real processes): starting them costs seconds
and the 2-core machine is shared. Tests stay independent by using their own students,
cameras, sessions and users.

The first admin is made as the README says, with `python -m services.api.accounts
create-admin`; `stack.api` is signed in as them (a session token), and `admin_page` is a page
signed in through the login form.
"""

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from playwright.sync_api import Page, expect

from harness.paths import ARTIFACTS, ROOT
from harness.processes import ServiceProcess, free_port
from harness.servers import fresh_database, fresh_vhost, remove_database, remove_vhost
from tests.support.amqp import TestBroker
from tests.support.browser import wait_healthy
from tests.support.db_users import service_db_user
from tests.support.proxy import FlakyProxy

# Dates shown in a zone other than UTC prove the dashboard converts them.
TIMEZONE = "Europe/Paris"

pytestmark = pytest.mark.browser

ADMIN = "admin"
# No default password exists: this one is the test stack's, given to create-admin in a file.
PASSWORD = "browser-tests-password"


@dataclass
class Stack:
    api_url: str
    web_url: str
    amqp_url: str
    database_url: str
    api: httpx.Client
    # The dashboard reaches RabbitMQ through this, so a test can take the broker away from it alone.
    broker_proxy: FlakyProxy

    def add_student(self, name: str, consent: bool = True) -> dict[str, Any]:
        """A student, with consent to biometric processing recorded unless `consent` is False."""
        number = f"T{uuid.uuid4().hex[:8]}"
        body = {"student_number": number, "name": name, "consent": consent}
        response = self.api.post("/students", json=body)
        response.raise_for_status()
        return dict(response.json())

    def add_session(self, name: str, camera_id: str, course_id: int | None = None) -> dict[str, Any]:
        now = datetime.now(UTC)
        body = {
            "name": name,
            "camera_id": camera_id,
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
            "course_id": course_id,
        }
        response = self.api.post("/sessions", json=body)
        response.raise_for_status()
        return dict(response.json())

    def add_user(self, role: str, password: str = PASSWORD) -> dict[str, Any]:
        username = f"{role}-{uuid.uuid4().hex[:6]}"
        body = {"username": username, "display_name": f"{role.title()} {username[-6:]}", "role": role}
        response = self.api.post("/users", json={**body, "password": password})
        response.raise_for_status()
        return dict(response.json())

    def add_course(self, name: str, student_ids: list[int]) -> dict[str, Any]:
        response = self.api.post("/courses", json={"code": f"C{uuid.uuid4().hex[:6]}", "name": name})
        response.raise_for_status()
        course = dict(response.json())
        self.api.put(
            f"/courses/{course['id']}/students", json={"student_ids": student_ids}
        ).raise_for_status()
        return course


def create_admin(database_url: str) -> None:
    """The documented way to the first admin: the create-admin command, password from a file."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    password_file = ARTIFACTS / "browser-admin-password.txt"
    password_file.write_text(PASSWORD + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "services.api.accounts", "create-admin", "--username", ADMIN,
         "--display-name", "Ada Admin", "--password-file", str(password_file)],
        check=False, cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    password_file.unlink()
    assert done.returncode == 0, done.stdout + done.stderr


def sign_in_api(api_url: str, username: str = ADMIN, password: str = PASSWORD) -> str:
    response = httpx.post(
        f"{api_url}/auth/login", json={"username": username, "password": password}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["token"])


def log_in(page: Page, web_url: str, username: str = ADMIN, password: str = PASSWORD) -> None:
    """Sign in through the dashboard's login form, as a person does. It lands on the students'
    list, not the front page: the front page reloads itself when the set of current sessions
    changes, and a test that adds a session and then navigates would race that reload."""
    page.goto(f"{web_url}/login?next=/students")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    expect(page.locator(".signed-in-as")).to_be_visible()


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    if not (ROOT / "services" / "api" / "__main__.py").exists():
        pytest.fail("the browser tests need the real API (services/api/__main__.py)")
    database_url = fresh_database()
    # The API connects as its own MySQL user, with compose's privileges (db_grants);
    # `database_url` (the owner's) stays the tests' own, for setting up what no route makes.
    api_user = service_db_user(database_url, "api")
    api_database_url = api_user.__enter__()
    vhost, amqp_url = fresh_vhost()
    api_port, web_port = free_port(), free_port()
    broker_address = urlsplit(amqp_url)
    proxy = FlakyProxy(broker_address.hostname or "127.0.0.1", broker_address.port or 5672)
    proxied = broker_address._replace(
        netloc=f"{broker_address.username}:{broker_address.password}@127.0.0.1:{proxy.port}"
    )
    common = {
        "DATABASE_URL": api_database_url,
        "AMQP_URL": amqp_url,
        "TIMEZONE": TIMEZONE,
        "LOG_LEVEL": "INFO",
    }
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
            # A closed tab's stream holds a thread until a keep-alive to it fails: many tests
            # open live pages within seconds, so free them quickly.
            "WEB_SSE_KEEPALIVE_S": "2",
            "WEB_API_URL": f"http://127.0.0.1:{api_port}",
            "AMQP_URL": urlunsplit(proxied),
        },
        "browser-web",
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=30)
    try:
        wait_healthy(f"http://127.0.0.1:{api_port}/health", api, "the API")
        wait_healthy(f"http://127.0.0.1:{web_port}/health", web, "the dashboard")
        create_admin(api_database_url)
        client.headers["Authorization"] = f"Bearer {sign_in_api(f'http://127.0.0.1:{api_port}')}"
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
        api_user.__exit__(None, None, None)
        remove_database(database_url)


@pytest.fixture
def broker(stack: Stack) -> Iterator[TestBroker]:
    broker = TestBroker(stack.amqp_url)
    yield broker
    broker.close()


@pytest.fixture
def admin_page(page: Page, stack: Stack) -> Page:
    """`page`, signed in to the dashboard as the admin."""
    log_in(page, stack.web_url)
    return page
