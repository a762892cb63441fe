"""A whole lesson on disk, from a seed: the video, the enrollment folder, the roster and the truth.

<out>/lesson.mp4    the video (mp4v)
<out>/enroll/<student number>/<photo>.jpg   symbolic links into LFW_DIR (never copies)
<out>/roster.csv    student_number,name of the class
<out>/truth.json    who is really there, strangers, other-class students, timings, boxes
"""

import csv
import functools
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.lessons.cast import LFW_DIR, Person, cast, list_people
from bench.lessons.render import Renderer, write_video
from bench.lessons.script import Appearance, Seat, Turn, plan
from services.faces.enrollment import (
    DEFAULT_MIN_FACE_PX,
    PhotoRejectedError,
    analyze_photo,
    enrollment_analyzer,
)

FORMAT = 1  # of truth.json


def generator_version() -> str:
    """A digest of the generator's own code: a cached lesson drawn by other code is redrawn."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class LessonSpec:
    seed: int = 1
    enrolled: int = 300
    roster: int = 30
    present: int = 25
    strangers: int = 5
    others: int = 5
    duration_s: float = 40.0
    fps: float = 5.0
    width: int = 1280  # height is 9/16 of it
    min_visible_s: float = 6.0  # every present student is seen at least this long
    turn_gap_s: float = 1.0  # the empty second between two students at one seat
    scene: str = "class"  # class | seated | door (bench.lessons.script)
    # Only photos the enrollment accepts are enrollment photos (bench.lessons.cast): the
    # enrolled are people the system really knows, as in a school that retakes refused photos.
    enrollable_only: bool = True

    @property
    def frames(self) -> int:
        return round(self.duration_s * self.fps)

    @property
    def height(self) -> int:
        return round(self.width * 9 / 16) // 2 * 2

    def folder_name(self, preset: str) -> str:
        return f"{preset}-seed{self.seed}"


PRESETS = {
    "full": LessonSpec(),
    "small": LessonSpec(
        enrolled=20, roster=8, present=6, strangers=2, others=2, duration_s=20.0, min_visible_s=5.0
    ),
    # Issue 11's two cameras: a seated class in view all lesson, and a door people pass once.
    "seated": LessonSpec(
        enrolled=20, roster=10, present=9, strangers=2, others=2, duration_s=30.0, scene="seated"
    ),
    "door": LessonSpec(
        enrolled=20, roster=8, present=6, strangers=2, others=2, duration_s=40.0, scene="door"
    ),
}


def preset(name: str, seed: int, **overrides: Any) -> LessonSpec:
    return replace(PRESETS[name], seed=seed, **{k: v for k, v in overrides.items() if v is not None})


def generate(spec: LessonSpec, out: Path, lfw_dir: Path = LFW_DIR) -> dict[str, Any]:
    """Write the lesson into `out` (emptied first); returns the truth."""
    rng = np.random.default_rng(spec.seed)
    people = cast(
        list_people(lfw_dir),
        rng,
        enrolled=spec.enrolled,
        roster=spec.roster,
        present=spec.present,
        strangers=spec.strangers,
        others=spec.others,
        accepts=enrollment_check() if spec.enrollable_only else None,
    )
    present = [p.key for p in people if p.role == "present"]
    walkers = [p.key for p in people if p.role in ("other", "stranger")]
    layout, appearances, turn = plan(
        rng,
        present,
        walkers,
        frames=spec.frames,
        fps=spec.fps,
        width=spec.width,
        min_visible_s=spec.min_visible_s,
        turn_gap_s=spec.turn_gap_s,
        scene=spec.scene,
    )
    if out.exists():
        shutil.rmtree(out)
    (out / "enroll").mkdir(parents=True)
    photos = {p.key: p.video_photo for p in people if p.video_photo is not None}
    renderer = Renderer(rng, spec.width, spec.height, layout, appearances, photos)
    boxes: list[list[list[int]]] = []

    def frames() -> Iterator[np.ndarray]:
        for image, drawn in renderer.frames(spec.frames):
            boxes.append([[n, *box] for n, box in drawn])
            yield image

    written = write_video(out / "lesson.mp4", spec.fps, spec.width, spec.height, frames())
    for person in people:
        if person.enroll_photos:
            folder = out / "enroll" / person.key
            folder.mkdir()
            for photo in person.enroll_photos:
                (folder / photo.name).symlink_to(photo.resolve())
    with (out / "roster.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_number", "name"])
        for person in sorted(people, key=lambda p: p.key):
            if person.role in ("present", "absent"):
                writer.writerow([person.key, person.name])
    truth = _truth(spec, people, layout, appearances, turn, boxes, written, lfw_dir)
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return truth


def enrollment_check() -> Callable[[Path], bool]:
    """Whether the enrollment accepts a photo, with its defaults (one face, at least 40 px)."""
    analyzer = enrollment_analyzer(encode_jitters=1)  # accepting a photo depends on its faces only

    @functools.cache  # the cast asks twice of the people it takes
    def accepts(photo: Path) -> bool:
        try:
            analyze_photo(photo.read_bytes(), analyzer, DEFAULT_MIN_FACE_PX)
        except PhotoRejectedError:
            return False
        return True

    return accepts


def _truth(  # noqa: PLR0917 (one private call site)
    spec: LessonSpec,
    people: list[Person],
    layout: list[Seat],
    appearances: list[Appearance],
    turn: Turn | None,
    boxes: list[list[list[int]]],
    written: int,
    lfw_dir: Path,
) -> dict[str, Any]:
    fps = spec.fps
    keys = {
        role: sorted(p.key for p in people if p.role == role)
        for role in ("present", "absent", "other", "stranger")
    }
    return {
        "format": FORMAT,
        "generator": generator_version(),
        "spec": asdict(spec),
        "video": "lesson.mp4",
        "fps": fps,
        "frames": written,
        "width": spec.width,
        "height": spec.height,
        "duration_s": written / fps,
        "roster": sorted(keys["present"] + keys["absent"]),
        "present": keys["present"],
        "absent": keys["absent"],
        "others": keys["other"],
        "strangers": keys["stranger"],
        "enrolled": sorted(p.key for p in people if p.enroll_photos),
        "people": {p.key: _person(p, lfw_dir) for p in sorted(people, key=lambda p: p.key)},
        "seats": [asdict(seat) for seat in layout],
        "appearances": [
            {
                "person": a.person,
                "role": next(p.role for p in people if p.key == a.person),
                "kind": a.kind,
                "seat": a.seat,
                "first_frame": a.first,
                "last_frame": min(a.last, written),
                "start_s": round(a.first / fps, 3),
                "end_s": round(min(a.last, written) / fps, 3),
            }
            for a in appearances
        ],
        "turn": None
        if turn is None
        else {
            "seat": turn.seat,
            "first": turn.first,
            "second": turn.second,
            "first_leaves_s": round(turn.leaves / fps, 3),
            "second_arrives_s": round(turn.arrives / fps, 3),
            "gap_s": round((turn.arrives - turn.leaves) / fps, 3),
        },
        # Per frame: [appearance index, left, top, right, bottom] of every pasted photo region.
        "boxes": boxes,
    }


def _person(person: Person, lfw_dir: Path) -> dict[str, Any]:
    def rel(path: Path) -> str:
        return str(path.resolve().relative_to(lfw_dir.resolve()))

    return {
        "name": person.name,
        "lfw": person.lfw,
        "role": person.role,
        "enroll_photos": [rel(p) for p in person.enroll_photos],
        "video_photo": rel(person.video_photo) if person.video_photo else None,
    }


def cached(spec: LessonSpec, out: Path, lfw_dir: Path = LFW_DIR) -> tuple[dict[str, Any], bool]:
    """The lesson in `out` if it was generated from the same spec and format, else a new one;
    (truth, whether it was generated now)."""
    truth_path = out / "truth.json"
    if truth_path.is_file() and (out / "lesson.mp4").is_file():
        truth = json.loads(truth_path.read_text())
        same = truth.get("format") == FORMAT and truth.get("generator") == generator_version()
        if same and truth.get("spec") == asdict(spec):
            return truth, False
    return generate(spec, out, lfw_dir), True
