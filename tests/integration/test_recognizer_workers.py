"""Recognizer workers as real processes: camera affinity with failover (the consistent-hash frames
exchange), a fair share under overload, the same roll with 1 and 2 workers, bad frames, hot
gallery reload.

The camera ids are chosen so that with 2 workers RabbitMQ 3.10's jump hash puts two cameras on
each (cam-1 and cam-2 on the first bound queue, cam-6 and cam-7 on the second); the assertions
hold for any split but "both workers take a share".
"""

import shutil
import subprocess
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import pika
import pytest
import sqlalchemy as sa

from harness.processes import ServiceProcess, wait_until
from services.common import topology
from services.common.messages import FrameCaptured, GalleryChanged
from services.common.settings import BrokerSettings
from services.common.students import Consent, add_face_encoding, create_student
from services.faces.enrollment import analyze_photo, enrollment_analyzer
from services.web.camera_loads import CameraLoadConsumer, CameraLoads
from tests.support.amqp import TestBroker

pytestmark = pytest.mark.faces

CAMERAS = ("cam-1", "cam-2", "cam-6", "cam-7")
T0 = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)


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
        student = create_student(connection, number, number, Consent("test"))
        add_face_encoding(connection, student.id, analyzed)


@dataclass(frozen=True)
class Jpeg:
    body: bytes
    width: int
    height: int


def frame_jpeg(photo: Path) -> Jpeg:
    image = cv2.imread(str(photo))
    scale = 640 / image.shape[1]
    image = cv2.resize(image, (640, round(image.shape[0] * scale)))
    return Jpeg(cv2.imencode(".jpg", image)[1].tobytes(), image.shape[1], image.shape[0])


def publish_frame(
    broker: TestBroker, seq: int, jpeg: Jpeg, camera: str = "cam-1", droppable: bool = True
) -> None:
    meta = FrameCaptured(
        camera_id=camera,
        seq=seq,
        captured_at=T0 + timedelta(seconds=0.2 * seq),  # 5 frames/s of media time
        width=jpeg.width,
        height=jpeg.height,
        droppable=droppable,
    )
    broker.publish_raw(
        topology.FRAMES_EXCHANGE,
        topology.frame_key(camera),
        jpeg.body,
        headers=meta.to_headers(),
        content_type="image/jpeg",
    )


def frame_queues(amqp_url: str) -> dict[str, int]:
    """The workers' private frames queues of the test's vhost, and the consumers of each."""
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(amqp_url).path.lstrip("/"))
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run(
        [ctl, "-q", "list_queues", "-p", vhost, "name", "consumers", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = (line.split() for line in out.splitlines())
    prefix = topology.RECOGNIZER_FRAMES.prefix + "."
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[0].startswith(prefix)}


def wait_for_workers(amqp_url: str, count: int) -> None:
    def ready() -> bool:
        queues = frame_queues(amqp_url)
        return len(queues) == count and all(consumers == 1 for consumers in queues.values())

    wait_until(ready, 90, f"{count} recognizer(s) bound to the frames exchange", interval_s=0.5)


class Feeder:
    """Publishes every camera's frames at `fps` (realtime, droppable) from its own connection
    until stopped, numbering each camera's frames from 0."""

    def __init__(self, amqp_url: str, jpegs: dict[str, Jpeg], fps: float) -> None:
        self.amqp_url, self.jpegs, self.fps = amqp_url, jpegs, fps
        self.stop = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Feeder":
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        broker = TestBroker(self.amqp_url)
        seq = 0
        try:
            while not self.stop.is_set():
                for camera, jpeg in self.jpegs.items():
                    publish_frame(broker, seq, jpeg, camera)
                self.sent = seq = seq + 1
                broker.connection.sleep(1 / self.fps)
        finally:
            broker.close()


class Summaries:
    """Every frame summary seen so far, with the moment it was analyzed (the worker's clock is
    this machine's: compare with time.time())."""

    def __init__(self, broker: TestBroker) -> None:
        self.broker = broker
        self.queue = broker.tap(topology.RECOGNIZER_EXCHANGE, "frame.analyzed.#")
        self.seen: list[tuple[float, dict[str, Any]]] = []

    def poll(self) -> list[tuple[float, dict[str, Any]]]:
        self.seen += [
            (datetime.fromisoformat(summary["analyzed_at"]).timestamp(), summary)
            for summary in self.broker.drain(self.queue)
        ]
        return self.seen

    def workers_since(self, moment: float) -> dict[str, set[str]]:
        workers: dict[str, set[str]] = defaultdict(set)
        for at, summary in self.poll():
            if at >= moment:
                workers[summary["camera_id"]].add(summary["worker"])
        return workers


def camera_jpegs(faces_dir: Path) -> dict[str, Jpeg]:
    people = ("barack_obama", "guido_van_rossum", "kit_harington", "paul_allen")
    return {
        camera: frame_jpeg(faces_dir / "people" / person / "2.jpg")
        for camera, person in zip(CAMERAS, people, strict=True)
    }


def test_every_cameras_frames_go_to_one_worker_in_order(
    amqp_url: str, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    summaries = Summaries(broker)
    workers = [start_worker("w1"), start_worker("w2")]
    wait_for_workers(amqp_url, 2)
    jpegs = camera_jpegs(faces_dir)
    frames = 5
    for seq in range(frames):  # interleaved, as 4 capture processes in fast pace would send them
        for camera, jpeg in jpegs.items():
            publish_frame(broker, seq, jpeg, camera, droppable=False)
    wait_until(lambda: len(summaries.poll()) >= frames * len(CAMERAS), 120, "every frame analyzed")
    by_camera: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _, summary in summaries.poll():
        by_camera[summary["camera_id"]].append(summary)
    for camera in CAMERAS:
        analyzed = by_camera[camera]
        assert [s["frame_seq"] for s in analyzed] == list(range(frames)), camera  # all, in order
        assert len({s["worker"] for s in analyzed}) == 1, f"{camera} went to more than one worker"
    assert {s["worker"] for s in map(lambda pair: pair[1], summaries.poll())} == {"w1", "w2"}
    assert [w.stop() for w in workers] == [0, 0]


def test_a_killed_workers_cameras_move_to_the_survivor_within_5_s(
    amqp_url: str, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    summaries = Summaries(broker)
    workers = {"w1": start_worker("w1"), "w2": start_worker("w2")}
    wait_for_workers(amqp_url, 2)
    with Feeder(amqp_url, camera_jpegs(faces_dir), fps=2):
        wait_until(lambda: len(summaries.workers_since(0)) == len(CAMERAS), 60, "every camera served")
        time.sleep(2)
        before = summaries.workers_since(time.time() - 1.5)
        assert all(len(ws) == 1 for ws in before.values()), before
        victim = next(iter(before["cam-1"]))
        survivor = ({"w1", "w2"} - {victim}).pop()
        moved = sorted(camera for camera, ws in before.items() if ws == {victim})
        workers[victim].process.kill()  # SIGKILL: no goodbye, the socket just closes
        killed_at = time.time()

        def served_again() -> bool:
            after = summaries.workers_since(killed_at)
            return all(after.get(camera) == {survivor} for camera in moved)

        wait_until(served_again, 5, f"{moved} served by {survivor} after {victim} died", interval_s=0.1)
        took = time.time() - killed_at
        time.sleep(1)
        after = summaries.workers_since(killed_at)
        assert all(after[camera] == {survivor} for camera in CAMERAS), (victim, before, after)
    assert took < 5
    assert workers[survivor].stop() == 0


def test_a_joining_worker_takes_its_share(
    amqp_url: str, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    summaries = Summaries(broker)
    first = start_worker("w1")
    wait_for_workers(amqp_url, 1)
    with Feeder(amqp_url, camera_jpegs(faces_dir), fps=2):
        wait_until(lambda: len(summaries.workers_since(0)) == len(CAMERAS), 60, "every camera served")
        assert set().union(*summaries.workers_since(0).values()) == {"w1"}
        second = start_worker("w2")
        wait_for_workers(amqp_url, 2)
        joined_at = time.time() + 1.0  # what was in w1's hands when w2 bound is finished by w1

        def rebalanced() -> bool:
            after = summaries.workers_since(joined_at)
            return len(after) == len(CAMERAS) and "w2" in set().union(*after.values())

        wait_until(rebalanced, 30, "w2 to take cameras", interval_s=0.2)
        time.sleep(2)
        after = summaries.workers_since(joined_at)
    assert all(len(ws) == 1 for ws in after.values()), after  # still one worker per camera
    assert {w for ws in after.values() for w in ws} == {"w1", "w2"}
    assert [first.stop(), second.stop()] == [0, 0]


def test_under_overload_every_camera_gets_the_same_share_newest_frame_first(
    amqp_url: str, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    loads = broker.tap(topology.RECOGNIZER_EXCHANGE, topology.load_key("*"))
    worker = start_worker("w1")
    wait_for_workers(amqp_url, 1)
    with Feeder(amqp_url, camera_jpegs(faces_dir), fps=15):  # 60 frames/s offered to one worker
        time.sleep(2)
        broker.drain(loads)  # from the start-up
        reports: list[dict[str, Any]] = []
        wait_until(
            lambda: reports.extend(broker.drain(loads)) or len({r["sent_at"] for r in reports}) >= 2,
            30,
            "two rounds of load reports",
        )
    processed = defaultdict(int)
    dropped = defaultdict(int)
    for report in reports:
        assert report["worker"] == "w1" and report["kind"] == "camera.load"
        processed[report["camera_id"]] += report["processed"]
        dropped[report["camera_id"]] += report["dropped"]
    assert sorted(processed) == sorted(CAMERAS)
    assert all(dropped[camera] > 0 for camera in CAMERAS), dropped  # overloaded: superseded frames
    # An even share: round robin gives each camera the same count give or take a frame per
    # report, but on a loaded machine the camera published first in each burst gains a few turns
    # (CI saw 42/35/33/33); the bound is half the mean, this asks for three quarters.
    mean = sum(processed.values()) / len(processed)
    assert min(processed.values()) >= 0.75 * mean, processed
    assert worker.stop() == 0


def roll_events(
    amqp_url: str,
    broker: TestBroker,
    start_worker: Callable[[str], ServiceProcess],
    faces_dir: Path,
    count: int,
) -> dict[str, list[tuple[int, str, str | None]]]:
    """Every camera's identity events for one fixed sequence of frames through `count` workers:
    (frame seq, kind, student), in the order of the frames."""
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")
    summaries = broker.tap(topology.RECOGNIZER_EXCHANGE, "frame.analyzed.#")
    workers = [start_worker(f"roll{count}-w{n}") for n in range(1, count + 1)]
    wait_for_workers(amqp_url, count)
    people = faces_dir / "people"
    # Each camera: a person in view (several photos, so the track and the vote have work to do),
    # then a stranger (not enrolled) in the same place, then the person again.
    scripts = {
        "cam-1": ["barack_obama/2", "barack_obama/3", "barack_obama/4", "joe_biden/2", "barack_obama/2"],
        "cam-2": ["guido_van_rossum/2", "guido_van_rossum/3", "guido_van_rossum/4", "steve_carell/1"],
        "cam-6": ["kit_harington/2", "kit_harington/2", "john_lennon/1", "kit_harington/2"],
        "cam-7": ["paul_allen/2", "paul_allen/3", "paul_allen/3", "eric_clapton/2", "paul_allen/4"],
    }
    jpegs = {name: frame_jpeg(people / f"{name}.jpg") for script in scripts.values() for name in script}
    total = sum(len(script) for script in scripts.values())
    for seq in range(max(len(script) for script in scripts.values())):
        for camera, script in scripts.items():
            if seq < len(script):
                publish_frame(broker, seq, jpegs[script[seq]], camera, droppable=False)
    analyzed: list[dict[str, Any]] = []
    wait_until(lambda: analyzed.extend(broker.drain(summaries)) or len(analyzed) >= total, 180, "every frame")
    assert len({(s["camera_id"], s["frame_seq"]) for s in analyzed}) == total
    received = broker.drain(events)
    assert [w.stop() for w in workers] == [0] * count
    by_camera: dict[str, list[tuple[int, str, str | None]]] = defaultdict(list)
    for event in sorted(received, key=lambda e: (e["frame_seq"], e["box"]["left"])):
        by_camera[event["camera_id"]].append((event["frame_seq"], event["kind"], event.get("student_number")))
    if count > 1:
        assert len({s["worker"] for s in analyzed}) > 1, "both workers took a share"
    return dict(by_camera)


def test_the_same_roll_with_one_and_two_workers(
    amqp_url: str,
    engine: sa.Engine,
    broker: TestBroker,
    start_worker: Callable[[str], ServiceProcess],
    faces_dir: Path,
) -> None:
    for person in ("barack_obama", "guido_van_rossum", "kit_harington", "paul_allen"):
        enroll(engine, person, faces_dir / "people" / person / "1.jpg")
    one = roll_events(amqp_url, broker, start_worker, faces_dir, 1)
    two = roll_events(amqp_url, broker, start_worker, faces_dir, 2)
    assert one == two
    named = {student for events in one.values() for _, kind, student in events if kind == "face.recognized"}
    # Who gets named depends on the decision rule; that it is the same with 1 and 2 workers does not.
    assert named and named <= {"barack_obama", "guido_van_rossum", "kit_harington", "paul_allen"}, one
    assert set(one) == set(CAMERAS)


def test_a_corrupt_frame_is_skipped_and_the_worker_carries_on(
    amqp_url: str, broker: TestBroker, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")
    worker = start_worker("w1")
    wait_for_workers(amqp_url, 1)
    good = frame_jpeg(faces_dir / "people" / "paul_rudd" / "1.jpg")
    publish_frame(broker, 1, Jpeg(b"\xff\xd8garbage", good.width, good.height), droppable=False)
    broker.publish_raw(topology.FRAMES_EXCHANGE, "cam-1", good.body, headers={"droppable": False})
    publish_frame(broker, 3, good, droppable=False)
    received = wait_until(lambda: broker.drain(events), 60, "the good frame's event")
    assert [(e["frame_seq"], e["kind"]) for e in received] == [(3, "face.unknown")]  # type: ignore[union-attr]
    assert worker.process.poll() is None
    assert worker.stop() == 0
    assert "2 bad frames" in worker.log()


def test_a_gallery_change_is_picked_up_without_a_restart(
    amqp_url: str,
    engine: sa.Engine,
    broker: TestBroker,
    start_worker: Callable[[str], ServiceProcess],
    faces_dir: Path,
) -> None:
    events = broker.tap(topology.RECOGNIZER_EXCHANGE, "face.#")
    start_worker("w1")
    wait_for_workers(amqp_url, 1)
    probe = frame_jpeg(faces_dir / "people" / "kit_harington" / "2.jpg")
    publish_frame(broker, 1, probe)
    [before] = wait_until(lambda: broker.drain(events), 60, "the first event")  # type: ignore[misc]
    assert before["kind"] == "face.unknown"
    enroll(engine, "kit", faces_dir / "people" / "kit_harington" / "1.jpg")
    broker.publish(topology.GALLERY_EXCHANGE, "", GalleryChanged(reason="test"))
    seqs = iter(range(2, 10**6))

    def recognized() -> bool:
        # Not every frame gives an event: a track that names nobody is looked at only twice a
        # second (of media time), so keep publishing and look at whatever has arrived.
        publish_frame(broker, next(seqs), probe)
        return any(e["kind"] == "face.recognized" for e in broker.drain(events))

    wait_until(recognized, 90, "the new student to be recognized", interval_s=0.3)


def test_a_workers_queue_drops_the_oldest_beyond_its_limit(broker: TestBroker) -> None:
    queue = topology.declare_private(broker.channel, topology.RECOGNIZER_FRAMES)
    jpeg = Jpeg(b"x", 1, 1)
    for seq in range(topology.FRAMES_MAX_LENGTH + 5):
        publish_frame(broker, seq, jpeg)
    assert broker.depth(queue) == topology.FRAMES_MAX_LENGTH
    method, properties, _ = broker.channel.basic_get(queue, auto_ack=True)
    assert isinstance(method, pika.spec.Basic.GetOk)
    assert properties.headers["seq"] == 5  # the five oldest were dropped


def test_frames_no_worker_is_bound_for_are_unroutable(broker: TestBroker) -> None:
    """With no worker there is no queue: fast pace publishes `mandatory` and gets them back."""
    meta = FrameCaptured(camera_id="cam-1", seq=4, captured_at=T0, width=1, height=1, droppable=False)
    with pytest.raises(pika.exceptions.UnroutableError):  # the test's channel confirms: returned at once
        broker.channel.basic_publish(
            topology.FRAMES_EXCHANGE,
            "cam-1",
            b"x",
            pika.BasicProperties(headers=meta.to_headers()),
            mandatory=True,
        )


def test_a_real_workers_load_reports_reach_the_dashboard(
    amqp_url: str, start_worker: Callable[[str], ServiceProcess], faces_dir: Path
) -> None:
    """Issue 11, item 1: the dashboard's consumer (services.web.camera_loads) aggregates the
    CameraLoad reports a real recognizer publishes, per camera."""
    loads = CameraLoads()
    stop = threading.Event()
    consumer = CameraLoadConsumer(BrokerSettings(amqp_url=amqp_url), loads, stop)
    consumer.start()
    try:
        start_worker("w1")
        wait_for_workers(amqp_url, 1)
        jpegs = {
            camera: jpeg for camera, jpeg in camera_jpegs(faces_dir).items() if camera in ("cam-1", "cam-6")
        }

        def reported() -> bool:
            rows = {row["camera_id"]: row for row in loads.snapshot()}
            return set(rows) == {"cam-1", "cam-6"} and all(
                row["processed_per_s"] > 0 for row in rows.values()
            )

        with Feeder(amqp_url, jpegs, fps=2):
            wait_until(reported, 60, "load reports of both cameras on the dashboard")
        for row in loads.snapshot():
            assert row["workers"] == ["w1"]
            assert row["offered_per_s"] >= row["processed_per_s"] > 0
    finally:
        stop.set()
        consumer.thread.join(timeout=10)
