"""What a run found, as text for a person and JSON for a program: one Report, two renderings,
so the two never disagree."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.accuracy.dataset import Split
from bench.accuracy.metrics import Outcome, Rates, SweepRow, ThresholdRange, Trial, far_zero_rows
from bench.accuracy.pairs import Verification
from bench.accuracy.probing import Skipped, SkippedPair
from services.faces.enrollment import DEFAULT_MIN_FACE_PX

# An LFW run with a partial download could skip thousands; the JSON keeps them all.
SKIPPED_PAIRS_SHOWN = 20


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
