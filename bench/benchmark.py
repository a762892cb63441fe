"""Measure speed side by side, in one run, on the same frames: `make bench`.

    python -m bench.benchmark [--video clip.mp4] [--workers 1,2] [--only naive,system,...]

Sections (all by default):
  naive     the single-process loop attendance scripts usually are (full frames, HOG with
            upsampling, encodings, compare against the known faces at 0.6), and this system's
            own analyzer in one process, for the per-core comparison;
  system    the real services through the real RabbitMQ with 1..N recognizer processes;
  latency   capture -> committed attendance row and -> the dashboard's SSE event, at half and
            at twice the measured capacity (drop-oldest keeps latency bounded);
  recorder  the recorder alone: identity events persisted per second, redeliveries mixed in;
  matching  time to match one face against galleries of 100 .. 1,000,000 encodings;
and the peak memory of each service. Progress goes to stderr, a table to stdout, and the same
figures to --json. Medians everywhere: the machines are shared and noisy.
"""

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import face_recognition
import httpx
import numpy as np
import pika
import sqlalchemy as sa

from bench.stack import Stack, fresh_stack
from services.capture.service import encode_frame
from services.common import topology
from services.common.messages import FaceBox, FaceRecognized, FaceUnknown, FrameCaptured
from services.common.students import create_student
from services.faces.engine import build_analyzer
from services.faces.enrollment import analyze_photo, enrollment_analyzer
from services.faces.matching import Gallery, Identity, Matcher, is_confident
from services.faces.settings import RecognitionSettings
from services.recognizer.service import FrameRecognizer
from services.recognizer.settings import RecognizerSettings
from services.recognizer.tracking import FaceTracker
from tests.support.browser import free_port
from tests.support.infra import FACES_DIR, wait_until

logger = logging.getLogger("bench")

DEFAULT_PEOPLE = ("lin_manuel_miranda", "barack_obama", "joe_biden", "kit_harington")
SECTIONS = ("naive", "system", "latency", "recorder", "matching")


def progress(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": len(values),
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
    }


# ---------------------------------------------------------------- frames and people


def load_frames(video: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise SystemExit(f"no frames in {video}")
    return frames


def enrollment_photos(specs: list[str]) -> dict[str, list[Path]]:
    """`name=photo.jpg` specs, or names of ../shared/faces/people folders (their first photo)."""
    people: dict[str, list[Path]] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        photos = [Path(path)] if path else sorted((FACES_DIR / "people" / name).glob("*.jpg"))[:1]
        if not photos or not photos[0].is_file():
            raise SystemExit(f"no photo for {spec!r}")
        people.setdefault(name, []).extend(photos)
    return people


def known_encodings(people: dict[str, list[Path]]) -> list[tuple[str, np.ndarray]]:
    analyzer = enrollment_analyzer()
    return [
        (name, analyze_photo(p.read_bytes(), analyzer).encoding)
        for name, photos in people.items()
        for p in photos
    ]


# ---------------------------------------------------------------- single process


@dataclass
class Throughput:
    label: str
    seconds: float
    frames: int
    faces: int
    target_frames: int  # frames in which the target person was named
    other_names: list[str] = field(default_factory=list)  # anyone else named (should be nobody)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds


def naive_loop(
    frames: list[np.ndarray], known: list[tuple[str, np.ndarray]], target: str, same_rule: bool = False
) -> Throughput:
    """face_recognition's own example, as attendance scripts copy it (tolerance 0.6). With
    `same_rule`, faces are named by this system's rule instead (tolerance and margin), to tell
    what the speed levers cost in recall from what the stricter tolerance costs."""
    settings = RecognitionSettings()
    names = [name for name, _ in known]
    encodings = [encoding for _, encoding in known]
    faces = target_frames = 0
    others: set[str] = set()
    started = time.perf_counter()
    for rgb in frames:
        locations = face_recognition.face_locations(rgb)
        found = set()
        for encoding in face_recognition.face_encodings(rgb, locations):
            faces += 1
            distances = face_recognition.face_distance(encodings, encoding)
            best = int(np.argmin(distances))
            if same_rule:
                rivals = [float(d) for name, d in zip(names, distances, strict=True) if name != names[best]]
                second = min(rivals) if rivals else None
                if is_confident(
                    float(distances[best]), second, settings.recognizer_tolerance, settings.recognizer_margin
                ):
                    found.add(names[best])
            elif face_recognition.compare_faces(encodings, encoding)[best]:
                found.add(names[best])
        target_frames += target in found
        others |= found - {target}
    label = "naive loop, this system's rule" if same_rule else "naive loop"
    return Throughput(label, time.perf_counter() - started, len(frames), faces, target_frames, sorted(others))


def system_in_process(
    frames: list[np.ndarray], known: list[tuple[str, np.ndarray]], target: str, tracking: bool = True
) -> Throughput:
    """One recognizer's own code (JPEG decode, detection, tracking, encodings, matching) with the
    default settings, in this process: the per-core figure without the broker."""
    settings = RecognizerSettings()
    gallery = Gallery.from_rows((Identity(i + 1, name, name), enc) for i, (name, enc) in enumerate(known))
    matcher = Matcher(gallery, settings.recognizer_tolerance, settings.recognizer_margin)
    tracker = FaceTracker(
        refresh_s=settings.recognizer_track_refresh_s if tracking else 0,
        max_gap_s=settings.recognizer_track_max_gap_s,
        min_iou=settings.recognizer_track_min_iou,
        keep_tolerance=settings.recognizer_track_keep_tolerance,
        unknown_refresh_s=settings.recognizer_track_unknown_refresh_s,
    )
    worker = FrameRecognizer(build_analyzer(**settings.analyzer_options()), lambda: matcher, "bench", tracker)
    jpegs = [encode_frame(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 1280, 85)[0] for rgb in frames]
    start_at = datetime.now(UTC)
    faces = target_frames = 0
    others: set[str] = set()
    started = time.perf_counter()
    for seq, jpeg in enumerate(jpegs):
        meta = FrameCaptured(
            camera_id="bench",
            seq=seq,
            captured_at=start_at + timedelta(seconds=seq / 30),
            width=frames[0].shape[1],
            height=frames[0].shape[0],
        )
        events = worker.recognize(meta, jpeg)
        names = {e.student_number for e in events if isinstance(e, FaceRecognized)}
        faces += len(events)
        target_frames += target in names
        others |= names - {target}
    label = "one worker in-process" + ("" if tracking else ", no tracking")
    result = Throughput(
        label, time.perf_counter() - started, len(frames), faces, target_frames, sorted(others)
    )
    result.extra = {"tracked_faces": worker.stats.tracked}
    return result


# ---------------------------------------------------------------- through the real system


@dataclass
class Bench:
    """What every run through the real system shares."""

    video: Path
    people: dict[str, list[Path]]
    target: str
    tmp: Path
    source_fps: float
    loops: int = 1
    memory: dict[str, float] = field(default_factory=dict)

    def remember_memory(self, stack: Stack) -> None:
        for kind, peak in stack.peak_mb.items():
            self.memory[kind] = max(self.memory.get(kind, 0.0), peak)


class Tap:
    """Copies of what the recognizers publish, collected on a thread with arrival times."""

    def __init__(self, amqp_url: str) -> None:
        self.messages: list[tuple[float, str, dict[str, Any]]] = []  # (arrival epoch, routing key, body)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(amqp_url,), daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _run(self, amqp_url: str) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        topology.declare(channel)
        queue = channel.queue_declare("", exclusive=True).method.queue
        # Only what is measured: a tap on everything would take CPU from the recognizers.
        channel.queue_bind(queue, topology.RECOGNIZER_EXCHANGE, "frame.analyzed.*")
        channel.queue_bind(queue, topology.RECOGNIZER_EXCHANGE, "face.recognized.*")
        self._ready.set()
        for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.2):
            if method is not None:
                self.messages.append((time.time(), method.routing_key, json.loads(body)))
            if self._stop.is_set():
                break
        connection.close()

    def kind(self, prefix: str) -> list[tuple[float, dict[str, Any]]]:
        return [(arrival, body) for arrival, key, body in list(self.messages) if key.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def looped_video(video: Path, loops: int, tmp: Path) -> Path:
    """The clip played `loops` times in a row, as one file (a longer, steadier measurement)."""
    if loops <= 1:
        return video
    out = tmp / f"{video.stem}-x{loops}.mp4"
    if out.exists():
        return out
    source = cv2.VideoCapture(str(video))
    fps = source.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, frame = source.read()
        if not ok:
            break
        frames.append(frame)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return out


def system_throughput(bench: Bench, workers: int) -> Throughput:
    target = bench.target
    with fresh_stack(bench.tmp) as stack:
        stack.enroll(bench.people)
        stack.start("recorder", "services.recorder")
        stack.start_recognizers(workers)
        tap = Tap(stack.amqp_url)
        capture = stack.start(
            "capture",
            "services.capture",
            CAPTURE_SOURCE=str(looped_video(bench.video, bench.loops, bench.tmp)),
            CAPTURE_FPS="0",
            CAPTURE_PACE="fast",
            CAMERA_ID="bench",
            LOG_LEVEL="INFO",
        )
        capture.wait(timeout_s=1800)
        published = int(capture.log().split(" frames published")[0].rsplit(" ", 1)[-1])
        wait_until(lambda: len(tap.kind("frame.analyzed")) >= published, 300, "every frame analyzed")
        stack.sample_memory()
        tap.close()
        analyzed = [body for _, body in tap.kind("frame.analyzed")]
        start = min(epoch(b["captured_at"]) for b in analyzed)
        end = max(epoch(b["analyzed_at"]) for b in analyzed)
        recognized = [body for _, body in tap.kind("face.recognized")]
        target_frames = len({b["frame_seq"] for b in recognized if b["student_number"] == target})
        others = sorted({b["student_number"] for b in recognized} - {target})
        per_worker: dict[str, int] = {}
        for body in analyzed:
            per_worker[body["worker"]] = per_worker.get(body["worker"], 0) + 1
        result = Throughput(
            f"system, {workers} recognizer(s)",
            end - start,
            len(analyzed),
            sum(b["faces"] for b in analyzed),
            target_frames,
            others,
        )
        result.extra = {
            "frames_per_worker": per_worker,
            "median_ms_per_frame": round(statistics.median(b["elapsed_ms"] for b in analyzed), 1),
        }
        bench.remember_memory(stack)
        return result


# ---------------------------------------------------------------- latency


class SseListener:
    """Reads the dashboard's /events stream; keeps (arrival, capture time) of each new sighting."""

    def __init__(self, url: str) -> None:
        self.latencies_ms: list[tuple[float, float]] = []  # (capture epoch, latency ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        last_at: dict[Any, str] = {}
        # The dashboard sends a keep-alive every 15 s, so a 60 s read timeout only fires on a dead stream.
        with httpx.stream("GET", url, timeout=httpx.Timeout(10.0, read=60.0)) as response:
            event = ""
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "recognition":
                    data = json.loads(line[5:])
                    if data.get("at") and last_at.get(data["entry_id"]) != data["at"]:
                        last_at[data["entry_id"]] = data["at"]
                        captured = epoch(data["at"])
                        self.latencies_ms.append((captured, (time.time() - captured) * 1000))

    def close(self) -> None:
        self._stop.set()


def latency_run(bench: Bench, workers: int, input_fps: float, seconds: float) -> dict[str, Any]:
    with fresh_stack(bench.tmp) as stack:
        stack.enroll(bench.people)
        stack.start("recorder", "services.recorder")
        port, api_port = free_port(), free_port()
        stack.start("api", "services.api", API_PORT=str(api_port), API_HOST="127.0.0.1")  # for its memory
        stack.start(
            "web",
            "services.web",
            WEB_PORT=str(port),
            WEB_HOST="127.0.0.1",
            WEB_API_URL=f"http://127.0.0.1:{api_port}",
        )
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/health"), 60, "the dashboard")
        stack.start_recognizers(workers)
        tap = Tap(stack.amqp_url)
        sse = SseListener(f"http://127.0.0.1:{port}/events")
        time.sleep(1)
        capture = stack.start(
            "capture",
            "services.capture",
            CAPTURE_SOURCE=str(bench.video),
            CAPTURE_FPS="0",
            CAPTURE_PACE="realtime",
            CAPTURE_SPEED=f"{input_fps / bench.source_fps:.3f}",
            CAPTURE_AT_END="loop",
            CAMERA_ID="bench",
            LOG_LEVEL="INFO",
        )
        depths: list[int] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            depths.append(_depth(stack))
        stack.stop("capture")
        published = int(capture.log().split(" frames published")[0].rsplit(" ", 1)[-1])
        time.sleep(3)  # let the last frames through
        stack.sample_memory()
        tap.close()
        sse.close()
        analyzed = [(arrival, body) for arrival, body in tap.kind("frame.analyzed")]
        to_analyzed = [
            (epoch(b["captured_at"]), (arrival - epoch(b["captured_at"])) * 1000) for arrival, b in analyzed
        ]
        to_row = _committed_latencies(stack)
        bench.remember_memory(stack)
        return {
            "input_fps": round(input_fps, 1),
            "seconds": seconds,
            "frames_published": published,
            "frames_analyzed": len(analyzed),
            "frames_dropped": published - len(analyzed),
            "queue_depth_max": max(depths, default=0),
            "queue_depth_median": statistics.median(depths) if depths else 0,
            "capture_to_analyzed_ms": percentiles([v for _, v in to_analyzed]),
            "capture_to_committed_row_ms": percentiles([v for _, v in to_row]),
            "capture_to_dashboard_ms": percentiles([v for _, v in sse.latencies_ms]),
            "committed_row_p95_by_third_ms": _p95_by_third(to_row),
        }


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _depth(stack: Stack) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(stack.amqp_url))
    try:
        return int(
            connection.channel().queue_declare(topology.FRAMES_QUEUE, passive=True).method.message_count
        )
    finally:
        connection.close()


def _committed_latencies(stack: Stack) -> list[tuple[float, float]]:
    """Capture -> the identity event (and the attendance row it updates) committed by the recorder."""
    engine = stack.engine()
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT captured_at, recorded_at FROM identity_events WHERE kind = 'recognized'")
        ).all()
    engine.dispose()
    return [(c.replace(tzinfo=UTC).timestamp(), (r - c).total_seconds() * 1000) for c, r in rows]


def _p95_by_third(samples: list[tuple[float, float]]) -> list[float]:
    """p95 of each third of the run, by capture time: flat if latency does not grow."""
    ordered = [latency for _, latency in sorted(samples)]
    thirds = [ordered[i * len(ordered) // 3 : (i + 1) * len(ordered) // 3] for i in range(3)]
    return [round(float(np.percentile(t, 95)), 1) for t in thirds if t]


# ---------------------------------------------------------------- recorder alone


def recorder_run(bench: Bench, events: int, redelivered_share: float) -> dict[str, Any]:
    with fresh_stack(bench.tmp) as stack:
        engine = stack.engine()
        with engine.begin() as connection:
            students = [create_student(connection, f"S{n:03d}", f"Student {n}").id for n in range(60)]
        unique = int(events / (1 + redelivered_share))
        now = datetime.now(UTC)
        box = FaceBox(top=0, right=10, bottom=10, left=0)
        rng = np.random.default_rng(0)
        batch: list[FaceRecognized | FaceUnknown] = []
        for n in range(unique):
            camera = f"room-{n % 5}"
            captured = now + timedelta(milliseconds=n)
            if n % 4 == 3:
                batch.append(
                    FaceUnknown(camera_id=camera, frame_seq=n, captured_at=captured, box=box, worker="b")
                )
            else:
                student = students[int(rng.integers(len(students)))]
                batch.append(
                    FaceRecognized(
                        camera_id=camera,
                        frame_seq=n,
                        captured_at=captured,
                        box=box,
                        worker="b",
                        student_id=student,
                        student_number=f"S{student}",
                        student_name="x",
                        distance=0.4,
                    )
                )
        extra = [batch[int(i)] for i in rng.integers(unique, size=events - unique)]  # redeliveries
        progress(f"recorder: publishing {events} events ({len(extra)} redelivered) before it starts")
        connection = pika.BlockingConnection(pika.URLParameters(stack.amqp_url))
        channel = connection.channel()
        topology.declare(channel)
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json"
        )
        for event in [*batch, *extra]:
            key = (
                topology.recognized_key(event.camera_id)
                if isinstance(event, FaceRecognized)
                else topology.unknown_key(event.camera_id)
            )
            channel.basic_publish(
                topology.RECOGNIZER_EXCHANGE, key, event.model_dump_json().encode(), properties
            )
        # A passive declare on the same channel is answered after the publishes before it.
        wait_until(
            lambda: (
                channel.queue_declare(topology.IDENTITY_QUEUE, passive=True).method.message_count >= events
            ),
            120,
            "the events to be queued",
        )
        connection.close()
        started = time.perf_counter()
        stack.start("recorder", "services.recorder")

        def count() -> int:
            with engine.connect() as db:
                return int(db.execute(sa.text("SELECT COUNT(*) FROM identity_events")).scalar_one())

        wait_until(lambda: count() >= unique, 600, "every event persisted", interval_s=0.05)
        seconds = time.perf_counter() - started
        stack.sample_memory()
        with engine.connect() as db:
            distinct = db.execute(
                sa.text("SELECT COUNT(DISTINCT event_id) FROM identity_events")
            ).scalar_one()
            rows = db.execute(sa.text("SELECT COUNT(*) FROM identity_events")).scalar_one()
            marks = db.execute(sa.text("SELECT COUNT(*) FROM attendance")).scalar_one()
            pairs = db.execute(
                sa.text("SELECT COUNT(DISTINCT session_id, student_id) FROM attendance")
            ).scalar_one()
            first, last = db.execute(
                sa.text("SELECT MIN(recorded_at), MAX(recorded_at) FROM identity_events")
            ).one()
        busy = max((last - first).total_seconds(), 1e-3)  # first to last commit: the recorder's own pace
        engine.dispose()
        bench.remember_memory(stack)
        return {
            "events_published": events,
            "unique_events": unique,
            "seconds_incl_start": round(seconds, 2),
            "events_per_s": round(events / busy),
            "events_per_s_incl_start": round(events / seconds),
            "identity_rows": rows,
            "duplicate_rows": rows - distinct,
            "attendance_rows": marks,
            "duplicate_marks": marks - pairs,
        }


# ---------------------------------------------------------------- matching


def matching_times(sizes: list[int], faces: int = 30) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    results = []
    for size in sizes:
        encodings = rng.normal(size=(size, 128)).astype(np.float32)
        encodings /= np.linalg.norm(encodings, axis=1, keepdims=True) * 2  # dlib-like norms (~0.5)
        students = max(1, size // 2)  # two photos per student
        identities = [Identity(i + 1, f"S{i}", f"S{i}") for i in range(students)]
        gallery = Gallery(identities, np.arange(size) % students, encodings)
        matcher = Matcher(gallery, 0.55, 0.05)
        probes = encodings[rng.integers(size, size=faces)] + rng.normal(scale=0.01, size=(faces, 128))
        matcher.match(probes[:1])  # warm up
        times = []
        for probe in probes:
            started = time.perf_counter()
            matcher.match(probe[None, :])
            times.append((time.perf_counter() - started) * 1000)
        row: dict[str, Any] = {"gallery": size, "ms_per_face": round(statistics.median(times), 3)}
        if size <= 10_000:  # the Python loop over face_distance calls is too slow beyond
            known = list(encodings.astype(np.float64))
            loop = []
            for probe in probes[:5]:
                started = time.perf_counter()
                _ = [face_recognition.face_distance([k], probe)[0] for k in known]
                loop.append((time.perf_counter() - started) * 1000)
            row["python_loop_ms_per_face"] = round(statistics.median(loop), 2)
        results.append(row)
        progress(f"matching: {size:>9,} encodings: {row['ms_per_face']} ms per face")
        del encodings, gallery, matcher
    return results


# ---------------------------------------------------------------- report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--video", type=Path, default=FACES_DIR / "video" / "short_hamilton_clip.mp4")
    parser.add_argument(
        "--enroll",
        nargs="+",
        default=list(DEFAULT_PEOPLE),
        help="people to enroll: NAME=photo.jpg, or a folder name of ../shared/faces/people",
    )
    parser.add_argument(
        "--target", default=None, help="the enrolled person expected in the video (default: the first)"
    )
    parser.add_argument(
        "--workers",
        default=",".join(str(n) for n in range(1, (os.cpu_count() or 1) + 1)),
        help="recognizer processes to try, e.g. 1,2,4 (default: 1..cores)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per throughput figure (the median is kept)"
    )
    parser.add_argument(
        "--loops",
        type=int,
        default=3,
        help="system runs play the video this many times in a row (steadier figures)",
    )
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--recorder-events", type=int, default=20_000)
    parser.add_argument("--gallery-sizes", default="100,10000,100000,1000000")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"sections to run, of {','.join(SECTIONS)}"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args()


def median_run(runs: list[Throughput]) -> Throughput:
    return sorted(runs, key=lambda r: r.fps)[len(runs) // 2]


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    sections = set(args.only.split(","))
    workers = [int(n) for n in args.workers.split(",")]
    people = enrollment_photos(args.enroll)
    target = args.target or next(iter(people))
    source_fps = cv2.VideoCapture(str(args.video)).get(cv2.CAP_PROP_FPS) or 30.0
    report: dict[str, Any] = {
        "video": str(args.video),
        "enrolled": list(people),
        "target": target,
        "cpu_count": os.cpu_count(),
        "started": datetime.now(UTC).isoformat(),
        "settings": RecognitionSettings().model_dump(mode="json"),
    }
    bench = Bench(args.video, people, target, Path(tempfile.mkdtemp(prefix="bench-")), source_fps, args.loops)
    throughput: list[Throughput] = []

    if "naive" in sections:
        frames = load_frames(args.video)
        known = known_encodings(people)
        variants: list[tuple[str, Callable[..., Throughput]]] = [
            ("naive loop", naive_loop),
            ("naive loop, this system's rule", partial(naive_loop, same_rule=True)),
            ("one worker in-process, no tracking", partial(system_in_process, tracking=False)),
            ("one worker in-process", system_in_process),
        ]
        for label, run in variants:
            runs = []
            for n in range(args.repeat):
                progress(f"{label}: run {n + 1}/{args.repeat} over {len(frames)} frames")
                runs.append(run(frames, known, target))
            throughput.append(median_run(runs))
            progress(f"{label}: {throughput[-1].fps:.1f} frames/s (median)")
    if "system" in sections:
        for count in workers:
            runs = []
            for n in range(args.repeat):
                progress(f"system with {count} recognizer(s): run {n + 1}/{args.repeat}")
                runs.append(system_throughput(bench, count))
            throughput.append(median_run(runs))
            progress(f"system with {count} recognizer(s): {throughput[-1].fps:.1f} frames/s (median)")
    report["throughput"] = [
        asdict(r) | {"fps": round(r.fps, 2), "faces_per_s": round(r.faces_per_s, 2)} for r in throughput
    ]
    report["ratios"] = ratios(throughput)

    if "latency" in sections:
        systems = [r for r in throughput if r.label.startswith("system")]
        capacity = systems[-1].fps if systems else 15.0
        count = workers[-1]
        report["latency"] = {}
        for name, factor in (("within_capacity", 0.5), ("twice_capacity", 2.0)):
            progress(
                f"latency {name}: {factor * capacity:.1f} frames/s into {count} recognizer(s) "
                f"for {args.latency_seconds:.0f}s"
            )
            report["latency"][name] = latency_run(bench, count, factor * capacity, args.latency_seconds)
    if "recorder" in sections:
        progress(f"recorder alone: {args.recorder_events} events")
        report["recorder"] = recorder_run(bench, args.recorder_events, 0.1)
    if "matching" in sections:
        report["matching"] = matching_times([int(s) for s in args.gallery_sizes.split(",")])
    report["peak_memory_mb"] = {k: round(v) for k, v in sorted(bench.memory.items())}
    sys.stdout.write(render(report) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        progress(f"figures written to {args.json}")


def ratios(runs: list[Throughput]) -> dict[str, float]:
    by_label = {r.label: r for r in runs}
    naive = by_label.get("naive loop")
    one = by_label.get("system, 1 recognizer(s)")
    out: dict[str, float] = {}
    for run in runs:
        if naive and run is not naive:
            out[f"{run.label} / naive"] = round(run.fps / naive.fps, 2)
        if one and run.label.startswith("system") and run is not one:
            out[f"{run.label} / 1 recognizer"] = round(run.fps / one.fps, 2)
    return out


def render(report: dict[str, Any]) -> str:
    lines = [
        f"video {report['video']}; enrolled {', '.join(report['enrolled'])}; target {report['target']}",
        "",
    ]
    if report.get("throughput"):
        lines.append(f"{'run':32} {'frames/s':>9} {'faces/s':>8} {'target frames':>14}  others named")
        for r in report["throughput"]:
            lines.append(
                f"{r['label']:32} {r['fps']:>9.1f} {r['faces_per_s']:>8.1f} "
                f"{r['target_frames']:>7}/{r['frames']:<6}  {', '.join(r['other_names']) or 'none'}"
            )
        lines += ["", *(f"  {name}: {value}x" for name, value in report["ratios"].items()), ""]
    for name, run in report.get("latency", {}).items():
        lines.append(
            f"latency {name} ({run['input_fps']} frames/s in, {run['frames_dropped']} of "
            f"{run['frames_published']} dropped, queue depth max {run['queue_depth_max']})"
        )
        for key in ("capture_to_analyzed_ms", "capture_to_committed_row_ms", "capture_to_dashboard_ms"):
            p = run[key]
            lines.append(
                f"  {key:30} p50 {p.get('p50', '-'):>7} p95 {p.get('p95', '-'):>7} "
                f"p99 {p.get('p99', '-'):>7}  (n={p['n']})"
            )
        lines.append(f"  committed-row p95 by third of the run: {run['committed_row_p95_by_third_ms']}")
    if "recorder" in report:
        r = report["recorder"]
        lines += [
            "",
            f"recorder alone: {r['events_per_s']} events/s ({r['events_published']} events, "
            f"{r['events_published'] - r['unique_events']} redelivered); duplicate rows "
            f"{r['duplicate_rows']}, duplicate marks {r['duplicate_marks']}",
        ]
    if "matching" in report:
        lines.append("")
        for row in report["matching"]:
            loop = (
                f"   (Python loop: {row['python_loop_ms_per_face']} ms)"
                if "python_loop_ms_per_face" in row
                else ""
            )
            lines.append(
                f"matching vs {row['gallery']:>9,} encodings: {row['ms_per_face']:>8} ms per face{loop}"
            )
    if report.get("peak_memory_mb"):
        lines += [
            "",
            "peak memory (MB): " + ", ".join(f"{k} {v}" for k, v in report["peak_memory_mb"].items()),
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
