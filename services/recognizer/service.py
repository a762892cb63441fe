"""A recognizer worker's logic: one frame in, one identity event per face out. No pika here."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError

from services.common import topology
from services.common.messages import (
    FaceRecognized,
    FaceUnknown,
    FrameAnalyzed,
    FrameCaptured,
    FramePreviewed,
    TrackEvidence,
)
from services.common.transport import Delivery, Handled, Outgoing
from services.faces.decision import Decision, Tier
from services.faces.engine import FaceAnalyzer, InvalidImageError
from services.faces.matching import Identity, Matcher
from services.recognizer.crops import face_crop, needs_review
from services.recognizer.preview import PreviewFace, PreviewMaker
from services.recognizer.tracking import FaceTracker, Track

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrameResult:
    events: list[FaceRecognized | FaceUnknown]  # one per fresh encoding
    faces: int  # faces followed in the frame
    named: list[Identity]  # who the faces on a named track are
    preview: FramePreviewed | None = None  # the camera's preview, when one is due


def _evidence(decision: Decision, tier: Tier | None = None) -> TrackEvidence:
    """The decision's evidence, with its own tier or (for the roster rule) `tier`."""
    tier = tier or decision.tier
    assert tier is not None and decision.best_distance is not None
    return TrackEvidence(
        fresh=decision.fresh,
        agreeing=decision.agreeing,
        best_distance=decision.best_distance,
        mean_distance=decision.mean_distance
        if decision.mean_distance is not None
        else decision.best_distance,
        margin=decision.margin,
        tier=tier,
    )


@dataclass
class WorkerStats:
    frames: int = 0
    faces: int = 0
    encoded: int = 0  # faces encoded (each an identity event); the others followed their track
    recognized: int = 0  # faces on a named track
    unknown: int = 0
    rejected_frames: int = 0
    busy_s: float = 0.0


class FrameRecognizer:
    def __init__(
        self,
        analyzer: FaceAnalyzer,
        matcher: Callable[[], Matcher],
        worker_id: str,
        tracker: FaceTracker | None = None,
        crops_per_track: int = 3,
        *,
        preview: PreviewMaker | None = None,
    ) -> None:
        self.analyzer = analyzer
        self.matcher = matcher
        self.worker_id = worker_id
        self.tracker = tracker or FaceTracker()
        self.crops_per_track = crops_per_track  # face crops for the review queue (0: none)
        self.preview = preview  # None: no camera previews
        self.stats = WorkerStats()
        self._stats_lock = threading.Lock()
        self._tracked_matcher: Matcher | None = None

    def recognize(self, frame: FrameCaptured, jpeg: bytes) -> FrameResult:
        """Follow every face of the frame on its track; one identity event per fresh encoding.
        Raises InvalidImageError for a corrupt frame, one over the analyzer's limits (checked
        before decoding) or one whose pixels are not the size its headers say."""
        rgb = self.analyzer.decode(jpeg)
        if rgb.shape[:2] != (frame.height, frame.width):
            raise InvalidImageError(
                f"the frame is {rgb.shape[1]}x{rgb.shape[0]} px, its header says {frame.width}x{frame.height}"
            )
        matcher = self.matcher()
        if matcher is not self._tracked_matcher:  # the gallery changed: names may no longer hold
            self.tracker.forget()
            self._tracked_matcher = matcher
        boxes = self.analyzer.faces_to_encode(rgb)
        at = frame.captured_at
        tracks = self.tracker.step(frame.camera_id, at, boxes)
        to_encode = [t for t in tracks if self.tracker.needs_encoding(t, at)]
        encodings = self.analyzer.encode(rgb, [t.box for t in to_encode])
        events: list[FaceRecognized | FaceUnknown] = []
        for track, encoding, match in zip(to_encode, encodings, matcher.match(encodings), strict=True):
            self.tracker.reidentify(frame.camera_id, track, encoding)  # a face that moved on
            decision = self.tracker.observe(track, encoding, match, at, matcher)
            common = {
                "camera_id": frame.camera_id,
                "frame_seq": frame.seq,
                "captured_at": at,
                "box": track.box,
                "worker": self.worker_id,
                "track_id": track.id,
                "crop": self._crop(rgb, track, decision, match.best_distance),
            }
            if decision.identity is None or match.best_distance is None:
                # The roster rule's student travels on the looks that measured a distance to them.
                roster = decision.roster_candidate
                on_roster = roster is not None and match.closest == roster
                candidate = roster if on_roster else decision.candidate or match.closest
                events.append(
                    FaceUnknown(
                        best_distance=match.best_distance,
                        candidate_id=candidate.student_id if candidate else None,
                        roster_evidence=_evidence(decision, "check") if on_roster else None,
                        **common,
                    )
                )
                continue
            events.append(
                FaceRecognized(
                    student_id=decision.identity.student_id,
                    student_number=decision.identity.student_number,
                    student_name=decision.identity.name,
                    distance=match.best_distance,
                    margin=match.margin,
                    evidence=_evidence(decision),
                    **common,
                )
            )
        named = [t.decision.identity for t in tracks if t.decision is not None and t.decision.identity]
        preview = None
        if self.preview is not None and self.preview.due(frame.camera_id):
            preview = self.preview.make(frame, rgb, [_preview_face(t) for t in tracks], self.worker_id)
        return FrameResult(events, faces=len(tracks), named=named, preview=preview)

    def _crop(
        self, rgb: np.ndarray, track: Track, decision: Decision, distance: float | None
    ) -> bytes | None:
        """A face crop for the review queue on the few looks of a track that a person should
        see (services/recognizer/crops.py), else None."""
        if not needs_review(decision, self.tracker.rule.window):
            return None
        if not track.crops.take(distance, self.crops_per_track):
            return None
        return face_crop(rgb, track.box)

    def handle(self, deliveries: list[Delivery]) -> list[Handled]:
        return [self._handle_one(delivery) for delivery in deliveries]

    def _handle_one(self, delivery: Delivery) -> Handled:
        started = time.perf_counter()
        try:
            frame = FrameCaptured.model_validate(dict(delivery.headers))
            result = self.recognize(frame, delivery.body)
        except (ValidationError, InvalidImageError) as error:
            if isinstance(error, ValidationError) and error.title != FrameCaptured.__name__:
                raise  # our own event failed validation: a bug, not a bad frame
            with self._stats_lock:
                self.stats.rejected_frames += 1
            reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            return Handled(rejected=f"bad frame: {reason}")
        elapsed = time.perf_counter() - started
        events = result.events
        with self._stats_lock:
            self.stats.frames += 1
            self.stats.faces += result.faces
            self.stats.encoded += len(events)
            self.stats.recognized += len(result.named)
            self.stats.unknown += result.faces - len(result.named)
            self.stats.busy_s += elapsed
        analyzed = FrameAnalyzed(
            camera_id=frame.camera_id,
            frame_seq=frame.seq,
            captured_at=frame.captured_at,
            worker=self.worker_id,
            faces=result.faces,
            recognized=len(result.named),
            elapsed_ms=round(elapsed * 1000, 2),
        )
        summary = Outgoing(
            topology.RECOGNIZER_EXCHANGE, topology.analyzed_key(frame.camera_id), analyzed, False
        )
        publish = [*(_outgoing(event) for event in events), summary]
        if result.preview is not None:
            key = topology.preview_key(frame.camera_id)
            publish.append(Outgoing(topology.PREVIEW_EXCHANGE, key, result.preview, persistent=False))
        return Handled(publish=publish)

    def log_stats(self) -> None:
        with self._stats_lock:
            s = self.stats
            logger.info(
                "frames %d (%.1f ms each), faces %d (%d encoded): %d on a named track, %d not; %d bad frames",
                s.frames,
                1000 * s.busy_s / max(s.frames, 1),
                s.faces,
                s.encoded,
                s.recognized,
                s.unknown,
                s.rejected_frames,
            )


def _preview_face(track: Track) -> PreviewFace:
    decision = track.decision
    if decision is None or decision.identity is None:
        return PreviewFace(track.box, None)
    return PreviewFace(track.box, decision.identity.name, check=decision.tier == "check")


def _outgoing(event: FaceRecognized | FaceUnknown) -> Outgoing:
    if isinstance(event, FaceRecognized):
        key = topology.recognized_key(event.camera_id)
    else:
        key = topology.unknown_key(event.camera_id)
    return Outgoing(topology.RECOGNIZER_EXCHANGE, key, event)
