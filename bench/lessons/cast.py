"""Who is in a lesson: people drawn from the LFW folder, given student numbers and roles.

Roles: `present` (on the roster and in the video), `absent` (on the roster, never in the
video), `other` (enrolled in another class, walks through), `filler` (enrolled, never in the
video: the rest of the school) and `stranger` (never enrolled, walks through). Enrollment
photos are one or two of a person's first two photos; the video shows a later one, so no
enrolled photo is ever in the video. Given `accepts` (the enrollment's own check), only photos
it accepts are enrollment photos and only people with one are enrolled: a school retakes a
refused photo, so a lesson's "300 enrolled" are 300 students the system really knows.
"""

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.paths import ROOT

# The school-sized face set: one setting, defaulting to the folder beside the checkout.
LFW_DIR = Path(os.environ.get("LFW_DIR", ROOT.parent / "shared" / "faces-lfw")).resolve()


@dataclass(frozen=True)
class Person:
    key: str  # a student number (S + 6 digits) for the enrolled, X + 2 digits for strangers
    name: str
    lfw: str  # the LFW identity (folder name)
    role: str  # present | absent | other | filler | stranger
    enroll_photos: tuple[Path, ...]  # empty for strangers
    video_photo: Path | None  # None for those never in the video


def list_people(lfw_dir: Path) -> dict[str, list[Path]]:
    """LFW identity -> its photos, both sorted by name."""
    people_dir = lfw_dir / "people"
    if not people_dir.is_dir():
        raise SystemExit(f"no LFW faces at {lfw_dir} (expected {people_dir}); set LFW_DIR")
    people = {}
    for folder in sorted(p for p in people_dir.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if photos:
            people[folder.name] = photos
    return people


def cast(
    people: dict[str, list[Path]],
    rng: np.random.Generator,
    *,
    enrolled: int,
    roster: int,
    present: int,
    strangers: int,
    others: int,
    accepts: Callable[[Path], bool] | None = None,
) -> list[Person]:
    if not present <= roster <= enrolled - others:
        raise ValueError("need present <= roster <= enrolled - others")

    def candidates(name: str) -> list[Path]:
        """The photos enrollment may use: of the first two, those `accepts` accepts."""
        return [p for p in people[name][:2] if accepts is None or accepts(p)]

    def first(pool: list[str], count: int) -> list[str]:
        """The first `count` of the pool who can enroll, checking no more of them than needed."""
        return list(itertools.islice((n for n in pool if accepts is None or candidates(n)), count))

    names = list(people)
    # Those seen in the video and enrolled need a photo beyond their one or two enrolled ones.
    seen = [n for n in names if len(people[n]) >= 3]
    singles = [n for n in names if len(people[n]) == 1]
    rng.shuffle(seen)
    rng.shuffle(singles)
    in_class = first(seen, roster + others)
    if len(in_class) < roster + others:
        raise ValueError(f"only {len(seen)} people have 3 or more photos")
    used = set(in_class)
    rest = [n for n in names if n not in used and len(people[n]) >= 2]
    rng.shuffle(rest)
    fillers = first(rest, enrolled - roster - others)
    if len(fillers) < enrolled - roster - others:
        raise ValueError(f"not enough people to enroll {enrolled}")
    used |= set(fillers)
    stranger_pool = [n for n in singles if n not in used] + [n for n in rest if n not in used]
    if len(stranger_pool) < strangers:
        raise ValueError("not enough strangers")
    numbers = rng.choice(np.arange(100_000, 1_000_000), size=enrolled, replace=False)
    enrolled_names = in_class + fillers
    order = rng.permutation(enrolled)  # numbers are not handed out in role order
    roles = ["present"] * present + ["absent"] * (roster - present) + ["other"] * others
    roles += ["filler"] * len(fillers)
    cast_list = []
    for index, (lfw, role) in enumerate(zip(enrolled_names, roles, strict=True)):
        photos = people[lfw]
        k = int(rng.integers(1, 3))  # one or two enrollment photos
        enroll = candidates(lfw)[:k]
        after = photos.index(enroll[-1]) + 1  # the video shows a later photo
        video_photo = None
        if role in ("present", "other"):
            video_photo = photos[after + int(rng.integers(len(photos) - after))]
        cast_list.append(
            Person(
                key=f"S{numbers[order[index]]}",
                name=lfw.replace("_", " "),
                lfw=lfw,
                role=role,
                enroll_photos=tuple(enroll),
                video_photo=video_photo,
            )
        )
    for n, lfw in enumerate(stranger_pool[:strangers], start=1):
        photos = people[lfw]
        cast_list.append(Person(f"X{n:02d}", lfw.replace("_", " "), lfw, "stranger", (), photos[-1]))
    return cast_list
