"""K cameras (each a real capture process playing a video at 5 frames/s, realtime, looping)
against N real recognizers through the real RabbitMQ: is every camera served, evenly?

    python -m bench.cameras [--video lesson.mp4] [--recognizers 2] [--overload 1,2,4]
                            [--cameras 4,8,16] [--seconds 20] [--json artifacts/cameras.json]

Without --cameras, a short calibration run with --calibrate-cameras cameras measures what the
recognizers process per second when overloaded (their capacity C); each --overload factor f then
runs round(f * C / 5) cameras (at most --max-cameras). Reported per run: frames offered and
processed per second per camera (min, mean, max; "under-served" below half of offered, from
services.common.camera_load), frames dropped for a newer one, cameras that saw more than one
worker within the window (affinity: 0 expected), and the mean analysis time per frame, whose
rise under overload says whether tracking survives the lower rate (issue 11: within 20%).
The lesson's students are enrolled first (its enroll/ folder), so seated students become named
tracks, encoded again only every RECOGNIZER_TRACK_REFRESH_S, as in a school.

With the lesson's truth.json (and roster.csv) beside the video, the recorder runs too: every
camera gets a session of the lesson's class, and each run reports its roll (present students
marked on every camera, cameras with a complete roll, the worst camera, wrongly marked) and the
latency from capture to the committed identity_events row (p50/p95), from what MySQL holds.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika
import sqlalchemy as sa
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from bench.benchmark.measure import progress
from bench.benchmark.stack import Stack, fresh_stack
from bench.cameras.roll import latency_ms, run_roll
from bench.evaluate.truth import Truth, load_truth
from harness.paths import ARTIFACTS, FACES_DIR
from harness.processes import ServiceProcess, wait_until
from services.api.queries.courses import create_course, replace_roster
from services.api.queries.sessions import create_session
from services.common import topology
from services.common.amqp.connection import connection_parameters
from services.common.camera_load import CameraLoadBoard
from services.common.messages import CameraLoad
from services.common.settings import BrokerSettings
from services.common.students import Consent, add_face_encoding, create_student
from services.faces.enrollment import PhotoRejectedError, analyze_photo, enrollment_analyzer

FPS = 5.0
# A small synthetic lesson (`python -m bench.lessons --preset small --seed 1`: 6 students
# seated, 4 people walking through, 1280x720) if it was generated, else the shared clip.
LESSON = ARTIFACTS / "lessons" / "small-seed1" / "lesson.mp4"
CLIP = FACES_DIR / "video" / "short_hamilton_clip.mp4"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=LESSON if LESSON.is_file() else CLIP)
    parser.add_argument(
        "--enroll",
        type=Path,
        help="folder of <student>/<photo> to enroll first (default: the lesson's enroll/ next to the video)",
    )
    parser.add_argument("--min-face-px", type=int, default=40, help="enrollment and detection floor")
    parser.add_argument("--recognizers", type=int, default=2)
    parser.add_argument("--overload", default="1,2,4", help="factors of the measured capacity")
    parser.add_argument("--cameras", default="", help="camera counts to run instead (e.g. 4,8,16)")
    parser.add_argument("--calibrate-cameras", type=int, default=6)
    parser.add_argument("--max-cameras", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per run")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--json", type=Path)
    return parser.parse_args(argv)


def enroll_folder(stack: Stack, folder: Path, min_face_px: int) -> int:
    """Enroll <student>/<photo> (LFW portraits have faces of 50-75 px: a floor of 40); photos
    the enrollment refuses are skipped. The number of students enrolled."""
    analyzer = enrollment_analyzer()
    engine = stack.engine()
    enrolled = 0
    for student_dir in sorted(d for d in folder.iterdir() if d.is_dir()):
        faces = []
        for photo in sorted(student_dir.iterdir()):
            try:
                faces.append(analyze_photo(photo.read_bytes(), analyzer, min_face_px))
            except PhotoRejectedError:
                continue
        if faces:
            with engine.begin() as connection:
                student = create_student(connection, student_dir.name, student_dir.name, Consent("bench"))
                for face in faces:
                    add_face_encoding(connection, student.id, face)
            enrolled += 1
    engine.dispose()
    progress(f"enrolled {enrolled} students from {folder}")
    return enrolled


def frame_workers(amqp_url: str) -> int:
    """Recognizers with their frames queue bound and consumed (a private queue each)."""
    vhost = urllib.parse.unquote(urllib.parse.urlsplit(amqp_url).path.lstrip("/"))
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    out = subprocess.run(  # noqa: S603 (our own arguments)
        [ctl, "-q", "list_queues", "-p", vhost, "name", "consumers", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    prefix = topology.RECOGNIZER_FRAMES.prefix + "."
    return sum(1 for line in out.splitlines() if line.startswith(prefix) and line.split()[-1] == "1")


class Tap:
    """Copies of the summaries and load reports of every camera, on a queue of our own."""

    def __init__(self, amqp_url: str) -> None:
        self.connection: BlockingConnection = pika.BlockingConnection(
            connection_parameters(BrokerSettings(amqp_url=amqp_url), "bench")
        )
        self.channel: BlockingChannel = self.connection.channel()
        topology.declare(self.channel)
        self.queue = str(self.channel.queue_declare("", exclusive=True).method.queue)
        for key in ("frame.analyzed.#", "camera.load.#"):
            self.channel.queue_bind(self.queue, topology.RECOGNIZER_EXCHANGE, key)

    def drain(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            method, _properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return messages
            messages.append(json.loads(body))

    def sleep(self, seconds: float) -> None:
        self.connection.sleep(seconds)

    def close(self) -> None:
        self.connection.close()


def lesson_truth(video: Path) -> Truth | None:
    """The lesson's truth (bench.lessons writes truth.json and roster.csv beside its video)."""
    truth, roster = video.parent / "truth.json", video.parent / "roster.csv"
    if not truth.is_file():
        return None
    return load_truth(truth, roster if roster.is_file() else None)


def class_course(engine: sa.Engine, truth: Truth) -> int | None:
    """The lesson's class as a course (its roster of enrolled students), so each camera's session
    names roster students only, as a school's would; None without a roster."""
    if truth.roster is None:
        return None
    with engine.begin() as connection:
        ids = connection.execute(
            sa.text("SELECT id FROM students WHERE student_number IN :numbers").bindparams(
                sa.bindparam("numbers", expanding=True)
            ),
            {"numbers": sorted(truth.roster)},
        ).scalars()
        course = create_course(connection, "BENCH", "The benchmark lesson's class")
        replace_roster(connection, course.id, sorted(int(i) for i in ids))
    return course.id


def open_sessions(engine: sa.Engine, cameras: list[str], course_id: int | None) -> None:
    """A session per camera from a little before now to well after: capture stamps frames with
    the wall clock (CAPTURE_CLOCK=wall)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for camera in cameras:
            create_session(
                connection,
                name=f"Bench {camera}",
                camera_id=camera,
                starts_at=now - timedelta(minutes=5),
                ends_at=now + timedelta(hours=2),
                course_id=course_id,
            )


def roll_figures(
    engine: sa.Engine, truth: Truth, cameras: list[str], start: datetime, end: datetime
) -> dict[str, Any]:
    """Each camera's roll (marks of the whole run: the lesson loops) and the capture-to-committed-
    row latency of the events captured in the measuring window."""
    with engine.connect() as connection:
        marks = connection.execute(
            sa.text(
                "SELECT cs.camera_id, s.student_number FROM attendance a "
                "JOIN class_sessions cs ON cs.id = a.session_id JOIN students s ON s.id = a.student_id "
                "WHERE cs.camera_id IN :cameras AND a.status IN ('present', 'late')"
            ).bindparams(sa.bindparam("cameras", expanding=True)),
            {"cameras": cameras},
        ).all()
        delays = connection.execute(
            sa.text(
                "SELECT TIMESTAMPDIFF(MICROSECOND, captured_at, recorded_at) FROM identity_events "
                "WHERE camera_id IN :cameras AND captured_at BETWEEN :start AND :end"
            ).bindparams(sa.bindparam("cameras", expanding=True)),
            {"cameras": cameras, "start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)},
        ).scalars()
        latencies = [int(d) / 1e6 for d in delays]
    marked: dict[str, set[str]] = {camera: set() for camera in cameras}
    for camera, number in marks:
        marked[camera].add(number)
    return {"roll": run_roll(truth.present, marked), "latency_ms": latency_ms(latencies)}


def run_cameras(
    stack: Stack,
    tap: Tap,
    cameras: int,
    tag: str,
    args: argparse.Namespace,
    *,
    truth: Truth | None = None,
    course_id: int | None = None,
) -> dict[str, Any]:
    video: Path = args.video
    ids = [f"{tag}-cam-{n}" for n in range(1, cameras + 1)]
    engine = stack.engine()
    if truth is not None:
        open_sessions(engine, ids, course_id)
    captures: list[ServiceProcess] = []
    for camera in ids:
        captures.append(
            stack.start(
                camera,
                "services.capture",
                CAMERA_ID=camera,
                CAPTURE_SOURCE=str(video),
                CAPTURE_FPS=str(FPS),
                CAPTURE_PACE="realtime",
                CAPTURE_CLOCK="wall",  # a camera, not a recorded lesson
                CAPTURE_AT_END="loop",
                CAPTURE_HEARTBEAT_S="2",
            )
        )
    progress(f"{tag}: {cameras} camera(s) at {FPS:g} frames/s; warming up {args.warmup:.0f}s")
    tap.sleep(args.warmup)
    tap.drain()
    start = datetime.now(UTC)
    tap.sleep(args.seconds)
    end = datetime.now(UTC)
    messages = tap.drain()
    for camera in ids:
        stack.stop(camera)
    tap.sleep(2.0)  # the recorder commits its last batch
    tap.drain()
    summaries = [
        m
        for m in messages
        if m.get("kind") == "frame.analyzed" and start <= datetime.fromisoformat(m["analyzed_at"]) <= end
    ]
    board = CameraLoadBoard(window_s=args.seconds)
    for m in messages:
        if m.get("kind") == "camera.load":
            board.add(CameraLoad.model_validate(m))
    loads = board.rates(end)
    window = (end - start).total_seconds()
    per_camera: dict[str, dict[str, Any]] = {}
    for camera in ids:
        mine = [s for s in summaries if s["camera_id"] == camera]
        load = loads.get(camera)
        processed = len(mine) / window
        per_camera[camera] = {
            "processed_per_s": round(processed, 2),
            "offered_per_s": FPS,
            "dropped_per_s": load.dropped_per_s if load else None,
            "workers": sorted({s["worker"] for s in mine}),
            "under_served": processed < 0.5 * FPS,
        }
    rates = [c["processed_per_s"] for c in per_camera.values()]
    mean = statistics.mean(rates) if rates else 0.0
    costs = [s["elapsed_ms"] for s in summaries]
    result: dict[str, Any] = {
        "cameras": cameras,
        "offered_per_s": cameras * FPS,
        "processed_per_s": round(len(summaries) / window, 1),
        "camera_processed_min": min(rates, default=0.0),
        "camera_processed_mean": round(mean, 2),
        "camera_processed_max": max(rates, default=0.0),
        "min_over_mean": round(min(rates) / mean, 2) if mean else None,
        "under_served": sum(1 for c in per_camera.values() if c["under_served"]),
        "more_than_one_worker": sum(1 for c in per_camera.values() if len(c["workers"]) > 1),
        "ms_per_frame_mean": round(statistics.mean(costs), 1) if costs else None,
        "ms_per_frame_median": round(statistics.median(costs), 1) if costs else None,
        "faces_per_frame": round(statistics.mean(s["faces"] for s in summaries), 2) if summaries else None,
        "split": sorted(
            (sum(1 for c in per_camera.values() if c["workers"][:1] == [w]) for w in _workers(per_camera)),
            reverse=True,
        ),
        "per_camera": per_camera,
    }
    if truth is not None:
        result.update(roll_figures(engine, truth, ids, start, end))
    engine.dispose()
    progress(
        f"{tag}: {result['processed_per_s']} of {result['offered_per_s']:g} frames/s processed; "
        f"per camera {result['camera_processed_min']}..{result['camera_processed_max']} "
        f"(mean {result['camera_processed_mean']}); "
        f"{result['ms_per_frame_mean']} ms/frame; split {result['split']}"
        + (
            f"; roll {result['roll']['marked']}/{result['roll']['present']} marked, "
            f"{result['roll']['wrongly_marked']} wrongly; latency p95 {result['latency_ms']['p95']} ms"
            if "roll" in result
            else ""
        )
    )
    return result


def _workers(per_camera: dict[str, dict[str, Any]]) -> set[str]:
    return {w for c in per_camera.values() for w in c["workers"]}


def render(results: dict[str, Any]) -> str:
    lines = [
        f"video {results['video']}, {results['recognizers']} recognizers, {FPS:g} frames/s per camera, "
        f"capacity ~{results['capacity_per_s']} frames/s",
        "| run | cameras | offered/s | processed/s | per camera min / mean / max | min/mean | under-served "
        "| >1 worker | ms/frame | cameras per worker | marked of present | complete rolls | worst camera "
        "| wrongly marked | latency p50 / p95 (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["runs"].items():
        roll, latency = r.get("roll"), r.get("latency_ms")
        roll_cells = (
            f"{roll['marked']}/{roll['present']} | {roll['complete_cameras']}/{r['cameras']} | "
            f"{roll['worst_marked']}/{roll['per_camera'][roll['worst_camera']]['present']} | "
            f"{roll['wrongly_marked']} | {latency['p50']} / {latency['p95']}"
            if roll and latency and roll["worst_camera"]
            else "- | - | - | - | -"
        )
        lines.append(
            f"| {name} | {r['cameras']} | {r['offered_per_s']:g} | {r['processed_per_s']} | "
            f"{r['camera_processed_min']} / {r['camera_processed_mean']} / {r['camera_processed_max']} | "
            f"{r['min_over_mean']} | {r['under_served']} | {r['more_than_one_worker']} | "
            f"{r['ms_per_frame_mean']} | {r['split']} | {roll_cells} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.video.is_file():
        sys.exit(f"no such video: {args.video}")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    results: dict[str, Any] = {
        "video": str(args.video),
        "recognizers": args.recognizers,
        "measured_at": datetime.now(UTC).isoformat(),
        "runs": {},
    }
    enroll = args.enroll or (args.video.parent / "enroll")
    truth = lesson_truth(args.video)
    with tempfile.TemporaryDirectory() as tmp, fresh_stack(Path(tmp)) as stack:
        if enroll.is_dir():
            results["enrolled"] = enroll_folder(stack, enroll, args.min_face_px)
        course_id = None
        if truth is not None:
            engine = stack.engine()
            course_id = class_course(engine, truth)
            engine.dispose()
            results["present"] = sorted(truth.present)
            stack.start("recorder", "services.recorder")
        for n in range(1, args.recognizers + 1):
            stack.start(
                f"recognizer-{n}",
                "services.recognizer",
                RECOGNIZER_WORKER_ID=f"w{n}",
                RECOGNIZER_MIN_FACE_PX=str(args.min_face_px),
            )
        wait_until(lambda: frame_workers(stack.amqp_url) == args.recognizers, 180, "the recognizers")
        tap = Tap(stack.amqp_url)
        try:
            if args.cameras:
                counts = {f"{k} cameras": int(k) for k in args.cameras.split(",")}
                capacity = None
            else:
                calibration = run_cameras(
                    stack, tap, args.calibrate_cameras, "calibrate", args, truth=truth, course_id=course_id
                )
                capacity = calibration["processed_per_s"]
                results["runs"]["calibration"] = calibration
                counts = {
                    f"{f}x": max(1, min(args.max_cameras, round(float(f) * capacity / FPS)))
                    for f in args.overload.split(",")
                }
            results["capacity_per_s"] = capacity
            for name, cameras in counts.items():
                tag = name.split()[0].replace(".", "_")
                results["runs"][name] = run_cameras(
                    stack, tap, cameras, f"r{tag}", args, truth=truth, course_id=course_id
                )
        finally:
            tap.close()
    table = render(results)
    sys.stdout.write(table + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
