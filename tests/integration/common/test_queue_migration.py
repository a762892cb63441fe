"""A broker from before the quorum queues (issue 11): its classic queues become the topology's
quorum queues with their messages, in order, by `python -m services.common.amqp.migration`."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pika
import pytest

from harness.paths import ROOT
from harness.servers import vhost_of
from services.common import topology
from services.common.amqp.migration import holding_queue

# The durable queues as they were declared before issue 11: classic, same other arguments.
CLASSIC = {q.name: {k: v for k, v in q.arguments.items() if k != "x-queue-type"} for q in topology.QUEUES}


def run_migration(amqp_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.common.amqp.migration"],
        check=False,
        cwd=ROOT,
        env={**os.environ, "AMQP_URL": amqp_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def queue_types(amqp_url: str) -> dict[str, str]:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    listed = subprocess.run(
        [ctl, "list_queues", "-q", "-p", vhost_of(amqp_url), "--no-table-headers", "name", "type"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return dict(line.split("\t") for line in listed.splitlines() if line.strip())


@pytest.fixture
def channel(amqp_url: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def declare_classic(channel: pika.adapters.blocking_connection.BlockingChannel) -> None:
    for exchange in topology.EXCHANGES:
        channel.exchange_declare(exchange.name, exchange.type, durable=exchange.durable)
    for name, arguments in CLASSIC.items():
        channel.queue_declare(name, durable=True, arguments=arguments)
    for binding in topology.BINDINGS:
        channel.queue_bind(binding.queue, binding.exchange, binding.routing_key)


def publish_events(channel: pika.adapters.blocking_connection.BlockingChannel, count: int) -> None:
    channel.confirm_delivery()
    for n in range(count):
        channel.basic_publish(
            topology.RECOGNIZER_EXCHANGE,
            topology.recognized_key("door-1"),
            f'{{"n": {n}}}'.encode(),
            pika.BasicProperties(
                message_id=f"event-{n}", delivery_mode=2, headers={"schema_version": 1}, type="IdentityEvent"
            ),
        )


def drain(channel: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> list[tuple[str, bytes]]:
    got = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return got
        # x-delivery-count: what a quorum queue adds on delivery.
        headers = {k: v for k, v in properties.headers.items() if k != "x-delivery-count"}
        assert headers == {"schema_version": 1} and properties.type == "IdentityEvent"
        got.append((properties.message_id, body))


def test_classic_queues_become_quorum_queues_with_their_messages(amqp_url: str, channel) -> None:  # type: ignore[no-untyped-def]
    declare_classic(channel)
    publish_events(channel, 5)
    # What every service does when it connects is refused on the old broker...
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        topology.declare(channel.connection.channel())
    assert refused.value.reply_code == 406 and "x-queue-type" in refused.value.reply_text

    result = run_migration(amqp_url)
    assert result.returncode == 0, result.stderr
    assert queue_types(amqp_url) == {q.name: "quorum" for q in topology.QUEUES}  # no holding queue left
    fresh = channel.connection.channel()
    topology.declare(fresh)  # ...and now accepted
    assert drain(fresh, topology.IDENTITY_QUEUE) == [
        (f"event-{n}", f'{{"n": {n}}}'.encode()) for n in range(5)
    ]
    # The bindings are back: a new event reaches the quorum queue.
    publish_events(fresh, 1)
    assert [message_id for message_id, _ in drain(fresh, topology.IDENTITY_QUEUE)] == ["event-0"]

    again = run_migration(amqp_url)  # a second run has nothing to do
    assert again.returncode == 0 and "none" in again.stderr + again.stdout


def test_a_run_that_stopped_half_way_is_finished(amqp_url: str, channel) -> None:  # type: ignore[no-untyped-def]
    topology.declare(channel)  # the queue is quorum already, its messages still in the holding queue
    holding = holding_queue(topology.IDENTITY_QUEUE)
    channel.queue_declare(holding, durable=True, arguments=dict(topology.QUORUM))
    channel.confirm_delivery()
    for n in range(3):
        channel.basic_publish("", holding, b"{}", pika.BasicProperties(message_id=f"event-{n}"))

    assert run_migration(amqp_url).returncode == 0
    assert holding not in queue_types(amqp_url)
    ids = []
    while (got := channel.basic_get(topology.IDENTITY_QUEUE, auto_ack=True))[0] is not None:
        ids.append(got[1].message_id)
    assert ids == ["event-0", "event-1", "event-2"]


def test_a_queue_still_consumed_is_left_alone(amqp_url: str, channel) -> None:  # type: ignore[no-untyped-def]
    declare_classic(channel)
    publish_events(channel, 2)
    channel.basic_consume(topology.IDENTITY_QUEUE, lambda *_: None)  # a recorder still running

    result = run_migration(amqp_url)
    assert result.returncode == 1
    assert "stop the services before migrating it" in result.stderr
    assert queue_types(amqp_url)[topology.IDENTITY_QUEUE] == "classic"
