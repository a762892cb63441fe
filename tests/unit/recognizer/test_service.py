from datetime import UTC, datetime, timedelta

import cv2
import numpy as np
import pytest

from services.common import topology
from services.common.messages import FaceBox, FaceRecognized, FaceUnknown, FrameCaptured
from services.common.transport import Delivery
from services.faces.decision import DecisionRule
from services.faces.engine import FaceAnalyzer, FaceDetector, FaceEncoder
from services.faces.matching import Gallery, Identity, Matcher
from services.recognizer.service import FrameRecognizer
from services.recognizer.tracking import FaceTracker

ADA = Identity(1, "S1", "Ada")
ADA_ENCODING = np.full(128, 0.1)


class TwoFaces(FaceDetector):
    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        return [FaceBox(top=0, right=20, bottom=20, left=0), FaceBox(top=0, right=60, bottom=20, left=40)]


class FirstIsAda(FaceEncoder):
    def encode(self, rgb: np.ndarray, boxes: list[FaceBox]) -> np.ndarray:
        return np.array([ADA_ENCODING, np.full(128, 0.2)][: len(boxes)])


def recognizer() -> FrameRecognizer:
    """A worker that names a track on its first look, for tests of routing and rejection."""
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.54, margin=0.05)
    one_look = FaceTracker(rule=DecisionRule(agree=1, window=1))
    return FrameRecognizer(FaceAnalyzer(TwoFaces(), FirstIsAda()), lambda: matcher, "worker-1", one_look)


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


def frames(worker: FrameRecognizer, count: int, step_ms: int = 200) -> list[FaceRecognized | FaceUnknown]:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    events: list[FaceRecognized | FaceUnknown] = []
    for n in range(count):
        meta = FrameCaptured(
            camera_id="c", seq=n, captured_at=start + timedelta(milliseconds=step_ms * n), width=64, height=32
        )
        events += worker.recognize(meta, jpeg()).events
    return events


def test_a_face_is_named_once_its_track_agrees_then_reverified_every_second() -> None:
    encoder = CountingEncoder([ADA_ENCODING])
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.54, margin=0.05)
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), refresh_s=1.0)
    worker = FrameRecognizer(FaceAnalyzer(OneFace(), encoder), lambda: matcher, "w", tracker)
    events = frames(worker, 7)  # 1.2 s at 5 frames/s
    # Looks at frames 0, 1 (named there), then 6 (a second later): each event is a fresh encoding.
    assert encoder.calls == 3
    assert [type(e).__name__ for e in events] == ["FaceUnknown", "FaceRecognized", "FaceRecognized"]
    assert [e.frame_seq for e in events] == [0, 1, 6]
    assert len({e.track_id for e in events}) == 1
    named = events[1]
    assert isinstance(named, FaceRecognized) and named.evidence is not None
    assert (named.evidence.fresh, named.evidence.agreeing, named.evidence.tier) == (2, 2, "confident")
    assert named.distance == pytest.approx(0.0, abs=1e-3)  # measured on this frame's encoding


def test_a_face_nobody_knows_reports_its_closest_candidate_and_no_name() -> None:
    stranger = np.full(128, 0.16)  # 0.68 from Ada: outside the tolerance
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.54, margin=0.05)
    worker = FrameRecognizer(FaceAnalyzer(OneFace(), CountingEncoder([stranger])), lambda: matcher, "w")
    events = frames(worker, 3)
    assert events and all(isinstance(e, FaceUnknown) for e in events)
    assert {e.candidate_id for e in events} == {1}  # type: ignore[union-attr]


def test_a_face_the_roster_rule_names_carries_its_evidence_for_the_recorder() -> None:
    """0.49 from Ada: unknown at 0.47, Ada by the roster rule (0.50): the recorder decides."""
    near_ada = ADA_ENCODING.copy()
    near_ada[0] += 0.49
    matcher = Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), tolerance=0.47, margin=0.08)
    rule = DecisionRule(agree=3, window=4, roster_tolerance=0.50, roster_margin=0.05)
    worker = FrameRecognizer(
        FaceAnalyzer(OneFace(), CountingEncoder([near_ada])), lambda: matcher, "w", FaceTracker(rule=rule)
    )
    events = frames(worker, 4)
    assert all(isinstance(e, FaceUnknown) for e in events)
    assert [e.roster_evidence is not None for e in events] == [False, False, True, True]  # type: ignore[union-attr]
    last = events[-1]
    assert isinstance(last, FaceUnknown) and last.roster_evidence is not None and last.candidate_id == 1
    assert (last.roster_evidence.tier, last.roster_evidence.agreeing) == ("check", 4)
    assert last.roster_evidence.best_distance == pytest.approx(0.49, abs=1e-3)


def test_tracked_names_are_dropped_when_the_gallery_changes() -> None:
    encoder = CountingEncoder([ADA_ENCODING])
    galleries = [Matcher(Gallery.from_rows([(ADA, ADA_ENCODING)]), 0.54, 0.05)]
    one_look = FaceTracker(rule=DecisionRule(agree=1, window=1))
    worker = FrameRecognizer(FaceAnalyzer(OneFace(), encoder), lambda: galleries[-1], "w", one_look)
    start = datetime.now(UTC)
    meta = FrameCaptured(camera_id="c", seq=0, captured_at=start, width=64, height=32)
    [first] = worker.recognize(meta, jpeg()).events
    galleries.append(Matcher(Gallery.from_rows([]), 0.54, 0.05))  # Ada was deleted
    later = meta.model_copy(update={"seq": 1, "captured_at": start + timedelta(milliseconds=100)})
    [second] = worker.recognize(later, jpeg()).events
    assert isinstance(first, FaceRecognized) and isinstance(second, FaceUnknown)
