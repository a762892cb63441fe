"""Face detection and encoding behind two small interfaces, so a faster engine can be swapped in
and compared side by side (the benchmark does exactly that).

The face_recognition implementations below follow docs/performance-notes.md: HOG cost grows with
the pixels it scans, so detection runs on a frame scaled down to `max_width` while encodings
use the full-resolution frame (an encoding costs the same whatever the frame size, and more
pixels give a better face chip).
"""

import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import face_recognition
import numpy as np

from services.common.messages import FaceBox

ENCODING_SIZE = 128
MIB = 1024 * 1024

# The formats whose header image_header() reads; anything else is refused before decoding.
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP"})


class InvalidImageError(ValueError):
    """The bytes are not a decodable image (or one too large to decode); the message says why."""


@dataclass(frozen=True)
class ImageLimits:
    """What an image may be before it is decoded, checked on its header alone: a 389 KB PNG
    can hold 20000x20000 pixels, 1.2 GB once decoded and as much again in RGB."""

    max_pixels: int
    max_side: int
    max_bytes: int | None = None  # None: the caller bounds the bytes (the API's upload limit)
    formats: frozenset[str] = IMAGE_FORMATS

    def check(self, data: bytes) -> tuple[int, int]:
        """(width, height) from the header; InvalidImageError if over a limit."""
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise InvalidImageError(
                f"image too large: {len(data) / MIB:.1f} MB, limit {self.max_bytes / MIB:.1f} MB"
            )
        kind, width, height = image_header(data)
        if width * height > self.max_pixels or max(width, height) > self.max_side:
            raise InvalidImageError(
                f"image too large: {width}x{height} px, limit {self.max_pixels / 1e6:g} megapixels "
                f"and {self.max_side} px a side"
            )
        if kind not in self.formats:
            raise InvalidImageError(f"a {kind} image; accepted: {', '.join(sorted(self.formats))}")
        return width, height


# Enrollment photos (and any image by default): a phone's 12-48 MP portrait, or a panorama.
# At the limit the decoded photo and its RGB copy hold 240 MB while it is analysed.
PHOTO_LIMITS = ImageLimits(max_pixels=40_000_000, max_side=16384)
# Camera frames: capture sends JPEG, at most CAPTURE_MAX_WIDTH wide (RecognizerSettings).
FRAME_FORMATS = frozenset({"JPEG"})
FRAME_LIMITS = ImageLimits(max_pixels=8_300_000, max_side=3840, max_bytes=8 * MIB, formats=FRAME_FORMATS)


def decode_image(data: bytes, limits: ImageLimits = PHOTO_LIMITS) -> np.ndarray:
    """JPEG/PNG/WebP/BMP bytes -> RGB array (EXIF orientation applied). The header is checked
    against `limits` before a pixel is decoded. Raises InvalidImageError."""
    if not data:
        raise InvalidImageError("empty image")
    width, height = limits.check(data)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as error:  # e.g. a header the decoder reads differently
        raise InvalidImageError("not a decodable image") from error
    if image is None or image.size == 0:
        raise InvalidImageError("not a decodable image")
    if sorted(image.shape[:2]) != sorted((height, width)):  # EXIF may turn it a quarter
        raise InvalidImageError(
            f"decoded as {image.shape[1]}x{image.shape[0]} px, its header says {width}x{height}"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) read from the first bytes of a JPEG, PNG, WebP or BMP file,
    without decoding it. Raises InvalidImageError for anything else or a broken header."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return _sized("PNG", width, height)
        if data.startswith(b"\xff\xd8"):
            return _sized("JPEG", *_jpeg_size(data))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _sized("WEBP", *_webp_size(data))
        if data.startswith(b"BM"):
            (header_size,) = struct.unpack("<I", data[14:18])
            if header_size == 12:  # OS/2 BITMAPCOREHEADER
                width, height = struct.unpack("<HH", data[18:22])
            else:
                width, height = struct.unpack("<ii", data[18:26])
            return _sized("BMP", width, abs(height))
    except (struct.error, IndexError) as error:
        raise InvalidImageError("not a decodable image (truncated header)") from error
    raise InvalidImageError("not a JPEG, PNG, WebP or BMP image")


def _sized(kind: str, width: int, height: int) -> tuple[str, int, int]:
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"not a decodable image ({kind} header of {width}x{height} px)")
    return kind, width, height


# Start-of-frame markers (baseline, progressive, lossless...): not DHT (C4), JPG (C8), DAC (CC).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2
    while True:
        while data[at] == 0xFF and data[at + 1] == 0xFF:  # fill bytes
            at += 1
        if data[at] != 0xFF:
            raise InvalidImageError("not a decodable image (broken JPEG markers)")
        marker = data[at + 1]
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            raise InvalidImageError("not a decodable image (JPEG without a frame header)")
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: canvas size, 24-bit, minus one
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":  # lossless: 14 bits each, minus one
        if data[20] != 0x2F:
            raise InvalidImageError("not a decodable image (broken WebP header)")
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":  # lossy: after the frame tag and start code, 14 bits each
        if data[23:26] != b"\x9d\x01\x2a":
            raise InvalidImageError("not a decodable image (broken WebP header)")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    raise InvalidImageError("not a decodable image (unknown WebP chunk)")


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
    """The one seam callers use: decode within limits, detect, gate by size, encode. The
    detector and encoder behind it are interchangeable (a second detector plugs in here, not
    in its callers)."""

    def __init__(
        self,
        detector: FaceDetector,
        encoder: FaceEncoder,
        min_face_px: int = 0,
        limits: ImageLimits = PHOTO_LIMITS,
    ) -> None:
        self.detector = detector
        self.encoder = encoder
        self.min_face_px = min_face_px
        self.limits = limits

    def decode(self, data: bytes) -> np.ndarray:
        """The image as RGB, if its header is within this analyzer's limits (InvalidImageError)."""
        return decode_image(data, self.limits)

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
    detect_max_width: int,
    detect_upsample: int,
    encode_jitters: int,
    min_face_px: int,
    *,
    detector: str = "auto",
    yunet_max_width: int = 640,
    yunet_min_score: float = 0.80,
    max_frame_pixels: int = FRAME_LIMITS.max_pixels,
    max_frame_side: int = FRAME_LIMITS.max_side,
    max_frame_bytes: int | None = FRAME_LIMITS.max_bytes,
) -> FaceAnalyzer:
    """A recognizer's analyzer: camera frames (JPEG), within the frame limits; the detector is
    YuNet where it runs, else HOG (services/faces/detectors.py)."""
    from services.faces.detectors import choose_detector  # noqa: PLC0415 - it imports this module

    return FaceAnalyzer(
        choose_detector(
            detector,  # type: ignore[arg-type]  # validated by the settings
            hog_max_width=detect_max_width,
            hog_upsample=detect_upsample,
            yunet_max_width=yunet_max_width,
            yunet_min_score=yunet_min_score,
        ),
        DlibEncoder(jitters=encode_jitters),
        min_face_px=min_face_px,
        limits=ImageLimits(max_frame_pixels, max_frame_side, max_frame_bytes, FRAME_FORMATS),
    )
