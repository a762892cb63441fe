"""YuNet (libfacedetection, through the `yuface` wheel, weights compiled in) as a FaceDetector.

Measured on the shared clip (640x360, 275 frames, one core): YuNet at half size finds every face
HOG finds at full size with upsampling, in a fraction of the time (see docs/performance-notes.md).
Three things about its raw output matter for feeding dlib's encoder:

- Its boxes are taller than wide and sit higher than the square HOG draws, and dlib's 5-point
  landmarks and face chip were trained on HOG's boxes. Boxes are therefore mapped to a square
  of side `box_scale` x YuNet's width, centred `box_shift` x YuNet's height lower. (The
  encodings of mapped boxes are much closer to HOG's than those of raw boxes.)
- It scores every box. Real faces of ~20-250 px score 0.85-0.94 (photos 0.88-0.94; in the
  shared clip scanned at half size, 1% of HOG's faces score under 0.85 and a 0.90 gate would
  drop 23% of them); false boxes (a painted wall, a duplicate box on a face, dark background)
  score 0.5-0.83, hence the `min_score` gate at 0.80.
- Faces much larger than ~250 px at the detection scale are outside its anchor sizes and score
  lower (0.5-0.9 for a face filling a portrait photo, often as several partial boxes). When a
  large box scores under the gate, the frame is scanned once more at a small scale and the
  large faces found there are kept.

`yuface` ships wheels for CPython <= 3.11 on x86-64 with AVX2 only, and its bundled OpenMP uses
every core unless OMP_NUM_THREADS is set: call `yunet_available()` before building a
YuNetDetector, and fall back to HogDetector when it says no.
"""

import functools
import importlib
import logging
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from services.common.messages import FaceBox
from services.faces.engine import FaceDetector

log = logging.getLogger(__name__)

# Box mapping: measured against HOG's boxes (full size, upsample 1) on ../shared/faces and the
# shared clip, and refined by the distance between the two boxes' encodings.
DEFAULT_BOX_SCALE = 1.114
DEFAULT_BOX_SHIFT = 0.065
DEFAULT_MIN_SCORE = 0.80
DEFAULT_MAX_WIDTH = 640

# Boxes at least this wide (detection-scale pixels) that score under the gate trigger a second
# scan on a copy whose shorter side is RECHECK_SIDE_PX (or half size, if smaller).
LARGE_FACE_PX = 200
RECHECK_SIDE_PX = 256
# Candidates scoring under this are noise, not even worth a re-check.
CANDIDATE_SCORE = 0.5
# Two kept boxes overlapping more than this are one face (the higher score wins).
DUPLICATE_IOU = 0.5
# yuface returns int16 coordinates and finds nothing in images this small.
MIN_IMAGE_PX = 16
MAX_IMAGE_PX = 32000

_Raw = tuple[float, float, float, float, float]  # score (0..1), x, y, w, h in the scanned image


@functools.cache
def _yuface_detect() -> Callable[[np.ndarray], np.ndarray] | None:
    # Its OpenMP would spread each call over every core, fighting the other workers (one
    # process per core is the design): one thread, unless the operator said otherwise. Read by
    # the OpenMP runtime when yuface loads, so it is set just before.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        module = importlib.import_module("yuface")
    except (ImportError, OSError) as error:  # no wheel for this interpreter, or a missing .so
        log.debug("yuface cannot be imported: %s", error)
        return None
    detect: Callable[[np.ndarray], np.ndarray] = module.c_detect
    return detect


def yunet_unavailable_reason() -> str | None:
    """Why YuNet cannot run here (for the caller's one log line), or None when it can."""
    if platform.machine().lower() not in {"x86_64", "amd64"}:
        return f"yuface has no wheel for {platform.machine()}"
    if not _has_avx2():
        return "yuface needs a CPU with AVX2"
    if _yuface_detect() is None:
        return "the yuface package cannot be imported (it supports CPython <= 3.11 on x86-64)"
    return None


def yunet_available() -> bool:
    """True when `yuface` imports and this CPU can run it; otherwise fall back to HOG."""
    return yunet_unavailable_reason() is None


@functools.cache
def _has_avx2() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():  # not Linux: trust the import
        return True
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return True
    return any(line.startswith("flags") and " avx2" in line for line in text.splitlines())


class YuNetDetector(FaceDetector):
    """YuNet on a copy scaled down to at most `max_width` pixels wide; boxes mapped to HOG's."""

    def __init__(
        self,
        max_width: int = DEFAULT_MAX_WIDTH,
        min_score: float = DEFAULT_MIN_SCORE,
        box_scale: float = DEFAULT_BOX_SCALE,
        box_shift: float = DEFAULT_BOX_SHIFT,
    ) -> None:
        detect = _yuface_detect()
        if detect is None:
            raise RuntimeError(yunet_unavailable_reason() or "yuface is not available")
        if max_width < MIN_IMAGE_PX:
            raise ValueError(f"max_width must be at least {MIN_IMAGE_PX}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError("min_score must be within 0..1")
        self._detect = detect
        self.max_width = max_width
        self.min_score = min_score
        self.box_scale = box_scale
        self.box_shift = box_shift

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces scoring at least `min_score`, best first, as HOG-like square boxes clipped to the
        frame. Grayscale, (H, W, 1), RGBA and non-uint8 frames are accepted; frames under 16 px
        give no face."""
        image = _as_rgb8(rgb)
        if image is None:
            return []
        height, width = image.shape[:2]
        scale = min(1.0, self.max_width / width, MAX_IMAGE_PX / height)
        small = _resized(image, scale)
        found = [face for face in self._scan(small, 1.0) if face[0] >= CANDIDATE_SCORE]
        kept = [face for face in found if face[0] >= self.min_score]
        doubtful = [face for face in found if face[0] < self.min_score and face[3] >= LARGE_FACE_PX]
        if doubtful:
            # Scan again with the short side at RECHECK_SIDE_PX, where any face fits YuNet's
            # anchors; keep the large faces it scores well (the first pass judged the small ones).
            factor = min(0.5, RECHECK_SIDE_PX / min(small.shape[:2]))
            kept += [
                face
                for face in self._scan(_resized(small, factor), factor)
                if face[0] >= self.min_score and face[3] >= LARGE_FACE_PX
            ]
        boxes = []
        for _, x, y, w, h in _without_duplicates(kept):
            box = self._mapped(x / scale, y / scale, w / scale, h / scale, width=width, height=height)
            if box is not None:
                boxes.append(box)
        return boxes

    def _scan(self, rgb: np.ndarray, factor: float) -> list[_Raw]:
        """YuNet on an RGB image; boxes divided by `factor` (the scale that image was made at)."""
        if min(rgb.shape[:2]) < MIN_IMAGE_PX:
            return []
        # Rows: score x 100, x, y, w, h, 5 landmarks (x, y), one unused column.
        rows = np.asarray(self._detect(np.ascontiguousarray(rgb[:, :, ::-1])), dtype=np.float64)
        faces = []
        for score, x, y, w, h in rows.reshape(-1, rows.shape[-1] if rows.ndim == 2 else 16)[:, :5]:
            if w > 0 and h > 0:
                faces.append((score / 100.0, x / factor, y / factor, w / factor, h / factor))
        return faces

    def _mapped(self, x: float, y: float, w: float, h: float, *, width: int, height: int) -> FaceBox | None:
        side = self.box_scale * w
        centre_x = x + w / 2
        centre_y = y + h / 2 + self.box_shift * h
        top = max(0, round(centre_y - side / 2))
        bottom = min(height, round(centre_y + side / 2))
        left = max(0, round(centre_x - side / 2))
        right = min(width, round(centre_x + side / 2))
        if bottom <= top or right <= left:
            return None
        return FaceBox(top=top, right=right, bottom=bottom, left=left)


def _as_rgb8(rgb: Any) -> np.ndarray | None:
    """Any frame as (H, W, 3) uint8 RGB, or None when there is nothing to scan."""
    image = np.asarray(rgb)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {image.shape}")
    image = image[:, :, :3]  # RGBA: drop alpha
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if min(image.shape[:2]) < MIN_IMAGE_PX:
        return None
    return image


def _resized(image: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation)


def _iou(a: _Raw, b: _Raw) -> float:
    left, top = max(a[1], b[1]), max(a[2], b[2])
    right, bottom = min(a[1] + a[3], b[1] + b[3]), min(a[2] + a[4], b[2] + b[4])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a[3] * a[4] + b[3] * b[4] - inter
    return inter / union if union > 0 else 0.0


def _without_duplicates(faces: list[_Raw]) -> list[_Raw]:
    kept: list[_Raw] = []
    for face in sorted(faces, key=lambda f: -f[0]):
        if all(_iou(face, other) < DUPLICATE_IOU for other in kept):
            kept.append(face)
    return kept
