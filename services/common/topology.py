"""Exchange and queue names and arguments: the one place they are defined.

`rabbitmq/definitions.json` is generated from this module (`python -m
services.common.topology`) and a test checks the two agree. Every queue is durable or
exclusive, so the topology is valid on RabbitMQ 3.10 and on 4.x.

Private queues (`PrivateQueue`: one per connection, exclusive and auto-delete, under a new
name each time) cannot be in the definitions file, but their arguments and bindings are
data here too, and `definitions()` checks that they bind to exchanges it defines.
"""

import json
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

CAPTURE_EXCHANGE = "capture"  # topic: frame.<camera>, camera.<camera>
RECOGNIZER_EXCHANGE = "recognizer"  # topic: face.recognized.<camera>, face.unknown.<camera>,
#                                        frame.analyzed.<camera> (observability only)
ATTENDANCE_EXCHANGE = "attendance"  # topic: attendance.marked.<camera>
GALLERY_EXCHANGE = "gallery"  # fanout: every recognizer reloads
DEAD_LETTER_EXCHANGE = "dead"  # direct: messages no consumer could process

FRAMES_QUEUE = "recognizer.frames"
IDENTITY_QUEUE = "recorder.identity"
CAMERAS_QUEUE = "recorder.cameras"
DEAD_IDENTITY_QUEUE = "dead.identity"

# Frames are disposable: beyond this many waiting, the broker drops the oldest, so a
# recognizer never works on a stale frame and latency stays bounded under overload.
FRAMES_MAX_LENGTH = 8
FRAMES_TTL_MS = 5_000


def frame_key(camera_id: str) -> str:
    return f"frame.{camera_id}"


def heartbeat_key(camera_id: str) -> str:
    return f"camera.{camera_id}"


def recognized_key(camera_id: str) -> str:
    return f"face.recognized.{camera_id}"


def unknown_key(camera_id: str) -> str:
    return f"face.unknown.{camera_id}"


def analyzed_key(camera_id: str) -> str:
    return f"frame.analyzed.{camera_id}"


def attendance_key(camera_id: str) -> str:
    return f"attendance.marked.{camera_id}"


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    exchange: str
    queue: str
    routing_key: str


EXCHANGES = (
    Exchange(CAPTURE_EXCHANGE, "topic"),
    Exchange(RECOGNIZER_EXCHANGE, "topic"),
    Exchange(ATTENDANCE_EXCHANGE, "topic"),
    Exchange(GALLERY_EXCHANGE, "fanout"),
    Exchange(DEAD_LETTER_EXCHANGE, "direct"),
)

QUEUES = (
    Queue(
        FRAMES_QUEUE,
        {"x-max-length": FRAMES_MAX_LENGTH, "x-overflow": "drop-head", "x-message-ttl": FRAMES_TTL_MS},
    ),
    Queue(
        IDENTITY_QUEUE,
        {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE, "x-dead-letter-routing-key": DEAD_IDENTITY_QUEUE},
    ),
    # Heartbeats only refresh "last frame at": keep a few, drop the rest.
    Queue(CAMERAS_QUEUE, {"x-max-length": 100, "x-overflow": "drop-head"}),
    Queue(DEAD_IDENTITY_QUEUE),
)

BINDINGS = (
    Binding(CAPTURE_EXCHANGE, FRAMES_QUEUE, "frame.*"),
    Binding(CAPTURE_EXCHANGE, CAMERAS_QUEUE, "camera.*"),
    Binding(RECOGNIZER_EXCHANGE, IDENTITY_QUEUE, "face.#"),
    Binding(DEAD_LETTER_EXCHANGE, DEAD_IDENTITY_QUEUE, DEAD_IDENTITY_QUEUE),
)


@dataclass(frozen=True)
class Route:
    """Where a private queue takes its copies from."""

    exchange: str
    routing_key: str = ""  # ignored by a fanout exchange


@dataclass(frozen=True)
class PrivateQueue:
    """A queue a connection declares for itself: exclusive, auto-delete (it disappears with the
    connection) and named `<prefix>.<random>`, new per connection, since the broker may not yet
    have noticed that the previous connection, and its queue, are gone."""

    prefix: str
    routes: tuple[Route, ...]
    arguments: dict[str, Any] = field(default_factory=dict)

    def new_name(self) -> str:
        return f"{self.prefix}.{uuid.uuid4().hex[:12]}"


# Every recognizer reloads its gallery when told that enrolled faces changed.
GALLERY_LISTENER = PrivateQueue("recognizer.gallery", (Route(GALLERY_EXCHANGE),))

# Events waiting for the dashboard at most: beyond, the broker drops the oldest (they are only a view).
LIVE_EVENTS_MAX_LENGTH = 1000
LIVE_EVENTS = PrivateQueue(
    "web.live",
    (Route(RECOGNIZER_EXCHANGE, "face.#"), Route(ATTENDANCE_EXCHANGE, "attendance.#")),
    {"x-max-length": LIVE_EVENTS_MAX_LENGTH, "x-overflow": "drop-head"},
)

PRIVATE_QUEUES = (GALLERY_LISTENER, LIVE_EVENTS)


class DeclaringChannel(Protocol):
    def exchange_declare(self, exchange: str, exchange_type: str, durable: bool) -> Any: ...
    def queue_declare(
        self,
        queue: str,
        durable: bool = ...,
        exclusive: bool = ...,
        auto_delete: bool = ...,
        arguments: Any = ...,
    ) -> Any: ...
    def queue_bind(self, queue: str, exchange: str, routing_key: str) -> Any: ...


def declare(channel: DeclaringChannel) -> None:
    """Declare every durable exchange, queue and binding (idempotent, same arguments as definitions.json)."""
    for exchange in EXCHANGES:
        channel.exchange_declare(exchange=exchange.name, exchange_type=exchange.type, durable=True)
    for queue in QUEUES:
        channel.queue_declare(queue=queue.name, durable=True, arguments=dict(queue.arguments))
    for binding in BINDINGS:
        channel.queue_bind(queue=binding.queue, exchange=binding.exchange, routing_key=binding.routing_key)


def declare_private(channel: DeclaringChannel, queue: PrivateQueue) -> str:
    """Declare a new private queue and its bindings (the exchanges must exist: `declare` first); its name."""
    name = queue.new_name()
    channel.queue_declare(queue=name, exclusive=True, auto_delete=True, arguments=dict(queue.arguments))
    for route in queue.routes:
        channel.queue_bind(queue=name, exchange=route.exchange, routing_key=route.routing_key)
    return name


def _check_private_queues() -> None:
    exchanges = {exchange.name for exchange in EXCHANGES}
    for queue in PRIVATE_QUEUES:
        unknown = {route.exchange for route in queue.routes} - exchanges
        if unknown:
            raise ValueError(f"private queue {queue.prefix} binds to undefined exchange(s) {sorted(unknown)}")


def definitions(vhost: str = "/") -> dict[str, Any]:
    """The topology in the format of RabbitMQ's definitions file (management `load_definitions`)."""
    _check_private_queues()
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": [
            {
                "name": e.name,
                "vhost": vhost,
                "type": e.type,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for e in EXCHANGES
        ],
        "queues": [
            {"name": q.name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": q.arguments}
            for q in QUEUES
        ],
        "bindings": [
            {
                "source": b.exchange,
                "vhost": vhost,
                "destination": b.queue,
                "destination_type": "queue",
                "routing_key": b.routing_key,
                "arguments": {},
            }
            for b in BINDINGS
        ],
    }


if __name__ == "__main__":
    json.dump(definitions(), sys.stdout, indent=2)
    sys.stdout.write("\n")
