"""Rates from recorded probe distances, under exactly the product's naming rule: pure, so every
figure can be checked on hand-made numbers and recomputed at any tolerance without re-encoding."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from services.faces.matching import is_confident

# 0.30..0.80 by 0.02, built from integers so 0.54 is 0.54 and not 0.5400000000000001.
SWEEP = tuple(round(0.30 + 0.02 * step, 2) for step in range(26))


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
