"""A fresh MySQL database and a fresh RabbitMQ vhost on the shared servers, so every test or
benchmark run starts empty and never sees another's rows or messages."""

import os
import shutil
import subprocess
import uuid
from urllib.parse import unquote, urlsplit

import pika

from services.common import topology
from services.common.db import create_database, drop_database

MYSQL_SERVER_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
AMQP_SERVER_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
AMQP_USER = os.environ.get("TEST_AMQP_USER", "guest")


def fresh_database() -> str:
    url = f"{MYSQL_SERVER_URL}/test_{uuid.uuid4().hex[:12]}"
    create_database(url)
    return url


def remove_database(url: str) -> None:
    drop_database(url)


def _rabbitmqctl(*args: str) -> str:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    done = subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60, text=True)  # noqa: S603 (our own arguments)
    return done.stdout


def fresh_vhost() -> tuple[str, str]:
    """A new, empty vhost the test user may use fully; returns (vhost, amqp_url)."""
    vhost = f"test-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, AMQP_USER, ".*", ".*", ".*")
    return vhost, f"{AMQP_SERVER_URL}/{vhost}"


def remove_vhost(vhost: str) -> None:
    _rabbitmqctl("delete_vhost", vhost)


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in `queue`, on a connection of its own (safe from any thread)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def vhost_of(amqp_url: str) -> str:
    return unquote(urlsplit(amqp_url).path.lstrip("/")) or "/"


def frame_queues(amqp_url: str) -> list[tuple[str, int, int]]:
    """(name, consumers, messages) of every recognizer's private frame queue in the URL's vhost:
    each worker has its own (services.common.topology, camera affinity), server-named."""
    prefix = topology.RECOGNIZER_FRAMES.prefix
    out = _rabbitmqctl(
        "list_queues", "-p", vhost_of(amqp_url), "name", "consumers", "messages", "--no-table-headers"
    )
    queues = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(prefix) and parts[1].isdigit() and parts[2].isdigit():
            queues.append((parts[0], int(parts[1]), int(parts[2])))
    return queues


def frame_consumers(amqp_url: str) -> int:
    """How many recognizers are taking frames."""
    return sum(consumers for _, consumers, _ in frame_queues(amqp_url))


def frames_waiting(amqp_url: str) -> int:
    """Frames waiting in every recognizer's queue."""
    return sum(messages for _, _, messages in frame_queues(amqp_url))
