"""A recognizer worker's logic: one frame in, one identity event per face out. No pika here."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from services.common import topology
from services.common.messages import FaceRecognized, FaceUnknown, FrameAnalyzed, FrameCaptured
from services.common.transport import Delivery, Handled, Outgoing
from services.faces.engine import FaceAnalyzer, InvalidImageError, decode_image
from services.faces.matching import Matcher
from services.recognizer.tracking import FaceTracker, Named

logger = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    frames: int = 0
    faces: int = 0
    recognized: int = 0
    tracked: int = 0  # recognized without a new encoding
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
    ) -> None:
        self.analyzer = analyzer
        self.matcher = matcher
        self.worker_id = worker_id
        self.tracker = tracker or FaceTracker(refresh_s=0)
        self.stats = WorkerStats()
        self._stats_lock = threading.Lock()
        self._tracked_matcher: Matcher | None = None

    def recognize(self, frame: FrameCaptured, jpeg: bytes) -> list[FaceRecognized | FaceUnknown]:
        """Name every face in the frame. Raises InvalidImageError for a corrupt frame."""
        rgb = decode_image(jpeg)
        matcher = self.matcher()
        if matcher is not self._tracked_matcher:  # the gallery changed: names may no longer hold
            self.tracker.forget()
            self._tracked_matcher = matcher
        boxes = self.analyzer.faces_to_encode(rgb)
        at = frame.captured_at
        tracks = self.tracker.continuing(frame.camera_id, at, boxes)
        to_encode = [b for b, t in zip(boxes, tracks, strict=True) if self.tracker.needs_encoding(t, at)]
        matches = iter(matcher.match(self.analyzer.encode(rgb, to_encode)) if to_encode else [])
        events: list[FaceRecognized | FaceUnknown] = []
        named_faces: list[Named] = []
        for box, track in zip(boxes, tracks, strict=True):
            common = {
                "camera_id": frame.camera_id,
                "frame_seq": frame.seq,
                "captured_at": at,
                "box": box,
                "worker": self.worker_id,
            }
            best_distance: float | None
            if track is not None and not self.tracker.needs_encoding(track, at):
                named: Named | None = self.tracker.carry(track, box, at)
                best_distance = track.distance
            else:
                match = next(matches)
                named = self.tracker.resolve(track, box, match, at)
                best_distance = match.best_distance
            if named is not None:
                named_faces.append(named)
            if named is None or named.track.identity is None:
                events.append(FaceUnknown(best_distance=best_distance, **common))
                continue
            events.append(
                FaceRecognized(
                    student_id=named.track.identity.student_id,
                    student_number=named.track.identity.student_number,
                    student_name=named.track.identity.name,
                    distance=named.track.distance,
                    margin=named.track.margin,
                    tracked=not named.strict,
                    **common,
                )
            )
        self.tracker.update(frame.camera_id, at, named_faces, tracks)
        return events

    def handle(self, deliveries: list[Delivery]) -> list[Handled]:
        return [self._handle_one(delivery) for delivery in deliveries]

    def _handle_one(self, delivery: Delivery) -> Handled:
        started = time.perf_counter()
        try:
            frame = FrameCaptured.model_validate(dict(delivery.headers))
            events = self.recognize(frame, delivery.body)
        except (ValidationError, InvalidImageError) as error:
            if isinstance(error, ValidationError) and error.title != FrameCaptured.__name__:
                raise  # our own event failed validation: a bug, not a bad frame
            with self._stats_lock:
                self.stats.rejected_frames += 1
            reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else str(error)
            return Handled(rejected=f"bad frame: {reason}")
        elapsed = time.perf_counter() - started
        recognized = sum(isinstance(e, FaceRecognized) for e in events)
        with self._stats_lock:
            self.stats.frames += 1
            self.stats.faces += len(events)
            self.stats.recognized += recognized
            self.stats.unknown += len(events) - recognized
            self.stats.tracked += sum(isinstance(e, FaceRecognized) and e.tracked for e in events)
            self.stats.busy_s += elapsed
        analyzed = FrameAnalyzed(
            camera_id=frame.camera_id,
            frame_seq=frame.seq,
            captured_at=frame.captured_at,
            worker=self.worker_id,
            faces=len(events),
            recognized=recognized,
            elapsed_ms=round(elapsed * 1000, 2),
        )
        summary = Outgoing(
            topology.RECOGNIZER_EXCHANGE, topology.analyzed_key(frame.camera_id), analyzed, False
        )
        return Handled(publish=[*(_outgoing(event) for event in events), summary])

    def log_stats(self) -> None:
        with self._stats_lock:
            s = self.stats
            logger.info(
                "frames %d (%.1f ms each), faces %d: %d recognized (%d by tracking), %d unknown; "
                "%d bad frames",
                s.frames,
                1000 * s.busy_s / max(s.frames, 1),
                s.faces,
                s.recognized,
                s.tracked,
                s.unknown,
                s.rejected_frames,
            )


def _outgoing(event: FaceRecognized | FaceUnknown) -> Outgoing:
    if isinstance(event, FaceRecognized):
        key = topology.recognized_key(event.camera_id)
    else:
        key = topology.unknown_key(event.camera_id)
    return Outgoing(topology.RECOGNIZER_EXCHANGE, key, event)
