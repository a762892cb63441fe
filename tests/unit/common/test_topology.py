import json
import re
import shlex

import pika.exceptions
import pytest

from harness.paths import ROOT
from services.common import topology
from services.common.amqp import fatal_reason


def test_definitions_file_agrees_with_the_topology_module() -> None:
    on_disk = json.loads((ROOT / "rabbitmq" / "definitions.json").read_text())
    assert on_disk == json.loads(json.dumps(topology.definitions())), "run `make definitions`"


def test_every_queue_is_durable_and_bound() -> None:
    definitions = topology.definitions()
    assert all(queue["durable"] and not queue["auto_delete"] for queue in definitions["queues"])
    bound = {binding["destination"] for binding in definitions["bindings"]}
    assert bound == {queue["name"] for queue in definitions["queues"]}


def test_frames_are_hashed_by_camera_onto_one_private_queue_per_worker() -> None:
    exchange = next(e for e in topology.EXCHANGES if e.name == topology.FRAMES_EXCHANGE)
    assert exchange.type == "x-consistent-hash"
    assert topology.frame_key("door-1") == "door-1"  # the camera is what is hashed
    frames = topology.RECOGNIZER_FRAMES
    [route] = frames.routes
    assert route.exchange == topology.FRAMES_EXCHANGE
    assert int(route.routing_key) == topology.FRAMES_WEIGHT >= 1  # the binding key is the weight
    # Only a private queue takes frames: no durable queue outlives a dead worker.
    assert not any(b.exchange == topology.FRAMES_EXCHANGE for b in topology.BINDINGS)
    assert frames.arguments == {"x-max-length": topology.FRAMES_MAX_LENGTH, "x-overflow": "drop-head"}
    assert topology.FRAMES_PREFETCH < topology.FRAMES_MAX_LENGTH


def test_heartbeats_still_reach_the_recorder_on_the_capture_exchange() -> None:
    assert (
        topology.Binding(topology.CAPTURE_EXCHANGE, topology.CAMERAS_QUEUE, "camera.*") in topology.BINDINGS
    )


def test_capture_hears_of_its_own_cameras_analyzed_frames_only() -> None:
    [route] = topology.frame_summaries("door-1").routes
    assert (route.exchange, route.routing_key) == (topology.RECOGNIZER_EXCHANGE, "frame.analyzed.door-1")
    [loads] = topology.CAMERA_LOADS.routes
    assert loads.routing_key == "camera.load.*" and topology.load_key("door-1") == "camera.load.door-1"
    # Neither load reports nor summaries go to the recorder's identity queue.
    identity = next(b for b in topology.BINDINGS if b.queue == topology.IDENTITY_QUEUE)
    assert identity.routing_key == "face.#"


def test_a_broker_without_the_plugin_is_a_clear_fatal_error() -> None:
    unknown_type = pika.exceptions.ConnectionClosedByBroker(
        503, "COMMAND_INVALID - unknown exchange type 'x-consistent-hash'"
    )
    reason = fatal_reason(unknown_type, declaring=True)
    assert reason is not None and "rabbitmq-plugins enable rabbitmq_consistent_hash_exchange" in reason
    assert fatal_reason(unknown_type) is None  # outside declarations, not ours to judge


def test_identity_queue_dead_letters_into_the_dead_letter_queue() -> None:
    identity = next(q for q in topology.QUEUES if q.name == topology.IDENTITY_QUEUE)
    binding = next(b for b in topology.BINDINGS if b.queue == topology.DEAD_IDENTITY_QUEUE)
    assert identity.arguments["x-dead-letter-exchange"] == binding.exchange
    assert identity.arguments["x-dead-letter-routing-key"] == binding.routing_key


# Least privilege (issue 9, finding 3): each service's broker user and what its regexes allow.

EXCHANGE_NAMES = {exchange.name for exchange in topology.EXCHANGES}
QUEUE_NAMES = {queue.name for queue in topology.QUEUES}
# What each service publishes to, consumes, and declares privately: written out here, not derived.
PUBLISHES = {
    "capture": {topology.FRAMES_EXCHANGE, topology.CAPTURE_EXCHANGE},
    "recognizer": {topology.RECOGNIZER_EXCHANGE, topology.PREVIEW_EXCHANGE},
    "recorder": {topology.ATTENDANCE_EXCHANGE},
    "api": {topology.GALLERY_EXCHANGE},
    "web": set(),
}
CONSUMES = {"recorder": {topology.IDENTITY_QUEUE, topology.CAMERAS_QUEUE}}
PRIVATE = {
    "capture": [topology.frame_summaries("door-1")],
    "recognizer": [topology.RECOGNIZER_FRAMES, topology.GALLERY_LISTENER],
    "web": [topology.LIVE_EVENTS, topology.LIVE_PREVIEWS],
}


def allowed(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None  # RabbitMQ's match: unanchored unless the regex is


def test_a_broker_user_for_every_service_and_nobody_else() -> None:
    assert set(topology.PERMISSIONS) == set(PUBLISHES) == set(topology.SERVICES)


def test_each_service_writes_exactly_the_exchanges_it_publishes_to() -> None:
    for service, (_configure, write, _read) in topology.PERMISSIONS.items():
        writable = {name for name in EXCHANGE_NAMES | {"amq.default", ""} if allowed(write, name)}
        assert writable == PUBLISHES[service], service


def test_only_the_recognizers_may_write_identity_events() -> None:
    writers = {
        s
        for s, (_c, write, _r) in topology.PERMISSIONS.items()
        if allowed(write, topology.RECOGNIZER_EXCHANGE)
    }
    assert writers == {"recognizer"}
    _configure, capture_write, _read = topology.PERMISSIONS["capture"]
    assert not allowed(capture_write, topology.RECOGNIZER_EXCHANGE)


def test_camera_previews_are_written_by_recognizers_and_read_by_the_dashboard_only() -> None:
    """Previews show faces: nobody else may publish a fake one, nor take a copy."""
    writers = {
        s for s, (_c, write, _r) in topology.PERMISSIONS.items() if allowed(write, topology.PREVIEW_EXCHANGE)
    }
    readers = {
        s for s, (_c, _w, read) in topology.PERMISSIONS.items() if allowed(read, topology.PREVIEW_EXCHANGE)
    }
    assert (writers, readers) == ({"recognizer"}, {"web"})
    exchange = next(e for e in topology.EXCHANGES if e.name == topology.PREVIEW_EXCHANGE)
    assert not exchange.durable and not any(b.exchange == exchange.name for b in topology.BINDINGS)
    arguments = topology.LIVE_PREVIEWS.arguments
    assert arguments["x-overflow"] == "drop-head" and arguments["x-message-ttl"] <= 10_000


def test_each_service_reads_exactly_the_durable_queues_it_consumes() -> None:
    for service, (_configure, _write, read) in topology.PERMISSIONS.items():
        readable = {name for name in QUEUE_NAMES if allowed(read, name)}
        assert readable == CONSUMES.get(service, set()), service


def test_private_queues_belong_to_their_service_only() -> None:
    for service, (configure, write, read) in topology.PERMISSIONS.items():
        for owner, queues in PRIVATE.items():
            for queue in queues:
                name = queue.new_name()  # as the service names it
                mine = owner == service
                assert allowed(configure, name) is mine, (service, name)
                assert allowed(write, name) is mine, (service, name)  # binding it
                assert allowed(read, name) is mine, (service, name)  # consuming it
                for exchange in {route.exchange for route in queue.routes}:
                    if mine:
                        assert allowed(read, exchange), (service, exchange)  # binding to it
                # A prefix is not enough: only the names new_name gives.
                for other in (queue.prefix, f"{queue.prefix}.x", f"{queue.prefix}.{'0' * 12}.x", f"x{name}"):
                    assert not allowed(configure, other), (service, other)


def test_private_queues_of_the_topology_all_have_an_owner() -> None:
    owned = {queue.prefix for queues in PRIVATE.values() for queue in queues}
    unowned = {queue.prefix for queue in topology.PRIVATE_QUEUES} - owned
    # camera.load: no service consumes the load reports yet (bench and tests do, as guest).
    assert unowned == {topology.CAMERA_LOADS.prefix}


def test_every_service_may_run_declare_when_it_connects() -> None:
    for service, (configure, write, read) in topology.PERMISSIONS.items():
        for name in EXCHANGE_NAMES | QUEUE_NAMES:
            assert allowed(configure, name), (service, name)
        for binding in topology.BINDINGS:
            assert allowed(write, binding.queue) and allowed(read, binding.exchange), (service, binding)


def test_the_permissions_file_agrees_with_the_topology_module() -> None:
    on_disk = json.loads((ROOT / "rabbitmq" / "permissions.json").read_text())
    assert on_disk == topology.permission_definitions(), (
        "run `python -m services.common.topology permissions > rabbitmq/permissions.json`"
    )


def test_a_nodes_user_is_named_for_its_machine_with_the_services_permissions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert topology.node_user("recognizer", "room-12") == "recognizer-room-12"
    assert topology.main(["node-user", "recognizer", "room-12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == 'rabbitmqctl add_user recognizer-room-12 "$NODE_PASSWORD"'
    # What the shell hands rabbitmqctl: exactly the recognizer's three regexes, quoted intact.
    assert shlex.split(lines[1]) == [
        "rabbitmqctl",
        "set_permissions",
        "-p",
        "/",
        "recognizer-room-12",
        *topology.PERMISSIONS["recognizer"],
    ]


@pytest.mark.parametrize(
    ("service", "node"),
    [("recorder", "room-12"), ("recognizer", "Room 12"), ("capture", "-x"), ("capture", "")],
)
def test_only_workers_get_node_users_and_names_are_plain(
    service: str, node: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError):
        topology.node_user(service, node)
    assert topology.main(["node-user", service, node]) == 2
    assert capsys.readouterr().out == ""


def test_durable_queues_are_quorum_queues_with_arguments_quorum_queues_accept() -> None:
    """Issue 11: what the recorder consumes survives a lost node. Quorum queues refuse some
    classic arguments with a PRECONDITION_FAILED at declare time, on 3.10 as on 4.x."""
    consumed = set(topology.ACCESS["recorder"].consumes)
    assert consumed <= {q.name for q in topology.QUEUES}
    for queue in topology.QUEUES:
        assert queue.arguments["x-queue-type"] == "quorum", queue.name
        assert "x-max-priority" not in queue.arguments, queue.name
        assert queue.arguments.get("x-overflow", "drop-head") in {"drop-head", "reject-publish"}, queue.name
    # Private queues die with their connection: classic (quorum queues cannot be exclusive).
    assert all("x-queue-type" not in q.arguments for q in topology.PRIVATE_QUEUES)
