"""The accuracy command's pure parts, on hand-made numbers: no faces are analyzed here."""

import itertools
import json
import math
from pathlib import Path

import pytest

from bench.accuracy.chart import render_png
from bench.accuracy.dataset import (
    Split,
    held_out_count,
    labeled_photos,
    natural_key,
    resolve_folder,
    split_identities,
)
from bench.accuracy.metrics import SWEEP, Trial, evaluate, far_zero_rows, lowest_frr_range, sweep
from bench.accuracy.pairs import (
    PairsFormatError,
    ScoredPair,
    assign_folds,
    best_threshold,
    pair_photo_candidates,
    parse_pairs,
    verify,
)
from bench.accuracy.report import Report, render_json, render_text

MARGIN = 0.05


def genuine(
    photo: str, identity: str, nearest: str | None, best: float | None, second: float | None = None
) -> Trial:
    return Trial(photo, identity, True, nearest, best, second)


def stranger(photo: str, nearest: str | None, best: float | None, second: float | None = None) -> Trial:
    return Trial(photo, photo.split("/", maxsplit=1)[0], False, nearest, best, second)


# One of every case the report distinguishes.
TRIALS = [
    genuine("ada/2.jpg", "ada", "ada", 0.40, 0.70),  # named at 0.40 and up
    genuine("ada/3.jpg", "ada", "ada", 0.52, 0.75),  # named at 0.52 and up
    genuine("bob/2.jpg", "bob", "bob", 0.45, 0.47),  # margin too small: never named
    genuine("bob/3.jpg", "bob", "ada", 0.58, 0.66),  # nearest is the wrong student: misidentified from 0.58
    genuine("cy/2.jpg", "cy", None, None),  # no face detected
    stranger("dan/1.jpg", "bob", 0.61, 0.80),  # falsely accepted from 0.61
    stranger("eve/1.jpg", "cy", 0.70, 0.72),  # margin too small: never named
    stranger("fay/1.jpg", None, None),  # no face: not in the FAR
]


def test_the_sweep_covers_0_30_to_0_80_in_0_02_steps() -> None:
    assert SWEEP[0] == 0.30 and SWEEP[-1] == 0.80 and len(SWEEP) == 26
    assert 0.54 in SWEEP and 0.56 in SWEEP
    assert all(math.isclose(b - a, 0.02) for a, b in itertools.pairwise(SWEEP))


def test_natural_order_puts_2_before_10() -> None:
    assert sorted(["10.jpg", "2.jpg", "1.jpg", "a_0010.jpg", "a_0002.jpg"], key=natural_key) == [
        "1.jpg",
        "2.jpg",
        "10.jpg",
        "a_0002.jpg",
        "a_0010.jpg",
    ]


# --- splitting identities ---


COUNTS = {
    "ada": 3,
    "bob": 2,
    "cy": 1,
    "dan": 4,
    "eve": 5,
    "fay": 2,
    "gus": 3,
    "hal": 1,
    "ivy": 2,
    "jo": 4,
    "kim": 2,
}


@pytest.mark.parametrize(
    ("candidates", "fraction", "held"),
    [(10, 0.3, 3), (9, 0.3, 3), (5, 0.3, 2), (3, 0.3, 1), (2, 0.3, 1), (1, 0.3, 0), (4, 0.0, 0), (2, 0.9, 1)],
)
def test_held_out_count_rounds_half_up_keeps_one_stranger_and_one_enrolled(
    candidates: int, fraction: float, held: int
) -> None:
    assert held_out_count(candidates, fraction) == held


def test_single_photo_identities_are_strangers_plus_a_seeded_fraction_of_the_others() -> None:
    split = split_identities(COUNTS, enroll_per_identity=1, strangers_fraction=0.3, seed=0)
    assert split.too_few_photos == ("cy", "hal")
    assert len(split.held_out) == 3  # 30% of the 9 others
    assert set(split.held_out) <= set(COUNTS) - {"cy", "hal"}
    assert set(split.enrolled) | set(split.strangers) == set(COUNTS)
    assert not set(split.enrolled) & set(split.strangers)
    assert "seed 0" in split.rule and "fewer than 2 photos" in split.rule
    # The same seed gives the same split; some other seed gives another one.
    assert split_identities(COUNTS, 1, 0.3, seed=0) == split
    assert any(split_identities(COUNTS, 1, 0.3, seed=s).held_out != split.held_out for s in range(1, 20))


def test_enrolling_two_photos_makes_two_photo_identities_strangers() -> None:
    split = split_identities(COUNTS, enroll_per_identity=2, strangers_fraction=0.0)
    assert split.too_few_photos == ("bob", "cy", "fay", "hal", "ivy", "kim")
    assert split.held_out == ()
    assert split.enrolled == ("ada", "dan", "eve", "gus", "jo")


def test_everyone_with_many_photos_still_gives_strangers() -> None:
    split = split_identities({f"s{i}": 5 for i in range(10)}, 1, 0.3, seed=7)
    assert split.too_few_photos == ()
    assert len(split.strangers) == 3 and len(split.enrolled) == 7


def test_named_strangers_replace_the_fraction() -> None:
    split = split_identities(COUNTS, 1, strangers=["dan", "cy"])
    assert split.held_out == ("dan",)  # cy is a stranger anyway: a single photo
    assert split.strangers == ("cy", "dan", "hal")
    assert "--strangers" in split.rule
    with pytest.raises(ValueError, match="zed"):
        split_identities(COUNTS, 1, strangers=["zed"])


# --- metrics on hand-made distances ---


def test_rates_at_one_tolerance() -> None:
    rates = evaluate(TRIALS, tolerance=0.60, margin=MARGIN)
    assert (rates.genuine, rates.strangers, rates.strangers_without_face) == (5, 2, 1)
    assert rates.rank1_correct == 3  # bob/3 is nearest to ada, cy/2 has no face
    assert rates.rank1_accuracy == pytest.approx(3 / 5)
    assert {o.trial.photo: o.named for o in rates.false_rejects} == {
        "bob/2.jpg": None,
        "bob/3.jpg": "ada",
        "cy/2.jpg": None,
    }
    assert rates.false_reject_rate == pytest.approx(3 / 5)
    assert [(o.trial.photo, o.named) for o in rates.misidentified] == [("bob/3.jpg", "ada")]
    assert rates.misidentification_rate == pytest.approx(1 / 5)
    assert rates.false_accepts == []  # dan is at 0.61, beyond 0.60
    assert rates.false_accept_rate == 0.0


def test_a_stranger_within_the_tolerance_is_a_false_accept() -> None:
    rates = evaluate(TRIALS, tolerance=0.62, margin=MARGIN)
    assert [(o.trial.photo, o.named) for o in rates.false_accepts] == [("dan/1.jpg", "bob")]
    assert rates.false_accept_rate == pytest.approx(1 / 2)


def test_rates_with_nothing_to_measure_are_none() -> None:
    rates = evaluate([], 0.55, MARGIN)
    assert rates.rank1_accuracy is None and rates.false_accept_rate is None


def test_sweep_rows_follow_the_distances() -> None:
    rows = {row.threshold: row for row in sweep(TRIALS, MARGIN)}
    assert list(rows) == list(SWEEP)
    assert rows[0.38].frr == 1.0 and rows[0.38].far == 0.0
    assert rows[0.40].frr == pytest.approx(4 / 5)
    assert rows[0.52].frr == pytest.approx(3 / 5)
    assert rows[0.58].misidentification == pytest.approx(1 / 5) and rows[0.56].misidentification == 0.0
    assert rows[0.60].far == 0.0 and rows[0.62].far == pytest.approx(1 / 2)
    frrs = [row.frr for row in rows.values()]
    fars = [row.far for row in rows.values()]
    assert frrs == sorted(frrs, reverse=True) and fars == sorted(fars)


def test_extra_thresholds_are_merged_into_the_sweep_in_order() -> None:
    thresholds = [row.threshold for row in sweep(TRIALS, MARGIN, (*SWEEP, 0.55, 0.55))]
    assert thresholds == sorted({*SWEEP, 0.55})


def test_far_zero_range_from_the_table_and_exactly() -> None:
    rows = sweep(TRIALS, MARGIN)
    assert [r.threshold for r in far_zero_rows(rows)] == [0.52, 0.54, 0.56, 0.58, 0.60]
    exact = lowest_frr_range(TRIALS, MARGIN)
    assert exact.lower == 0.52 and exact.upper == 0.61
    assert exact.frr == pytest.approx(3 / 5)
    assert exact.misidentified == 1  # bob/3 gets ada's name from 0.58
    strict = lowest_frr_range(TRIALS, MARGIN, no_misidentification=True)
    assert (strict.lower, strict.upper, strict.misidentified) == (0.52, 0.58, 0)


def test_the_exact_range_agrees_with_a_fine_sweep() -> None:
    exact = lowest_frr_range(TRIALS, MARGIN)
    assert exact.upper is not None
    fine = [i / 1000 for i in range(200, 900)]
    for t in fine:
        rates = evaluate(TRIALS, t, MARGIN)
        if exact.lower <= t < exact.upper:
            assert rates.false_accept_rate == 0 and rates.false_reject_rate == exact.frr
        elif t >= exact.upper:
            assert rates.false_accept_rate
        else:
            assert rates.false_reject_rate is not None and exact.frr is not None
            assert rates.false_reject_rate > exact.frr


def test_without_strangers_the_range_has_no_upper_bound() -> None:
    trials = [t for t in TRIALS if t.genuine]
    assert lowest_frr_range(trials, MARGIN).upper is None
    assert all(row.far is None for row in sweep(trials, MARGIN))


def test_a_stranger_closer_than_every_genuine_photo_leaves_a_range_that_names_nobody() -> None:
    trials = [genuine("ada/2.jpg", "ada", "ada", 0.50), stranger("dan/1.jpg", "ada", 0.20)]
    exact = lowest_frr_range(trials, MARGIN)
    assert (exact.lower, exact.upper, exact.frr) == (0.0, 0.20, 1.0)
    assert far_zero_rows(sweep(trials, MARGIN)) == []


# --- pairs ---


def test_pairs_with_a_single_set_header() -> None:
    parsed = parse_pairs("2\nada 1 2\nbob\t1\t3\nada 1 bob 2\n\ncy 4 dan 1\n")
    assert parsed.folds == 1 and parsed.notes == []
    assert [(p.line, p.left, p.right, p.same, p.fold) for p in parsed.pairs] == [
        (2, ("ada", 1), ("ada", 2), True, None),
        (3, ("bob", 1), ("bob", 3), True, None),
        (4, ("ada", 1), ("bob", 2), False, None),
        (6, ("cy", 4), ("dan", 1), False, None),
    ]


def test_pairs_with_folds_keep_the_files_folds() -> None:
    # LFW's pairs.txt: "10 300" = 10 folds of 300 same then 300 different pairs.
    text = "2 1\nada 1 2\nada 1 bob 1\nbob 1 2\nbob 2 cy 1\n"
    parsed = parse_pairs(text)
    assert parsed.folds == 2
    assert [(p.same, p.fold) for p in parsed.pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]


def test_a_header_that_does_not_match_the_pairs_is_reported_and_its_folds_ignored() -> None:
    parsed = parse_pairs("10 300\nada 1 2\nada 1 bob 1\n")
    assert parsed.folds == 1 and all(p.fold is None for p in parsed.pairs)
    assert "file has 2" in parsed.notes[0]


def test_pairs_without_a_header_are_read_with_a_note() -> None:
    parsed = parse_pairs("ada 1 2\n")
    assert len(parsed.pairs) == 1 and "header" in parsed.notes[0]


@pytest.mark.parametrize("line", ["ada 1", "ada one 2", "ada 1 bob two", "a 1 b 2 c"])
def test_a_malformed_pair_line_names_its_line(line: str) -> None:
    with pytest.raises(PairsFormatError, match="line 3"):
        parse_pairs(f"1\nada 1 2\n{line}\n")


def test_pair_photos_are_looked_up_in_lfws_layout_then_ours(tmp_path: Path) -> None:
    assert pair_photo_candidates(tmp_path, "Ada_Lovelace", 7) == [
        tmp_path / "Ada_Lovelace" / "Ada_Lovelace_0007.jpg",
        tmp_path / "Ada_Lovelace" / "7.jpg",
    ]


def test_best_threshold_separates_separable_pairs_halfway() -> None:
    scored = [ScoredPair(0.3, True), ScoredPair(0.5, True), ScoredPair(0.7, False), ScoredPair(0.9, False)]
    threshold, accuracy = best_threshold(scored)
    assert threshold == pytest.approx(0.6) and accuracy == 1.0


def test_best_threshold_on_overlapping_pairs() -> None:
    # Any cut misclassifies at least one pair; the lowest threshold reaching 4/5 wins.
    scored = [
        ScoredPair(0.3, True),
        ScoredPair(0.5, False),
        ScoredPair(0.6, True),
        ScoredPair(0.8, False),
        ScoredPair(0.9, False),
    ]
    threshold, accuracy = best_threshold(scored)
    assert accuracy == pytest.approx(4 / 5) and threshold == pytest.approx(0.4)


def test_equal_distances_are_never_split() -> None:
    threshold, accuracy = best_threshold([ScoredPair(0.5, True), ScoredPair(0.5, False)])
    assert accuracy == 0.5
    assert threshold < 0.5 or threshold > 0.5


def test_few_pairs_give_a_single_split_said_so() -> None:
    scored = [ScoredPair(0.3, True), ScoredPair(0.5, True), ScoredPair(0.7, False), ScoredPair(0.9, False)]
    result = verify(scored, tolerance=0.55)
    assert result is not None
    assert result.method.startswith("single split")
    assert result.accuracy == 1.0 and result.accuracy_std is None
    assert result.accuracy_at_tolerance == 1.0
    assert verify(scored, tolerance=0.4) is not None
    assert verify([], tolerance=0.55) is None


def test_enough_pairs_are_cross_validated_over_ten_folds() -> None:
    scored = [ScoredPair(0.30 + 0.01 * i, True) for i in range(20)]
    scored += [ScoredPair(0.55 + 0.01 * i, False) for i in range(20)]
    folds, method = assign_folds(scored, 1)
    assert folds is not None and sorted(set(folds)) == list(range(10)) and "10-fold" in method
    result = verify(scored, tolerance=0.40)
    assert result is not None
    assert "10-fold" in result.method and len(result.fold_thresholds) == 10
    assert result.accuracy_at_tolerance == pytest.approx(31 / 40)  # 0.30..0.40 same pairs: 11, different: 20
    assert result.accuracy > 0.9 and result.accuracy_std is not None


def test_the_files_folds_are_used_when_each_has_both_kinds() -> None:
    scored = [
        ScoredPair(0.3, True, 0),
        ScoredPair(0.8, False, 0),
        ScoredPair(0.4, True, 1),
        ScoredPair(0.7, False, 1),
    ]
    folds, method = assign_folds(scored, 2)
    assert folds == [0, 0, 1, 1] and "the file's folds" in method


# --- folders and rendering (files, no faces) ---


def test_labeled_photos_and_the_people_subfolder(tmp_path: Path) -> None:
    people = tmp_path / "people"
    for path in ["ada/10.jpg", "ada/2.JPG", "ada/notes.txt", "ada/.hidden.jpg", "bob/1.png", "empty/x.txt"]:
        (people / path).parent.mkdir(parents=True, exist_ok=True)
        (people / path).write_bytes(b"not read here")
    (tmp_path / "video").mkdir()
    found = labeled_photos(people)
    assert {k: [p.name for p in v] for k, v in found.items()} == {
        "ada": ["2.JPG", "10.jpg"],
        "bob": ["1.png"],
    }
    assert resolve_folder(tmp_path) == people
    assert resolve_folder(people) == people


def test_the_report_renders_as_text_json_and_png(tmp_path: Path) -> None:
    tolerance = 0.55
    rows = sweep(TRIALS, MARGIN, (*SWEEP, tolerance))
    report = Report(
        folder="class",
        labeled_folder="class",
        enroll_per_identity=1,
        seed=0,
        tolerance=tolerance,
        margin=MARGIN,
        default_tolerance=tolerance,
        default_margin=MARGIN,
        split=Split(("ada", "bob", "cy"), ("eve", "fay"), ("dan",), "the rule"),
        enrolled_photos={"ada": ["ada/1.jpg"], "bob": ["bob/1.jpg"], "cy": ["cy/1.jpg"]},
        not_enrolled=[],
        skipped=[],
        trials=TRIALS,
        rates=evaluate(TRIALS, tolerance, MARGIN),
        rows=rows,
        best_range=lowest_frr_range(TRIALS, MARGIN),
        strict_range=lowest_frr_range(TRIALS, MARGIN, no_misidentification=True),
        analyzer={"detect_max_width": 640},
    )
    text = render_text(report)
    assert "rank-1 accuracy" in text and "60.0%" in text
    assert "bob/2.jpg (bob): unknown: nearest bob at 0.450, next 0.470 (margin under 0.05)" in text
    assert "cy/2.jpg (cy): no face detected" in text
    assert "0.55    0.0%" in text and "<- default tolerance" in text
    assert "FAR = 0 with the lowest FRR (60.0%) in this table: 0.52..0.60" in text
    assert "from 0.520 up to (not including) 0.610" in text
    assert "no misidentification: any tolerance from 0.520 up to (not including) 0.580" in text
    figures = json.loads(json.dumps(render_json(report)))
    assert figures["false_reject_rate"] == pytest.approx(0.6)
    assert figures["far_zero_lowest_frr_range"] == {
        "lower": 0.52,
        "upper": 0.61,
        "frr": 0.6,
        "misidentified": 1,
    }
    assert len(figures["sweep"]) == 27 and figures["pairs"] is None
    render_png(report, tmp_path / "rates.png")
    assert (tmp_path / "rates.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
