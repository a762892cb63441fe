"""YuNetDetector on the shared real faces (../shared/faces, or FACES_DIR): counts, boxes close to
HOG's, and odd inputs (grayscale, RGBA, tiny, float, faces cut by the frame's edge)."""

import csv
from pathlib import Path

import numpy as np
import pytest

from services.common.messages import FaceBox
from services.faces.engine import HogDetector, decode_image
from services.faces.yunet import YuNetDetector, yunet_available, yunet_unavailable_reason

pytestmark = [
    pytest.mark.faces,
    pytest.mark.skipif(not yunet_available(), reason=f"YuNet unavailable: {yunet_unavailable_reason()}"),
]


def load(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes())


def people_photos(faces_dir: Path) -> list[Path]:
    return sorted((faces_dir / "people").glob("*/*.jpg"))


def iou(a: FaceBox, b: FaceBox) -> float:
    width = max(0, min(a.right, b.right) - max(a.left, b.left))
    height = max(0, min(a.bottom, b.bottom) - max(a.top, b.top))
    inter = width * height
    return inter / (a.width * a.height + b.width * b.height - inter)


def inside(box: FaceBox, rgb: np.ndarray) -> bool:
    height, width = rgb.shape[:2]
    return 0 <= box.left < box.right <= width and 0 <= box.top < box.bottom <= height


@pytest.fixture(scope="module")
def detector() -> YuNetDetector:
    return YuNetDetector()


def test_available_is_a_bool() -> None:
    assert yunet_available() is True
    assert yunet_unavailable_reason() is None


def test_one_face_in_each_single_person_photo(faces_dir: Path, detector: YuNetDetector) -> None:
    counts = {}
    for path in people_photos(faces_dir):
        rgb = load(path)
        boxes = detector.detect(rgb)
        counts[f"{path.parent.name}/{path.name}"] = len(boxes)
        assert all(inside(box, rgb) for box in boxes)
    assert len(counts) >= 30
    assert {name: n for name, n in counts.items() if n != 1} == {}


def test_large_faces_survive_full_resolution_detection(faces_dir: Path) -> None:
    """A face filling a portrait scores low when scanned far above YuNet's anchor sizes; the
    re-check at a smaller scale must keep it (and keep it once)."""
    detector = YuNetDetector(max_width=1600)
    for path in people_photos(faces_dir):
        assert len(detector.detect(load(path))) == 1, path


def test_group_photos(faces_dir: Path, detector: YuNetDetector) -> None:
    with (faces_dir / "groups" / "groups.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert rows
    for row in rows:
        expected = len(row["identities_left_to_right"].split(";"))
        boxes = detector.detect(load(faces_dir / "groups" / row["file"]))
        assert len(boxes) == expected, row["file"]


def test_no_face_images(faces_dir: Path, detector: YuNetDetector) -> None:
    paths = sorted((faces_dir / "no_face").glob("*.jpg"))
    assert paths
    for path in paths:
        assert detector.detect(load(path)) == [], path


def test_boxes_close_to_hogs(faces_dir: Path, detector: YuNetDetector) -> None:
    """dlib's encoder was trained on HOG's square boxes: the mapped boxes must land near them."""
    hog = HogDetector(max_width=800, upsample=1)
    overlaps = []
    for path in people_photos(faces_dir):
        rgb = load(path)
        ours, theirs = detector.detect(rgb), hog.detect(rgb)
        if len(ours) == 1 and len(theirs) == 1:
            overlaps.append(iou(ours[0], theirs[0]))
    assert len(overlaps) >= 30
    assert np.mean(np.array(overlaps) >= 0.6) >= 0.8, sorted(overlaps)
    assert np.median(overlaps) >= 0.7


def test_odd_inputs(faces_dir: Path, detector: YuNetDetector) -> None:
    rgb = load(people_photos(faces_dir)[0])
    reference = detector.detect(rgb)
    assert len(reference) == 1
    gray = (rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    assert len(detector.detect(gray)) == 1
    assert len(detector.detect(gray[:, :, None])) == 1
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert detector.detect(rgba) == reference
    assert detector.detect(rgb.astype(np.float32)) == reference
    for shape in [(0, 0, 3), (1, 1, 3), (10, 10, 3), (15, 400, 3), (400, 15, 3)]:
        assert detector.detect(np.zeros(shape, np.uint8)) == []
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)) == []
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10, 3, 2), np.uint8))


def test_boxes_clipped_to_the_frame(faces_dir: Path, detector: YuNetDetector) -> None:
    """A face cut by the frame's edges gives a box inside the frame."""
    rgb = load(people_photos(faces_dir)[0])
    box = detector.detect(rgb)[0]
    cx, cy = (box.left + box.right) // 2, (box.top + box.bottom) // 2
    corner = np.ascontiguousarray(rgb[cy - box.height // 4 :, cx - box.width // 4 :])
    boxes = detector.detect(corner)
    assert all(inside(b, corner) for b in boxes)
    edge = np.ascontiguousarray(rgb[box.top + box.height // 8 :, :])
    found = detector.detect(edge)
    assert found and all(inside(b, edge) for b in found)


def test_mapped_box_clipped(detector: YuNetDetector) -> None:
    box = detector._mapped(x=-30, y=-40, w=100, h=130, width=60, height=50)
    assert box == FaceBox(top=0, right=60, bottom=50, left=0)
    assert detector._mapped(x=500, y=500, w=10, h=10, width=60, height=50) is None
