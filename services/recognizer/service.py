"""A recognizer worker's logic: one frame in, one identity event per face out. No pika here."""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from services.common import topology
from services.common.messages import FaceRecognized, FaceUnknown, FrameCaptured
from services.common.transport import Delivery, Handled, Outgoing
from services.recognizer.engine import FaceAnalyzer, InvalidImageError, decode_image
from services.recognizer.matching import Matcher

logger = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    frames: int = 0
    faces: int = 0
    recognized: int = 0
    unknown: int = 0
    rejected_frames: int = 0
    busy_s: float = 0.0


class FrameRecognizer:
    def __init__(self, analyzer: FaceAnalyzer, matcher: Callable[[], Matcher], worker_id: str) -> None:
        self.analyzer = analyzer
        self.matcher = matcher
        self.worker_id = worker_id
        self.stats = WorkerStats()
        self._stats_lock = threading.Lock()

    def recognize(self, frame: FrameCaptured, jpeg: bytes) -> list[FaceRecognized | FaceUnknown]:
        """Name every face in the frame. Raises InvalidImageError for a corrupt frame."""
        rgb = decode_image(jpeg)
        faces = self.analyzer.analyze(rgb)
        matches = self.matcher().match([face.encoding for face in faces]) if faces else []
        events: list[FaceRecognized | FaceUnknown] = []
        for face, match in zip(faces, matches, strict=True):
            common = {
                "camera_id": frame.camera_id,
                "frame_seq": frame.seq,
                "captured_at": frame.captured_at,
                "box": face.box,
                "worker": self.worker_id,
            }
            if match.identity is None:
                events.append(FaceUnknown(best_distance=match.best_distance, **common))
            else:
                events.append(
                    FaceRecognized(
                        student_id=match.identity.student_id,
                        student_number=match.identity.student_number,
                        student_name=match.identity.name,
                        distance=match.best_distance,
                        margin=match.margin,
                        **common,
                    )
                )
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
        with self._stats_lock:
            self.stats.frames += 1
            self.stats.faces += len(events)
            self.stats.recognized += sum(isinstance(e, FaceRecognized) for e in events)
            self.stats.unknown += sum(isinstance(e, FaceUnknown) for e in events)
            self.stats.busy_s += time.perf_counter() - started
        return Handled(publish=[_outgoing(event) for event in events])

    def log_stats(self) -> None:
        with self._stats_lock:
            s = self.stats
            logger.info(
                "frames %d (%.1f ms each), faces %d: %d recognized, %d unknown; %d bad frames",
                s.frames,
                1000 * s.busy_s / max(s.frames, 1),
                s.faces,
                s.recognized,
                s.unknown,
                s.rejected_frames,
            )


def _outgoing(event: FaceRecognized | FaceUnknown) -> Outgoing:
    if isinstance(event, FaceRecognized):
        key = topology.recognized_key(event.camera_id)
    else:
        key = topology.unknown_key(event.camera_id)
    return Outgoing(topology.RECOGNIZER_EXCHANGE, key, event)
