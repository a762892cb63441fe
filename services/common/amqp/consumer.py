"""The consumer loop, with an explicit ack policy (docs/architecture.md, "Rules that keep data safe"):

- a handler's result is published (with publisher confirms) and only then the message acked;
- `Handled(rejected=...)` (cannot decode or validate), or a handler bug -> reject without
  requeue: dead-lettered, never looped;
- `TransientError` (MySQL down, ...) -> the same batch is retried with backoff; on shutdown it
  is requeued, so nothing is lost;
- handlers run on a worker thread while this thread keeps the connection (and its heartbeats)
  serviced, so minutes of face recognition or a slow gallery load never drop the connection;
- a broker that refuses us (see `errors.py`) stops the consumer, and every loop sharing its
  `stop` event, and the process exits non-zero.

With a `Schedule` (the recognizer's frames), the consumer does not hand the handler what comes
in order: every delivery is offered to the schedule as soon as it arrives, the deliveries it
supersedes are acked unhandled (dropped, never processed), and whenever nothing more is waiting
the schedule chooses the one delivery to handle next. Held deliveries stay unacked (prefetch
bounds them) and go back to the queue on shutdown.
"""

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import NoReturn, Protocol

from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.spec import Basic, BasicProperties

from services.common import topology
from services.common.amqp.connection import closing, connect
from services.common.amqp.errors import CONNECTION_ERRORS, BrokerRefused, declaring, refuse
from services.common.amqp.publisher import publish
from services.common.amqp.subscriber import OnMessage, subscribe
from services.common.settings import BrokerSettings
from services.common.transport import Backoff, Delivery, Handled, Handler, TransientError

logger = logging.getLogger("services.common.amqp")

# Consumers sharing a stop event are one service: when the broker refuses one, the others stop
# with it, and each `run` raises, so the process exits non-zero whichever thread ran it.
_REFUSED: weakref.WeakKeyDictionary[threading.Event, BrokerRefused] = weakref.WeakKeyDictionary()


class Schedule(Protocol):
    """Which delivery a consumer hands its handler next (see the module docstring). Called on
    the consumer's thread only."""

    def offer(self, delivery: Delivery) -> Sequence[Delivery]:
        """Hold a delivery; returns the held ones it supersedes (acked unhandled: dropped)."""

    def next(self) -> Delivery | None:
        """The held delivery to handle now (no longer held), or None if none is held."""

    def clear(self) -> list[Delivery]:
        """Forget every held delivery and return them (requeued, or gone with the channel)."""


class Consumer:
    """Consumes one queue with an explicit ack policy (see the module docstring).

    `subscriptions`: private queues consumed on the same connection, without acks (signals such
    as "the gallery changed"); their callbacks must be quick, they run on this thread.
    `on_reconnect`: called after each reconnect (not the first connect), once the topology and
    subscriptions are declared again: whatever they were sent meanwhile is lost.
    `on_tick`: called each time the consume loop goes round (a message arrived, a batch was
    handled and acked, or nothing came for a moment), so a health check can tell a consumer
    that is alive from one stuck in its handler, its publishing or its reconnecting.
    `queue`: a queue of the topology, or a `PrivateQueue` declared anew on each connection (a
    worker's own share, gone with its connection).
    `schedule`: hand the handler one delivery at a time, chosen by the schedule (module docstring).
    """

    def __init__(
        self,
        settings: BrokerSettings,
        name: str,
        queue: str | topology.PrivateQueue,
        handler: Handler,
        *,
        prefetch: int = 1,
        batch_size: int = 1,
        batch_wait_s: float = 0.05,
        subscriptions: Sequence[tuple[topology.PrivateQueue, OnMessage]] = (),
        on_reconnect: Callable[[], None] | None = None,
        on_tick: Callable[[], None] | None = None,
        schedule: Schedule | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.queue = queue
        # A private queue's own name once declared (new on each connection).
        self.queue_name: str = queue if isinstance(queue, str) else queue.prefix
        self.schedule = schedule
        self.handler = handler
        self.prefetch = max(prefetch, batch_size)
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.subscriptions = tuple(subscriptions)
        self.on_reconnect = on_reconnect
        self.on_tick = on_tick
        self.stop = stop or threading.Event()
        self._connects = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-work")

    def run(self) -> None:
        """Consume until `stop` is set, reconnecting whenever the broker goes away.

        Raises `BrokerRefused` (a `SystemExit`) if the broker refuses this consumer or another
        one sharing `stop`; on a thread other than the main one, a plain `SystemExit` caused by
        it, which ends the thread quietly."""
        delays = Backoff().delays()
        try:
            while not self.stop.is_set():
                try:
                    with closing(connect(self.settings, self.name, self.stop)) as connection:
                        delays = Backoff().delays()
                        self._consume(connection)
                except CONNECTION_ERRORS as error:
                    refuse(error, self.name)
                    if self.stop.is_set():
                        break
                    delay = next(delays)
                    logger.warning(
                        "lost RabbitMQ (%s); reconnecting in %.1fs", error or type(error).__name__, delay
                    )
                    self.stop.wait(delay)
        except BrokerRefused as refused:
            _REFUSED.setdefault(self.stop, refused)
            self.stop.set()
            _exit(refused)
        finally:
            self._executor.shutdown(wait=True)
        logger.info("consumer of %s stopped", self.queue_name)
        sibling = _REFUSED.get(self.stop)
        if sibling is not None:  # another consumer of this service was refused (and said why)
            _exit(BrokerRefused(sibling.reason))

    def _consume(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=self.prefetch)
        channel.confirm_delivery()
        with declaring(self.name):
            topology.declare(channel)
            if isinstance(self.queue, str):
                channel.queue_declare(self.queue, passive=True)  # a queue the topology lacks is a 404 here
            else:
                self.queue_name = topology.declare_private(channel, self.queue)
            for queue, on_message in self.subscriptions:
                subscribe(channel, queue, on_message)
        self._connects += 1
        if self._connects > 1 and self.on_reconnect is not None:
            self.on_reconnect()
        if self.schedule is not None:
            self._consume_scheduled(connection, channel, self.schedule)
            return
        logger.info("consuming %s (prefetch %d, batch %d)", self.queue_name, self.prefetch, self.batch_size)
        batch: list[Delivery] = []
        # A batch is handled when full or when its first message has waited batch_wait_s, so
        # batching bounds latency instead of adding to it under a steady trickle of messages.
        timeout = self.batch_wait_s / 4 if self.batch_size > 1 else 0.5
        first_at = 0.0
        for method, properties, body in channel.consume(self.queue_name, inactivity_timeout=timeout):
            if method is not None:
                if not batch:
                    first_at = time.monotonic()
                batch.append(_delivery(method, properties, body))
            if self.stop.is_set():
                break
            if self.on_tick is not None:
                self.on_tick()
            if batch and (len(batch) >= self.batch_size or time.monotonic() - first_at >= self.batch_wait_s):
                if not self._handle(connection, channel, batch):
                    break
                batch = []
        # Unhandled deliveries (ours and those prefetched) go back to the queue for another consumer.
        for delivery in batch:
            channel.basic_nack(delivery.delivery_tag, requeue=True)
        requeued = channel.cancel()
        logger.info("stopping: %d prefetched message(s) requeued", requeued + len(batch))

    def _consume_scheduled(
        self, connection: BlockingConnection, channel: BlockingChannel, schedule: Schedule
    ) -> None:
        schedule.clear()  # what it held came on a channel that is gone
        logger.info("consuming %s (prefetch %d, scheduled)", self.queue_name, self.prefetch)
        unhandled: list[Delivery] = []
        for method, properties, body in channel.consume(self.queue_name, inactivity_timeout=0.5):
            if method is not None:
                for dropped in schedule.offer(_delivery(method, properties, body)):
                    channel.basic_ack(dropped.delivery_tag)
            if self.stop.is_set():
                break
            if self.on_tick is not None:
                self.on_tick()
            # Take in everything that has arrived first, so the schedule chooses among the newest.
            while channel.get_waiting_message_count() == 0 and not self.stop.is_set():
                delivery = schedule.next()
                if delivery is None:
                    break
                if not self._handle(connection, channel, [delivery]):
                    unhandled.append(delivery)
                    break
                if self.on_tick is not None:
                    self.on_tick()
            if unhandled:
                break
        unhandled += schedule.clear()
        for delivery in unhandled:
            channel.basic_nack(delivery.delivery_tag, requeue=True)
        requeued = channel.cancel()
        logger.info("stopping: %d held or prefetched message(s) requeued", requeued + len(unhandled))

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


def _delivery(method: Basic.Deliver, properties: BasicProperties, body: bytes) -> Delivery:
    return Delivery(
        body=body,
        routing_key=method.routing_key,
        headers=properties.headers or {},
        redelivered=method.redelivered,
        delivery_tag=method.delivery_tag,
        exchange=method.exchange,
    )


def _exit(refused: BrokerRefused) -> NoReturn:
    if threading.current_thread() is threading.main_thread():
        raise refused
    # On another thread, threading prints a traceback for anything but SystemExit itself; the
    # reason is logged already, and the thread that runs the service's main consumer exits.
    raise SystemExit(refused.code) from refused


def _wake(connection: BlockingConnection) -> None:
    # If the connection is gone, the consume loop is already reconnecting.
    with suppress(*CONNECTION_ERRORS):
        connection.add_callback_threadsafe(lambda: None)
