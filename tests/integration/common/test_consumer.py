"""The consumer itself on a real vhost: its ack policy, retries, bug isolation, and refusals.

Each test runs a `Consumer` on a thread of the test process against the topology's own queues:
`recorder.identity` (fed by the recognizer exchange, dead-lettering into `dead.identity`) as
input, and a tap on the attendance exchange to see what it publishes.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pytest

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.amqp import EXIT_BROKER_REFUSED, BrokerRefused, Consumer
from services.common.messages import GalleryChanged
from services.common.settings import BrokerSettings
from services.common.transport import Delivery, Handled, Handler, Outgoing, TransientError
from tests.support.amqp import TestBroker

INPUT = topology.IDENTITY_QUEUE
DEAD = topology.DEAD_IDENTITY_QUEUE


def send(broker: TestBroker, *bodies: bytes) -> None:
    for body in bodies:
        broker.publish_raw(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), body)


def result(body: bytes) -> Outgoing:
    """What the handler publishes for an input: a message naming it."""
    return Outgoing(
        topology.ATTENDANCE_EXCHANGE, topology.attendance_key("room-1"), GalleryChanged(reason=body.decode())
    )


@dataclass
class Running:
    consumer: Consumer
    thread: threading.Thread
    raised: list[BaseException] = field(default_factory=list)

    def stop(self) -> None:
        self.consumer.stop.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the consumer did not stop"


@pytest.fixture
def run_consumer(amqp_url: str) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(handler: Handler, **options: Any) -> Running:
        consumer = Consumer(BrokerSettings(amqp_url=amqp_url), "test-consumer", INPUT, handler, **options)
        running = Running(consumer, threading.Thread(target=lambda: None))

        def run() -> None:
            try:
                consumer.run()
            except BaseException as error:  # the test looks at it
                running.raised.append(error)

        running.thread = threading.Thread(target=run, name="test-consumer", daemon=True)
        running.thread.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def settled(broker: TestBroker, running: Running) -> None:
    """Stop the consumer: whatever it had not acked goes back to its queue, so depths tell the truth."""
    running.stop()
    assert running.raised == []


def test_the_result_is_published_before_the_input_is_acked(
    broker: TestBroker, run_consumer: Callable[..., Running]
) -> None:
    tap = broker.tap(topology.ATTENDANCE_EXCHANGE)
    seen: list[Delivery] = []

    def handler(batch: list[Delivery]) -> list[Handled]:
        seen.extend(batch)
        if not batch[0].redelivered:
            # The broker refuses this publish (no such exchange): the input must not be acked.
            return [Handled(publish=[Outgoing("no-such-exchange", "x", GalleryChanged(reason="lost"))])]
        return [Handled(publish=[result(delivery.body)]) for delivery in batch]

    send(broker, b"m1")
    running = run_consumer(handler)
    wait_until(lambda: len(seen) >= 2, 30, "the input to come back after the failed publish")
    wait_until(lambda: broker.depth(tap) == 1, 30, "the result")
    settled(broker, running)
    assert [(d.body, d.redelivered) for d in seen] == [(b"m1", False), (b"m1", True)]
    assert [m["reason"] for m in broker.drain(tap)] == ["m1"]
    assert broker.depth(INPUT) == 0, "acked once its result was confirmed"
    assert broker.depth(DEAD) == 0


def test_a_rejected_message_is_dead_lettered_not_requeued(
    broker: TestBroker, run_consumer: Callable[..., Running]
) -> None:
    calls: list[bytes] = []

    def handler(batch: list[Delivery]) -> list[Handled]:
        calls.extend(delivery.body for delivery in batch)
        return [Handled(rejected="cannot decode") for _ in batch]

    send(broker, b"garbage")
    running = run_consumer(handler)
    wait_until(lambda: broker.depth(DEAD) == 1, 30, "the dead letter")
    settled(broker, running)
    assert calls == [b"garbage"], "rejected once, never redelivered"
    assert broker.drain_raw(DEAD) == [b"garbage"]
    assert broker.depth(INPUT) == 0


def test_a_transient_error_retries_the_same_delivery_until_it_passes(
    broker: TestBroker, run_consumer: Callable[..., Running]
) -> None:
    tap = broker.tap(topology.ATTENDANCE_EXCHANGE)
    attempts: list[Delivery] = []

    def handler(batch: list[Delivery]) -> list[Handled]:
        attempts.extend(batch)
        if len(attempts) < 3:
            raise TransientError("MySQL restarting")
        return [Handled(publish=[result(delivery.body)]) for delivery in batch]

    send(broker, b"m1")
    running = run_consumer(handler)
    wait_until(lambda: broker.depth(tap) == 1, 30, "the result after the retries")
    settled(broker, running)
    # Retried in the consumer, not through the broker: no redelivery, nothing dead-lettered.
    assert [(d.body, d.redelivered) for d in attempts] == [(b"m1", False)] * 3
    assert broker.depth(INPUT) == 0
    assert broker.depth(DEAD) == 0


def test_a_transient_error_on_shutdown_requeues_the_batch(
    broker: TestBroker, run_consumer: Callable[..., Running]
) -> None:
    attempts: list[Delivery] = []

    def handler(batch: list[Delivery]) -> list[Handled]:
        attempts.extend(batch)
        raise TransientError("MySQL down for good")

    send(broker, b"m1")
    running = run_consumer(handler)
    wait_until(lambda: len(attempts) >= 2, 30, "a retry")
    settled(broker, running)
    assert broker.depth(INPUT) == 1, "requeued, not lost"
    assert broker.depth(DEAD) == 0


def test_a_handler_bug_dead_letters_only_the_message_that_caused_it(
    broker: TestBroker, run_consumer: Callable[..., Running], caplog: pytest.LogCaptureFixture
) -> None:
    tap = broker.tap(topology.ATTENDANCE_EXCHANGE)
    batches: list[list[bytes]] = []

    def handler(batch: list[Delivery]) -> list[Handled]:
        batches.append([delivery.body for delivery in batch])
        if any(delivery.body == b"boom" for delivery in batch):
            raise KeyError("a bug")
        return [Handled(publish=[result(delivery.body)]) for delivery in batch]

    send(broker, b"m1", b"boom", b"m3")
    running = run_consumer(handler, batch_size=3, batch_wait_s=2.0)
    wait_until(lambda: broker.depth(DEAD) == 1 and broker.depth(tap) == 2, 30, "the batch to be sorted out")
    send(broker, b"m4")  # the consumer goes on with the next ones
    wait_until(lambda: broker.depth(tap) == 3, 30, "the next message")
    settled(broker, running)
    assert batches[:4] == [[b"m1", b"boom", b"m3"], [b"m1"], [b"boom"], [b"m3"]]
    assert sorted(m["reason"] for m in broker.drain(tap)) == ["m1", "m3", "m4"]
    assert broker.drain_raw(DEAD) == [b"boom"]
    assert broker.depth(INPUT) == 0
    assert any("handler failed; dead-lettering" in r.getMessage() for r in caplog.records)


def conflicting_frames_queue(amqp_url: str) -> None:
    """What an operator's stale definitions would leave: a queue with other arguments."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    cameras = next(queue for queue in topology.QUEUES if queue.name == topology.CAMERAS_QUEUE)
    arguments = {**cameras.arguments, "x-max-length": 99}
    connection.channel().queue_declare(topology.CAMERAS_QUEUE, durable=True, arguments=arguments)
    connection.close()


def test_conflicting_queue_arguments_stop_the_consumer_with_a_clear_error(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    conflicting_frames_queue(amqp_url)
    caplog.set_level(logging.INFO)
    consumer = Consumer(BrokerSettings(amqp_url=amqp_url), "test-consumer", INPUT, lambda b: [])
    watchdog = threading.Timer(20, consumer.stop.set)  # if it loops, end the test rather than hang
    watchdog.start()
    try:
        with pytest.raises(BrokerRefused) as raised:
            consumer.run()
    finally:
        watchdog.cancel()
    refused = raised.value
    assert refused.code == EXIT_BROKER_REFUSED
    assert "PRECONDITION_FAILED" in refused.reason and "x-max-length" in refused.reason
    assert consumer.stop.is_set(), "the loops sharing its stop event end too"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"test-consumer: RabbitMQ refused us, stopping: {refused.reason}"]
    assert not any("reconnecting" in r.getMessage() for r in caplog.records)


def test_a_consumer_refused_on_another_thread_ends_it_quietly(amqp_url: str) -> None:
    conflicting_frames_queue(amqp_url)
    consumer = Consumer(BrokerSettings(amqp_url=amqp_url), "test-consumer", INPUT, lambda b: [])
    raised: list[BaseException] = []
    hooked: list[threading.ExceptHookArgs] = []

    def run() -> None:
        try:
            consumer.run()
        except BaseException as error:
            raised.append(error)
            raise

    previous, threading.excepthook = threading.excepthook, hooked.append
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=20)
    finally:
        threading.excepthook = previous
    assert not thread.is_alive()
    [error] = raised
    assert type(error) is SystemExit and error.code == EXIT_BROKER_REFUSED
    assert isinstance(error.__cause__, BrokerRefused)
    assert [args.exc_type for args in hooked] == [SystemExit]  # which threading does not print


def test_a_refused_service_exits_non_zero_with_one_line_per_consumer(
    amqp_url: str, database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The recorder as a real process: both of its consumers stop, and the process says why."""
    conflicting_frames_queue(amqp_url)
    process = ServiceProcess(
        "services.recorder",
        {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "RECORDER_CSV_PATH": str(tmp_path / "a.csv")},
        f"{request.node.name}-recorder",
    )
    try:
        code = process.wait(timeout_s=60)
    finally:
        process.stop()
    log = process.log()
    assert code == EXIT_BROKER_REFUSED, log
    refusals = [line for line in log.splitlines() if "RabbitMQ refused us, stopping" in line]
    assert 1 <= len(refusals) <= 2, log  # the identity consumer and the heartbeat one (a thread)
    assert all("inequivalent arg 'x-max-length'" in line for line in refusals)
    assert "Traceback" not in log
    assert "reconnecting" not in log


class NewestFirst:
    """A schedule for the test: keeps only the newest delivery (by body prefix = key)."""

    def __init__(self) -> None:
        self.held: dict[bytes, Delivery] = {}

    def offer(self, delivery: Delivery) -> list[Delivery]:
        key = delivery.body.split(b"-")[0]
        old = self.held.pop(key, None)
        self.held[key] = delivery
        return [old] if old is not None else []

    def next(self) -> Delivery | None:
        if not self.held:
            return None
        key = next(iter(self.held))
        return self.held.pop(key)

    def clear(self) -> list[Delivery]:
        held, self.held = list(self.held.values()), {}
        return held


def test_a_scheduled_consumer_drops_what_its_schedule_supersedes_on_a_private_queue(
    amqp_url: str, broker: TestBroker
) -> None:
    tap = broker.tap(topology.ATTENDANCE_EXCHANGE)
    handled: list[bytes] = []
    first = threading.Event()

    def handler(batch: list[Delivery]) -> list[Handled]:
        handled.extend(delivery.body for delivery in batch)
        first.wait(10)  # the first delivery is slow: the others pile up meanwhile
        return [Handled(publish=[result(delivery.body)]) for delivery in batch]

    consumer = Consumer(
        BrokerSettings(amqp_url=amqp_url),
        "test-scheduled",
        topology.RECOGNIZER_FRAMES,
        handler,
        prefetch=50,
        schedule=NewestFirst(),
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: consumer.queue_name != topology.RECOGNIZER_FRAMES.prefix, 20, "the private queue")
        broker.publish_raw(topology.FRAMES_EXCHANGE, "a", b"a-0")
        wait_until(lambda: handled, 20, "the first delivery")
        for n in range(1, 6):
            broker.publish_raw(topology.FRAMES_EXCHANGE, "a", f"a-{n}".encode())
            broker.publish_raw(topology.FRAMES_EXCHANGE, "a", f"b-{n}".encode())
        time.sleep(1.0)  # all of them reach the consumer while the handler is busy
        first.set()
        wait_until(lambda: broker.depth(tap) == 3, 20, "the results")
        assert handled == [b"a-0", b"a-5", b"b-5"]  # the newest of each, the rest acked unhandled
        assert sorted(m["reason"] for m in broker.drain(tap)) == ["a-0", "a-5", "b-5"]
        time.sleep(0.5)
        assert handled == [b"a-0", b"a-5", b"b-5"], "the superseded ones were acked, never handled"
    finally:
        consumer.stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
