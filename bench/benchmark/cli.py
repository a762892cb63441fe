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
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import cv2

from bench.benchmark.in_process import naive_loop, system_in_process
from bench.benchmark.latency import latency_run
from bench.benchmark.matching import matching_times
from bench.benchmark.measure import Throughput, progress
from bench.benchmark.people import DEFAULT_PEOPLE, enrollment_photos, known_encodings, load_frames
from bench.benchmark.recorder import recorder_run
from bench.benchmark.report import ratios, render
from bench.benchmark.system import Bench, system_throughput
from harness.paths import FACES_DIR
from services.faces.settings import RecognitionSettings

SECTIONS = ("naive", "system", "latency", "recorder", "matching")


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
