"""Subscribing: copies of what is published to some exchanges, on a private queue, without acks.

For views and signals (the dashboard's live events, "the gallery changed"), not for data: what
is published while we are disconnected is lost, and the queue drops its oldest when we fall
behind, as its `PrivateQueue` arguments say.
"""

import logging
import threading
from collections.abc import Callable
from contextlib import suppress

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from services.common import topology
from services.common.amqp.connection import closing, connect
from services.common.amqp.errors import CONNECTION_ERRORS, BrokerRefused, declaring, refuse
from services.common.settings import BrokerSettings
from services.common.transport import Backoff

logger = logging.getLogger("services.common.amqp")

OnMessage = Callable[[str, bytes], None]
"""Called with (routing key, body) for each message, on the thread that services the connection."""

OnStatus = Callable[[bool, str], None]
"""Called with (receiving, what is going on) whenever that changes."""


def subscribe(channel: BlockingChannel, queue: topology.PrivateQueue, on_message: OnMessage) -> str:
    """Declare a new private queue with its bindings and consume it (no acks) into `on_message`.

    The callback runs while the connection is serviced: it must be quick. The queue's name."""
    name = topology.declare_private(channel, queue)
    channel.basic_consume(
        queue=name,
        on_message_callback=lambda _channel, method, _properties, body: on_message(method.routing_key, body),
        auto_ack=True,
    )
    return name


class Subscriber:
    """Receives from a private queue until `stop` is set, reconnecting with backoff whenever
    RabbitMQ goes away. A bug in `on_message` is logged and the subscription starts over, so it
    never ends live updates for good; a broker that refuses us raises `BrokerRefused` from `run`."""

    def __init__(
        self,
        settings: BrokerSettings,
        name: str,
        queue: topology.PrivateQueue,
        on_message: OnMessage,
        *,
        stop: threading.Event,
        on_status: OnStatus | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.queue = queue
        self.on_message = on_message
        self.stop = stop
        self.on_status = on_status or (lambda _receiving, _detail: None)
        self._delays = Backoff().delays()

    def run(self) -> None:
        self._delays = Backoff().delays()
        try:
            self._run()
        except BrokerRefused as refused:
            self.on_status(False, f"refused by RabbitMQ: {refused.reason}")
            raise
        self.on_status(False, "stopped")
        logger.info("%s: subscriber stopped", self.name)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                connection = connect(self.settings, self.name, self.stop)
            except CONNECTION_ERRORS:
                break  # connect() gives up only when we are stopping
            with closing(connection):
                try:
                    self._receive(connection)
                    problem = f"the broker cancelled {self.queue.prefix}"  # unless we are stopping
                except CONNECTION_ERRORS as error:
                    refuse(error, self.name)
                    problem = f"RabbitMQ connection lost ({str(error) or type(error).__name__})"
                except Exception:
                    # A bug must not end the subscription for good: log it loudly and start over.
                    logger.exception("%s: subscriber failed", self.name)
                    problem = f"{self.name} failed"
            if self.stop.is_set():
                break
            delay = next(self._delays)
            self.on_status(False, f"{problem}; reconnecting")
            logger.warning("%s: %s; reconnecting in %.1fs", self.name, problem, delay)
            self.stop.wait(delay)

    def _receive(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        with declaring(self.name):
            topology.declare(channel)  # the exchanges we bind to may not exist yet on a fresh broker
            queue = topology.declare_private(channel, self.queue)
        self.on_status(True, "live")
        self._delays = Backoff().delays()  # connected: the next loss starts again from a short wait
        logger.info("%s: receiving on %s", self.name, queue)
        for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.5):
            if self.stop.is_set():
                break
            if method is not None:
                self.on_message(method.routing_key, body)
        with suppress(*CONNECTION_ERRORS):
            channel.cancel()
