"""Bring a broker's durable queues to the topology's arguments, keeping their messages.

A queue's type (and its other arguments) cannot change in place: redeclaring a classic
`recorder.identity` as a quorum queue is a 406 PRECONDITION_FAILED, and every service stops on
it (errors.py). A broker that predates the quorum queues (issue 11) keeps its classic queues,
since importing definitions at boot skips a queue that exists. So before the services start
(compose's `rabbitmq-migrate` job, `make run`), `python -m services.common.amqp.migration`:

1. finds each queue of `topology.QUEUES` that the broker has with other arguments (its
   redeclaration is refused);
2. moves its messages, one by one with publisher confirms, into `<name>.migrating` (a quorum
   queue), deletes the old queue once empty, declares it as the topology says, and moves the
   messages back, in their order, properties and headers kept;
3. declares the whole topology again, which restores the bindings the deletion removed.

A run that stops half-way is finished by the next one: a `<name>.migrating` left behind is
emptied into its queue first. Nothing may consume or publish meanwhile: the services wait for
this job, and it refuses to touch a queue that still has consumers. Run it as the operator's
user (RABBITMQ_USER): it publishes through the default exchange, which no service may.
"""

import logging
import sys
from collections.abc import Callable

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from services.common import topology
from services.common.amqp.connection import closing, connect
from services.common.logs import setup_logging
from services.common.settings import BrokerSettings, load_settings

logger = logging.getLogger("services.common.amqp")

_PRECONDITION_FAILED = 406
_NOT_FOUND = 404
SUFFIX = ".migrating"


class MigrationError(RuntimeError):
    """The broker's queues cannot be migrated now (e.g. a service still consumes one)."""


def holding_queue(name: str) -> str:
    return name + SUFFIX


class _Channels:
    """A fresh channel whenever the broker closed the last one (a refused declaration does)."""

    def __init__(self, connection: BlockingConnection) -> None:
        self._connection = connection
        self._channel: BlockingChannel | None = None

    def get(self) -> BlockingChannel:
        if self._channel is None or self._channel.is_closed:
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def renew(self) -> None:
        """Use a new channel from now on: a channel that used a queue keeps its type in mind,
        and RabbitMQ 3.10 fails it on a publish to a queue re-created with another type."""
        if self._channel is not None and self._channel.is_open:
            self._channel.close()
        self._channel = None

    def attempt(self, call: Callable[[BlockingChannel], object], refused: int) -> bool:
        """Run `call`; False if the broker refused it with `refused` (its channel is then gone)."""
        try:
            call(self.get())
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code != refused:
                raise
            return False
        return True


def _move(channels: _Channels, source: str, target: str) -> int:
    """Move every message of `source` to `target`, in order; how many. Each is acked on
    `source` only once the broker confirmed it on `target`, so a crash may duplicate one
    message (the recorder ignores an event it has, by its id) but loses none."""
    channel = channels.get()
    moved = 0
    while True:
        method, properties, body = channel.basic_get(source, auto_ack=False)
        if method is None:
            return moved
        # A quorum queue counts deliveries in a header of its own: not the message's to carry
        # (and RabbitMQ 3.10's quorum queues fail the channel on a published one).
        if properties.headers:
            properties.headers.pop("x-delivery-count", None)
        channel.basic_publish("", target, body, properties, mandatory=True)
        channel.basic_ack(method.delivery_tag)
        moved += 1


def _declare(channel: BlockingChannel, queue: topology.Queue) -> None:
    channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))


def _migrate_queue(channels: _Channels, queue: topology.Queue) -> int | None:
    """Migrate one queue if it must be: how many messages it kept (moved out and back), or
    None if it was as the topology declares it already."""
    holding = holding_queue(queue.name)
    moved: int | None = None
    if not channels.attempt(lambda ch: _declare(ch, queue), _PRECONDITION_FAILED):
        old = channels.get().queue_declare(queue.name, passive=True).method
        if old.consumer_count:
            raise MigrationError(
                f"{queue.name} has {old.consumer_count} consumer(s): stop the services before migrating it"
            )
        logger.info(
            "%s: arguments differ from the topology; moving %d message(s)", queue.name, old.message_count
        )
        channels.get().queue_declare(holding, durable=True, arguments=dict(topology.QUORUM))
        # Deleting only an empty queue: whatever arrived meanwhile is moved on the next round.
        while True:
            _move(channels, queue.name, holding)
            if channels.attempt(lambda ch: ch.queue_delete(queue.name, if_empty=True), _PRECONDITION_FAILED):
                break
        channels.renew()
        _declare(channels.get(), queue)
    # A holding queue: this run's, or one a run that stopped half-way left behind.
    if channels.attempt(lambda ch: ch.queue_declare(holding, passive=True), _NOT_FOUND):
        back = _move(channels, holding, queue.name)
        # Quorum queues refuse delete-if-empty: checked, with nobody publishing to it.
        left = channels.get().queue_declare(holding, passive=True).method.message_count
        if left:
            raise MigrationError(f"{holding} still holds {left} message(s) after moving them back")
        channels.get().queue_delete(holding)
        logger.info("%s: %d message(s) moved back; now as the topology declares it", queue.name, back)
        moved = back
    return moved


def migrate(connection: BlockingConnection) -> dict[str, int]:
    """Migrate every durable queue whose arguments differ from the topology's, then declare the
    topology (bindings included). The queues migrated, with how many messages each kept."""
    channels = _Channels(connection)
    migrated: dict[str, int] = {}
    for queue in topology.QUEUES:
        moved = _migrate_queue(channels, queue)
        if moved is not None:
            migrated[queue.name] = moved
    topology.declare(channels.get())
    return migrated


def main() -> int:
    """`python -m services.common.amqp.migration`: migrate the broker at AMQP_URL."""
    setup_logging("migration")
    settings = load_settings(BrokerSettings)
    try:
        with closing(connect(settings, "migration")) as connection:
            migrated = migrate(connection)
    except MigrationError as error:
        logger.error("%s", error)
        return 1
    logger.info("queues migrated: %s", migrated or "none (all as the topology declares them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
