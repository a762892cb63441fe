"""Face crops for the review queue (docs/attendance-record.md, "Review queue").

A person can only decide who an unnamed face is if they can see it. So the worker attaches a
small JPEG of the face to a few identity events of a track that needs a person:
- a track it would not name: its decision window is full and still names nobody (the first
  looks of every track are unnamed while it decides; those are not sent, or every student
  walking in would queue a crop);
- a track named on thin evidence (the decision's "check" tier).
Never for a track named confidently. At most `per_track` crops a track: the first eligible
look, then only looks scored clearly better than the best sent so far (a closer distance, so
usually a more frontal face), so the recorder keeps the best views, not the first three frames.

A crop is the face box with a margin, at most `max_side` px, at a modest JPEG quality, and
never over messages.MAX_CROP_BYTES: biometric data kept for days, so it stays small.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from services.common.messages import MAX_CROP_BYTES, FaceBox
from services.faces.decision import Decision

MAX_SIDE = 160
MARGIN = 0.35  # of the face box's size, on each side: the hair and chin a person recognises
QUALITY = 80
# A later crop is sent only if its distance is this much below the best sent so far.
BETTER_BY = 0.02


def face_crop(rgb: np.ndarray, box: FaceBox, max_side: int = MAX_SIDE, quality: int = QUALITY) -> bytes:
    """The face in `box` with a margin, as a JPEG at most `max_side` px on its longer side."""
    height, width = rgb.shape[:2]
    pad = round(MARGIN * max(box.width, box.height))
    top, bottom = max(0, box.top - pad), min(height, box.bottom + pad)
    left, right = max(0, box.left - pad), min(width, box.right + pad)
    if bottom <= top or right <= left:
        raise ValueError("the face box is outside the frame")
    region = rgb[top:bottom, left:right]
    scale = max_side / max(region.shape[:2])
    if scale < 1:
        size = (max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale)))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2BGR)
    while True:
        ok, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        data: bytes = jpeg.tobytes()
        if len(data) <= MAX_CROP_BYTES or quality <= 20:
            break
        quality -= 20  # a noisy frame: smaller, rather than over the bound
    if len(data) > MAX_CROP_BYTES:
        raise ValueError("the face crop does not fit the bound")
    return data


def needs_review(decision: Decision, window: int) -> bool:
    """A look a person should see: the track names nobody with its window full, or it names a
    student on thin evidence."""
    if decision.identity is None:
        return decision.fresh >= window
    return decision.tier == "check"


@dataclass
class CropBudget:
    """What a track has sent so far (kept on the track: services/recognizer/tracking.py)."""

    sent: int = 0
    best: float | None = None  # the smallest distance among the crops sent

    def take(self, distance: float | None, per_track: int) -> bool:
        """Whether this look's crop goes out; counts it if so."""
        if self.sent >= per_track:
            return False
        if self.sent and (distance is None or self.best is None or distance > self.best - BETTER_BY):
            return False
        self.sent += 1
        if distance is not None:
            self.best = distance if self.best is None else min(self.best, distance)
        return True
