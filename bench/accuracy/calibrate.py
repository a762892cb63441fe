"""Calibrate the naming rule at school scale: false accepts and rejects of the whole track
decision against the number of people enrolled (the protocol: bench/accuracy/tracks.py).

    python -m bench.accuracy.calibrate [FOLDER] [--sizes 30,100,300,1000] [--photos 1,2]
        [--roster 30@300] [--strangers 150,600] [--repeats 10] [--tolerance T] [--margin M]
        [--baseline 0.55,0.04] [--cache artifacts/calibration] [--json out.json]

FOLDER (default ../shared/faces-lfw) holds <identity>/<photo>, or a people/ subfolder that
does. Every photo is encoded once through the workers' analyzer (as a probe) and its first
photos through the enrollment path (as an enrollment photo); the encodings are cached under
--cache, keyed by the analyzer's settings, so the sweep itself takes seconds and can be re-run
at other settings. The table prints, for each gallery size and photos per person, the track
rule at the chosen tolerance and margin (default: the RECOGNIZER_* settings) beside the
per-photo rule at --baseline, so a change of defaults is judged on both in one run.
"""

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.accuracy.dataset import labeled_photos, resolve_folder
from bench.accuracy.probing import Progress, largest_face
from bench.accuracy.tracks import Counts, Person, Rule, Setup, people_from, repeat
from services.common.logs import setup_logging
from services.common.settings import load_settings
from services.faces.engine import InvalidImageError, build_analyzer
from services.faces.enrollment import (
    DEFAULT_MIN_FACE_PX,
    PhotoRejectedError,
    analyze_photo,
    enrollment_analyzer,
)
from services.faces.settings import RecognitionSettings

logger = logging.getLogger("bench.calibrate")
DEFAULT_FOLDER = Path("../shared/faces-lfw")


def _ints(text: str, least: int = 1) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError("a comma-separated list of whole numbers") from error
    if not values or min(values) < least:
        raise argparse.ArgumentTypeError(f"at least one number, each at least {least}")
    return values


def _roster(text: str) -> tuple[int, int]:
    size, _, enrolled = text.partition("@")
    try:
        return int(size), int(enrolled)
    except ValueError as error:
        raise argparse.ArgumentTypeError("ROSTER@ENROLLED, e.g. 30@300") from error


def _pair(text: str) -> tuple[float, float]:
    tolerance, _, margin = text.partition(",")
    try:
        return float(tolerance), float(margin)
    except ValueError as error:
        raise argparse.ArgumentTypeError("TOLERANCE,MARGIN, e.g. 0.55,0.04") from error


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accuracy.calibrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--sizes", type=_ints, default=[30, 100, 300, 1000], help="people enrolled")
    parser.add_argument("--photos", type=_ints, default=[1, 2], help="enrollment photos per person")
    parser.add_argument("--roster", type=_roster, default=(30, 300), help="a roster row, ROSTER@ENROLLED")
    parser.add_argument(
        "--strangers",
        type=lambda text: _ints(text, least=0),
        default=[150, 600],
        help="strangers with 3+ photos, strangers with one photo (default 150,600)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="random draws per row (default 10)")
    parser.add_argument("--tolerance", type=float, help="default: RECOGNIZER_TOLERANCE's value")
    parser.add_argument("--margin", type=float, help="default: RECOGNIZER_MARGIN's value")
    parser.add_argument(
        "--roster-rule",
        type=_pair,
        help="the roster rule's tolerance and margin, for the roster row (default: "
        "RECOGNIZER_ROSTER_TOLERANCE, RECOGNIZER_ROSTER_MARGIN; 0,0 = off)",
    )
    parser.add_argument("--baseline", type=_pair, default=(0.55, 0.04), help="the per-photo rule beside it")
    parser.add_argument("--cache", type=Path, default=Path("artifacts/calibration"), help="encodings cache")
    parser.add_argument("--json", type=Path, help="write the table as JSON")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def encodings(
    root: Path, photos: dict[str, list[Path]], enroll_first: int, settings: RecognitionSettings, cache: Path
) -> tuple[dict[str, np.ndarray | None], dict[str, np.ndarray | None]]:
    """(enrollment, probe) encodings by photo (its path under root), from the cache when the
    same photos were encoded with the same settings before."""
    options = {
        **settings.analyzer_options(),
        "min_face_px_enroll": DEFAULT_MIN_FACE_PX,
        "enroll_jitters": settings.recognizer_enroll_jitters,
        "first": enroll_first,
    }
    key = hashlib.sha256(json.dumps([str(root.resolve()), options], sort_keys=True).encode()).hexdigest()[:16]
    path = cache / f"encodings-{key}.npz"
    if path.is_file():
        logger.info("encodings from %s", path)
        with np.load(path) as stored:
            found = {k: stored[k] for k in stored.files}
        return (
            _with_none(
                {k[2:]: v for k, v in found.items() if k.startswith("e:")}, photos, root, enroll_first
            ),
            _with_none({k[2:]: v for k, v in found.items() if k.startswith("p:")}, photos, root, None),
        )
    prober = build_analyzer(**settings.analyzer_options())
    enroller = enrollment_analyzer(settings.recognizer_enroll_jitters)
    enroll_jobs = [p for paths in photos.values() for p in paths[:enroll_first]]
    probe_jobs = [p for paths in photos.values() for p in paths]
    enroll: dict[str, np.ndarray | None] = {}
    probe: dict[str, np.ndarray | None] = {}
    progress = Progress("enrollment photos", len(enroll_jobs))
    for done, photo in enumerate(enroll_jobs, 1):
        try:
            enroll[photo.relative_to(root).as_posix()] = analyze_photo(photo.read_bytes(), enroller).encoding
        except (PhotoRejectedError, OSError):
            enroll[photo.relative_to(root).as_posix()] = None
        progress.step(done)
    progress = Progress("probe photos", len(probe_jobs))
    for done, photo in enumerate(probe_jobs, 1):
        try:
            probe[photo.relative_to(root).as_posix()] = largest_face(photo, prober)[0]
        except (OSError, InvalidImageError):
            probe[photo.relative_to(root).as_posix()] = None
        progress.step(done)
    cache.mkdir(parents=True, exist_ok=True)
    arrays = {f"e:{k}": v for k, v in enroll.items() if v is not None}
    arrays |= {f"p:{k}": v for k, v in probe.items() if v is not None}
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle is keyword-only
    logger.info("encodings cached in %s", path)
    return enroll, probe


def _with_none(
    found: dict[str, np.ndarray], photos: dict[str, list[Path]], root: Path, first: int | None
) -> dict[str, np.ndarray | None]:
    names = [p.relative_to(root).as_posix() for paths in photos.values() for p in paths[:first]]
    return {name: found.get(name) for name in names}


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def row(people: list[Person], setup: Setup, rules: dict[str, Rule], repeats: int) -> dict[str, object]:
    result: dict[str, object] = {
        "enrolled": setup.enrolled,
        "photos_each": setup.photos_each,
        "roster": setup.roster,
    }
    for label, rule in rules.items():
        counts: Counts = repeat(people, setup, rule, repeats)
        result[label] = {
            "false_accept_rate": counts.false_accept_rate,
            "false_reject_rate": counts.false_reject_rate,
            "misidentified": counts.misidentified,
            "other_class_rate": counts.other_class_rate,
            "strangers": counts.strangers,
            "genuine": counts.genuine,
        }
    return result


def _roster_rule(rule: Rule) -> str:
    tolerance = None if rule.per_photo else rule.decision.roster_tolerance
    return "" if tolerance is None else f"; roster {tolerance:.2f} / {rule.decision.roster_margin or 0:.2f}"


def render(rows: list[dict[str, object]], rules: dict[str, Rule], repeats: int) -> str:
    heads = [f"{label} ({r.tolerance:.2f} / {r.margin:.2f}{_roster_rule(r)})" for label, r in rules.items()]
    lines = [
        f"False accepts per stranger track / false rejects per genuine track, {repeats} draws each",
        "| enrolled | photos each | roster | " + " | ".join(heads) + " |",
        "| ---: | ---: | ---: | " + " | ".join("---" for _ in heads) + " |",
    ]
    for r in rows:
        cells = []
        for label in rules:
            figures = r[label]
            assert isinstance(figures, dict)
            cell = f"{_rate(figures['false_accept_rate'])} / {_rate(figures['false_reject_rate'])}"
            if figures["other_class_rate"] is not None:
                cell += f", other classes {_rate(figures['other_class_rate'])}"
            if figures["misidentified"]:
                cell += f", {figures['misidentified']} given another's name"
            cells.append(cell)
        lines.append(
            f"| {r['enrolled']} | {r['photos_each']} | {r['roster'] or '-'} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = load_settings(RecognitionSettings, [])
    setup_logging("calibrate", settings.log_level)
    root = resolve_folder(args.folder)
    photos = labeled_photos(root)
    enroll, probe = encodings(root, photos, max(args.photos), settings, args.cache)
    people = people_from(
        {n: [p.relative_to(root).as_posix() for p in ps] for n, ps in photos.items()}, enroll, probe
    )
    tolerance = settings.recognizer_tolerance if args.tolerance is None else args.tolerance
    margin = settings.recognizer_margin if args.margin is None else args.margin
    decision = settings.decision_rule()
    if args.roster_rule is not None:
        tolerance_r, margin_r = args.roster_rule
        decision = replace(decision, roster_tolerance=tolerance_r or None, roster_margin=margin_r)
    rules = {
        "track rule": Rule(tolerance, margin, decision),
        "one photo": Rule(args.baseline[0], args.baseline[1], per_photo=True),
    }
    multi, single = [*args.strangers, 0][:2]
    strangers = {"strangers_multi": multi, "strangers_single": single}
    setups = [Setup(size, k, **strangers) for size in args.sizes for k in args.photos]
    roster, roster_enrolled = args.roster
    setups.append(Setup(roster_enrolled, 1, roster=roster, **strangers))
    rows = []
    for setup in setups:
        try:
            rows.append(row(people, setup, rules, args.repeats))
        except ValueError as error:
            logger.warning("%d enrolled, %d photos each: %s", setup.enrolled, setup.photos_each, error)
    sys.stdout.write(render(rows, rules, args.repeats))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "repeats": args.repeats}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
