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
    ImageLimits,
    InvalidImageError,
)
from services.faces.settings import RecognitionSettings

# Photos are normalised to at most this many pixels on their longer side before analysis and
# storage: faces in a portrait stay far above the size an encoding needs, storage stays
# small, and re-encoding the JPEG drops EXIF metadata such as GPS positions.
MAX_PHOTO_SIDE = 1600
# School ID photos are often small: LFW-like portraits hold faces of 50-75 px, which encode
# well (pair verification 99.1% on LFW); under ~40 px too few pixels remain to name anyone.
DEFAULT_MIN_FACE_PX = 40
# A photo this small (longer side) is enlarged 2x before detection and encoding: it helps the
# encoder on faces of about 40-60 px (measured on LFW) and costs nothing on larger photos.
UPSCALE_BELOW_SIDE = 400
# A second face counts only if it is at least this fraction of the largest one's size: a
# passer-by far behind the student does not make an ID photo ambiguous, a second person does.
SECOND_FACE_RATIO = 0.6


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


def enrollment_analyzer(
    encode_jitters: int | None = None, limits: ImageLimits = PHOTO_LIMITS
) -> FaceAnalyzer:
    """Detection for photos: YuNet on up to 1024 px (else HOG upsampled once), so that a second
    face is found (and the photo refused) rather than silently ignored. A photo over `limits`
    (pixels, side) is refused from its header, before it is decoded. Encodings re-sample each
    photo `encode_jitters` times, by default RECOGNIZER_ENROLL_JITTERS."""
    from services.faces.detectors import choose_detector  # noqa: PLC0415 - it imports the engine

    detector = choose_detector("auto", hog_max_width=1024, hog_upsample=1, yunet_max_width=1024)
    if encode_jitters is None:
        encode_jitters = RecognitionSettings().recognizer_enroll_jitters
    return FaceAnalyzer(detector, DlibEncoder(jitters=encode_jitters), limits=limits)


def analyze_photo(
    data: bytes, analyzer: FaceAnalyzer, min_face_px: int = DEFAULT_MIN_FACE_PX
) -> EnrollmentPhoto:
    try:
        rgb = analyzer.decode(data)
    except InvalidImageError as error:
        raise PhotoRejectedError(f"not an image that can be read ({error})") from error
    rgb, scale = _normalise(rgb)
    boxes = sorted(analyzer.detect(rgb), key=lambda b: min(b.width, b.height), reverse=True)
    if not boxes:
        raise PhotoRejectedError("no face found")
    box = boxes[0]
    others = [
        b for b in boxes[1:] if min(b.width, b.height) >= SECOND_FACE_RATIO * min(box.width, box.height)
    ]
    if others:
        raise PhotoRejectedError(f"{1 + len(others)} faces found; an enrollment photo must show exactly one")
    size = round(min(box.width, box.height) / scale)  # in the photo's own pixels
    if size < min_face_px:
        raise PhotoRejectedError(f"face too small: {size} px, need {min_face_px}")
    encoding = analyzer.encode(rgb, [box])[0]
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return EnrollmentPhoto(jpeg.tobytes(), hashlib.sha256(data).hexdigest(), box, encoding)


def _normalise(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """The photo at the size it is analysed and stored at, and the scale from the original."""
    height, width = rgb.shape[:2]
    if max(height, width) < UPSCALE_BELOW_SIDE:
        size = (width * 2, height * 2)
        return cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC), 2.0
    scale = MAX_PHOTO_SIDE / max(height, width)
    if scale >= 1.0:
        return rgb, 1.0
    size = (round(width * scale), round(height * scale))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale
