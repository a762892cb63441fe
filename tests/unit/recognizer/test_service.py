from datetime import UTC, datetime

import cv2
import numpy as np

from services.common import topology
from services.common.messages import FaceBox, FaceRecognized, FaceUnknown, FrameCaptured
from services.common.transport import Delivery
from services.faces.engine import FaceAnalyzer, FaceDetector, FaceEncoder
from services.faces.matching import Gallery, Identity, Matcher
from services.recognizer.service import FrameRecognizer

ADA = Identity(1, "S1", "Ada")
ADA_ENCODING = np.full(128, 0.1)


class TwoFaces(FaceDetector):
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        return [FaceBox(top=0, right=20, bottom=20, left=0), FaceBox(top=0, right=60, bottom=20, left=40)]


class FirstIsAda(FaceEncoder):
    def encode(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        return np.array([ADA_ENCODING, np.full(128, 0.2)][: len(boxes)])


def recognizer() -> FrameRecognizer:
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.54, margin=0.05)
    return FrameRecognizer(FaceAnalyzer(TwoFaces(), FirstIsAda()), lambda: matcher, "worker-1")


def frame_delivery(body: bytes) -> Delivery:
    meta = FrameCaptured(camera_id="cam-1", seq=5, captured_at=datetime.now(UTC), width=64, height=32)
    return Delivery(body=body, routing_key="frame.cam-1", headers=meta.to_headers())


def jpeg() -> bytes:
    return cv2.imencode(".jpg", np.zeros((32, 64, 3), np.uint8))[1].tobytes()


def test_one_event_per_face_routed_by_kind_and_camera() -> None:
    [handled] = recognizer().handle([frame_delivery(jpeg())])
    assert handled.rejected is None
    first, second, summary = handled.publish
    assert summary.routing_key == "frame.analyzed.cam-1" and not summary.persistent
    assert summary.message.faces == 2 and summary.message.recognized == 1  # type: ignore[attr-defined]
    assert isinstance(first.message, FaceRecognized) and first.message.student_id == 1
    assert first.exchange == topology.RECOGNIZER_EXCHANGE
    assert first.routing_key == "face.recognized.cam-1"
    assert isinstance(second.message, FaceUnknown) and second.routing_key == "face.unknown.cam-1"
    assert first.message.frame_seq == 5 and first.message.worker == "worker-1"


def test_corrupt_frames_are_counted_and_rejected_not_raised() -> None:
    worker = recognizer()
    results = worker.handle(
        [
            frame_delivery(b"not a jpeg"),
            frame_delivery(b""),
            frame_delivery(jpeg()[:40]),
            frame_delivery(jpeg()),
        ]
    )
    assert [r.rejected is not None for r in results] == [True, True, True, False]
    assert "bad frame" in (results[0].rejected or "")
    assert worker.stats.rejected_frames == 3 and worker.stats.frames == 1


def test_frames_without_valid_metadata_are_rejected() -> None:
    delivery = Delivery(body=jpeg(), routing_key="frame.x", headers={"camera_id": "x"})
    [handled] = recognizer().handle([delivery])
    assert handled.rejected is not None and "bad frame" in handled.rejected


class CountingEncoder(FaceEncoder):
    def __init__(self, vectors: list[np.ndarray]) -> None:
        self.vectors = vectors
        self.calls = 0

    def encode(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        self.calls += len(boxes)
        return np.array([self.vectors[0] for _ in boxes]).reshape(len(boxes), 128)


class OneFace(FaceDetector):
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        return [FaceBox(top=0, right=20, bottom=20, left=0)]


def test_with_tracking_a_named_face_is_encoded_once_then_carried() -> None:
    from datetime import timedelta  # noqa: PLC0415

    from services.recognizer.tracking import FaceTracker  # noqa: PLC0415

    encoder = CountingEncoder([ADA_ENCODING])
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.54, margin=0.05)
    worker = FrameRecognizer(
        FaceAnalyzer(OneFace(), encoder), lambda: matcher, "w", FaceTracker(refresh_s=1.0)
    )
    start = datetime.now(UTC)
    events = []
    for n in range(5):
        meta = FrameCaptured(
            camera_id="c", seq=n, captured_at=start + timedelta(milliseconds=100 * n), width=64, height=32
        )
        events += worker.recognize(meta, jpeg())
    assert encoder.calls == 1
    assert [e.tracked for e in events] == [False, True, True, True, True]  # type: ignore[union-attr]
    assert {e.student_id for e in events} == {1}  # type: ignore[union-attr]


def test_tracked_names_are_dropped_when_the_gallery_changes() -> None:
    from datetime import timedelta  # noqa: PLC0415

    from services.recognizer.tracking import FaceTracker  # noqa: PLC0415

    encoder = CountingEncoder([ADA_ENCODING])
    galleries = [Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), 0.54, 0.05)]
    worker = FrameRecognizer(FaceAnalyzer(OneFace(), encoder), lambda: galleries[-1], "w", FaceTracker())
    start = datetime.now(UTC)
    meta = FrameCaptured(camera_id="c", seq=0, captured_at=start, width=64, height=32)
    [first] = worker.recognize(meta, jpeg())
    galleries.append(Matcher(Gallery.from_rows([]), 0.54, 0.05))  # Ada was deleted
    later = meta.model_copy(update={"seq": 1, "captured_at": start + timedelta(milliseconds=100)})
    [second] = worker.recognize(later, jpeg())
    assert isinstance(first, FaceRecognized) and isinstance(second, FaceUnknown)
