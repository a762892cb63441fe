"""Issue 11: a broker that survives losing a node. Three RabbitMQ nodes of this machine in one
cluster (tests/support/cluster.py), the topology's quorum queues replicated on all three, the
real recorder given every node's URL. Mid-lesson the node that leads the queues and holds
every connection is killed (SIGKILL: a machine that fails, no clean shutdown). No identity
event is lost, none is counted twice, the roll is complete, and the recorder, like the
publishing side, reconnects to a node still up by itself."""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.amqp import CONNECTION_ERRORS, Publisher, closing, connect
from services.common.messages import FaceBox, FaceRecognized
from services.common.settings import BrokerSettings
from services.common.students import create_student
from services.common.transport import Outgoing
from tests.support.cluster import Cluster
from tests.support.infra import scalar

STUDENTS = 30
SIGHTINGS = 4  # of each student, spread over the lesson
KILL_AT = STUDENTS * SIGHTINGS // 3  # events published before the node is lost
BOX = FaceBox(top=1, right=100, bottom=100, left=1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path_factory.mktemp("cluster") / "nodes")
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.close()


def sighting(student_id: int, number: int, at: datetime) -> FaceRecognized:
    return FaceRecognized(
        camera_id="room-1",
        frame_seq=number,
        captured_at=at,
        box=BOX,
        worker="test",
        student_id=student_id,
        student_number=f"S{student_id}",
        student_name=f"Student {student_id}",
        distance=0.4,
    )


def publish_until_confirmed(publisher: Publisher, outgoing: Outgoing) -> int:
    """Publish as a recognizer's consumer does after a lost broker: again until the broker
    confirms (a publish whose confirm was lost may arrive twice: the recorder must not care).
    How many attempts failed."""
    failures = 0
    while True:
        try:
            publisher.publish(outgoing)
            return failures
        except CONNECTION_ERRORS:
            failures += 1
            time.sleep(0.2)


def test_losing_a_node_mid_lesson_loses_no_event_and_marks_nobody_twice(
    cluster: Cluster, database_url: str, engine: sa.Engine, tmp_path: Path
) -> None:
    first, *others = cluster.nodes
    settings = BrokerSettings(amqp_url=cluster.amqp_url)
    with closing(connect(settings, "test")) as connection:
        topology.declare(connection.channel())  # now that all three nodes are in: a replica on each
    members = cluster.ctl(first, "list_queues", "name", "type", "leader", "members").stdout
    assert all(node.node in members for node in cluster.nodes), members
    with engine.begin() as db:
        students = [create_student(db, f"S{n}", f"Student {n}").id for n in range(1, STUDENTS + 1)]
    recorder = ServiceProcess(
        "services.recorder",
        {
            "DATABASE_URL": database_url,
            "AMQP_URL": cluster.amqp_url,
            "RECORDER_CSV_PATH": str(tmp_path / "attendance.csv"),
            "RECORDER_BATCH_SIZE": "10",
            "RECORDER_MIN_SIGHTINGS": "1",  # delivery is the point here, not the vote
        },
        "cluster-recorder",
    )
    publisher = Publisher(settings, "test-recognizer")
    start = datetime.now(UTC) - timedelta(minutes=5)
    events = [
        sighting(student, n, start + timedelta(seconds=n))
        for n, student in enumerate(students * SIGHTINGS, start=1)
    ]
    failures = 0
    try:
        wait_until(lambda: "consuming recorder.identity" in recorder.log(), 60, "the recorder to consume")
        for n, event in enumerate(events):
            if n == KILL_AT:
                wait_until(
                    lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events"), 30, "a first event"
                )
                cluster.kill(first)  # every connection is on it (first URL), and every queue's leader
                killed_at = time.monotonic()
            failures += publish_until_confirmed(
                publisher, Outgoing(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), event)
            )
            if n == KILL_AT:
                published_again_s = time.monotonic() - killed_at
            time.sleep(0.02)
        wait_until(
            lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events") == len(events),
            90,
            "every event recorded",
        )
        recorded_all_s = time.monotonic() - killed_at
        survivor = others[0]
        depth = cluster.ctl(survivor, "list_queues", "name", "messages", "messages_unacknowledged").stdout
        assert f"{topology.IDENTITY_QUEUE}\t0\t0" in depth, depth
        assert recorder.process.poll() is None, recorder.log()[-3000:]  # it never gave up
    finally:
        publisher.close()
        recorder.stop()
    log = recorder.log()
    # The measurements the README quotes (shown with -s).
    print(
        f"cluster boot {cluster.timings['boot_s']:.1f}s, join {cluster.timings['join_s']:.1f}s; "
        f"after the kill: published again in {published_again_s:.1f}s ({failures} failed attempts), "
        f"every event recorded {recorded_all_s:.1f}s later"
    )

    assert scalar(engine, "SELECT COUNT(DISTINCT event_id) FROM identity_events") == len(events)
    assert scalar(engine, "SELECT COUNT(*) FROM attendance") == STUDENTS  # the whole roll
    assert scalar(engine, "SELECT COUNT(DISTINCT student_id) FROM attendance") == STUDENTS  # once each
    assert scalar(engine, "SELECT MIN(sightings) FROM attendance") == SIGHTINGS
    assert scalar(engine, "SELECT MAX(sightings) FROM attendance") == SIGHTINGS  # none counted twice
    rows = (tmp_path / "attendance.csv").read_text().splitlines()[1:]
    assert len(rows) == STUDENTS
    # The recorder lost its node and found another by itself.
    assert "lost RabbitMQ" in log
    assert any(f"connected to RabbitMQ at 127.0.0.1:{node.amqp_port}" in log for node in others), log[-3000:]
    assert log.count("consuming recorder.identity") >= 2
