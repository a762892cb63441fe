"""The recorder as a real process on a real broker and database."""

import csv
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.messages import FaceBox, FaceRecognized, FaceUnknown
from services.common.students import create_student
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.support.amqp import TestBroker
from tests.support.infra import scalar
from tests.support.proxy import FlakyProxy

BOX = FaceBox(top=1, right=100, bottom=100, left=1)


@pytest.fixture
def student_id(engine: sa.Engine) -> int:
    with engine.begin() as connection:
        return create_student(connection, "S1", "Ada Lovelace").id


@pytest.fixture
def start_recorder(
    database_url: str, amqp_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        process = ServiceProcess(
            "services.recorder",
            {
                "DATABASE_URL": database_url,
                "AMQP_URL": amqp_url,
                "RECORDER_CSV_PATH": str(tmp_path / "a.csv"),
                "RECORDER_BATCH_SIZE": "50",
                # These tests are about delivery, not the vote: mark at the first sighting.
                "RECORDER_MIN_SIGHTINGS": "1",
                **env,
            },
            f"{request.node.name}-recorder-{len(started)}",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def seen(student_id: int, at: datetime | None = None, camera: str = "room-1") -> FaceRecognized:
    return FaceRecognized(
        camera_id=camera,
        frame_seq=1,
        captured_at=at or datetime.now(UTC),
        box=BOX,
        worker="test",
        student_id=student_id,
        student_number="S1",
        student_name="Ada Lovelace",
        distance=0.42,
    )


def csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_an_event_delivered_twice_gives_one_attendance_row_and_one_csv_row(
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    student_id: int,
    tmp_path: Path,
) -> None:
    marks = broker.tap(topology.ATTENDANCE_EXCHANGE)
    recorder = start_recorder()
    event = seen(student_id)
    broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), event)
    broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), event)  # redelivery
    later = seen(student_id, event.captured_at + timedelta(seconds=1))
    broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), later)
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events") == 2, 20, "events recorded")
    wait_until(lambda: broker.depth(topology.IDENTITY_QUEUE) == 0, 10, "queue drained")
    assert scalar(engine, "SELECT COUNT(*) FROM attendance") == 1
    assert scalar(engine, "SELECT sightings FROM attendance") == 2
    assert scalar(engine, "SELECT last_seen_at FROM attendance") == later.captured_at.replace(tzinfo=None)
    assert scalar(engine, "SELECT mark_event_id FROM attendance") == str(event.event_id)
    rows = csv_rows(tmp_path / "a.csv")
    assert len(rows) == 1 and rows[0]["event_id"] == str(event.event_id)
    assert rows[0]["student_name"] == "Ada Lovelace" and rows[0]["status"] == "present"
    announced = wait_until(lambda: broker.drain(marks), 5, "attendance.marked")
    assert [m["student_id"] for m in announced] == [student_id]  # type: ignore[union-attr]
    assert recorder.stop() == 0
    assert "1 redeliveries ignored" in recorder.log()


def test_a_malformed_message_is_dead_lettered_and_the_recorder_keeps_going(
    engine: sa.Engine, broker: TestBroker, start_recorder: Callable[..., ServiceProcess], student_id: int
) -> None:
    recorder = start_recorder()
    broker.publish_raw(topology.RECOGNIZER_EXCHANGE, "face.recognized.room-1", b"{not json")
    broker.publish_raw(topology.RECOGNIZER_EXCHANGE, "face.recognized.room-1", b'{"kind": "face.recognized"}')
    broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), seen(student_id))
    wait_until(lambda: broker.depth(topology.DEAD_IDENTITY_QUEUE) == 2, 20, "two dead letters")
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 1, 10, "the valid event recorded")
    assert sorted(broker.drain_raw(topology.DEAD_IDENTITY_QUEUE)) == sorted(
        [b"{not json", b'{"kind": "face.recognized"}']
    )
    assert recorder.process.poll() is None, "the recorder must survive bad messages"
    assert "invalid identity event" in recorder.log()


def test_unknown_faces_are_logged_but_never_mark_anyone(
    engine: sa.Engine, broker: TestBroker, start_recorder: Callable[..., ServiceProcess]
) -> None:
    start_recorder()
    unknown = FaceUnknown(
        camera_id="room-1", frame_seq=3, captured_at=datetime.now(UTC), box=BOX, worker="t", best_distance=0.7
    )
    broker.publish(topology.RECOGNIZER_EXCHANGE, topology.unknown_key("room-1"), unknown)
    wait_until(
        lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events WHERE kind = 'unknown'") == 1,
        20,
        "unknown event recorded",
    )
    assert scalar(engine, "SELECT COUNT(*) FROM attendance") == 0


def test_a_crash_between_commit_and_csv_append_is_repaired_at_start(
    engine: sa.Engine, start_recorder: Callable[..., ServiceProcess], student_id: int, tmp_path: Path
) -> None:
    csv_path = tmp_path / "a.csv"
    csv_path.write_text("")  # the previous run created the file, then died after its commit
    batch = AttendanceStore(engine, UTC, MarkPolicy()).record([seen(student_id)])  # type: ignore[arg-type]
    assert len(batch.marks) == 1 and csv_rows(csv_path) == []
    recorder = start_recorder()
    wait_until(lambda: len(csv_rows(csv_path)) == 1, 20, "the missing CSV row")
    assert csv_rows(csv_path)[0]["attendance_id"] == str(batch.marks[0].attendance_id)
    assert "CSV was 1 row(s) behind MySQL" in recorder.log()


def test_events_wait_out_a_database_outage_and_none_is_lost(
    database_url: str,
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    student_id: int,
    tmp_path: Path,
) -> None:
    url = make_url(database_url)
    proxy = FlakyProxy(url.host or "127.0.0.1", url.port or 3306)
    try:
        recorder = start_recorder(
            DATABASE_URL=url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        )
        broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), seen(student_id))
        wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events") == 1, 20, "first event")
        proxy.cut()
        others = [seen(student_id, camera=f"room-{n}") for n in range(2, 6)]
        for event in others:
            broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key(event.camera_id), event)
        wait_until(lambda: "transient failure" in recorder.log(), 30, "the recorder to notice the outage")
        assert scalar(engine, "SELECT COUNT(*) FROM identity_events") == 1
        proxy.restore()
        wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events") == 5, 60, "the backlog")
        wait_until(lambda: len(csv_rows(tmp_path / "a.csv")) == 5, 10, "CSV rows of all five sessions")
        assert scalar(engine, "SELECT COUNT(*) FROM attendance") == 5
        assert recorder.process.poll() is None
    finally:
        proxy.close()


def test_two_sightings_in_the_window_are_needed_when_configured(
    engine: sa.Engine, broker: TestBroker, start_recorder: Callable[..., ServiceProcess], student_id: int
) -> None:
    start_recorder(RECORDER_MIN_SIGHTINGS="2", RECORDER_SIGHTING_WINDOW_S="5")
    t0 = datetime.now(UTC)
    key = topology.recognized_key("room-1")
    broker.publish(topology.RECOGNIZER_EXCHANGE, key, seen(student_id, t0))
    broker.publish(topology.RECOGNIZER_EXCHANGE, key, seen(student_id, t0 + timedelta(seconds=20)))
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events") == 2, 20, "two events")
    assert scalar(engine, "SELECT COUNT(*) FROM attendance") == 0  # 20 s apart: no agreement
    confirming = seen(student_id, t0 + timedelta(seconds=23))
    broker.publish(topology.RECOGNIZER_EXCHANGE, key, confirming)
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 1, 20, "the mark")
    assert scalar(engine, "SELECT mark_event_id FROM attendance") == str(confirming.event_id)
    first_seen = scalar(engine, "SELECT first_seen_at FROM attendance")
    assert first_seen == (t0 + timedelta(seconds=20)).replace(tzinfo=None)


def test_a_scheduled_session_takes_the_sighting_and_default_sessions_are_per_day(
    engine: sa.Engine, broker: TestBroker, start_recorder: Callable[..., ServiceProcess], student_id: int
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('room-1', 'Room 1')"))
        connection.execute(
            sa.text(
                "INSERT INTO class_sessions (name, camera_id, starts_at, ends_at) "
                "VALUES ('Maths', 'room-1', :s, :e)"
            ),
            {
                "s": (now - timedelta(minutes=30)).replace(tzinfo=None),
                "e": (now + timedelta(minutes=30)).replace(tzinfo=None),
            },
        )
    start_recorder()
    key = topology.recognized_key("room-1")
    broker.publish(topology.RECOGNIZER_EXCHANGE, key, seen(student_id, now))
    yesterday_noon = (now - timedelta(days=1)).replace(
        hour=12, minute=0, second=0
    )  # one day whatever the hour
    broker.publish(topology.RECOGNIZER_EXCHANGE, key, seen(student_id, yesterday_noon))
    broker.publish(topology.RECOGNIZER_EXCHANGE, key, seen(student_id, yesterday_noon - timedelta(hours=1)))
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 2, 20, "two marks")
    with engine.connect() as connection:
        names = set(
            connection.execute(
                sa.text("SELECT cs.name FROM attendance a JOIN class_sessions cs ON cs.id = a.session_id")
            ).scalars()
        )
    yesterday = (now - timedelta(days=1)).date().isoformat()
    assert names == {"Maths", f"Room 1 {yesterday}"}
    assert uuid.UUID(str(scalar(engine, "SELECT mark_event_id FROM attendance LIMIT 1")))


def test_the_recorder_reconnects_by_itself_when_the_broker_goes_away(
    amqp_url: str,
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    student_id: int,
) -> None:
    proxy = FlakyProxy("127.0.0.1", 5672)
    try:
        recorder = start_recorder(AMQP_URL=amqp_url.replace(":5672", f":{proxy.port}"))
        wait_until(lambda: "consuming recorder.identity" in recorder.log(), 30, "the recorder to consume")
        proxy.cut()
        wait_until(lambda: "lost RabbitMQ" in recorder.log(), 30, "the recorder to notice")
        # Published while the recorder is away: the durable queue keeps it.
        broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("room-1"), seen(student_id))
        proxy.restore()
        wait_until(
            lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 1, 60, "the event after reconnect"
        )
        assert recorder.process.poll() is None
    finally:
        proxy.close()
