"""Choosing the face detector: YuNet where its wheel runs, else dlib's HOG, said once in the log.

YuNet (services/faces/yunet.py) is about 3x faster than the HOG the workers used and finds every
face HOG finds, small and turned ones included (docs/performance-notes.md); its wheel exists only
for CPython <= 3.11 on x86-64 with AVX2, so "auto" falls back to HOG elsewhere.
"""

import logging
from typing import Literal

from services.faces.engine import FaceDetector, HogDetector
from services.faces.yunet import YuNetDetector, yunet_available, yunet_unavailable_reason

logger = logging.getLogger(__name__)

DetectorKind = Literal["auto", "yunet", "hog"]
_said: set[str] = set()


def choose_detector(
    kind: DetectorKind,
    *,
    hog_max_width: int = 1280,
    hog_upsample: int = 0,
    yunet_max_width: int = 640,
    yunet_min_score: float = 0.80,
) -> FaceDetector:
    """The detector asked for; "auto" is YuNet when available, else HOG (logged once)."""
    if kind == "hog":
        return HogDetector(max_width=hog_max_width, upsample=hog_upsample)
    if yunet_available():
        return YuNetDetector(max_width=yunet_max_width, min_score=yunet_min_score)
    if kind == "yunet":
        raise RuntimeError(
            f"RECOGNIZER_DETECTOR=yunet, but YuNet cannot run here: {yunet_unavailable_reason()}"
        )
    if "fallback" not in _said:
        _said.add("fallback")
        logger.warning("YuNet unavailable (%s): detecting faces with dlib's HOG", yunet_unavailable_reason())
    return HogDetector(max_width=hog_max_width, upsample=hog_upsample)
