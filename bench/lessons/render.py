"""Pixels of a lesson: a procedurally drawn classroom and the LFW photos pasted at seats.

Each face is the central region of its 250x250 LFW photo (the face and a little hair and
chin), blended in with a soft elliptical mask above a shirt-coloured body; desks are drawn
row by row from the back, so nearer rows hide what is behind them. Every frame moves and
scales each face a little, as people do, so detection is not of one frozen image.
"""

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from bench.lessons.script import PATCH_PER_FACE, Appearance, Seat, face_centre, face_width

CROP = (0.22, 0.78)  # the central region of an LFW photo that is pasted (fractions of its side)
JITTER_PX = 2.0  # per-frame movement of a face, at 1280 wide
JITTER_SCALE = 0.03  # per-frame change of its size


def background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A wall with a blackboard and windows, a floor, in BGR."""
    s = width / 1280
    wall_top, wall_bottom = rng.uniform(200, 230, 3), rng.uniform(150, 185, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    image = (wall_top * (1 - ramp) + wall_bottom * ramp).repeat(width, axis=1)
    floor_y = int(560 * s)
    floor = np.array([60, 90, 120]) + rng.uniform(-15, 15, 3)
    image[floor_y:] = floor * np.linspace(1.0, 0.75, height - floor_y)[:, None, None]
    image = image.astype(np.uint8)
    board = (int(330 * s), int(8 * s), int(950 * s), int(95 * s))
    cv2.rectangle(image, board[:2], board[2:], (120, 100, 80), int(8 * s) or 1)
    cv2.rectangle(image, board[:2], board[2:], (50, 75, 40), -1)
    for _ in range(6):  # chalk
        x0, y0 = (
            rng.uniform(board[0] + 20 * s, board[2] - 120 * s),
            rng.uniform(board[1] + 15 * s, board[3] - 15 * s),
        )
        cv2.line(image, (int(x0), int(y0)), (int(x0 + rng.uniform(40, 110) * s), int(y0)), (210, 215, 210), 2)
    for x in (40, 1110):  # windows
        cv2.rectangle(
            image, (int(x * s), int(20 * s)), (int((x + 130) * s), int(110 * s)), (235, 215, 190), -1
        )
        cv2.rectangle(image, (int(x * s), int(20 * s)), (int((x + 130) * s), int(110 * s)), (90, 90, 90), 2)
    return image


def load_face(photo: Path) -> np.ndarray:
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read {photo}")
    h, w = image.shape[:2]
    return image[int(h * CROP[0]) : int(h * CROP[1]), int(w * CROP[0]) : int(w * CROP[1])]


def _soft_ellipse(size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (int(size * 0.40), int(size * 0.48)), 0, 0, 360, 1.0, -1)
    blur = max(3, (size // 8) | 1)
    return cv2.GaussianBlur(mask, (blur, blur), 0)[..., None]


def paste(frame: np.ndarray, patch: np.ndarray, mask: np.ndarray, left: int, top: int) -> None:
    """Blend `patch` into `frame` at (left, top), clipped to the frame."""
    h, w = patch.shape[:2]
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, fw), min(top + h, fh)
    if x0 >= x1 or y0 >= y1:
        return
    region = frame[y0:y1, x0:x1].astype(np.float32)
    p = patch[y0 - top : y1 - top, x0 - left : x1 - left].astype(np.float32)
    m = mask[y0 - top : y1 - top, x0 - left : x1 - left]
    frame[y0:y1, x0:x1] = (region * (1 - m) + p * m).astype(np.uint8)


class Renderer:
    def __init__(  # noqa: PLR0917
        self,
        rng: np.random.Generator,
        width: int,
        height: int,
        layout: list[Seat],
        appearances: list[Appearance],
        photos: dict[str, Path],
    ) -> None:
        self.rng = rng
        self.width, self.height = width, height
        self.layout = layout
        self.appearances = appearances
        self.scene = background(rng, width, height)
        self.faces = {key: load_face(path) for key, path in photos.items()}
        self.shirts = {key: tuple(int(c) for c in rng.integers(30, 220, 3)) for key in photos}
        self.desk = tuple(int(c) for c in rng.integers(40, 110, 3) + np.array([0, 30, 60]))

    def frames(self, count: int) -> Iterator[tuple[np.ndarray, list[tuple[int, list[int]]]]]:
        """Each frame, with the boxes of the faces drawn in it: (appearance index, [l, t, r, b])
        of the pasted photo region."""
        for index in range(count):
            yield self._frame(index)

    def _frame(self, index: int) -> tuple[np.ndarray, list[tuple[int, list[int]]]]:
        frame = self.scene.copy()
        visible = [(n, a) for n, a in enumerate(self.appearances) if a.first <= index < a.last]
        # Jitter is drawn for every visible face in a fixed order: the same seed, the same frames.
        jitter = {n: self.rng.uniform(-1, 1, 3) for n, _ in visible}
        boxes: list[tuple[int, list[int]]] = []
        s = self.width / 1280
        rows = sorted({seat.row for seat in self.layout})
        for row in rows:
            for n, a in visible:
                if a.kind == "seated" and self.layout[a.seat or 0].row == row:
                    boxes.append((n, self._person(frame, a, index, jitter[n])))
            for seat in self.layout:
                if seat.row == row:
                    patch = seat.face * PATCH_PER_FACE
                    top = int(seat.y + 0.55 * patch)
                    half = int(patch * 0.5)
                    cv2.rectangle(
                        frame,
                        (int(seat.x) - half, top),
                        (int(seat.x) + half, top + int(0.28 * patch)),
                        self.desk,
                        -1,
                    )
                    cv2.rectangle(
                        frame,
                        (int(seat.x) - half, top),
                        (int(seat.x) + half, top + int(0.28 * patch)),
                        (30, 40, 50),
                        max(1, int(2 * s)),
                    )
        for n, a in visible:
            if a.kind == "walker":
                boxes.append((n, self._person(frame, a, index, jitter[n])))
        boxes.sort()
        return frame, boxes

    def _person(self, frame: np.ndarray, a: Appearance, index: int, jitter: np.ndarray) -> list[int]:
        s = self.width / 1280
        x, y = face_centre(a, self.layout, index, self.height)
        x, y = x + jitter[0] * JITTER_PX * s, y + jitter[1] * JITTER_PX * s
        size = max(
            8, round(face_width(a, self.layout, self.width) * PATCH_PER_FACE * (1 + jitter[2] * JITTER_SCALE))
        )
        left, top = round(x - size / 2), round(y - size / 2)
        body_centre = (round(x), round(y + size * 0.75))
        cv2.ellipse(
            frame,
            body_centre,
            (round(size * 0.55), round(size * 0.35)),
            0,
            180,
            360,
            self.shirts[a.person],
            -1,
        )
        cv2.rectangle(
            frame,
            (round(x - size * 0.55), body_centre[1]),
            (round(x + size * 0.55), round(y + size * 0.9)),
            self.shirts[a.person],
            -1,
        )
        patch = cv2.resize(self.faces[a.person], (size, size), interpolation=cv2.INTER_AREA)
        paste(frame, patch, _soft_ellipse(size), left, top)
        return [left, top, left + size, top + size]


def write_video(path: Path, fps: float, width: int, height: int, frames: Iterator[np.ndarray]) -> int:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} (mp4v)")
    count = 0
    for frame in frames:
        writer.write(frame)
        count += 1
    writer.release()
    return count
