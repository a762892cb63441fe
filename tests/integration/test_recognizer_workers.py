"""Recognizer workers as real processes: competing consumers, bad frames, hot gallery reload."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import cv2
import pika
import pytest
import sqlalchemy as sa

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.messages import FrameCaptured, GalleryChanged
from services.common.students import add_face_encoding, create_student
from services.faces.enrollment import analyze_photo, enrollment_analyzer
from tests.support.amqp import TestBroker

pytestmark = pytest.mark.faces


@pytest.fixture
def start_worker(
    database_url: str, amqp_url: str, request: pytest.FixtureRequest
) -> Iterator[Callable[[str], ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(worker_id: str) -> ServiceProcess:
        process = ServiceProcess(
            "services.recognizer",
            {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, "RECOGNIZER_WORKER_ID": worker_id},
            f"{request.node.name}-{worker_id}",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def enroll(engine: sa.Engine, number: str, photo: Path) -> None:
    analyzed = analyze_photo(photo.read_bytes(), enrollment_analyzer())
    with engine.begin() as connection:
        student = create_student(connection, number, number)
        add_face_encoding(connection, student.id, analyzed)


def frame_jpeg(photo: Path) -> bytes:
    image = cv2.imread(str(photo))
    scale = 640 / image.shape[1]
    image = cv2.resize(image, (640, round(image.shape[0] * scale)))
    return cv2.imencode(".jpg", image)[1].tobytes()


def publish_frame(broker: TestBroker, seq: int, jpeg: bytes, camera: str = "cam-1") -> None:
    meta = FrameCaptured(camera_id=camera, seq=seq, captured_at=datetime.now(UTC), width=640, height=480)
    broker.publish_raw(
        topology.CAPTURE_EXCHANGE,
        topology.frame_key(camera),
        jpeg,
        headers=meta.to_headers(),
        content_type="image/jpeg",
    )


def wait_for_consumers(broker: TestBroker, count: int) -> None:
    def consumers() -> bool:
        return (
            broker.channel.queue_declare(topology.FRAMES_QUEUE, passive=True).method.consumer_count >= count
        )

    wait_until(consumers, 60, f"{count} recognizer(s) consuming")


def test_frames_are_shared_between_two_competing_workers_each_frame_once(
    engine: sa.Engine, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    enroll(engine, "obama", faces_dir / "people" / "barack_obama" / "1.jpg")
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")
    summaries = broker.tap(topology.RECOGNIZER_EXCHANGE, "frame.analyzed.#")
    workers = [start_worker("w1"), start_worker("w2")]
    wait_for_consumers(broker, 2)
    frames = {
        seq: frame_jpeg(photo)
        for seq, photo in enumerate(
            [faces_dir / "people" / "barack_obama" / f"{n}.jpg" for n in (2, 3, 4)] * 4
        )
    }
    for seq, jpeg in frames.items():
        # Publish as capture's fast pace does: never more than the queue keeps (it drops the oldest).
        wait_until(lambda: broker.depth(topology.FRAMES_QUEUE) < 2, 60, "room in the frame queue")
        publish_frame(broker, seq, jpeg)
    analyzed: list[dict[str, object]] = []
    wait_until(
        lambda: analyzed.extend(broker.drain(summaries)) or len(analyzed) >= len(frames),
        120,
        "one summary per frame",
    )
    assert sorted(int(str(e["frame_seq"])) for e in analyzed) == sorted(frames)  # each frame exactly once
    assert {e["worker"] for e in analyzed} == {"w1", "w2"}  # both workers took a share
    received = broker.drain(events)
    assert received and all(e["kind"] == "face.unknown" or e["student_number"] == "obama" for e in received)
    assert [w.stop() for w in workers] == [0, 0]


def test_a_corrupt_frame_is_skipped_and_the_worker_carries_on(
    engine: sa.Engine, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")
    worker = start_worker("w1")
    wait_for_consumers(broker, 1)
    publish_frame(broker, 1, b"\xff\xd8garbage")
    broker.publish_raw(
        topology.CAPTURE_EXCHANGE, "frame.cam-1", frame_jpeg(faces_dir / "people" / "paul_rudd" / "1.jpg")
    )
    publish_frame(broker, 3, frame_jpeg(faces_dir / "people" / "paul_rudd" / "1.jpg"))
    received = wait_until(lambda: broker.drain(events), 60, "the good frame's event")
    assert [(e["frame_seq"], e["kind"]) for e in received] == [(3, "face.unknown")]  # type: ignore[union-attr]
    assert worker.process.poll() is None
    assert worker.stop() == 0
    assert "2 bad frames" in worker.log()


def test_a_gallery_change_is_picked_up_without_a_restart(
    engine: sa.Engine, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")
    start_worker("w1")
    wait_for_consumers(broker, 1)
    probe = frame_jpeg(faces_dir / "people" / "kit_harington" / "2.jpg")
    publish_frame(broker, 1, probe)
    [before] = wait_until(lambda: broker.drain(events), 60, "the first event")  # type: ignore[misc]
    assert before["kind"] == "face.unknown"
    enroll(engine, "kit", faces_dir / "people" / "kit_harington" / "1.jpg")
    broker.publish(topology.GALLERY_EXCHANGE, "", GalleryChanged(reason="test"))

    def recognized() -> bool:
        publish_frame(broker, 2, probe)
        got = wait_until(lambda: broker.drain(events), 60, "an event")
        return any(e["kind"] == "face.recognized" for e in got)  # type: ignore[union-attr]

    wait_until(recognized, 60, "the new student to be recognized", interval_s=0.5)


def test_frames_beyond_the_queue_limit_drop_the_oldest(broker: TestBroker) -> None:
    for seq in range(topology.FRAMES_MAX_LENGTH + 5):
        publish_frame(broker, seq, b"x")
    assert broker.depth(topology.FRAMES_QUEUE) == topology.FRAMES_MAX_LENGTH
    method, properties, _ = broker.channel.basic_get(topology.FRAMES_QUEUE, auto_ack=True)
    assert isinstance(method, pika.spec.Basic.GetOk)
    assert properties.headers["seq"] == 5  # the five oldest were dropped
