"""The track protocol: false accepts and false rejects of the product's whole decision
(services/faces/decision.py) against the number of people enrolled. Pure: encodings in,
rates out, so it can be checked on hand-made vectors and re-run at any setting in seconds.

A *track* stands for one face followed across a camera's frames: `looks` photos of one
person, decided by the product's DecisionRule on their matches and their fused embedding.
Per trial (one random draw of who plays which part, reproducible from its seed):
- strangers: `strangers_multi` people with at least `looks` photos (a track of their first
  `looks` photos) and `strangers_single` people with one photo (a track of that photo seen
  `looks` times: the worst case, no independent evidence); nobody enrolled;
- the gallery: `enrolled` people, `photos_each` enrollment encodings each (fewer if a filler
  has fewer), the ones with `photos_each + looks` photos or more first; each of those is a
  genuine track of the photos after their enrollment ones;
- with a roster: `roster` of the genuine people are the session's class; the other enrolled
  people are "other classes" whose tracks must not get a roster name (the recorder turns a
  non-roster name into unknown: services/recorder/store.py), nor may strangers; a track the
  strict rule leaves unknown is its roster student by the roster rule (services/faces/decision.py).
A genuine track is accepted when it gets its own name; a false accept is any stranger (or
other class's) track named as someone who would be marked.
"""

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from services.faces.decision import DecisionRule, fuse
from services.faces.matching import Gallery, Identity, Matcher


@dataclass(frozen=True)
class Person:
    name: str
    # One entry per photo on disk, in photo order; None where no face was found (or enrollment
    # refused the photo), so who plays which part never depends on what the detector found.
    enroll: tuple[np.ndarray | None, ...]  # through the enrollment path
    probe: tuple[np.ndarray | None, ...]  # through the workers' analyzer

    @property
    def photos(self) -> int:
        return len(self.probe)

    def enrollment(self, k: int) -> list[np.ndarray]:
        return [e for e in self.enroll[:k] if e is not None]

    def looks(self, start: int, count: int) -> list[np.ndarray]:
        """The faces found in photos start..start+count: a missed face is a missed look."""
        return [e for e in self.probe[start : start + count] if e is not None]


@dataclass(frozen=True)
class Setup:
    enrolled: int
    photos_each: int
    roster: int | None = None  # None: no roster, every enrolled person may be named
    looks: int = 3
    strangers_multi: int = 150
    strangers_single: int = 600


@dataclass
class Counts:
    genuine: int = 0
    genuine_named: int = 0
    misidentified: int = 0  # a genuine track given another's name
    strangers: int = 0
    strangers_named: int = 0
    others: int = 0  # other classes' tracks (roster only)
    others_named: int = 0

    def add(self, other: "Counts") -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def false_accept_rate(self) -> float | None:
        return self.strangers_named / self.strangers if self.strangers else None

    @property
    def false_reject_rate(self) -> float | None:
        return 1 - self.genuine_named / self.genuine if self.genuine else None

    @property
    def other_class_rate(self) -> float | None:
        return self.others_named / self.others if self.others else None


@dataclass(frozen=True)
class Rule:
    """The decision under test: the product's track rule (fused looks) at these settings, or
    the per-photo rule (`per_photo`: the first look alone, as the system once decided)."""

    tolerance: float
    margin: float
    decision: DecisionRule = field(default_factory=DecisionRule)
    per_photo: bool = False

    def name(
        self, matcher: Matcher, looks: Sequence[np.ndarray], roster: set[str] | None = None
    ) -> Identity | None:
        """Who the track is named as; with a session's roster, also by the roster rule (as the
        recorder does: services/recorder/store.py)."""
        if self.per_photo:
            return matcher.match([looks[0]])[0].identity
        matches = matcher.match(list(looks))
        fused = matcher.match([fuse(looks)])[0]
        decision = self.decision.decide(matches, fused)
        on_roster = decision.roster_candidate
        if decision.identity is None and roster is not None and on_roster and on_roster.name in roster:
            return on_roster
        return decision.identity


def trial(people: Sequence[Person], setup: Setup, rule: Rule, seed: int) -> Counts:
    """One draw of strangers, gallery and roster; the rule applied to every track."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible draw, not a secret
    k, looks = setup.photos_each, setup.looks
    shuffled = list(people)
    rng.shuffle(shuffled)
    multi = [p for p in shuffled if p.photos >= looks]
    single = [p for p in shuffled if p.photos == 1]
    strangers = multi[: setup.strangers_multi] + single[: setup.strangers_single]
    taken = {p.name for p in strangers}
    rest = [p for p in shuffled if p.name not in taken and p.enrollment(k)]
    # Genuine people first (enough photos to enroll and to look), then fillers with what they have.
    rest.sort(key=lambda p: p.photos < k + looks)
    gallery_people = rest[: setup.enrolled]
    if len(gallery_people) < setup.enrolled:
        raise ValueError(f"only {len(gallery_people)} people can be enrolled, {setup.enrolled} asked")
    identities = {p.name: Identity(number, p.name, p.name) for number, p in enumerate(gallery_people, 1)}
    gallery = Gallery.from_rows((identities[p.name], e) for p in gallery_people for e in p.enrollment(k))
    matcher = Matcher(gallery, rule.tolerance, rule.margin)

    genuine = [p for p in gallery_people if p.photos >= k + looks]
    roster: set[str] | None = None
    others: list[Person] = []
    if setup.roster is not None:
        roster_people = genuine[: setup.roster]
        others = genuine[setup.roster :]
        genuine = roster_people
        roster = {p.name for p in roster_people}

    def marked(named: Identity | None) -> bool:
        return named is not None and (roster is None or named.name in roster)

    counts = Counts()
    for person in genuine:
        track = person.looks(k, looks)
        named = rule.name(matcher, track, roster) if track else None
        counts.genuine += 1
        counts.genuine_named += named is not None and named.name == person.name
        counts.misidentified += named is not None and named.name != person.name
    for person in strangers:
        track = person.looks(0, looks) if person.photos >= looks else person.looks(0, 1) * looks
        if not track:
            continue  # no face found: nothing to name
        counts.strangers += 1
        counts.strangers_named += marked(rule.name(matcher, track, roster))
    for person in others:
        track = person.looks(k, looks)
        if not track:
            continue
        counts.others += 1
        counts.others_named += marked(rule.name(matcher, track, roster))
    return counts


def repeat(people: Sequence[Person], setup: Setup, rule: Rule, repeats: int, seed: int = 0) -> Counts:
    total = Counts()
    for index in range(repeats):
        total.add(trial(people, setup, rule, seed * 1000 + index))
    return total


def people_from(
    photos: Mapping[str, Sequence[str]],
    enroll: Mapping[str, np.ndarray | None],
    probe: Mapping[str, np.ndarray | None],
) -> list[Person]:
    """Each identity's encodings in photo order (None: no face, or refused by enrollment)."""
    return [
        Person(name, tuple(enroll.get(p) for p in paths), tuple(probe.get(p) for p in paths))
        for name, paths in photos.items()
    ]
