"""Face detection and encoding behind two small interfaces, so a faster engine can be swapped in
and compared side by side (the benchmark does exactly that).

The face_recognition implementations below follow PERFORMANCE-NOTES.md: HOG cost grows with
the pixels it scans, so detection runs on a frame scaled down to `max_width` while encodings
use the full-resolution frame (an encoding costs the same whatever the frame size, and more
pixels give a better face chip).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import face_recognition
import numpy as np

from services.common.messages import FaceBox

ENCODING_SIZE = 128


class InvalidImageError(ValueError):
    """The bytes are not a decodable image."""


def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG/... bytes -> RGB array (EXIF orientation applied). Raises InvalidImageError."""
    if not data:
        raise InvalidImageError("empty image")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InvalidImageError("not a decodable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FaceDetector(ABC):
    @abstractmethod
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Boxes of the faces in an RGB frame, in that frame's pixel coordinates."""


class FaceEncoder(ABC):
    @abstractmethod
    def encode(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        """One 128-d encoding per box, as a (len(boxes), 128) float64 array."""


class HogDetector(FaceDetector):
    """dlib's HOG detector on a copy scaled down to at most `max_width` pixels wide."""

    def __init__(self, max_width: int = 640, upsample: int = 1) -> None:
        self.max_width = max_width
        self.upsample = upsample

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_width / width)
        small = rgb
        if scale < 1.0:
            size = (round(width * scale), round(height * scale))
            small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        boxes = []
        for top, right, bottom, left in face_recognition.face_locations(small, self.upsample, "hog"):
            boxes.append(
                FaceBox(
                    top=max(0, round(top / scale)),
                    right=min(width, round(right / scale)),
                    bottom=min(height, round(bottom / scale)),
                    left=max(0, round(left / scale)),
                )
            )
        return boxes


class DlibEncoder(FaceEncoder):
    """dlib's ResNet face encoder (5-point landmarks: the 68-point model costs more, buys nothing here)."""

    def __init__(self, jitters: int = 1) -> None:
        self.jitters = jitters

    def encode(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        if not boxes:
            return np.empty((0, ENCODING_SIZE))
        locations = [(b.top, b.right, b.bottom, b.left) for b in boxes]
        encodings = face_recognition.face_encodings(rgb, locations, num_jitters=self.jitters, model="small")
        return np.asarray(encodings, dtype=np.float64).reshape(len(boxes), ENCODING_SIZE)


@dataclass(frozen=True)
class DetectedFace:
    box: FaceBox
    encoding: np.ndarray


class FaceAnalyzer:
    """The one seam callers use: detect, gate by size, encode. The detector and encoder behind
    it are interchangeable (a second detector plugs in here, not in its callers)."""

    def __init__(self, detector: FaceDetector, encoder: FaceEncoder, min_face_px: int = 0) -> None:
        self.detector = detector
        self.encoder = encoder
        self.min_face_px = min_face_px

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        """Every face found, whatever its size (enrollment counts them all)."""
        return self.detector.detect(rgb)

    def faces_to_encode(self, rgb: np.ndarray) -> list[FaceBox]:
        """The faces big enough to be worth an encoding."""
        return [b for b in self.detector.detect(rgb) if min(b.width, b.height) >= self.min_face_px]

    def encode(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        """One encoding per box, as a (len(boxes), 128) array."""
        return self.encoder.encode(rgb, boxes)

    def analyze(self, rgb: np.ndarray) -> list[DetectedFace]:
        boxes = self.faces_to_encode(rgb)
        encodings = self.encode(rgb, boxes)
        return [DetectedFace(box, encoding) for box, encoding in zip(boxes, encodings, strict=True)]


def build_analyzer(
    detect_max_width: int, detect_upsample: int, encode_jitters: int, min_face_px: int
) -> FaceAnalyzer:
    return FaceAnalyzer(
        HogDetector(max_width=detect_max_width, upsample=detect_upsample),
        DlibEncoder(jitters=encode_jitters),
        min_face_px=min_face_px,
    )
