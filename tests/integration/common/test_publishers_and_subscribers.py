"""The other clients of the transport on a real vhost: capture's streaming publisher, the
dashboard's subscriber, the health check."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pika
import pytest

from harness.processes import wait_until
from services.common import topology
from services.common.amqp import BrokerRefused, StreamPublisher, Subscriber, broker_reachable
from services.common.messages import CameraHeartbeat, FrameCaptured, GalleryChanged
from services.common.settings import BrokerSettings
from services.common.transport import Outgoing
from tests.support.amqp import TestBroker


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_the_stream_publisher_declares_the_topology_and_publishes_transiently(
    amqp_url: str, broker: TestBroker, stop: threading.Event
) -> None:
    publisher = StreamPublisher(BrokerSettings(amqp_url=amqp_url), "capture-test", stop)
    frame = FrameCaptured(camera_id="room-1", seq=0, captured_at=datetime.now(UTC), width=2, height=1)
    heartbeat = CameraHeartbeat(
        camera_id="room-1", camera_name="Room 1", source="test", frames_published=1, status="streaming"
    )
    worker_queue = topology.declare_private(broker.channel, topology.RECOGNIZER_FRAMES)  # a worker's share
    try:
        publisher.publish_bytes(
            topology.FRAMES_EXCHANGE,
            topology.frame_key("room-1"),
            b"\xff\xd8jpeg",
            content_type="image/jpeg",
            headers=frame.to_headers(),
        )
        publisher.publish(
            Outgoing(topology.CAPTURE_EXCHANGE, topology.heartbeat_key("room-1"), heartbeat, persistent=False)
        )
        wait_until(lambda: broker.depth(worker_queue) == 1, 10, "the frame")
    finally:
        publisher.close()
    method, properties, body = broker.channel.basic_get(worker_queue, auto_ack=True)
    assert body == b"\xff\xd8jpeg" and method.routing_key == "room-1"
    assert properties.delivery_mode == pika.DeliveryMode.Transient.value
    assert properties.content_type == "image/jpeg"
    assert properties.headers == frame.to_headers()
    [beat] = broker.drain(topology.CAMERAS_QUEUE)
    assert beat["camera_id"] == "room-1" and beat["status"] == "streaming"


def test_a_stopped_stream_publisher_drops_instead_of_waiting(stop: threading.Event) -> None:
    stop.set()
    publisher = StreamPublisher(
        BrokerSettings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F"), "capture", stop
    )
    publisher.publish(Outgoing(topology.GALLERY_EXCHANGE, "", GalleryChanged(reason="x")))
    assert publisher.queue_depth(topology.CAMERAS_QUEUE) == (0, 0)


def test_a_mandatory_frame_no_worker_takes_comes_back_and_summaries_reach_the_subscription(
    amqp_url: str, broker: TestBroker, stop: threading.Event
) -> None:
    returned: list[object] = []
    summaries: list[tuple[str, bytes]] = []
    connects: list[bool] = []
    publisher = StreamPublisher(
        BrokerSettings(amqp_url=amqp_url),
        "capture-test",
        stop,
        subscriptions=[(topology.frame_summaries("room-1"), lambda key, body: summaries.append((key, body)))],
        on_return=lambda headers: returned.append(headers.get("seq")),
        on_connect=lambda: connects.append(True),
    )
    frame = FrameCaptured(
        camera_id="room-1", seq=7, captured_at=datetime.now(UTC), width=2, height=1, droppable=False
    )
    try:
        assert publisher.publish_bytes(
            topology.FRAMES_EXCHANGE,
            "room-1",
            b"jpeg",
            content_type="image/jpeg",
            headers=frame.to_headers(),
            mandatory=True,
        )
        wait_until(lambda: publisher.sleep(0.1) or returned, 10, "the frame back: no worker is bound")
        assert returned == [7] and connects == [True]
        broker.publish_raw(topology.RECOGNIZER_EXCHANGE, topology.analyzed_key("room-1"), b"mine")
        broker.publish_raw(topology.RECOGNIZER_EXCHANGE, topology.analyzed_key("room-2"), b"not mine")
        wait_until(lambda: publisher.sleep(0.1) or summaries, 10, "the summary")
        publisher.sleep(0.3)
        assert summaries == [("frame.analyzed.room-1", b"mine")]
    finally:
        publisher.close()


def test_the_subscriber_receives_face_events_and_marks_on_its_private_queue(
    amqp_url: str, broker: TestBroker, stop: threading.Event
) -> None:
    received: list[tuple[str, bytes]] = []
    statuses: list[tuple[bool, str]] = []
    subscriber = Subscriber(
        BrokerSettings(amqp_url=amqp_url),
        "web-live-test",
        topology.LIVE_EVENTS,
        lambda key, body: received.append((key, body)),
        stop=stop,
        on_status=lambda receiving, detail: statuses.append((receiving, detail)),
    )
    thread = threading.Thread(target=subscriber.run, daemon=True)
    thread.start()
    wait_until(lambda: (True, "live") in statuses, 10, "the subscription")
    broker.publish_raw(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), b"face")
    broker.publish_raw(
        topology.RECOGNIZER_EXCHANGE, topology.analyzed_key("room-1"), b"not for the dashboard"
    )
    broker.publish_raw(topology.ATTENDANCE_EXCHANGE, topology.attendance_key("room-1"), b"mark")
    wait_until(lambda: len(received) >= 2, 10, "the events")
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert received == [("face.recognized.room-1", b"face"), ("attendance.marked.room-1", b"mark")]
    assert statuses[-1] == (False, "stopped")


def test_a_subscriber_refused_by_the_broker_says_so_and_ends(stop: threading.Event) -> None:
    statuses: list[tuple[bool, str]] = []
    subscriber = Subscriber(
        BrokerSettings(amqp_url="amqp://guest:wrong-password@127.0.0.1:5672/%2F"),
        "web-live-test",
        topology.LIVE_EVENTS,
        lambda _key, _body: None,
        stop=stop,
        on_status=lambda receiving, detail: statuses.append((receiving, detail)),
    )
    with pytest.raises(BrokerRefused, match="login refused"):
        subscriber.run()
    [(receiving, detail)] = statuses
    assert not receiving and detail.startswith("refused by RabbitMQ: login refused")


def test_broker_reachable(amqp_url: str) -> None:
    assert broker_reachable(BrokerSettings(amqp_url=amqp_url), timeout_s=2)
    assert not broker_reachable(BrokerSettings(amqp_url="amqp://guest:guest@127.0.0.1:1/%2F"), timeout_s=2)
    wrong_password = BrokerSettings(amqp_url="amqp://guest:nope@127.0.0.1:5672/%2F")
    assert not broker_reachable(wrong_password, timeout_s=2), "a probe reports, it never stops the API"
