"""Evaluate a whole lesson through the real system (issue 8, item 6).

    python -m bench.evaluate --video lesson.mp4 --enroll enroll/ --present truth.json \\
        [--roster roster.csv] [--recognizers 1] [--speed 1 | --pace fast] [--kill-recognizer-at 12]
    python -m bench.evaluate --lesson artifacts/lessons/full-seed1 --recognizers 1,2,4 --speed 1,2

Starts the real system on a fresh database and vhost: the students of the enrollment folder
(one subfolder per student number) enrolled with the project's enrollment code; with a roster,
a course and a session covering the lesson; the recorder, N recognizers, and capture playing
the file. When everything is idle it prints who was marked, missed and wrongly marked, and
every identity event that named the wrong person. --present is a bench.lessons truth.json
(faces are then checked against where each person really was) or a text file of student
numbers. Lists of recognizer counts and speeds run every combination and end with a table.
Service settings come from the environment, as for `make run` (e.g. RECOGNIZER_TOLERANCE).
"""

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2

from bench.evaluate.report import build_report, render_report, run_label
from bench.evaluate.system import (
    RunSettings,
    analyze_enrollment,
    default_min_face_px,
    run_lesson,
)
from bench.evaluate.truth import Truth, load_truth


def _numbers(text: str, kind: type) -> list[Any]:
    return [kind(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--lesson", type=Path, help="a bench.lessons folder (its video, enroll/, truth, roster)"
    )
    parser.add_argument("--video", type=Path)
    parser.add_argument("--enroll", type=Path, help="folder of <student number>/<photos>")
    parser.add_argument("--present", type=Path, help="truth.json, or a text file of student numbers")
    parser.add_argument("--roster", type=Path, help="roster.csv (student_number,name) of the class")
    parser.add_argument("--no-roster", action="store_true", help="with --lesson: no course, no session")
    parser.add_argument("--recognizers", default="1", help="a count, or a list: 1,2,4")
    parser.add_argument("--speed", default="1", help="realtime playback speed, or a list: 1,2")
    parser.add_argument("--pace", choices=["realtime", "fast"], default="realtime")
    parser.add_argument(
        "--kill-recognizer-at", type=float, help="SIGKILL recognizer 1 at this second of the video"
    )
    parser.add_argument("--capture-fps", type=float, default=0.0, help="CAPTURE_FPS (default 0: every frame)")
    parser.add_argument(
        "--min-face-px", type=int, default=None, help="enrollment floor (default API_MIN_FACE_PX)"
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="a setting for every service"
    )
    parser.add_argument("--json", type=Path, help="write the report(s) here")
    parser.add_argument("--keep-database", action="store_true", help="keep the database; its URL is reported")
    args = parser.parse_args(argv)
    if args.lesson:
        args.video = args.video or args.lesson / "lesson.mp4"
        args.enroll = args.enroll or args.lesson / "enroll"
        args.present = args.present or args.lesson / "truth.json"
        if args.roster is None and not args.no_roster and (args.lesson / "roster.csv").is_file():
            args.roster = args.lesson / "roster.csv"
    for name in ("video", "enroll", "present"):
        if getattr(args, name) is None:
            parser.error(f"--{name} (or --lesson) is required")
    return args


def video_facts(video: Path) -> tuple[float, float]:
    """(frames per second, duration in seconds) of a video file."""
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise SystemExit(f"cannot open {video}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    capture.release()
    return fps, frames / fps


def comparison_table(reports: list[dict[str, Any]]) -> str:
    rolls: dict[tuple[str, ...], str] = {}
    columns = f"{'marked':>7} {'check':>5} {'missed':>6} {'wrong':>5} {'wrong-name ev':>13} {'frames':>9}"
    header = f"{'run':<28} {columns}"
    lines = [f"{header} {'roll':>4}"]
    for report in reports:
        roll = tuple(report["roll"])
        letter = rolls.setdefault(roll, chr(ord("A") + len(rolls)))
        run = report["run"]
        lines.append(
            f"{run_label(report):<28} {len(report['marked']):>3}/{len(report['expected']):<3} "
            f"{len(report.get('marked_check', [])):>5} "
            f"{len(report['missed']):>6} {len(report['wrongly_marked']):>5} "
            f"{len(report['wrong_name_events']):>13} "
            f"{run['frames_analyzed']:>4}/{run['frames_published'] or '?':<4} {letter:>4}"
        )
    same = len(rolls) == 1
    lines.append(f"rolls identical across runs: {'yes' if same else f'no ({len(rolls)} different rolls)'}")
    return "\n".join(lines)


def say(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    truth: Truth = load_truth(args.present, args.roster)
    fps, duration_s = video_facts(args.video)
    min_face_px = args.min_face_px if args.min_face_px is not None else default_min_face_px()
    say(f"analyzing the enrollment photos in {args.enroll} (faces of at least {min_face_px} px)")
    enrollment = analyze_enrollment(args.enroll, min_face_px)
    extra_env = dict(item.split("=", 1) for item in args.env)
    counts = _numbers(args.recognizers, int)
    speeds = _numbers(args.speed, float) if args.pace == "realtime" else [1.0]
    reports = []
    with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
        for n, (count, speed) in enumerate(itertools.product(counts, speeds), start=1):
            settings = RunSettings(
                video=args.video.resolve(),
                recognizers=count,
                pace=args.pace,
                speed=speed,
                capture_fps=args.capture_fps,
                names=truth.names,
                roster=truth.roster,
                duration_s=duration_s,
                kill_recognizer_at_s=args.kill_recognizer_at,
                video_fps=fps,
                extra_env=extra_env,
                keep_database=args.keep_database,
                tag=f"evaluate-{n}",
            )
            say(f"run {n}: {count} recognizer(s), {args.pace} pace x{speed:g}")
            result = run_lesson(settings, enrollment, Path(tmp))
            report = build_report(result, truth, enrollment)
            say(render_report(report, truth))
            reports.append(report)
    if len(reports) > 1:
        say("\n" + comparison_table(reports))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=1) + "\n")
        say(f"\nreport written to {args.json}")
