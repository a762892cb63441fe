"""RabbitMQ plumbing shared by every service: connect with backoff, publish with confirms, and
one consumer loop with an explicit ack policy.

The ack policy (ARCHITECTURE.md, "Rules that keep data safe"):
- a handler's result is published (with publisher confirms) and only then the message acked;
- `Handled(rejected=...)` (cannot decode or validate), or a handler bug -> reject without
  requeue: dead-lettered, never looped;
- `TransientError` (MySQL down, ...) -> the same batch is retried with backoff; on shutdown it
  is requeued, so nothing is lost;
- handlers run on a worker thread while this thread keeps the connection (and its heartbeats)
  serviced, so minutes of face recognition or a slow gallery load never drop the connection.
"""

import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from services.common import topology
from services.common.messages import Message
from services.common.settings import BrokerSettings, redact
from services.common.transport import Backoff, Delivery, Handled, Handler, Outgoing, TransientError

logger = logging.getLogger(__name__)

# What a lost or refused broker connection raises; anything else is a bug and propagates.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.ConnectionClosedByBroker,
    pika.exceptions.StreamLostError,
    pika.exceptions.ChannelWrongStateError,
    pika.exceptions.ChannelClosedByBroker,
    socket.gaierror,
    ConnectionError,
)


def connection_parameters(
    settings: BrokerSettings, name: str, timeout_s: float | None = None
) -> pika.URLParameters:
    params = pika.URLParameters(settings.amqp_url)
    if timeout_s is not None:  # fail fast instead of pika's default 10-15 s on a silent network
        params.socket_timeout = timeout_s
        params.stack_timeout = timeout_s
    params.heartbeat = settings.amqp_heartbeat_s
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.client_properties = {"connection_name": name}
    return params


def connect(settings: BrokerSettings, name: str, stop: threading.Event | None = None) -> BlockingConnection:
    """Connect, retrying with backoff until RabbitMQ answers (or `stop` is set)."""
    params = connection_parameters(settings, name)
    for attempt, delay in enumerate(Backoff().delays(), start=1):
        try:
            connection = pika.BlockingConnection(params)
        except CONNECTION_ERRORS as error:
            logger.warning(
                "RabbitMQ at %s not reachable (attempt %d: %s); retrying in %.1fs",
                redact(settings.amqp_url),
                attempt,
                error or type(error).__name__,
                delay,
            )
            if (stop or threading.Event()).wait(delay):
                raise
            continue
        if attempt > 1:
            logger.info("connected to RabbitMQ after %d attempts", attempt)
        return connection
    raise AssertionError("unreachable")


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

    Reconnects once per publish if the connection went away; raises if the broker is down.
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
        if connection is not None and connection.is_open:
            with suppress(*CONNECTION_ERRORS):
                connection.close()


@contextmanager
def _closing(connection: BlockingConnection) -> Iterator[BlockingConnection]:
    try:
        yield connection
    finally:
        if connection.is_open:
            with suppress(*CONNECTION_ERRORS):
                connection.close()


class Consumer:
    """Consumes one queue with an explicit ack policy (see the module docstring).

    `setup(connection, channel)` runs after every (re)connect: declare private queues, add
    side consumers (their callbacks must be quick: they run on this thread).
    """

    def __init__(
        self,
        settings: BrokerSettings,
        name: str,
        queue: str,
        handler: Handler,
        *,
        prefetch: int = 1,
        batch_size: int = 1,
        batch_wait_s: float = 0.05,
        setup: Callable[[BlockingConnection, BlockingChannel], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.queue = queue
        self.handler = handler
        self.prefetch = max(prefetch, batch_size)
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.setup = setup
        self.stop = stop or threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-work")

    def run(self) -> None:
        """Consume until `stop` is set, reconnecting whenever the broker goes away."""
        delays = Backoff().delays()
        try:
            while not self.stop.is_set():
                try:
                    with _closing(connect(self.settings, self.name, self.stop)) as connection:
                        delays = Backoff().delays()
                        self._consume(connection)
                except CONNECTION_ERRORS as error:
                    if self.stop.is_set():
                        break
                    delay = next(delays)
                    logger.warning(
                        "lost RabbitMQ (%s); reconnecting in %.1fs", error or type(error).__name__, delay
                    )
                    self.stop.wait(delay)
        finally:
            self._executor.shutdown(wait=True)
        logger.info("consumer of %s stopped", self.queue)

    def _consume(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        channel.confirm_delivery()
        topology.declare(channel)
        if self.setup is not None:
            self.setup(connection, channel)
        logger.info("consuming %s (prefetch %d, batch %d)", self.queue, self.prefetch, self.batch_size)
        batch: list[Delivery] = []
        # A batch is handled when full or when its first message has waited batch_wait_s, so
        # batching bounds latency instead of adding to it under a steady trickle of messages.
        timeout = self.batch_wait_s / 4 if self.batch_size > 1 else 0.5
        first_at = 0.0
        for method, properties, body in channel.consume(self.queue, inactivity_timeout=timeout):
            if method is not None:
                if not batch:
                    first_at = time.monotonic()
                batch.append(
                    Delivery(
                        body=body,
                        routing_key=method.routing_key,
                        headers=properties.headers or {},
                        redelivered=method.redelivered,
                        delivery_tag=method.delivery_tag,
                    )
                )
            if self.stop.is_set():
                break
            if batch and (len(batch) >= self.batch_size or time.monotonic() - first_at >= self.batch_wait_s):
                if not self._handle(connection, channel, batch):
                    break
                batch = []
        # Unhandled deliveries (ours and those prefetched) go back to the queue for another consumer.
        for delivery in batch:
            channel.basic_nack(delivery.delivery_tag, requeue=True)
        requeued = channel.cancel()
        logger.info("stopping: %d prefetched message(s) requeued", requeued + len(batch))

    def _handle(
        self, connection: BlockingConnection, channel: BlockingChannel, batch: list[Delivery]
    ) -> bool:
        """Handle one batch; False if we are stopping and the batch must be requeued."""
        delays = Backoff(first_s=0.2, max_s=10.0).delays()
        for attempt in itertools.count(1):
            try:
                results = self._run(connection, batch)
            except TransientError as error:
                if self.stop.is_set():
                    return False
                delay = next(delays)
                logger.warning("transient failure (attempt %d: %s); retrying in %.1fs", attempt, error, delay)
                connection.sleep(delay)
                continue
            for delivery, handled in zip(batch, results, strict=True):
                if handled.rejected is not None:
                    logger.warning("rejected message (%s): %s", delivery.routing_key, handled.rejected)
                    channel.basic_reject(delivery.delivery_tag, requeue=False)
                    continue
                for outgoing in handled.publish:
                    publish(channel, outgoing)
                channel.basic_ack(delivery.delivery_tag)
            return True
        raise AssertionError("unreachable")

    def _run(self, connection: BlockingConnection, batch: list[Delivery]) -> list[Handled]:
        """The handler's results; a bug dead-letters only the message(s) that trigger it."""
        try:
            results = self._call(connection, batch)
        except TransientError:
            raise
        except Exception as error:  # a bug must neither crash the service nor loop on a message
            if len(batch) > 1:
                logger.exception("handler failed on a batch; retrying its messages one at a time")
                return [self._run(connection, [delivery])[0] for delivery in batch]
            logger.exception("handler failed; dead-lettering the message")
            return [Handled(rejected=f"handler error: {type(error).__name__}: {error}")]
        if len(results) != len(batch):
            raise AssertionError(f"handler returned {len(results)} results for {len(batch)} deliveries")
        return results

    def _call(self, connection: BlockingConnection, batch: list[Delivery]) -> list[Handled]:
        future: Future[list[Handled]] = self._executor.submit(self.handler, batch)
        # Wake this thread the moment the handler finishes; meanwhile keep heartbeats flowing.
        future.add_done_callback(lambda _f: _wake(connection))
        while not future.done():
            connection.process_data_events(time_limit=1)
        return future.result()


def _wake(connection: BlockingConnection) -> None:
    # If the connection is gone, the consume loop is already reconnecting.
    with suppress(*CONNECTION_ERRORS):
        connection.add_callback_threadsafe(lambda: None)
