"""The frames and the people every section works on: the same clip and the same enrolled
photos for every run, so the figures compare."""

from pathlib import Path

import cv2
import numpy as np

from harness.paths import FACES_DIR
from services.faces.enrollment import analyze_photo, enrollment_analyzer

DEFAULT_PEOPLE = ("lin_manuel_miranda", "barack_obama", "joe_biden", "kit_harington")


def load_frames(video: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise SystemExit(f"no frames in {video}")
    return frames


def enrollment_photos(specs: list[str]) -> dict[str, list[Path]]:
    """`name=photo.jpg` specs, or names of ../shared/faces/people folders (their first photo)."""
    people: dict[str, list[Path]] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        photos = [Path(path)] if path else sorted((FACES_DIR / "people" / name).glob("*.jpg"))[:1]
        if not photos or not photos[0].is_file():
            raise SystemExit(f"no photo for {spec!r}")
        people.setdefault(name, []).extend(photos)
    return people


def known_encodings(people: dict[str, list[Path]]) -> list[tuple[str, np.ndarray]]:
    analyzer = enrollment_analyzer()
    return [
        (name, analyze_photo(p.read_bytes(), analyzer).encoding)
        for name, photos in people.items()
        for p in photos
    ]
