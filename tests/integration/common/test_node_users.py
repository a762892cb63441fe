"""A node's broker user, added exactly as the README tells an admin to: the commands
`python -m services.common.topology node-user` prints, piped into a shell with the password in
NODE_PASSWORD. The user can do a recognizer's work and nothing more."""

import os
import shutil
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from harness.paths import ROOT
from services.common import topology
from tests.support.amqp import TestBroker
from tests.support.broker_users import rabbitmqctl


@pytest.fixture
def node_url(amqp_url: str) -> Iterator[str]:
    parts = urllib.parse.urlsplit(amqp_url)
    vhost = urllib.parse.unquote(parts.path.lstrip("/"))
    node, password = f"it-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    printed = subprocess.run(
        [sys.executable, "-m", "services.common.topology", "node-user", "recognizer", node, vhost],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    user = topology.node_user("recognizer", node)
    try:
        subprocess.run(
            ["sh", "-e"],
            input=printed,
            env={**os.environ, "PATH": f"{Path(ctl).parent}:/usr/bin:/bin", "NODE_PASSWORD": password},
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        yield urllib.parse.urlunsplit(
            parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port or 5672}")
        )
    finally:
        rabbitmqctl("delete_user", user)


def test_a_node_user_added_from_the_printed_commands_does_a_recognizers_work_only(
    amqp_url: str, node_url: str
) -> None:
    # The central broker has its topology from the definitions it imports at boot (a recognizer
    # may not create recorder.identity: its dead-letter exchange needs read on the queue).
    TestBroker(amqp_url).close()
    connection = pika.BlockingConnection(pika.URLParameters(node_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        topology.declare(channel)  # what every service does when it connects
        topology.declare_private(channel, topology.RECOGNIZER_FRAMES)  # its share of the frames
        channel.basic_publish(topology.RECOGNIZER_EXCHANGE, topology.analyzed_key("cam-1"), b"{}")
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_publish(topology.ATTENDANCE_EXCHANGE, topology.attendance_key("cam-1"), b"{}")
        assert refused.value.reply_code == 403  # a recognizer never writes attendance
    finally:
        if connection.is_open:
            connection.close()
