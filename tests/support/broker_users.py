"""Broker users with exactly a service's permissions (topology.PERMISSIONS, what
rabbitmq/entrypoint.sh grants in production), on a test's own vhost, deleted afterwards."""

import shutil
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from services.common import topology


def rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)


@contextmanager
def service_user(amqp_url: str, service: str, node: str | None = None) -> Iterator[str]:
    """An AMQP URL for a new user with `service`'s permissions on `amqp_url`'s vhost; with a
    `node`, the user is that node's (topology.node_user), as an admin adds one per machine."""
    parts = urllib.parse.urlsplit(amqp_url)
    vhost = urllib.parse.unquote(parts.path.lstrip("/")) or "/"
    name = topology.node_user(service, node) if node else topology.broker_user(service)
    user, password = f"test-{name}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    configure, write, read = topology.PERMISSIONS[service]
    rabbitmqctl("add_user", user, password)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, user, configure, write, read)
        host = f"{parts.hostname}:{parts.port or 5672}"
        yield urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))
    finally:
        rabbitmqctl("delete_user", user)
