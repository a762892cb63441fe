"""Recognizer settings (environment variables of the same names)."""

import os
import socket

from pydantic import Field

from services.common.settings import BrokerSettings, DatabaseSettings
from services.faces.settings import RecognitionSettings
from services.recognizer.tracking import FaceTracker


class RecognizerSettings(RecognitionSettings, BrokerSettings, DatabaseSettings):
    def tracker(self) -> FaceTracker:
        return FaceTracker(
            rule=self.decision_rule(),
            refresh_s=self.recognizer_track_refresh_s,
            unknown_refresh_s=self.recognizer_track_unknown_refresh_s,
            max_gap_s=self.recognizer_track_max_gap_s,
            min_iou=self.recognizer_track_min_iou,
            max_misses=self.recognizer_track_max_misses,
            keep_tolerance=self.recognizer_track_keep_tolerance,
        )

    recognizer_prefetch: int = Field(1, ge=1, le=100)
    # Tracks (services/recognizer/tracking.py): a face continues the track whose box it overlaps
    # by at least RECOGNIZER_TRACK_MIN_IOU in its camera's previous frame. A track ends when
    # RECOGNIZER_TRACK_MAX_MISSES + 1 frames in a row show no face in its place, or after
    # RECOGNIZER_TRACK_MAX_GAP_S of the camera's own time without a frame.
    recognizer_track_min_iou: float = Field(0.3, gt=0, le=1)
    recognizer_track_max_misses: int = Field(0, ge=0, le=10)
    recognizer_track_max_gap_s: float = Field(1.5, gt=0, le=10)
    # A named track is encoded again this often to re-verify it (0: every frame). A look whose
    # closest student is still the same within RECOGNIZER_TRACK_KEEP_TOLERANCE keeps the name
    # (a head turned away for a moment); anything else ends it and the track decides again.
    recognizer_track_refresh_s: float = Field(1.0, ge=0, le=60)
    recognizer_track_keep_tolerance: float = Field(0.60, gt=0, lt=1)
    # A track that has had its decision window of looks and still names nobody is looked at
    # again this often (a visitor in view costs two encodings a second, not one per frame).
    recognizer_track_unknown_refresh_s: float = Field(0.5, ge=0, le=60)
    recognizer_worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # Seconds between "frames processed" log lines (0: never).
    recognizer_stats_interval_s: float = Field(30.0, ge=0)
