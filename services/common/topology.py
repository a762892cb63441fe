"""Exchange and queue names and arguments: the one place they are defined.

`rabbitmq/definitions.json` is generated from this module (`python -m
services.common.topology`) and a test checks the two agree. Every queue is durable or
exclusive, so the topology is valid on RabbitMQ 3.10 and on 4.x.

Private queues (`PrivateQueue`: one per connection, exclusive and auto-delete, under a new
name each time) cannot be in the definitions file, but their arguments and bindings are
data here too, and `definitions()` checks that they bind to exchanges it defines.

Frames: camera affinity with failover
-------------------------------------
A worker decides per face track (services/recognizer/tracking.py), so it must see every frame
of a camera, in order; with competing consumers on one queue each of N workers saw an arbitrary
1/N of each camera and the roll depended on N. Frames now go to `FRAMES_EXCHANGE`, an
`x-consistent-hash` exchange (the `rabbitmq_consistent_hash_exchange` plugin, shipped with
RabbitMQ and enabled by rabbitmq/enabled_plugins, scripts/ensure_rabbitmq_plugins.sh and
`make run`), with the camera id as routing key. Each recognizer declares its own private queue
(`RECOGNIZER_FRAMES`: exclusive, auto-delete, drop-head beyond its length) bound with weight
`FRAMES_WEIGHT`. The exchange hashes the camera onto one bound queue (jump consistent hashing
over the bindings' buckets), so:
- a camera's frames reach one worker at a time, in the order capture published them;
- a worker that dies closes its connection (a SIGKILL closes the socket at once; a lost
  machine is noticed after the AMQP heartbeat), the broker deletes its queue and binding, and
  its cameras hash onto the others from the next frame;
- a worker that joins binds its queue and takes its share (about 1/N of the cameras) at once.
The cost: what sat in a dead worker's queue is lost (frames are disposable; capture's fast
pace times out its in-flight frames), a moved camera's tracks start again on its new worker,
and hashing a few cameras is uneven (4 cameras on 2 workers split 2-2 only 3 times in 8;
with more cameras the shares even out). Inside a worker, services/recognizer/scheduling.py
serves its cameras in turn, newest frame first, so overload is shared evenly by the cameras
of a worker.

Rejected alternatives: a queue per camera with single-active-consumer gives affinity and
failover too, but the broker gives each queue to its first consumer and never hands it over
while that consumer lives, so all cameras land on the first worker up and a joining worker
gets nothing until another dies (3.10 to 4.x; rebalancing would be a coordinator of our own),
and each new camera needs a queue declared for it. A stream per camera (or one partitioned
super stream) keeps order and lets consumers replay, but single-active-consumer on super
streams needs the stream protocol (not AMQP 0.9.1 through pika), it stores every frame on
disk, and superseded frames would still be read. The consistent-hash exchange needs no
client but pika, no per-camera declaration, and rebalances on join and on death by itself.

Heartbeats stay on `CAPTURE_EXCHANGE` (to `recorder.cameras`), as before.

Camera previews
---------------
The live page shows a small, recent picture of a session's camera with the faces' boxes and
names (services/recognizer/preview.py). The recognizers publish one at most a few times a
second per camera to `PREVIEW_EXCHANGE`, which is transient (non-durable: nothing about it
needs to survive a broker restart, every service redeclares it on connect) and feeds only the
dashboard's private queue `LIVE_PREVIEWS`: short, dropping the oldest, each preview living a
few seconds, since the dashboard keeps only the latest per camera. Previews show faces
(biometric data): only the recognizers may write the exchange, only the dashboard read it.
"""

import json
import re
import shlex
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

CAPTURE_EXCHANGE = "capture"  # topic: camera.<camera> (heartbeats)
FRAMES_EXCHANGE = "frames"  # x-consistent-hash: routing key = camera id (see above)
RECOGNIZER_EXCHANGE = "recognizer"  # topic: face.recognized.<camera>, face.unknown.<camera>,
#                                        frame.analyzed.<camera>, camera.load.<camera>
#                                        (the last two for observability and capture's credit)
ATTENDANCE_EXCHANGE = "attendance"  # topic: attendance.marked.<camera>, attendance.changed.<camera>
GALLERY_EXCHANGE = "gallery"  # fanout: every recognizer reloads
DEAD_LETTER_EXCHANGE = "dead"  # direct: messages no consumer could process
PREVIEW_EXCHANGE = "preview"  # topic, transient: preview.<camera> (see "Camera previews" above)

IDENTITY_QUEUE = "recorder.identity"
CAMERAS_QUEUE = "recorder.cameras"
DEAD_IDENTITY_QUEUE = "dead.identity"
# Dead letters are kept for a person to inspect, but not without bound (issue 9, finding 13):
# at most DEAD_LETTER_MAX_LENGTH messages (beyond them the oldest is dropped), each for at most
# DEAD_LETTER_TTL_MS (14 days), after which the broker discards it.
DEAD_LETTER_MAX_LENGTH = 10_000
DEAD_LETTER_TTL_MS = 14 * 24 * 3600 * 1000

# A worker's private frames queue. Its consumer takes up to FRAMES_PREFETCH frames at once and
# keeps only the newest of each camera (services/recognizer/scheduling.py), so the queue itself
# stays short; beyond FRAMES_MAX_LENGTH waiting (a worker stuck or with more cameras than its
# prefetch), the broker drops the oldest.
FRAMES_MAX_LENGTH = 200
FRAMES_PREFETCH = 100
# Every worker binds with the same weight: the same share of cameras. (A worker on a machine
# twice as fast could bind with twice the weight.)
FRAMES_WEIGHT = 1


def frame_key(camera_id: str) -> str:
    """The routing key of a camera's frames on FRAMES_EXCHANGE: what is hashed."""
    return camera_id


def heartbeat_key(camera_id: str) -> str:
    return f"camera.{camera_id}"


def recognized_key(camera_id: str) -> str:
    return f"face.recognized.{camera_id}"


def unknown_key(camera_id: str) -> str:
    return f"face.unknown.{camera_id}"


def analyzed_key(camera_id: str) -> str:
    return f"frame.analyzed.{camera_id}"


def load_key(camera_id: str) -> str:
    return f"camera.load.{camera_id}"


def attendance_key(camera_id: str) -> str:
    return f"attendance.marked.{camera_id}"


def attendance_change_key(camera_id: str) -> str:
    return f"attendance.changed.{camera_id}"


def preview_key(camera_id: str) -> str:
    return f"preview.{camera_id}"


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str
    durable: bool = True  # False: gone with a broker restart until a service redeclares it


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
    Exchange(FRAMES_EXCHANGE, "x-consistent-hash"),
    Exchange(RECOGNIZER_EXCHANGE, "topic"),
    Exchange(ATTENDANCE_EXCHANGE, "topic"),
    Exchange(GALLERY_EXCHANGE, "fanout"),
    Exchange(DEAD_LETTER_EXCHANGE, "direct"),
    Exchange(PREVIEW_EXCHANGE, "topic", durable=False),
)

# Every durable queue is a quorum queue (issue 11): replicated over the nodes of a cluster
# (README, "A broker that survives losing a node"), a message is confirmed to its publisher only
# once a majority of them has it, and the queue lives on while a majority does. On one node
# (`make run`, CI) it is a queue like any other. What quorum queues refuse is not used here:
# non-durable or exclusive, x-max-priority, x-overflow reject-publish-dlx (drop-head, max-length
# and message TTL are supported from 3.10). A queue's type cannot change in place: a broker
# that still has a classic one is migrated by `python -m services.common.amqp.migration`
# (services/common/amqp/migration.py). Private queues (frames, views) stay classic: they
# die with their connection anyway.
QUORUM = {"x-queue-type": "quorum"}

QUEUES = (
    Queue(
        IDENTITY_QUEUE,
        {
            **QUORUM,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": DEAD_IDENTITY_QUEUE,
        },
    ),
    # Heartbeats only refresh "last frame at": keep a few, drop the rest.
    Queue(CAMERAS_QUEUE, {**QUORUM, "x-max-length": 100, "x-overflow": "drop-head"}),
    Queue(
        DEAD_IDENTITY_QUEUE,
        {
            **QUORUM,
            "x-max-length": DEAD_LETTER_MAX_LENGTH,
            "x-overflow": "drop-head",
            "x-message-ttl": DEAD_LETTER_TTL_MS,
        },
    ),
)

BINDINGS = (
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

# The dashboard's camera previews: it keeps only the latest per camera, so a short queue, and a
# preview older than LIVE_PREVIEW_TTL_MS is worth nothing (the broker drops it unread).
LIVE_PREVIEWS_MAX_LENGTH = 20
LIVE_PREVIEW_TTL_MS = 5000
LIVE_PREVIEWS = PrivateQueue(
    "web.preview",
    (Route(PREVIEW_EXCHANGE, preview_key("*")),),
    {
        "x-max-length": LIVE_PREVIEWS_MAX_LENGTH,
        "x-overflow": "drop-head",
        "x-message-ttl": LIVE_PREVIEW_TTL_MS,
    },
)

# Each recognizer's frames: its share of the cameras (see the module docstring).
RECOGNIZER_FRAMES = PrivateQueue(
    "recognizer.frames",
    (Route(FRAMES_EXCHANGE, str(FRAMES_WEIGHT)),),
    {"x-max-length": FRAMES_MAX_LENGTH, "x-overflow": "drop-head"},
)


def frame_summaries(camera_id: str) -> PrivateQueue:
    """Capture's credit in fast pace: the summaries of its own camera's analyzed frames."""
    return PrivateQueue(
        "capture.analyzed",
        (Route(RECOGNIZER_EXCHANGE, analyzed_key(camera_id)),),
        {"x-max-length": 1000, "x-overflow": "drop-head"},
    )


# Per-camera load reports of every worker (services.common.camera_load aggregates them).
CAMERA_LOADS = PrivateQueue(
    "camera.load",
    (Route(RECOGNIZER_EXCHANGE, load_key("*")),),
    {"x-max-length": 1000, "x-overflow": "drop-head"},
)

PRIVATE_QUEUES = (
    GALLERY_LISTENER,
    LIVE_EVENTS,
    LIVE_PREVIEWS,
    RECOGNIZER_FRAMES,
    frame_summaries("camera-1"),
    CAMERA_LOADS,
)


# ---------------------------------------------------------------------------------------------
# Least privilege: one broker user per service (issue 9, finding 3)
#
# Each service has a RabbitMQ user of its own, named after it, with rights to exactly what it
# uses: the exchanges it publishes to, the durable queues it consumes, its own private queues
# (named `<prefix>.<12 hex digits>`, see PrivateQueue.new_name) and the exchanges they bind to.
# Nobody but the recognizers may write RECOGNIZER_EXCHANGE, so no other service can forge an
# identity event there.
#
# Every service also runs `declare()` when it connects (services/common/amqp): that redeclares
# every durable exchange and queue (configure on their names) and every durable binding (write
# on the bound queue, read on its exchange), so those rights are granted to every service too
# (`DECLARE_NEEDS`). They allow no publish to an exchange a service does not own (publishing is
# checked against write on the exchange; the default exchange "amq.default" is in no regex).
# What they still allow: a service that may both read and write one exchange (capture, on
# CAPTURE_EXCHANGE) could bind IDENTITY_QUEUE to it. Closing that needs each service to declare
# only its own part of the topology (then DECLARE_NEEDS goes), or the recorder to accept
# identity events only when delivered by RECOGNIZER_EXCHANGE.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """What one service does on the broker."""

    publishes: tuple[str, ...] = ()  # exchanges
    consumes: tuple[str, ...] = ()  # durable queues
    private: tuple[PrivateQueue, ...] = ()  # private queues it declares, binds and consumes


ACCESS: dict[str, Access] = {
    # Frames and heartbeats; in fast pace, the summaries of its own camera's analyzed frames.
    "capture": Access(publishes=(FRAMES_EXCHANGE, CAPTURE_EXCHANGE), private=(frame_summaries("any"),)),
    # Identity events, frame summaries and load reports; camera previews for the dashboard.
    "recognizer": Access(
        publishes=(RECOGNIZER_EXCHANGE, PREVIEW_EXCHANGE), private=(RECOGNIZER_FRAMES, GALLERY_LISTENER)
    ),
    "recorder": Access(publishes=(ATTENDANCE_EXCHANGE,), consumes=(IDENTITY_QUEUE, CAMERAS_QUEUE)),
    "api": Access(publishes=(GALLERY_EXCHANGE,)),
    "web": Access(private=(LIVE_EVENTS, LIVE_PREVIEWS, CAMERA_LOADS)),
}
SERVICES = tuple(ACCESS)


def broker_user(service: str) -> str:
    """The RabbitMQ user of a service (its password: RABBITMQ_<SERVICE>_PASSWORD)."""
    return service


def password_variable(service: str) -> str:
    return f"RABBITMQ_{service.upper()}_PASSWORD"


# Workers on other machines (README, "Workers on other machines"): each machine that runs a
# recognizer or a capture against the central broker logs in as a user of its own, with exactly
# the service's permissions, so one machine's password can be revoked without touching the rest.
NODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
NODE_SERVICES = ("recognizer", "capture")


def node_user(service: str, node: str) -> str:
    """The broker user of `service` on the machine `node`: `<service>-<node>`."""
    if service not in NODE_SERVICES:
        raise ValueError(f"only {' and '.join(NODE_SERVICES)} run on other machines, not {service!r}")
    if not NODE_PATTERN.match(node):
        raise ValueError(f"node name {node!r}: lower-case letters, digits and '-', at most 40")
    return f"{broker_user(service)}-{node}"


def node_user_commands(service: str, node: str, vhost: str = "/") -> list[list[str]]:
    """The rabbitmqctl commands an admin runs on the central broker to add a node's user (the
    password is read from the variable NODE_PASSWORD, so it is in no shell history)."""
    user = node_user(service, node)
    configure, write, read = PERMISSIONS[service]
    return [
        ["rabbitmqctl", "add_user", user, "$NODE_PASSWORD"],
        ["rabbitmqctl", "set_permissions", "-p", vhost, user, configure, write, read],
    ]


def _shell(command: list[str]) -> str:
    # "$NODE_PASSWORD" stays a variable for the shell to expand; the rest is quoted literally.
    return " ".join('"$NODE_PASSWORD"' if arg == "$NODE_PASSWORD" else shlex.quote(arg) for arg in command)


@dataclass(frozen=True)
class Rights:
    configure: frozenset[str]  # exact names, or a private queue prefix (see private_name_pattern)
    write: frozenset[str]
    read: frozenset[str]


def _private_pattern(queue: PrivateQueue) -> str:
    return re.escape(queue.prefix) + r"\.[0-9a-f]{12}"


def _names_pattern(names: frozenset[str], private: tuple[PrivateQueue, ...]) -> str:
    alternatives = sorted(re.escape(name) for name in names) + sorted({_private_pattern(q) for q in private})
    if not alternatives:
        return "^$"  # nothing (an empty regex would match every name)
    return "^(" + "|".join(alternatives) + ")$"


def declare_needs() -> Rights:
    """What `declare()` needs: configure on every durable name, and what each binding needs."""
    return Rights(
        configure=frozenset(e.name for e in EXCHANGES) | frozenset(q.name for q in QUEUES),
        write=frozenset(b.queue for b in BINDINGS),
        read=frozenset(b.exchange for b in BINDINGS),
    )


def rights(service: str) -> Rights:
    """The exact names a service may configure, write and read, private queues aside."""
    access = ACCESS[service]
    base = declare_needs()
    routes = frozenset(route.exchange for queue in access.private for route in queue.routes)
    return Rights(
        configure=base.configure,
        write=base.write | frozenset(access.publishes),
        read=base.read | frozenset(access.consumes) | routes,
    )


def permissions(service: str) -> tuple[str, str, str]:
    """(configure, write, read) regexes for `rabbitmqctl set_permissions`: exactly the names of
    `rights(service)` plus its private queues (declared, bound: write; consumed: read)."""
    granted = rights(service)
    private = ACCESS[service].private
    return (
        _names_pattern(granted.configure, private),
        _names_pattern(granted.write, private),
        _names_pattern(granted.read, private),
    )


PERMISSIONS: dict[str, tuple[str, str, str]] = {service: permissions(service) for service in SERVICES}


def permission_definitions(vhost: str = "/") -> dict[str, Any]:
    """The per-service permissions in the definitions format (rabbitmq/permissions.json, which
    rabbitmq/entrypoint.sh imports after creating the users from their passwords)."""
    return {
        "permissions": [
            {
                "user": broker_user(service),
                "vhost": vhost,
                "configure": configure,
                "write": write,
                "read": read,
            }
            for service, (configure, write, read) in PERMISSIONS.items()
        ]
    }


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
    """Declare every exchange, durable queue and binding (idempotent, same arguments as definitions.json)."""
    for exchange in EXCHANGES:
        channel.exchange_declare(
            exchange=exchange.name, exchange_type=exchange.type, durable=exchange.durable
        )
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
                "durable": e.durable,
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


def main(argv: list[str]) -> int:
    """`python -m services.common.topology` > rabbitmq/definitions.json;
    `python -m services.common.topology permissions` > rabbitmq/permissions.json;
    `python -m services.common.topology node-user SERVICE NODE [VHOST]`: the commands adding a
    node's user (on the vhost "/" unless told)."""
    if argv[:1] == ["node-user"]:
        if len(argv) not in (3, 4):
            sys.stderr.write(
                "usage: python -m services.common.topology node-user recognizer|capture NODE [VHOST]\n"
            )
            return 2
        try:
            commands = node_user_commands(*argv[1:])
        except ValueError as error:
            sys.stderr.write(f"{error}\n")
            return 2
        sys.stdout.write("".join(_shell(command) + "\n" for command in commands))
        return 0
    document = permission_definitions() if argv == ["permissions"] else definitions()
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
