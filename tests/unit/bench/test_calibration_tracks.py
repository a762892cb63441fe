"""The track protocol's counting on hand-made encodings: who plays which part, and what counts
as a false accept or reject (bench/accuracy/tracks.py)."""

import numpy as np
import pytest

from bench.accuracy.tracks import Person, Rule, Setup, repeat, trial
from services.faces.decision import DecisionRule

RNG = np.random.default_rng(7)


def unit(vector: np.ndarray) -> np.ndarray:
    return 0.6 * vector / np.linalg.norm(vector)  # dlib-like length: random people ~0.85 apart


def person(name: str, photos: int, spread: float = 0.05) -> Person:
    centre = unit(RNG.normal(size=128))
    looks = tuple(unit(centre + spread * RNG.normal(size=128) / np.sqrt(128)) for _ in range(photos))
    return Person(name, looks, looks)


RULE = Rule(tolerance=0.47, margin=0.08)


def test_distinct_people_are_named_and_strangers_are_not() -> None:
    people = [person(f"g{i}", 5) for i in range(20)] + [person(f"s{i}", 1) for i in range(10)]
    counts = trial(people, Setup(enrolled=12, photos_each=1, strangers_multi=4, strangers_single=5), RULE, 0)
    assert counts.genuine == 12  # every enrolled person has 1 + 3 photos: a genuine track each
    assert counts.genuine_named == 12 and counts.misidentified == 0
    assert counts.strangers == 9 and counts.strangers_named == 0
    assert counts.false_accept_rate == 0 and counts.false_reject_rate == 0


def test_a_strangers_twin_in_the_gallery_is_a_false_accept() -> None:
    twin = person("twin", 4)
    people = [twin, Person("twin-stranger", twin.probe[:1], twin.probe[:1])]
    people += [person(f"g{i}", 4) for i in range(6)]
    counts = repeat(people, Setup(enrolled=7, photos_each=1, strangers_multi=0, strangers_single=1), RULE, 1)
    assert counts.strangers == 1 and counts.strangers_named == 1


def test_with_a_roster_an_other_class_name_is_not_a_mark() -> None:
    people = [person(f"g{i}", 4) for i in range(10)]
    counts = trial(
        people, Setup(enrolled=10, photos_each=1, roster=4, strangers_multi=0, strangers_single=0), RULE, 3
    )
    assert counts.genuine == 4 and counts.genuine_named == 4
    assert counts.others == 6 and counts.others_named == 0  # named, but as themselves: not on the roster


def test_a_missed_face_is_a_missed_look() -> None:
    full = person("p", 4)
    blind = Person("p", full.enroll, (full.probe[0], None, None, None))
    counts = trial([blind], Setup(enrolled=1, photos_each=1, strangers_multi=0, strangers_single=0), RULE, 0)
    assert counts.genuine == 1 and counts.genuine_named == 0  # no look: a false reject, not left out


def test_a_gallery_larger_than_the_people_is_refused() -> None:
    with pytest.raises(ValueError, match="can be enrolled"):
        trial(
            [person("a", 4)], Setup(enrolled=2, photos_each=1, strangers_multi=0, strangers_single=0), RULE, 0
        )


def near_miss(name: str, distance: float) -> Person:
    """Someone whose three looks are all `distance` from their one enrollment photo."""
    centre = unit(RNG.normal(size=128))
    away = RNG.normal(size=128)
    away -= away @ centre / (centre @ centre) * centre  # orthogonal: the distance is exact
    look = centre + distance * away / np.linalg.norm(away)
    return Person(name, (centre, look, look, look), (centre, look, look, look))


def test_the_roster_rule_names_a_roster_student_the_strict_rule_misses_and_only_with_a_roster() -> None:
    people = [near_miss(f"n{i}", 0.485) for i in range(4)]
    with_roster_rule = Rule(0.47, 0.08, DecisionRule(roster_tolerance=0.50, roster_margin=0.05))
    no_strangers = {"strangers_multi": 0, "strangers_single": 0}
    roster = trial(people, Setup(enrolled=4, photos_each=1, roster=4, **no_strangers), with_roster_rule, 0)
    assert roster.genuine == 4 and roster.genuine_named == 4
    assert (
        trial(people, Setup(enrolled=4, photos_each=1, roster=4, **no_strangers), RULE, 0).genuine_named == 0
    )
    no_roster = trial(people, Setup(enrolled=4, photos_each=1, **no_strangers), with_roster_rule, 0)
    assert no_roster.genuine_named == 0  # without a roster only the strict rule names
