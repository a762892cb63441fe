"""Real infrastructure for tests: a fresh MySQL database and a fresh RabbitMQ vhost per test,
and services run as real processes. Nothing here mocks a client."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pika
import sqlalchemy as sa

from services.common.db import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
# The shared labeled faces: one setting, defaulting to the folder beside the checkout.
FACES_DIR = Path(os.environ.get("FACES_DIR", ROOT.parent / "shared" / "faces")).resolve()
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "artifacts")).resolve()
MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
AMQP_SERVER_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
AMQP_USER = os.environ.get("TEST_AMQP_USER", "guest")


def fresh_database() -> str:
    url = f"{MYSQL_SERVER_URL}/test_{uuid.uuid4().hex[:12]}"
    create_database(url)
    return url


def remove_database(url: str) -> None:
    drop_database(url)


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)


def fresh_vhost() -> tuple[str, str]:
    """A new, empty vhost the test user may use fully; returns (vhost, amqp_url)."""
    vhost = f"test-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, AMQP_USER, ".*", ".*", ".*")
    return vhost, f"{AMQP_SERVER_URL}/{vhost}"


def remove_vhost(vhost: str) -> None:
    _rabbitmqctl("delete_vhost", vhost)


def queue_depth(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def wait_until(
    condition: Callable[[], object], timeout_s: float, what: str, interval_s: float = 0.2
) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def scalar(engine: sa.Engine, sql: str, **params: object) -> object:
    with engine.connect() as connection:
        return connection.execute(sa.text(sql), params).scalar()


class ServiceProcess:
    """`python -m services.<name>` as a real process, its log kept under artifacts/."""

    def __init__(self, module: str, env: dict[str, str], log_name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{log_name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def wait(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def stop(self, timeout_s: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return int(self.process.returncode)
