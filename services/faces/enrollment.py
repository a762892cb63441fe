"""Checking an enrollment photo and turning it into a stored face encoding.

The same code serves the `enroll` command and the API, and it is the workers' own detector
and encoder, so an enrolled encoding is comparable with what the workers compute.
"""

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np

from services.common.messages import FaceBox
from services.faces.engine import (
    PHOTO_LIMITS,
    DlibEncoder,
    FaceAnalyzer,
    HogDetector,
    ImageLimits,
    InvalidImageError,
)

# Photos are normalised to at most this many pixels on their longer side before analysis and
# storage: faces in a portrait stay far above the size an encoding needs, storage stays
# small, and re-encoding the JPEG drops EXIF metadata such as GPS positions.
MAX_PHOTO_SIDE = 1600
DEFAULT_MIN_FACE_PX = 80


class PhotoRejectedError(ValueError):
    """The photo cannot be used for enrollment; the message says why, for a person to read."""


@dataclass(frozen=True)
class EnrollmentPhoto:
    jpeg: bytes  # the normalised photo that is stored
    sha256: str  # of the uploaded bytes: the same file enrolled twice is stored once
    box: FaceBox
    encoding: np.ndarray

    @property
    def face_px(self) -> int:
        return min(self.box.width, self.box.height)


def enrollment_analyzer(encode_jitters: int = 1, limits: ImageLimits = PHOTO_LIMITS) -> FaceAnalyzer:
    """Detection for photos: upsampled once on up to 1024 px, so that a second, smaller face
    in the background is found (and the photo refused) rather than silently ignored. A photo
    over `limits` (pixels, side) is refused from its header, before it is decoded."""
    return FaceAnalyzer(
        HogDetector(max_width=1024, upsample=1), DlibEncoder(jitters=encode_jitters), limits=limits
    )


def analyze_photo(
    data: bytes, analyzer: FaceAnalyzer, min_face_px: int = DEFAULT_MIN_FACE_PX
) -> EnrollmentPhoto:
    try:
        rgb = analyzer.decode(data)
    except InvalidImageError as error:
        raise PhotoRejectedError(f"not an image that can be read ({error})") from error
    rgb = _normalise(rgb)
    boxes = analyzer.detect(rgb)
    if not boxes:
        raise PhotoRejectedError("no face found")
    if len(boxes) > 1:
        raise PhotoRejectedError(f"{len(boxes)} faces found; an enrollment photo must show exactly one")
    box = boxes[0]
    size = min(box.width, box.height)
    if size < min_face_px:
        raise PhotoRejectedError(f"face too small: {size} px, need {min_face_px}")
    encoding = analyzer.encode(rgb, [box])[0]
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return EnrollmentPhoto(jpeg.tobytes(), hashlib.sha256(data).hexdigest(), box, encoding)


def _normalise(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = MAX_PHOTO_SIDE / max(height, width)
    if scale >= 1.0:
        return rgb
    return cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
