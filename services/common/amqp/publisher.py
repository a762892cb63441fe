"""Publishing: one message onto a channel, a confirming publisher for occasional messages, and a
streaming publisher for a producer that must keep going whatever the broker does."""

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from services.common import topology
from services.common.amqp.connection import close_quietly, connect, connection_parameters
from services.common.amqp.errors import CONNECTION_ERRORS, declaring, refuse
from services.common.amqp.subscriber import OnMessage, subscribe
from services.common.messages import Message
from services.common.settings import BrokerSettings
from services.common.transport import Outgoing

logger = logging.getLogger("services.common.amqp")


def message_properties(message: Message, persistent: bool) -> pika.BasicProperties:
    event_id = getattr(message, "event_id", None)
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent if persistent else pika.DeliveryMode.Transient,
        message_id=str(event_id) if event_id else None,
        type=type(message).__name__,
        headers={"schema_version": message.schema_version},
    )


def publish(channel: BlockingChannel, outgoing: Outgoing) -> None:
    """Publish one message; on a confirming channel this returns once the broker has it."""
    channel.basic_publish(
        exchange=outgoing.exchange,
        routing_key=outgoing.routing_key,
        body=outgoing.message.model_dump_json().encode(),
        properties=message_properties(outgoing.message, outgoing.persistent),
    )


class Publisher:
    """A confirming publisher for code that publishes but does not consume (enroll, the API).

    Reconnects once per publish if the connection went away; raises if the broker is down
    (a pika error: the caller decides, the process is never stopped from here).
    """

    def __init__(self, settings: BrokerSettings, name: str, timeout_s: float = 5.0) -> None:
        self._settings = settings
        self._name = name
        self._timeout_s = timeout_s
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._lock = threading.Lock()

    def _open(self) -> BlockingChannel:
        if self._channel is None or self._channel.is_closed:
            self.close()
            params = connection_parameters(self._settings, self._name, self._timeout_s)
            self._connection = pika.BlockingConnection(params)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            topology.declare(self._channel)
        return self._channel

    def publish(self, outgoing: Outgoing) -> None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    publish(self._open(), outgoing)
                    return
                except CONNECTION_ERRORS:
                    self.close()
                    if attempt == 2:
                        raise

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        close_quietly(connection)


class StreamPublisher:
    """Publishes without confirms, for a producer of disposable messages (capture's frames and
    heartbeats): a message lost to a broker restart is simply not seen.

    Connects on first use and declares the topology; when the broker goes away the message in
    hand is dropped (with one warning) and the next call reconnects, waiting with backoff until
    the broker is back or `stop` is set, when calls return at once without publishing. A broker
    that refuses us raises `BrokerRefused`. One thread only.

    `subscriptions`: private queues consumed on the same connection without acks (capture's
    credit: the summaries of its analyzed frames), declared anew on each connection; their
    callbacks run during `sleep`. `on_return`: called with the headers of a message published
    with `mandatory=True` that no queue took (the broker returns it), also during `sleep`.
    `on_connect`: called after each (re)connection, once the subscriptions are declared.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        name: str,
        stop: threading.Event,
        *,
        subscriptions: Sequence[tuple[topology.PrivateQueue, OnMessage]] = (),
        on_return: Callable[[Mapping[str, Any]], None] | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.stop = stop
        self.subscriptions = tuple(subscriptions)
        self.on_return = on_return
        self.on_connect = on_connect
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _open(self) -> BlockingChannel | None:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        self.close()
        try:
            self._connection = connect(self.settings, self.name, self.stop)
            channel = self._channel = self._connection.channel()
            with declaring(self.name):
                topology.declare(channel)
                for queue, on_message in self.subscriptions:
                    subscribe(channel, queue, on_message)
            if self.on_return is not None:
                on_return = self.on_return
                channel.add_on_return_callback(
                    lambda _channel, _method, properties, _body: on_return(properties.headers or {})
                )
        except CONNECTION_ERRORS as error:
            self.close()
            if not self.stop.is_set():  # connect() gives up only when we are stopping
                self._lost(error)
            return None
        if self.on_connect is not None:
            self.on_connect()
        return self._channel

    def _lost(self, error: BaseException) -> None:
        refuse(error, self.name)
        logger.warning(
            "lost RabbitMQ (%s); messages are dropped until it is back", error or type(error).__name__
        )
        self.close()

    def publish(self, outgoing: Outgoing) -> None:
        """Publish a message (persistent or not, as `outgoing` says), or drop it if the broker is away."""
        channel = self._open()
        if channel is None:
            return
        try:
            publish(channel, outgoing)
        except CONNECTION_ERRORS as error:
            self._lost(error)

    def publish_bytes(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        content_type: str,
        headers: Mapping[str, Any] | None = None,
        mandatory: bool = False,
    ) -> bool:
        """Publish an opaque body (a JPEG frame, its metadata in headers), transient, or drop it
        (False). `mandatory`: if no queue takes it, the broker returns it to `on_return`."""
        channel = self._open()
        if channel is None:
            return False
        properties = pika.BasicProperties(
            content_type=content_type,
            delivery_mode=pika.DeliveryMode.Transient,
            headers=dict(headers or {}),
        )
        try:
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=mandatory)
        except CONNECTION_ERRORS as error:
            self._lost(error)
            return False
        return True

    def queue_depth(self, queue: str) -> tuple[int, int]:
        """(messages waiting, consumers) of a declared queue; (0, 0) while the broker is away."""
        channel = self._open()
        if channel is None:
            return 0, 0
        try:
            method = channel.queue_declare(queue, passive=True).method
        except CONNECTION_ERRORS as error:
            self._lost(error)
            return 0, 0
        return int(method.message_count), int(method.consumer_count)

    def sleep(self, seconds: float) -> None:
        """Wait, servicing the connection (heartbeats, subscriptions, returns) meanwhile if there
        is one."""
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.sleep(seconds)
                return
            except CONNECTION_ERRORS as error:
                self._lost(error)
        self.stop.wait(seconds)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        close_quietly(connection)
