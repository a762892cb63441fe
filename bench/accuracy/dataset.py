"""A labeled folder and who in it is enrolled or a stranger: the dataset protocol, apart from
any face so it can be tested on names alone (and a second protocol can sit beside it)."""

import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.recognizer.enroll import PHOTO_SUFFIXES


def natural_key(name: str) -> tuple[list[Any], str]:
    """Sort key putting 2.jpg before 10.jpg; re.split alternates text and digits, so lists compare."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], name


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
