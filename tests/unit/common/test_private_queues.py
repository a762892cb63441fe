"""Private queues (one per connection, never in definitions.json) are topology data too."""

import re

import pytest

from services.common import topology


def topic_matches(pattern: str, key: str) -> bool:
    """RabbitMQ's topic matching: `*` one word, `#` zero or more."""
    regex = re.escape(pattern).replace(r"\#", ".*").replace(r"\*", r"[^.]+")
    return re.fullmatch(regex.replace(r"\..*", r"(\..*)?"), key) is not None


class RecordingChannel:
    def __init__(self) -> None:
        self.declared: list[dict[str, object]] = []
        self.bound: list[tuple[str, str, str]] = []

    def exchange_declare(self, exchange: str, exchange_type: str, durable: bool) -> None:
        raise AssertionError("a private queue declares no exchange")

    def queue_declare(self, queue: str, **options: object) -> None:
        self.declared.append({"queue": queue, **options})

    def queue_bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.bound.append((queue, exchange, routing_key))


@pytest.mark.parametrize("queue", topology.PRIVATE_QUEUES, ids=lambda q: q.prefix)
def test_private_queues_bind_to_defined_exchanges(queue: topology.PrivateQueue) -> None:
    exchanges = {exchange.name for exchange in topology.EXCHANGES}
    assert queue.routes and {route.exchange for route in queue.routes} <= exchanges


def test_definitions_refuse_a_private_queue_bound_to_an_undefined_exchange(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stray = topology.PrivateQueue("stray", (topology.Route("nowhere", "#"),))
    monkeypatch.setattr(topology, "PRIVATE_QUEUES", (*topology.PRIVATE_QUEUES, stray))
    with pytest.raises(ValueError, match="nowhere"):
        topology.definitions()


def test_the_live_queue_receives_every_face_event_and_attendance_mark() -> None:
    routes = topology.LIVE_EVENTS.routes
    produced = [
        (topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1")),
        (topology.RECOGNIZER_EXCHANGE, topology.unknown_key("room-1")),
        (topology.ATTENDANCE_EXCHANGE, topology.attendance_key("room-1")),
    ]
    for exchange, key in produced:
        assert any(r.exchange == exchange and topic_matches(r.routing_key, key) for r in routes), key
    # ...but not the per-frame observability events, which would flood a dashboard.
    analyzed = topology.analyzed_key("room-1")
    assert not any(topic_matches(r.routing_key, analyzed) for r in routes)


def test_the_live_queue_drops_its_oldest_beyond_its_limit() -> None:
    assert topology.LIVE_EVENTS.arguments == {
        "x-max-length": topology.LIVE_EVENTS_MAX_LENGTH,
        "x-overflow": "drop-head",
    }


def test_recognizers_hear_every_gallery_change() -> None:
    fanout = {e.name for e in topology.EXCHANGES if e.type == "fanout"}
    assert [route.exchange for route in topology.GALLERY_LISTENER.routes] == [topology.GALLERY_EXCHANGE]
    assert topology.GALLERY_EXCHANGE in fanout


def test_a_private_queue_is_exclusive_auto_delete_and_new_per_connection() -> None:
    channel = RecordingChannel()
    first = topology.declare_private(channel, topology.LIVE_EVENTS)
    second = topology.declare_private(channel, topology.LIVE_EVENTS)
    assert first != second and first.startswith("web.live.")
    assert channel.declared[0] == {
        "queue": first,
        "exclusive": True,
        "auto_delete": True,
        "arguments": topology.LIVE_EVENTS.arguments,
    }
    assert channel.bound[:2] == [
        (first, topology.RECOGNIZER_EXCHANGE, "face.#"),
        (first, topology.ATTENDANCE_EXCHANGE, "attendance.#"),
    ]


def test_topic_matching_helper() -> None:
    assert topic_matches("face.#", "face.recognized.room-1")
    assert topic_matches("attendance.#", "attendance.marked.x")
    assert not topic_matches("face.#", "frame.analyzed.x")
    assert topic_matches("frame.*", "frame.room-1")
    assert not topic_matches("frame.*", "frame.analyzed.room-1")
