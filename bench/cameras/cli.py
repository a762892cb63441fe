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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from bench.benchmark.measure import progress
from bench.benchmark.stack import Stack, fresh_stack
from harness.paths import ARTIFACTS, FACES_DIR
from harness.processes import ServiceProcess, wait_until
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


def run_cameras(stack: Stack, tap: Tap, cameras: int, tag: str, args: argparse.Namespace) -> dict[str, Any]:
    video: Path = args.video
    ids = [f"{tag}-cam-{n}" for n in range(1, cameras + 1)]
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
    tap.sleep(2.0)
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
    result = {
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
    progress(
        f"{tag}: {result['processed_per_s']} of {result['offered_per_s']:g} frames/s processed; "
        f"per camera {result['camera_processed_min']}..{result['camera_processed_max']} "
        f"(mean {result['camera_processed_mean']}); "
        f"{result['ms_per_frame_mean']} ms/frame; split {result['split']}"
    )
    return result


def _workers(per_camera: dict[str, dict[str, Any]]) -> set[str]:
    return {w for c in per_camera.values() for w in c["workers"]}


def render(results: dict[str, Any]) -> str:
    lines = [
        f"video {results['video']}, {results['recognizers']} recognizers, {FPS:g} frames/s per camera, "
        f"capacity ~{results['capacity_per_s']} frames/s",
        "| run | cameras | offered/s | processed/s | per camera min / mean / max | min/mean | under-served "
        "| >1 worker | ms/frame | cameras per worker |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["runs"].items():
        lines.append(
            f"| {name} | {r['cameras']} | {r['offered_per_s']:g} | {r['processed_per_s']} | "
            f"{r['camera_processed_min']} / {r['camera_processed_mean']} / {r['camera_processed_max']} | "
            f"{r['min_over_mean']} | {r['under_served']} | {r['more_than_one_worker']} | "
            f"{r['ms_per_frame_mean']} | {r['split']} |"
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
    with tempfile.TemporaryDirectory() as tmp, fresh_stack(Path(tmp)) as stack:
        if enroll.is_dir():
            results["enrolled"] = enroll_folder(stack, enroll, args.min_face_px)
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
                calibration = run_cameras(stack, tap, args.calibrate_cameras, "calibrate", args)
                capacity = calibration["processed_per_s"]
                results["runs"]["calibration"] = calibration
                counts = {
                    f"{f}x": max(1, min(args.max_cameras, round(float(f) * capacity / FPS)))
                    for f in args.overload.split(",")
                }
            results["capacity_per_s"] = capacity
            for name, cameras in counts.items():
                tag = name.split()[0].replace(".", "_")
                results["runs"][name] = run_cameras(stack, tap, cameras, f"r{tag}", args)
        finally:
            tap.close()
    table = render(results)
    sys.stdout.write(table + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
