"""Images are checked on their header before a pixel is decoded (issue 9, finding 4)."""

import struct

import cv2
import numpy as np
import pytest

from services.faces.engine import (
    FRAME_LIMITS,
    PHOTO_LIMITS,
    ImageLimits,
    InvalidImageError,
    build_analyzer,
    decode_image,
    image_header,
)
from services.faces.enrollment import enrollment_analyzer
from services.recognizer.settings import RecognizerSettings


def encoded(extension: str, width: int = 64, height: int = 32) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    return cv2.imencode(extension, image)[1].tobytes()


@pytest.mark.parametrize(
    ("extension", "kind"), [(".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP"), (".bmp", "BMP")]
)
def test_the_header_gives_format_and_size_of_every_accepted_format(extension: str, kind: str) -> None:
    assert image_header(encoded(extension, 70, 30)) == (kind, 70, 30)
    assert decode_image(encoded(extension, 70, 30)).shape == (30, 70, 3)


def test_lossless_and_extended_webp_headers() -> None:
    lossless = cv2.imencode(".webp", np.zeros((30, 70, 3), np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 101])[1]
    assert image_header(lossless.tobytes()) == ("WEBP", 70, 30)
    extended = b"RIFF\0\0\0\0WEBPVP8X" + bytes(8) + (69).to_bytes(3, "little") + (29).to_bytes(3, "little")
    assert image_header(extended) == ("WEBP", 70, 30)


def test_a_progressive_jpeg_and_one_with_metadata_first() -> None:
    progressive = cv2.imencode(".jpg", np.zeros((30, 70, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert image_header(progressive.tobytes()) == ("JPEG", 70, 30)
    plain = encoded(".jpg", 70, 30)
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 5) + b"hello"
    assert image_header(plain[:2] + comment + plain[2:]) == ("JPEG", 70, 30)


@pytest.mark.parametrize(
    "data",
    [
        b"not an image",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff",
        b"GIF89a" + bytes(20),
        b"BM",
        b"RIFF1234WEBPVP8Z",
    ],
)
def test_anything_else_is_refused_without_decoding(data: bytes) -> None:
    with pytest.raises(InvalidImageError):
        decode_image(data)


def png_header(width: int, height: int) -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + body + bytes(4)


def test_too_many_pixels_or_too_long_a_side_is_refused_with_the_sizes() -> None:
    with pytest.raises(InvalidImageError, match=r"image too large: 20000x20000 px, limit 40 megapixels"):
        decode_image(png_header(20000, 20000))
    with pytest.raises(InvalidImageError, match=r"image too large: 20000x100 px"):
        decode_image(png_header(20000, 100))  # 2 MP, but a side over 16384
    limits = ImageLimits(max_pixels=100, max_side=20)
    with pytest.raises(InvalidImageError, match="image too large: 11x10 px"):
        decode_image(encoded(".png", 11, 10), limits)
    assert decode_image(encoded(".png", 10, 10), limits).shape == (10, 10, 3)


def test_frames_are_jpeg_within_a_byte_limit() -> None:
    assert FRAME_LIMITS.formats == {"JPEG"}
    with pytest.raises(InvalidImageError, match="a PNG image; accepted: JPEG"):
        decode_image(encoded(".png"), FRAME_LIMITS)
    big = encoded(".jpg") + bytes(FRAME_LIMITS.max_bytes or 0)
    with pytest.raises(InvalidImageError, match=r"image too large: 8\.0 MB, limit 8\.0 MB"):
        decode_image(big, FRAME_LIMITS)


def test_the_workers_analyzer_takes_its_limits_from_the_settings() -> None:
    settings = RecognizerSettings(
        recognizer_max_frame_megapixels=2.0,
        recognizer_max_frame_side=1920,
        recognizer_max_frame_bytes=1_000_000,
    )
    analyzer = build_analyzer(**settings.analyzer_options())
    assert analyzer.limits == ImageLimits(2_000_000, 1920, 1_000_000, frozenset({"JPEG"}))
    assert build_analyzer(**RecognizerSettings().analyzer_options()).limits == FRAME_LIMITS
    # The defaults fit a 4K frame in either orientation.
    assert FRAME_LIMITS.max_pixels >= 3840 * 2160 and FRAME_LIMITS.max_side >= 3840


def test_enrollment_photos_have_their_own_larger_limits() -> None:
    assert enrollment_analyzer().limits == PHOTO_LIMITS
    assert PHOTO_LIMITS.max_pixels >= 4 * FRAME_LIMITS.max_pixels
    small = ImageLimits(max_pixels=100, max_side=20)
    assert enrollment_analyzer(limits=small).limits == small


def test_enrollment_photos_are_re_sampled_as_recognizer_enroll_jitters_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only enrollment re-samples by default (once per photo); a worker's looks do not.
    assert RecognizerSettings().recognizer_encode_jitters == 1
    monkeypatch.setenv("RECOGNIZER_ENROLL_JITTERS", "7")
    assert enrollment_analyzer().encoder.jitters == 7
    assert enrollment_analyzer(2).encoder.jitters == 2
    monkeypatch.delenv("RECOGNIZER_ENROLL_JITTERS")
    assert enrollment_analyzer().encoder.jitters == 10
