"""The health check commands of docker-compose.yml, run for real against local sockets.

Loopback only: a listening socket stands in for RabbitMQ, a tiny HTTP server for /health.
"""

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# The recorder has its own check, of progress (services/recorder/health.py; its behaviour is
# tested in tests/unit/recorder/test_health.py and tests/security/test_recorder_findings.py).
WORKERS = ("capture", "capture-webcam", "recognizer")


def python_check(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    code: str = test[3]
    return code


def run_check(code: str, **env: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, timeout=30
    )
    return result.returncode


@contextmanager
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server
    finally:
        server.close()


def test_workers_share_one_broker_check(services: dict[str, Any]) -> None:
    assert len({python_check(services[name]) for name in WORKERS}) == 1


def test_the_recorder_checks_its_progress(services: dict[str, Any]) -> None:
    assert services["recorder"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "services.recorder",
        "--health",
    ]


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")
def test_broker_check_passes_only_while_connected(services: dict[str, Any]) -> None:
    code = python_check(services["recognizer"])
    with listener() as server:
        port = server.getsockname()[1]
        url = f"amqp://user:pass@127.0.0.1:{port}/%2F"
        assert run_check(code, AMQP_URL=url) == 1, "nothing is connected to the port yet"
        with socket.create_connection(("127.0.0.1", port)) as _client:
            accepted, _ = server.accept()
            with accepted:
                assert run_check(code, AMQP_URL=url) == 0
    assert run_check(code, AMQP_URL=url) == 1, "the connection is gone"


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def health_server(status: int) -> Iterator[int]:
    handler = type("Handler", (_Health,), {"status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("service", "port"), [("api", 8000), ("web", 8080)])
@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_http_check_follows_the_health_endpoint(
    services: dict[str, Any], service: str, port: int, status: int, healthy: bool
) -> None:
    code = python_check(services[service])
    with health_server(status) as actual_port:
        local = code.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{actual_port}/")
        assert local != code
        assert (run_check(local) == 0) is healthy


def test_http_check_fails_when_nothing_listens(services: dict[str, Any]) -> None:
    with listener() as server:
        port = server.getsockname()[1]
    code = python_check(services["api"]).replace("127.0.0.1:8000/", f"127.0.0.1:{port}/")
    assert run_check(code) != 0
