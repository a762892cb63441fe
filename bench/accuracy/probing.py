"""The product's own face engine run on the photos: enrollment through the enrollment path,
probes through the workers' analyzer and Matcher. The only slow part, and the only one with faces."""

import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from bench.accuracy.metrics import Trial, name_given
from bench.accuracy.pairs import Pair, PairsFile, ScoredPair, pair_photo_candidates
from services.faces.engine import FaceAnalyzer, InvalidImageError, decode_image
from services.faces.enrollment import PhotoRejectedError, analyze_photo
from services.faces.matching import Gallery, Identity, Matcher


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
