"""Face crops for the review queue: which looks carry one, and what a crop is."""

from datetime import UTC, datetime, timedelta

import cv2
import numpy as np

from services.common.messages import MAX_CROP_BYTES, FaceBox, FaceRecognized, FaceUnknown, FrameCaptured
from services.faces.decision import DecisionRule
from services.faces.engine import FaceAnalyzer, FaceDetector, FaceEncoder
from services.faces.matching import Gallery, Identity, Matcher
from services.recognizer.crops import MAX_SIDE, CropBudget, face_crop
from services.recognizer.service import FrameRecognizer
from services.recognizer.tracking import FaceTracker

ADA = Identity(1, "S1", "Ada")
ADA_ENCODING = np.zeros(128)


def noisy_frame(height: int = 480, width: int = 640) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_a_crop_is_a_small_jpeg_of_the_face_and_its_margin() -> None:
    crop = face_crop(noisy_frame(), FaceBox(top=100, right=400, bottom=400, left=100))
    image = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR)
    assert max(image.shape[:2]) == MAX_SIDE and len(crop) <= MAX_CROP_BYTES
    # At the frame's edge the margin is cut, not padded; a small face is not enlarged.
    corner = face_crop(noisy_frame(), FaceBox(top=0, right=40, bottom=40, left=0))
    image = cv2.imdecode(np.frombuffer(corner, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (54, 54)


def test_a_track_sends_its_first_crop_then_only_clearly_better_ones_at_most_three() -> None:
    budget = CropBudget()
    taken = [budget.take(d, per_track=3) for d in (0.7, 0.7, 0.69, 0.65, 0.5, 0.4)]
    assert taken == [True, False, False, True, True, False]


class OneFace(FaceDetector):
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        return [FaceBox(top=100, right=300, bottom=300, left=100)]


class Fixed(FaceEncoder):
    def __init__(self, distances: list[float]) -> None:
        self.distances = list(distances)

    def encode(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        vector = np.zeros(128)
        vector[0] = self.distances.pop(0)  # at this distance from Ada
        return np.array([vector for _ in boxes])


def looks(distances: list[float], rule: DecisionRule) -> list[FaceRecognized | FaceUnknown]:
    """One frame per distance, a second apart (so every frame is a fresh look), one face."""
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.54, margin=0.05)
    worker = FrameRecognizer(
        FaceAnalyzer(OneFace(), Fixed(distances)), lambda: matcher, "w", FaceTracker(rule=rule)
    )
    jpeg = cv2.imencode(".jpg", noisy_frame())[1].tobytes()
    start, events = datetime.now(UTC) - timedelta(minutes=1), []
    for seq in range(len(distances)):
        meta = FrameCaptured(
            camera_id="c", seq=seq, captured_at=start + timedelta(seconds=seq), width=640, height=480
        )
        events += worker.recognize(meta, jpeg).events
    return events


def test_an_unnamed_track_gets_crops_once_its_window_is_full_a_confident_one_never() -> None:
    rule = DecisionRule(agree=2, window=2)
    stranger = looks([0.8, 0.8, 0.8, 0.7, 0.6, 0.5], rule)
    assert all(isinstance(e, FaceUnknown) for e in stranger)
    # Still deciding on the first look; the full window's first, then the better ones, at most 3.
    assert [e.crop is not None for e in stranger] == [False, True, False, True, True, False]
    confident = looks([0.1, 0.1, 0.1, 0.1], DecisionRule(agree=2, window=2, check_distance=0.42))
    assert any(isinstance(e, FaceRecognized) for e in confident)
    assert all(e.crop is None for e in confident)


def test_a_name_on_thin_evidence_carries_crops() -> None:
    rule = DecisionRule(agree=1, window=1, check_distance=0.2)
    events = looks([0.4, 0.4, 0.3], rule)
    assert all(isinstance(e, FaceRecognized) and e.evidence and e.evidence.tier == "check" for e in events)
    assert [e.crop is not None for e in events] == [True, False, True]
