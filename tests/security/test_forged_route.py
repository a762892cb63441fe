"""Finding 3, the last way round: every service may declare the shared topology, so a service's
user could bind `recorder.identity` to an exchange it may write (capture's) and publish a
forged identity event there. The recorder accepts identity events only from the recognizer
exchange, which only the recognizers' user may write (rabbitmq/permissions.json)."""

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from tests.integration.conftest import broker  # noqa: F401 (fixture)
from tests.integration.test_recorder import seen, start_recorder, student_id  # noqa: F401 (fixtures)
from tests.support.amqp import TestBroker
from tests.support.infra import scalar

pytestmark = pytest.mark.integration


def test_an_identity_event_routed_through_another_exchange_marks_nobody(
    engine: sa.Engine,
    broker: TestBroker,  # noqa: F811
    start_recorder: Callable[..., ServiceProcess],  # noqa: F811
    student_id: int,  # noqa: F811
) -> None:
    recorder = start_recorder()
    wait_until(lambda: broker.depth(topology.IDENTITY_QUEUE) == 0, 20, "the recorder consuming")
    # What capture's user may do: bind the recorder's queue to its own exchange, publish there.
    broker.channel.queue_bind(topology.IDENTITY_QUEUE, topology.CAPTURE_EXCHANGE, "forged")
    forged = seen(student_id)
    broker.publish(topology.CAPTURE_EXCHANGE, "forged", forged)
    wait_until(lambda: broker.depth(topology.DEAD_IDENTITY_QUEUE) == 1, 20, "the forgery dead-lettered")
    assert scalar(engine, "SELECT COUNT(*) FROM attendance") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM identity_events") == 0  # not even kept as a sighting
    [dead] = broker.drain_raw(topology.DEAD_IDENTITY_QUEUE)
    assert str(forged.event_id) in dead.decode()
    # The same event from the recognizers' exchange is recorded.
    broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), seen(student_id))
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 1, 20, "the genuine event")
    assert recorder.process.poll() is None
