"""LFW's pairs.txt protocol and pair verification: same person iff the distance is within a
threshold, the best threshold cross-validated when there are enough pairs. No faces here."""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CV_FOLDS = 10
# Fewer usable pairs of either kind than this and 10 folds would leave some fold without one.
MIN_PAIRS_PER_KIND_FOR_CV = CV_FOLDS


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
