import json

from harness.paths import ROOT
from services.common import topology


def test_definitions_file_agrees_with_the_topology_module() -> None:
    on_disk = json.loads((ROOT / "rabbitmq" / "definitions.json").read_text())
    assert on_disk == json.loads(json.dumps(topology.definitions())), "run `make definitions`"


def test_every_queue_is_durable_and_bound() -> None:
    definitions = topology.definitions()
    assert all(queue["durable"] and not queue["auto_delete"] for queue in definitions["queues"])
    bound = {binding["destination"] for binding in definitions["bindings"]}
    assert bound == {queue["name"] for queue in definitions["queues"]}


def test_frames_are_dropped_oldest_first_beyond_the_limit() -> None:
    frames = next(q for q in topology.QUEUES if q.name == topology.FRAMES_QUEUE)
    assert frames.arguments["x-overflow"] == "drop-head"
    assert frames.arguments["x-max-length"] == topology.FRAMES_MAX_LENGTH


def test_identity_queue_dead_letters_into_the_dead_letter_queue() -> None:
    identity = next(q for q in topology.QUEUES if q.name == topology.IDENTITY_QUEUE)
    binding = next(b for b in topology.BINDINGS if b.queue == topology.DEAD_IDENTITY_QUEUE)
    assert identity.arguments["x-dead-letter-exchange"] == binding.exchange
    assert identity.arguments["x-dead-letter-routing-key"] == binding.routing_key
