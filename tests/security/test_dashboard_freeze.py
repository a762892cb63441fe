"""Finding 8 (the dashboard can be frozen): as many live streams as the dashboard allows, plus
a few connections that never finish their headers or their body, made every page time out
for over 30 s. Each slow connection held one of gunicorn's threads while it waited for bytes
that never came, and the live streams held the rest.

Here the real dashboard (`python -m services.web`, default WEB_THREADS) and API run as
processes: the streams are opened signed in, the slow connections from raw sockets; then a
page must still answer at once, and the slow connections are closed by the server after
WEB_REQUEST_TIMEOUT_S.
"""

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from harness.processes import ServiceProcess, free_port
from harness.servers import fresh_database, fresh_vhost, remove_database, remove_vhost
from services.web.settings import RESERVED_PAGE_THREADS, WebSettings
from tests.browser.conftest import ADMIN, PASSWORD, create_admin
from tests.support.browser import wait_healthy

pytestmark = [pytest.mark.security]

THREADS = WebSettings.model_fields["web_threads"].default  # what production runs with
STREAMS = THREADS - RESERVED_PAGE_THREADS  # the most live pages it accepts (28 of 32)
SLOW = 12  # more than the threads kept free for pages
REQUEST_TIMEOUT_S = 3


@dataclass
class Dashboard:
    url: str
    port: int
    cookie: str
    api_port: int


@pytest.fixture(scope="module")
def dashboard() -> Iterator[Dashboard]:
    database_url = fresh_database()
    vhost, amqp_url = fresh_vhost()
    api_port, web_port = free_port(), free_port()
    common = {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "LOG_LEVEL": "INFO"}
    api = ServiceProcess(
        "services.api",
        {
            **common,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "API_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        },
        "freeze-api",
    )
    web = ServiceProcess(
        "services.web",
        {
            **common,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(web_port),
            "WEB_API_URL": f"http://127.0.0.1:{api_port}",
            "WEB_REQUEST_TIMEOUT_S": str(REQUEST_TIMEOUT_S),
        },
        "freeze-web",
    )
    url = f"http://127.0.0.1:{web_port}"
    try:
        wait_healthy(f"http://127.0.0.1:{api_port}/health", api, "the API")
        wait_healthy(f"{url}/health", web, "the dashboard")
        create_admin(database_url)
        with httpx.Client(base_url=url, timeout=30) as client:
            form = client.get("/login").text
            match = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert match, form
            signed_in = client.post(
                "/login", data={"csrf_token": match.group(1), "username": ADMIN, "password": PASSWORD}
            )
            assert signed_in.status_code == 303, signed_in.text
            cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        yield Dashboard(url, web_port, cookie, api_port)
    finally:
        web.stop()
        api.stop()
        remove_vhost(vhost)
        remove_database(database_url)


def connect(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def open_stream(dashboard: Dashboard) -> socket.socket:
    request = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Cookie: {dashboard.cookie}\r\n\r\n"
    )
    sock = connect(dashboard.port, request.encode())
    head = b""
    while b"retry:" not in head:
        chunk = sock.recv(4096)
        assert chunk, f"the stream closed: {head!r}"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_finding_8_live_streams_and_slow_connections_do_not_freeze_the_pages(dashboard: Dashboard) -> None:
    streams = [open_stream(dashboard) for _ in range(STREAMS)]
    # Headers that never end, and a body that never comes (each after a first byte, so the
    # server has something to wait for).
    slow = [connect(dashboard.port, b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n") for _ in range(SLOW // 2)]
    slow += [
        connect(
            dashboard.port,
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: 1000\r\n\r\nusername=a",
        )
        for _ in range(SLOW - SLOW // 2)
    ]
    try:
        time.sleep(1.0)  # let the server take them all in
        started = time.monotonic()
        for path in ("/health", "/students", "/"):
            response = httpx.get(f"{dashboard.url}{path}", headers={"Cookie": dashboard.cookie}, timeout=10)
            assert response.status_code == 200, (path, response.status_code)
        assert time.monotonic() - started < 5, "pages were slow behind the streams and slow connections"
        # The slow connections are cut after the request timeout; the live streams stay.
        assert all(closed_by_server(sock, REQUEST_TIMEOUT_S + 8) for sock in slow)
        assert not closed_by_server(streams[0], 0.5)
    finally:
        for sock in streams + slow:
            sock.close()


def test_the_api_closes_connections_that_never_finish_their_request(dashboard: Dashboard) -> None:
    """uvicorn's keep-alive timeout starts only after a response: a connection that sent part
    of its headers, or of its body, stayed open for ever (each one a file descriptor)."""
    slow = [
        connect(dashboard.api_port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"),
        connect(
            dashboard.api_port,
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{",
        ),
        connect(dashboard.api_port, b""),  # nothing at all
    ]
    try:
        assert [closed_by_server(sock, REQUEST_TIMEOUT_S + 5) for sock in slow] == [True, True, True]
        # A request that arrives whole is answered as before.
        assert httpx.get(f"http://127.0.0.1:{dashboard.api_port}/health", timeout=10).status_code == 200
    finally:
        for sock in slow:
            sock.close()
