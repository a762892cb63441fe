"""How accurate is recognition on your own labeled photos? Check it before trusting the system.

    python -m bench.accuracy FOLDER [--enroll-per-identity 1] [--strangers-fraction 0.3 | --strangers a,b]
                             [--seed 0] [--tolerance T] [--margin M] [--pairs pairs.txt]
                             [--png out.png] [--json out.json]

FOLDER holds one subfolder per person, named after them, with their photos directly inside
(`<identity>/<photo>`, .jpg .jpeg .png .bmp .webp). If FOLDER has a `people/` subfolder that is
itself such a folder (as ../shared/faces does), that subfolder is used.

Who is enrolled and who is a stranger (deterministic for a given --seed):
  * an identity with fewer than K+1 photos (K = --enroll-per-identity) is a stranger: it
    cannot be enrolled and still be probed;
  * of the others, a fraction (--strangers-fraction, default 0.3, rounded half up, at least one
    when the fraction is above 0, never all) is held out as strangers, chosen at random with
    --seed, so there are strangers even where everyone has many photos; or, with --strangers,
    exactly the identities named there are held out;
  * everyone else is enrolled with their first K photos in natural name order (1.jpg, 2.jpg,
    ..., 10.jpg), through the product's enrollment path (the enroll command's and the API's
    analyzer and checks). A refused photo (no face, two faces, face too small) is reported as
    skipped; an identity left with no enrolled photo becomes a stranger.

Every other photo is a probe, analyzed like a camera frame by the workers' analyzer and named
by the product's Matcher (open set: named only within --tolerance and --margin ahead of the
next student). A photo with several faces is judged by its largest face; a genuine photo with
no face found counts as a false reject, a stranger photo with no face is left out of the FAR.

Printed: rank-1 accuracy, false-reject, misidentification and false-accept rates, every wrong
photo, the rates for tolerances 0.30..0.80, and where FAR = 0 with the lowest FRR. With
--pairs, a file in LFW's pairs.txt format (a first line "N" or "folds N", then "name i j" for
one person, "name1 i name2 j" for two), also pair verification: photo i of `name` is
FOLDER/name/name_%04d.jpg (LFW's layout) or else FOLDER/name/i.jpg. Progress goes to stderr.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bench.accuracy.chart import render_png
from bench.accuracy.dataset import labeled_photos, natural_key, resolve_folder, split_identities
from bench.accuracy.metrics import SWEEP, evaluate, lowest_frr_range, sweep
from bench.accuracy.pairs import PairsFormatError, parse_pairs, verify
from bench.accuracy.probing import check_against_matcher, enroll, probe, score_pairs
from bench.accuracy.report import Report, render_json, render_text
from services.common.logs import setup_logging
from services.common.settings import load_settings
from services.faces.engine import build_analyzer
from services.faces.enrollment import DEFAULT_MIN_FACE_PX, enrollment_analyzer
from services.faces.matching import Gallery, Matcher
from services.faces.settings import RecognitionSettings

# The command's name in log lines, not this module's.


class EnrollmentFloor(BaseSettings):
    """API_MIN_FACE_PX, read as the API reads it, so photos are refused here as they would be there."""

    model_config = SettingsConfigDict(extra="ignore")
    api_min_face_px: int = Field(DEFAULT_MIN_FACE_PX, ge=0, le=2000)


logger = logging.getLogger("bench.accuracy")


def _below_one(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("must be at least 0 and below 1")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.accuracy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, help="labeled photos: <identity>/<photo>")
    parser.add_argument(
        "--enroll-per-identity",
        type=int,
        default=1,
        metavar="K",
        help="photos enrolled per identity (default 1)",
    )
    strangers = parser.add_mutually_exclusive_group()
    strangers.add_argument(
        "--strangers-fraction",
        type=_below_one,
        default=0.3,
        metavar="F",
        help="share of the enrollable identities held out as strangers (default 0.3)",
    )
    strangers.add_argument(
        "--strangers", metavar="ID,ID", help="hold out exactly these identities as strangers"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the strangers draw (default 0)")
    parser.add_argument(
        "--tolerance",
        type=_below_one,
        metavar="T",
        help="naming tolerance (default: RECOGNIZER_TOLERANCE's value)",
    )
    parser.add_argument(
        "--margin", type=_below_one, metavar="M", help="naming margin (default: RECOGNIZER_MARGIN's value)"
    )
    parser.add_argument(
        "--pairs", type=Path, metavar="PAIRS.TXT", help="also verify the pairs in this file (LFW's format)"
    )
    parser.add_argument("--png", type=Path, help="draw FAR and FRR against the tolerance into this PNG")
    parser.add_argument("--json", type=Path, help="write the same figures as JSON")
    args = parser.parse_args(argv)
    if args.enroll_per_identity < 1:
        parser.error("--enroll-per-identity must be at least 1")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    if args.pairs and not args.pairs.is_file():
        parser.error(f"{args.pairs} is not a file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    settings = load_settings(RecognitionSettings, [])
    setup_logging("accuracy", settings.log_level)
    tolerance = settings.recognizer_tolerance if args.tolerance is None else args.tolerance
    margin = settings.recognizer_margin if args.margin is None else args.margin
    pairs_file = None
    if args.pairs:
        try:
            pairs_file = parse_pairs(args.pairs.read_text())
        except PairsFormatError as error:
            logger.error("%s: %s", args.pairs, error)
            return 2

    root = resolve_folder(args.folder)
    photos = labeled_photos(root)
    if root != args.folder:
        logger.info("using %s: the labeled photos inside %s", root, args.folder)
    strangers = [s.strip() for s in args.strangers.split(",") if s.strip()] if args.strangers else None
    try:
        split = split_identities(
            {name: len(p) for name, p in photos.items()},
            args.enroll_per_identity,
            args.strangers_fraction,
            strangers,
            args.seed,
        )
    except ValueError as error:
        logger.error("%s", error)
        return 2
    if not split.enrolled:
        logger.error(
            "%s: no identity to enroll (need one with at least %d photos that is not held out as a stranger)",
            root,
            args.enroll_per_identity + 1,
        )
        return 1

    k = args.enroll_per_identity
    enrollment = enroll(
        {name: photos[name][:k] for name in split.enrolled},
        root,
        enrollment_analyzer(settings.recognizer_enroll_jitters),
        EnrollmentFloor().api_min_face_px,  # the same floor as the API's enrollment
    )
    not_enrolled = [name for name in split.enrolled if name not in enrollment.photos]
    if not enrollment.rows:
        logger.error(
            "every enrollment photo was refused: %s",
            "; ".join(f"{s.photo}: {s.reason}" for s in enrollment.skipped),
        )
        return 1
    gallery = Gallery.from_rows(enrollment.rows)
    probes = [(name, path, name in enrollment.photos) for name in split.enrolled for path in photos[name][k:]]
    probes += [(name, path, False) for name in split.strangers for path in photos[name]]
    probes.sort(key=lambda item: (natural_key(item[0]), natural_key(item[1].name)))
    analyzer = build_analyzer(**settings.analyzer_options())
    trials, unreadable, encodings = probe(probes, root, analyzer, gallery)
    check_against_matcher(trials, encodings, root, Matcher(gallery, tolerance, margin))

    rates = evaluate(trials, tolerance, margin)
    best_range = lowest_frr_range(trials, margin)
    strict = lowest_frr_range(trials, margin, no_misidentification=True) if best_range.misidentified else None
    report = Report(
        folder=str(args.folder),
        labeled_folder=str(root),
        enroll_per_identity=k,
        seed=args.seed,
        tolerance=tolerance,
        margin=margin,
        default_tolerance=settings.recognizer_tolerance,
        default_margin=settings.recognizer_margin,
        split=split,
        enrolled_photos=enrollment.photos,
        not_enrolled=not_enrolled,
        skipped=enrollment.skipped + unreadable,
        trials=trials,
        rates=rates,
        rows=sweep(trials, margin, (*SWEEP, tolerance, settings.recognizer_tolerance)),
        best_range=best_range,
        strict_range=strict,
        analyzer=settings.analyzer_options(),
    )
    if pairs_file is not None:
        scored, report.pairs_skipped = score_pairs(pairs_file, root, analyzer, encodings)
        report.pairs = verify(scored, tolerance, pairs_file.folds)
        report.pairs_notes = pairs_file.notes

    sys.stdout.write(render_text(report))
    if args.json:
        args.json.write_text(json.dumps(render_json(report), indent=2) + "\n")
    if args.png:
        render_png(report, args.png)
    return 0
