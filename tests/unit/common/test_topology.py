import json

import pika.exceptions

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
