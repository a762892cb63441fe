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
import math
import random
import re
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from services.common.logs import setup_logging
from services.common.settings import load_settings
from services.faces.engine import FaceAnalyzer, InvalidImageError, build_analyzer, decode_image
from services.faces.enrollment import (
    DEFAULT_MIN_FACE_PX,
    PhotoRejectedError,
    analyze_photo,
    enrollment_analyzer,
)
from services.faces.matching import Gallery, Identity, Matcher, is_confident
from services.faces.settings import RecognitionSettings
from services.recognizer.enroll import PHOTO_SUFFIXES

logger = logging.getLogger(__name__)

# 0.30..0.80 by 0.02, built from integers so 0.54 is 0.54 and not 0.5400000000000001.
SWEEP = tuple(round(0.30 + 0.02 * step, 2) for step in range(26))
CV_FOLDS = 10
# Fewer usable pairs of either kind than this and 10 folds would leave some fold without one.
MIN_PAIRS_PER_KIND_FOR_CV = CV_FOLDS
# An LFW run with a partial download could skip thousands; the JSON keeps them all.
SKIPPED_PAIRS_SHOWN = 20


# --- Pure parts: no faces, no files -------------------------------------------------------------


def natural_key(name: str) -> tuple[list[Any], str]:
    """Sort key putting 2.jpg before 10.jpg; re.split alternates text and digits, so lists compare."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], name


@dataclass(frozen=True)
class Split:
    enrolled: tuple[str, ...]
    too_few_photos: tuple[str, ...]  # strangers because they cannot be enrolled and still probed
    held_out: tuple[str, ...]  # strangers by choice: seeded fraction or --strangers
    rule: str  # the rule in words, for the report

    @property
    def strangers(self) -> tuple[str, ...]:
        return tuple(sorted((*self.too_few_photos, *self.held_out), key=natural_key))


def held_out_count(candidates: int, fraction: float) -> int:
    """round(fraction * candidates) half up; at least one if fraction > 0; never every candidate."""
    if candidates == 0 or fraction <= 0:
        return 0
    return min(candidates - 1, max(1, math.floor(fraction * candidates + 0.5)))


def split_identities(
    photo_counts: Mapping[str, int],
    enroll_per_identity: int,
    strangers_fraction: float = 0.3,
    strangers: Sequence[str] | None = None,
    seed: int = 0,
) -> Split:
    """Who is enrolled and who is a stranger; raises ValueError for a name not in the folder."""
    if enroll_per_identity < 1:
        raise ValueError("enroll at least one photo per identity")
    names = sorted(photo_counts, key=natural_key)
    too_few = tuple(n for n in names if photo_counts[n] < enroll_per_identity + 1)
    candidates = [n for n in names if n not in too_few]
    few_rule = f"identities with fewer than {enroll_per_identity + 1} photos are strangers ({len(too_few)})"
    if strangers is not None:
        unknown = sorted(set(strangers) - set(names))
        if unknown:
            raise ValueError(f"--strangers names identities not in the folder: {', '.join(unknown)}")
        held = tuple(n for n in candidates if n in set(strangers))
        rule = f"{few_rule}; the {len(held)} other(s) named by --strangers are held out as strangers"
    else:
        count = held_out_count(len(candidates), strangers_fraction)
        # Not security: a reproducible draw, the same for the same seed and names.
        chosen = set(random.Random(seed).sample(candidates, count))  # noqa: S311
        held = tuple(n for n in candidates if n in chosen)
        if strangers_fraction <= 0:
            rule = f"{few_rule}; --strangers-fraction 0: none of the other {len(candidates)} is held out"
        else:
            rule = (
                f"{few_rule}; of the other {len(candidates)}, {len(held)} "
                f"({strangers_fraction:.0%} rounded half up, at least 1, never all; drawn with seed {seed}) "
                "are held out as strangers"
            )
    enrolled = tuple(n for n in candidates if n not in held)
    return Split(enrolled, too_few, held, f"{rule}; {len(enrolled)} enrolled")


@dataclass(frozen=True)
class Trial:
    """One probe photo and what the matcher saw, before any tolerance is applied."""

    photo: str  # shown in the report, e.g. "ada/3.jpg"
    identity: str  # who it really is
    genuine: bool  # that identity is enrolled (otherwise: a stranger)
    nearest: str | None = None  # the closest enrolled identity; None when no face was found
    best: float | None = None  # distance to it
    second: float | None = None  # distance to the closest other enrolled identity
    faces: int = 1  # faces found; the largest one is judged


def name_given(trial: Trial, tolerance: float, margin: float) -> str | None:
    """The product's naming rule applied to a probe: a name, or None for unknown."""
    if trial.nearest is None or trial.best is None:
        return None
    return trial.nearest if is_confident(trial.best, trial.second, tolerance, margin) else None


@dataclass(frozen=True)
class Outcome:
    trial: Trial
    named: str | None


@dataclass(frozen=True)
class Rates:
    tolerance: float
    margin: float
    genuine: int  # genuine probe photos, with or without a face
    strangers: int  # stranger photos with a face: the FAR's denominator
    strangers_without_face: int
    rank1_correct: int
    named_correctly: int
    misidentified: list[Outcome] = field(default_factory=list)  # named as another enrolled identity
    false_accepts: list[Outcome] = field(default_factory=list)  # a stranger given a name
    false_rejects: list[Outcome] = field(default_factory=list)  # not named correctly (incl. misidentified)

    @property
    def rank1_accuracy(self) -> float | None:
        return _ratio(self.rank1_correct, self.genuine)

    @property
    def false_reject_rate(self) -> float | None:
        return _ratio(len(self.false_rejects), self.genuine)

    @property
    def misidentification_rate(self) -> float | None:
        return _ratio(len(self.misidentified), self.genuine)

    @property
    def false_accept_rate(self) -> float | None:
        return _ratio(len(self.false_accepts), self.strangers)


def _ratio(count: int, total: int) -> float | None:
    return count / total if total else None


def evaluate(trials: Iterable[Trial], tolerance: float, margin: float) -> Rates:
    genuine = strangers = strangers_without_face = rank1 = correct = 0
    misidentified: list[Outcome] = []
    false_accepts: list[Outcome] = []
    false_rejects: list[Outcome] = []
    for trial in trials:
        named = name_given(trial, tolerance, margin)
        if trial.genuine:
            genuine += 1
            rank1 += trial.nearest == trial.identity
            if named == trial.identity:
                correct += 1
                continue
            false_rejects.append(Outcome(trial, named))
            if named is not None:
                misidentified.append(Outcome(trial, named))
        elif trial.nearest is None:
            # Nothing to name, so nothing to accept falsely: counting it as a correct reject
            # would flatter the FAR.
            strangers_without_face += 1
        else:
            strangers += 1
            if named is not None:
                false_accepts.append(Outcome(trial, named))
    return Rates(
        tolerance,
        margin,
        genuine,
        strangers,
        strangers_without_face,
        rank1,
        correct,
        misidentified,
        false_accepts,
        false_rejects,
    )


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    far: float | None
    frr: float | None
    misidentification: float | None


def sweep(trials: Sequence[Trial], margin: float, thresholds: Iterable[float] = SWEEP) -> list[SweepRow]:
    rows = []
    for threshold in sorted(set(thresholds)):
        rates = evaluate(trials, threshold, margin)
        rows.append(
            SweepRow(
                threshold, rates.false_accept_rate, rates.false_reject_rate, rates.misidentification_rate
            )
        )
    return rows


def far_zero_rows(rows: Sequence[SweepRow]) -> list[SweepRow]:
    """The rows with FAR = 0 (or no strangers to measure it) and, among those, the lowest FRR."""
    safe = [r for r in rows if not r.far]
    if not safe:
        return []
    lowest = min(r.frr if r.frr is not None else 0.0 for r in safe)
    return [r for r in safe if (r.frr if r.frr is not None else 0.0) == lowest]


def named_from(trial: Trial, margin: float) -> float:
    """The smallest tolerance at which this probe gets its nearest identity's name (inf: never).

    The rule is `best <= tolerance` and a margin test that does not involve the tolerance, so
    asking it at tolerance = best isolates the margin test."""
    if trial.best is None or not is_confident(trial.best, trial.second, trial.best, margin):
        return math.inf
    return trial.best


@dataclass(frozen=True)
class ThresholdRange:
    """Tolerances from `lower` (inclusive) up to `upper` (exclusive; None: no upper bound)."""

    lower: float
    upper: float | None
    frr: float | None
    misidentified: int  # genuine probes given another name somewhere in the range


def lowest_frr_range(
    trials: Sequence[Trial], margin: float, no_misidentification: bool = False
) -> ThresholdRange:
    """Exactly where FAR = 0 (and, if asked, no genuine probe gets another's name) with the lowest FRR.

    Each rate only changes at a probe's distance, so the range ends just below the closest
    stranger that would be named and starts at the farthest genuine probe still named before it."""
    genuine = [t for t in trials if t.genuine]
    limits = [named_from(t, margin) for t in trials if not t.genuine]
    wrong = [named_from(t, margin) for t in genuine if t.nearest != t.identity]
    if no_misidentification:
        limits += wrong
    upper = min(limits, default=math.inf)
    right = [d for t in genuine if t.nearest == t.identity and (d := named_from(t, margin)) < upper]
    lower = max(right, default=0.0)
    return ThresholdRange(
        lower=lower,
        upper=None if math.isinf(upper) else upper,
        frr=_ratio(len(genuine) - len(right), len(genuine)),
        misidentified=sum(d < upper for d in wrong),
    )


# --- Pairs (LFW's pairs.txt) --------------------------------------------------------------------


class PairsFormatError(ValueError):
    """The pairs file does not follow LFW's format; the message gives the line."""


@dataclass(frozen=True)
class Pair:
    line: int
    left: tuple[str, int]  # (identity, photo index)
    right: tuple[str, int]
    same: bool
    fold: int | None = None  # from the file's header, when it has folds


@dataclass(frozen=True)
class PairsFile:
    pairs: list[Pair]
    folds: int  # 1: the header gives a single set
    notes: list[str]


def parse_pairs(text: str) -> PairsFile:
    """LFW's format: a header "N" (one set) or "folds N" (folds of N same + N different pairs),
    then "name idx1 idx2" (same person) or "name1 idx1 name2 idx2" (different people)."""
    lines = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, fields) for number, fields in lines if fields and not fields[0].startswith("#")]
    notes: list[str] = []
    folds, per_fold = 1, None
    if lines and all(f.isdigit() for f in lines[0][1]) and len(lines[0][1]) in (1, 2):
        header = [int(f) for f in lines[0][1]]
        folds, per_fold = (1, header[0]) if len(header) == 1 else (header[0], header[1])
        lines = lines[1:]
    else:
        notes.append('no "N" or "folds N" header: every line is read as a pair')
    pairs = []
    for number, fields in lines:
        try:
            if len(fields) == 3:
                pair = Pair(number, (fields[0], int(fields[1])), (fields[0], int(fields[2])), True)
            elif len(fields) == 4:
                pair = Pair(number, (fields[0], int(fields[1])), (fields[2], int(fields[3])), False)
            else:
                raise ValueError
        except ValueError:
            raise PairsFormatError(
                f"line {number}: expected 'name idx1 idx2' or 'name1 idx1 name2 idx2', "
                f"got {' '.join(fields)!r}"
            ) from None
        pairs.append(pair)
    if per_fold is not None and len(pairs) != folds * 2 * per_fold:
        notes.append(
            f"the header announces {folds} x ({per_fold} same + {per_fold} different) pairs "
            f"but the file has {len(pairs)}" + ("; its folds are ignored" if folds > 1 else "")
        )
        folds = 1
    elif per_fold is not None and folds > 1:
        pairs = [
            Pair(p.line, p.left, p.right, p.same, fold=index // (2 * per_fold))
            for index, p in enumerate(pairs)
        ]
    return PairsFile(pairs, folds, notes)


def pair_photo_candidates(root: Path, identity: str, index: int) -> list[Path]:
    """LFW's layout first (name/name_0001.jpg), then ours (name/1.jpg)."""
    return [root / identity / f"{identity}_{index:04d}.jpg", root / identity / f"{index}.jpg"]


@dataclass(frozen=True)
class ScoredPair:
    distance: float
    same: bool
    fold: int | None = None


def accuracy_at(scored: Sequence[ScoredPair], threshold: float) -> float:
    """Pair-verification accuracy: "same person" when the distance is within the threshold."""
    return sum((p.distance <= threshold) == p.same for p in scored) / len(scored)


def best_threshold(scored: Sequence[ScoredPair]) -> tuple[float, float]:
    """(threshold, accuracy) with the best accuracy, the lowest such threshold on a tie. It sits
    halfway between two distances, so it does not depend on which side of a gap a new pair falls.
    One pass over the sorted distances: LFW's 6,000 pairs x 10 folds stay instant."""
    ordered = sorted(scored, key=lambda p: p.distance)
    total, total_same = len(ordered), sum(p.same for p in ordered)
    # Cut after the c nearest pairs (called "same"); c = 0 calls every pair "different".
    best_cut, best_correct = 0, total - total_same
    same_seen = 0
    for cut in range(1, total + 1):
        same_seen += ordered[cut - 1].same
        if cut < total and ordered[cut].distance == ordered[cut - 1].distance:
            continue  # no threshold separates equal distances
        correct = same_seen + (total - total_same) - (cut - same_seen)
        if correct > best_correct:
            best_cut, best_correct = cut, correct
    if best_cut == 0:
        threshold = ordered[0].distance - 0.01
    elif best_cut == total:
        threshold = ordered[-1].distance + 0.01
    else:
        threshold = (ordered[best_cut - 1].distance + ordered[best_cut].distance) / 2
    return threshold, best_correct / total


@dataclass(frozen=True)
class Verification:
    pairs: int
    same: int
    different: int
    tolerance: float
    accuracy_at_tolerance: float
    method: str
    accuracy: float  # best-threshold accuracy: cross-validated mean, or on the single split
    accuracy_std: float | None  # across folds
    threshold: float  # mean of the chosen thresholds
    fold_thresholds: list[float]


def assign_folds(scored: Sequence[ScoredPair], folds_in_file: int) -> tuple[list[int] | None, str]:
    """Folds for cross-validation, or None for a single split, and how they were chosen."""
    same = sum(p.same for p in scored)
    different = len(scored) - same
    if folds_in_file > 1 and all(p.fold is not None for p in scored):
        folds = [int(p.fold) for p in scored if p.fold is not None]
        kinds = {(f, p.same) for f, p in zip(folds, scored, strict=True)}
        if len(kinds) == 2 * folds_in_file:
            return folds, f"{folds_in_file}-fold cross-validation (the file's folds)"
    if min(same, different) < MIN_PAIRS_PER_KIND_FOR_CV:
        return None, (
            f"single split: fewer than {MIN_PAIRS_PER_KIND_FOR_CV} usable pairs of each kind for "
            f"{CV_FOLDS}-fold cross-validation, so the best threshold is chosen and scored on the "
            "same pairs (optimistic)"
        )
    # Round-robin within each kind: every fold gets both kinds, in file order, no randomness.
    seen = {True: 0, False: 0}
    folds = []
    for pair in scored:
        folds.append(seen[pair.same] % CV_FOLDS)
        seen[pair.same] += 1
    return folds, f"{CV_FOLDS}-fold cross-validation (pairs dealt round-robin within each kind)"


def verify(scored: Sequence[ScoredPair], tolerance: float, folds_in_file: int = 1) -> Verification | None:
    if not scored:
        return None
    same = sum(p.same for p in scored)
    folds, method = assign_folds(scored, folds_in_file)
    if folds is None:
        threshold, accuracy = best_threshold(scored)
        accuracies, thresholds = [accuracy], [threshold]
    else:
        accuracies, thresholds = [], []
        for fold in sorted(set(folds)):
            train = [p for p, f in zip(scored, folds, strict=True) if f != fold]
            test = [p for p, f in zip(scored, folds, strict=True) if f == fold]
            threshold, _ = best_threshold(train)
            accuracies.append(accuracy_at(test, threshold))
            thresholds.append(threshold)
    return Verification(
        pairs=len(scored),
        same=same,
        different=len(scored) - same,
        tolerance=tolerance,
        accuracy_at_tolerance=accuracy_at(scored, tolerance),
        method=method,
        accuracy=statistics.fmean(accuracies),
        accuracy_std=statistics.pstdev(accuracies) if folds is not None else None,
        threshold=statistics.fmean(thresholds),
        fold_thresholds=thresholds,
    )


# --- Files and faces ----------------------------------------------------------------------------


def labeled_photos(folder: Path) -> dict[str, list[Path]]:
    """{identity: photos in natural order} for every subfolder holding photos directly."""
    found: dict[str, list[Path]] = {}
    for directory in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if not directory.is_dir() or directory.name.startswith("."):
            continue
        photos = [
            p
            for p in directory.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in PHOTO_SUFFIXES
        ]
        if photos:
            found[directory.name] = sorted(photos, key=lambda p: natural_key(p.name))
    return found


def resolve_folder(folder: Path) -> Path:
    """FOLDER, or FOLDER/people when that is itself a folder of identities (../shared/faces)."""
    people = folder / "people"
    return people if people.is_dir() and labeled_photos(people) else folder


@dataclass(frozen=True)
class Skipped:
    photo: str
    reason: str


class Progress:
    """Photos done / total with elapsed time on stderr: one updating line on a terminal,
    a line every few seconds otherwise (logs, tests)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = self.last = time.monotonic()

    def step(self, done: int) -> None:
        now = time.monotonic()
        if not (self.tty or done == self.total or now - self.last >= 3.0):
            return
        self.last = now
        line = f"{self.label}: {done}/{self.total} photos, {now - self.started:.1f} s"
        end = "\n" if done == self.total or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.stream.flush()


def largest_face(path: Path, analyzer: FaceAnalyzer) -> tuple[np.ndarray | None, int]:
    """The encoding of the largest face the workers' analyzer finds, and how many it found.
    Raises OSError or InvalidImageError for a file that cannot be read as an image."""
    faces = analyzer.analyze(decode_image(path.read_bytes()))
    if not faces:
        return None, 0
    largest = max(faces, key=lambda f: f.box.width * f.box.height)
    return largest.encoding, len(faces)


@dataclass
class Enrollment:
    rows: list[tuple[Identity, np.ndarray]]
    photos: dict[str, list[str]]  # identity -> enrolled photos
    skipped: list[Skipped]


def enroll(
    chosen: Mapping[str, Sequence[Path]], root: Path, analyzer: FaceAnalyzer, min_face_px: int
) -> Enrollment:
    """The product's enrollment checks and encoding for each chosen photo."""
    result = Enrollment([], {}, [])
    progress = Progress("enrolling", sum(len(p) for p in chosen.values()))
    done = 0
    for number, (name, paths) in enumerate(chosen.items(), 1):
        identity = Identity(student_id=number, student_number=name, name=name)
        for path in paths:
            shown = path.relative_to(root).as_posix()
            try:
                photo = analyze_photo(path.read_bytes(), analyzer, min_face_px)
            except (PhotoRejectedError, OSError) as error:
                result.skipped.append(Skipped(shown, f"enrollment refused: {error}"))
            else:
                result.rows.append((identity, photo.encoding))
                result.photos.setdefault(name, []).append(shown)
            done += 1
            progress.step(done)
    return result


def probe(
    photos: Sequence[tuple[str, Path, bool]], root: Path, analyzer: FaceAnalyzer, gallery: Gallery
) -> tuple[list[Trial], list[Skipped], dict[Path, np.ndarray | None]]:
    """Trials for (identity, photo, genuine) probes, unreadable files, and the encodings (for pairs)."""
    encodings: dict[Path, np.ndarray | None] = {}
    found: list[tuple[str, Path, bool, int]] = []
    skipped = []
    progress = Progress("probing", len(photos))
    for done, (identity, path, genuine) in enumerate(photos, 1):
        try:
            encodings[path], faces = largest_face(path, analyzer)
        except (OSError, InvalidImageError) as error:
            skipped.append(Skipped(path.relative_to(root).as_posix(), f"not readable: {error}"))
        else:
            found.append((identity, path, genuine, faces))
        progress.step(done)
    with_face = {path: e for path, e in encodings.items() if e is not None}
    # The product's Matcher with no tolerance and no margin names the nearest identity: rank 1.
    nearest = Matcher(gallery, tolerance=math.inf, margin=0.0).match(list(with_face.values()))
    matched = dict(zip(with_face, nearest, strict=True))
    trials = []
    for identity, path, genuine, faces in found:
        shown = path.relative_to(root).as_posix()
        match = matched.get(path)
        if match is None or match.identity is None:
            trials.append(Trial(shown, identity, genuine, faces=0))
            continue
        trials.append(
            Trial(
                shown,
                identity,
                genuine,
                nearest=match.identity.student_number,
                best=match.best_distance,
                second=match.second_distance,
                faces=faces,
            )
        )
    return trials, skipped, encodings


def check_against_matcher(
    trials: Sequence[Trial], encodings: Mapping[Path, np.ndarray | None], root: Path, matcher: Matcher
) -> None:
    """The figures apply the naming rule to recorded distances; make sure that is exactly what
    the product's Matcher decides at the chosen tolerance, or the report would be fiction."""
    by_photo = {t.photo: t for t in trials if t.nearest is not None}
    faces = {
        p: e for p, e in encodings.items() if e is not None and p.relative_to(root).as_posix() in by_photo
    }
    for path, match in zip(faces, matcher.match(list(faces.values())), strict=True):
        trial = by_photo[path.relative_to(root).as_posix()]
        ours = name_given(trial, matcher.tolerance, matcher.margin)
        theirs = match.identity.student_number if match.identity else None
        if ours != theirs:
            raise RuntimeError(f"{trial.photo}: the Matcher says {theirs}, the bench computed {ours}")


@dataclass(frozen=True)
class SkippedPair:
    line: int
    reason: str  # "missing photo" or "no face"
    photos: list[str]  # the ones at fault


def score_pairs(
    pairs_file: PairsFile,
    root: Path,
    analyzer: FaceAnalyzer,
    encodings: dict[Path, np.ndarray | None],
) -> tuple[list[ScoredPair], list[SkippedPair]]:
    """Distances between the two photos of each pair, both analyzed like probes."""
    scored: list[ScoredPair] = []
    skipped: list[SkippedPair] = []
    resolved: list[tuple[Pair, Path, Path]] = []
    for pair in pairs_file.pairs:
        paths, missing = [], []
        for identity, index in (pair.left, pair.right):
            found = [p for p in pair_photo_candidates(root, identity, index) if p.is_file()]
            if found:
                paths.append(found[0])
            else:
                missing.append(f"{identity} {index}")
        if missing:
            skipped.append(SkippedPair(pair.line, "missing photo", missing))
        else:
            resolved.append((pair, paths[0], paths[1]))
    todo = sorted({p for _, a, b in resolved for p in (a, b)} - set(encodings))
    progress = Progress("pairs", len(todo))
    for done, path in enumerate(todo, 1):
        try:
            encodings[path], _ = largest_face(path, analyzer)
        except (OSError, InvalidImageError):
            encodings[path] = None
        progress.step(done)
    for pair, left, right in resolved:
        a, b = encodings[left], encodings[right]
        if a is None or b is None:
            faceless = [p.relative_to(root).as_posix() for p, e in ((left, a), (right, b)) if e is None]
            skipped.append(SkippedPair(pair.line, "no face", faceless))
            continue
        scored.append(ScoredPair(float(np.linalg.norm(a - b)), pair.same, pair.fold))
    return scored, skipped


# --- Report -------------------------------------------------------------------------------------


@dataclass
class Report:
    folder: str
    labeled_folder: str
    enroll_per_identity: int
    seed: int
    tolerance: float
    margin: float
    default_tolerance: float
    default_margin: float
    split: Split
    enrolled_photos: dict[str, list[str]]
    not_enrolled: list[str]  # chosen for enrollment but every photo refused: probed as strangers
    skipped: list[Skipped]
    trials: list[Trial]
    rates: Rates
    rows: list[SweepRow]
    best_range: ThresholdRange
    strict_range: ThresholdRange | None  # also without misidentification, when that differs
    analyzer: dict[str, int]
    pairs: Verification | None = None
    pairs_skipped: list[SkippedPair] = field(default_factory=list)
    pairs_notes: list[str] = field(default_factory=list)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _dist(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def describe_outcome(outcome: Outcome, tolerance: float, margin: float) -> str:
    t = outcome.trial
    if t.nearest is None:
        return "no face detected"
    extra = f"; largest of {t.faces} faces" if t.faces > 1 else ""
    second = f", next {_dist(t.second)}" if t.second is not None else ""
    if outcome.named is not None:
        return f"named {outcome.named} at {_dist(t.best)}{second}{extra}"
    if t.best is not None and t.best > tolerance:
        why = f"beyond tolerance {tolerance:.2f}"
    else:
        why = f"margin under {margin:.2f}"
    return f"unknown: nearest {t.nearest} at {_dist(t.best)}{second} ({why}){extra}"


def _marks(threshold: float, report: Report) -> str:
    marks = []
    if math.isclose(threshold, report.default_tolerance):
        marks.append("default tolerance")
    if math.isclose(threshold, report.tolerance) and not math.isclose(threshold, report.default_tolerance):
        marks.append("--tolerance")
    return ("  <- " + ", ".join(marks)) if marks else ""


def _range_text(r: ThresholdRange) -> str:
    upper = "with no upper bound" if r.upper is None else f"up to (not including) {r.upper:.3f}"
    return f"any tolerance from {r.lower:.3f} {upper} (FRR {_pct(r.frr)})"


def render_text(report: Report) -> str:
    r = report.rates
    split = report.split
    out = [
        f"Accuracy on {report.labeled_folder}",
        f"Split: {split.rule}.",
        f"  enrolled:  {', '.join(split.enrolled) or '-'}",
        f"  strangers: {', '.join(split.strangers) or '-'}",
        f"Enrollment: the first {report.enroll_per_identity} photo(s) of each enrolled identity in natural "
        "name order, through the product's enrollment path (enrollment_analyzer + analyze_photo, "
        f"faces of at least {DEFAULT_MIN_FACE_PX} px).",
        "Probes: every other photo, through the workers' analyzer ("
        + ", ".join(f"{k}={v}" for k, v in report.analyzer.items())
        + ") and the product's Matcher; a photo with several faces is judged by its largest face.",
    ]
    if report.not_enrolled:
        out.append(
            "Not enrolled (every enrollment photo refused; probed as strangers): "
            + ", ".join(report.not_enrolled)
        )
    enrolled_photos = sum(len(p) for p in report.enrolled_photos.values())
    out += [
        "",
        f"  identities enrolled   {len(report.enrolled_photos):>5}  ({enrolled_photos} photos)",
        f"  genuine probe photos  {r.genuine:>5}",
        f"  stranger photos       {r.strangers + r.strangers_without_face:>5}"
        f"  ({len(split.strangers) + len(report.not_enrolled)} identities"
        + (
            f"; {r.strangers_without_face} with no face, left out of the FAR"
            if r.strangers_without_face
            else ""
        )
        + ")",
        f"  several faces         {sum(t.faces > 1 for t in report.trials):>5}  (probe photos; the largest "
        "face was judged)",
        f"  skipped               {len(report.skipped):>5}",
    ]
    out += [f"    {s.photo}: {s.reason}" for s in report.skipped]
    default_t = " (the default)" if math.isclose(report.tolerance, report.default_tolerance) else ""
    default_m = " (the default)" if math.isclose(report.margin, report.default_margin) else ""
    out += [
        "",
        f"At tolerance {report.tolerance:.2f}{default_t}, margin {report.margin:.2f}{default_m}:",
        f"  rank-1 accuracy         {_pct(r.rank1_accuracy):>7}  ({r.rank1_correct}/{r.genuine}: the nearest "
        "enrolled identity is the right one, whatever the tolerance)",
        f"  false-reject rate       {_pct(r.false_reject_rate):>7}  ({len(r.false_rejects)}/{r.genuine}: not "
        "named correctly - unknown, another name, or no face)",
        f"  misidentification rate  {_pct(r.misidentification_rate):>7}  "
        f"({len(r.misidentified)}/{r.genuine}: given ANOTHER student's name)",
        f"  false-accept rate       {_pct(r.false_accept_rate):>7}  ({len(r.false_accepts)}/{r.strangers}: "
        "strangers given a name)",
    ]
    others = [o for o in r.false_rejects if o.named is None]
    for title, outcomes in (
        ("Misidentified", r.misidentified),
        ("False accepts", r.false_accepts),
        ("False rejects (besides the misidentified)", others),
    ):
        out.append(f"{title}: {len(outcomes) or 'none'}")
        out += [
            f"  {o.trial.photo} ({o.trial.identity}): {describe_outcome(o, r.tolerance, r.margin)}"
            for o in outcomes
        ]
    out += [
        "",
        f"Error rates across tolerances (margin {report.margin:.2f}):",
        "  tolerance     FAR     FRR   misid",
    ]
    out += [
        f"  {row.threshold:9.2f} {_pct(row.far):>7} {_pct(row.frr):>7} {_pct(row.misidentification):>7}"
        + _marks(row.threshold, report)
        for row in report.rows
    ]
    grid = far_zero_rows(report.rows)
    if r.strangers == 0:
        out.append("No stranger photo with a face: the FAR cannot be measured.")
    if grid:
        out.append(
            f"FAR = 0 with the lowest FRR ({_pct(grid[0].frr)}) in this table: "
            f"{grid[0].threshold:.2f}..{grid[-1].threshold:.2f}"
        )
    else:
        out.append("No tolerance in this table keeps the FAR at 0.")
    out.append(f"Exactly, from the distances: {_range_text(report.best_range)}.")
    if report.best_range.misidentified:
        out.append(
            f"  but {report.best_range.misidentified} genuine photo(s) get another student's name in "
            "that range."
        )
        if report.strict_range is not None:
            out.append(f"  FAR = 0 and no misidentification: {_range_text(report.strict_range)}.")
    if report.pairs_notes or report.pairs or report.pairs_skipped:
        out += [
            "",
            "Pair verification (both photos analyzed like probes; same person iff distance <= threshold):",
        ]
        out += [f"  note: {note}" for note in report.pairs_notes]
        v = report.pairs
        used = f"{v.pairs} ({v.same} same, {v.different} different)" if v else "none"
        out.append(
            f"  pairs used {used}, skipped {len(report.pairs_skipped)}" + _skip_reasons(report.pairs_skipped)
        )
        shown = report.pairs_skipped[:SKIPPED_PAIRS_SHOWN]
        out += [f"    line {s.line}: {s.reason}: {', '.join(s.photos)}" for s in shown]
        if len(report.pairs_skipped) > len(shown):
            out.append(f"    ... and {len(report.pairs_skipped) - len(shown)} more (all in --json)")
        if v is not None:
            out += [
                f"  accuracy at tolerance {v.tolerance:.2f}: {_pct(v.accuracy_at_tolerance)}",
                f"  best threshold: {v.method}",
                f"    accuracy {_pct(v.accuracy)}"
                + (f" +- {_pct(v.accuracy_std)}" if v.accuracy_std is not None else "")
                + f" at threshold {v.threshold:.3f}"
                + (
                    f" (mean of folds, {min(v.fold_thresholds):.3f}..{max(v.fold_thresholds):.3f})"
                    if len(v.fold_thresholds) > 1
                    else ""
                ),
            ]
    return "\n".join(out) + "\n"


def _skip_reasons(skipped: Sequence[SkippedPair]) -> str:
    if not skipped:
        return ""
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s.reason] = counts.get(s.reason, 0) + 1
    return " (" + ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())) + ")"


def _outcome_json(outcome: Outcome) -> dict[str, Any]:
    t = outcome.trial
    return {
        "photo": t.photo,
        "identity": t.identity,
        "named": outcome.named,
        "nearest": t.nearest,
        "distance": t.best,
        "second_distance": t.second,
        "faces": t.faces,
    }


def render_json(report: Report) -> dict[str, Any]:
    r = report.rates
    return {
        "folder": report.folder,
        "labeled_folder": report.labeled_folder,
        "enroll_per_identity": report.enroll_per_identity,
        "seed": report.seed,
        "tolerance": report.tolerance,
        "margin": report.margin,
        "default_tolerance": report.default_tolerance,
        "default_margin": report.default_margin,
        "analyzer": report.analyzer,
        "split": {
            "rule": report.split.rule,
            "enrolled": list(report.split.enrolled),
            "strangers": list(report.split.strangers),
            "too_few_photos": list(report.split.too_few_photos),
            "held_out": list(report.split.held_out),
            "not_enrolled": report.not_enrolled,
        },
        "counts": {
            "identities_enrolled": len(report.enrolled_photos),
            "photos_enrolled": sum(len(p) for p in report.enrolled_photos.values()),
            "genuine_probes": r.genuine,
            "stranger_photos": r.strangers + r.strangers_without_face,
            "stranger_photos_without_face": r.strangers_without_face,
            "probes_with_several_faces": sum(t.faces > 1 for t in report.trials),
            "skipped": len(report.skipped),
        },
        "enrolled_photos": report.enrolled_photos,
        "skipped": [asdict(s) for s in report.skipped],
        "rank1_accuracy": r.rank1_accuracy,
        "false_reject_rate": r.false_reject_rate,
        "misidentification_rate": r.misidentification_rate,
        "false_accept_rate": r.false_accept_rate,
        "misidentified": [_outcome_json(o) for o in r.misidentified],
        "false_accepts": [_outcome_json(o) for o in r.false_accepts],
        "false_rejects": [_outcome_json(o) for o in r.false_rejects],
        "sweep": [asdict(row) for row in report.rows],
        "far_zero_lowest_frr_table": [row.threshold for row in far_zero_rows(report.rows)],
        "far_zero_lowest_frr_range": asdict(report.best_range),
        "far_zero_no_misidentification_range": asdict(report.strict_range) if report.strict_range else None,
        "trials": [asdict(t) for t in report.trials],
        "pairs": None
        if report.pairs is None and not report.pairs_notes and not report.pairs_skipped
        else {
            **(asdict(report.pairs) if report.pairs else {}),
            "skipped": [asdict(s) for s in report.pairs_skipped],
            "notes": report.pairs_notes,
        },
    }


def render_png(report: Report, path: Path) -> None:
    # The object API with the Agg canvas: no pyplot global state, no display needed.
    figure = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    thresholds = [row.threshold for row in report.rows]
    for values, label, style in (
        ([row.far for row in report.rows], "FAR (strangers named)", "-"),
        ([row.frr for row in report.rows], "FRR (genuine not named correctly)", "-"),
        ([row.misidentification for row in report.rows], "misidentification", ":"),
    ):
        if any(v is not None for v in values):
            # Steps: a rate holds from one tolerance up to the next one measured.
            axes.plot(
                thresholds,
                [math.nan if v is None else v for v in values],
                style,
                label=label,
                marker=".",
                drawstyle="steps-post",
            )
    axes.axvline(
        report.default_tolerance, color="grey", linestyle="--", label=f"default {report.default_tolerance}"
    )
    if not math.isclose(report.tolerance, report.default_tolerance):
        axes.axvline(report.tolerance, color="black", linestyle=":", label=f"--tolerance {report.tolerance}")
    axes.set_xlabel(f"tolerance (margin {report.margin:.2f})")
    axes.set_ylabel("rate")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend()
    r = report.rates
    axes.set_title(
        f"{Path(report.folder).name}: {len(report.enrolled_photos)} enrolled "
        f"({report.enroll_per_identity}/identity), {r.genuine} genuine, "
        f"{r.strangers + r.strangers_without_face} stranger photos",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, format="png")


# --- Command ------------------------------------------------------------------------------------


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
        enrollment_analyzer(settings.recognizer_encode_jitters),
        DEFAULT_MIN_FACE_PX,
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


if __name__ == "__main__":
    raise SystemExit(main())
