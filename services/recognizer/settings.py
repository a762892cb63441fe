"""Recognizer settings (environment variables of the same names)."""

import os
import socket

from pydantic import Field

from services.common.settings import BrokerSettings, DatabaseSettings
from services.faces.settings import RecognitionSettings


class RecognizerSettings(RecognitionSettings, BrokerSettings, DatabaseSettings):
    recognizer_prefetch: int = Field(1, ge=1, le=100)
    # A face this worker named less than this many seconds ago, overlapping the same box in a
    # frame at most RECOGNIZER_TRACK_MAX_GAP_S older, keeps its name without a new encoding
    # (services/recognizer/tracking.py). 0 turns tracking off: every face is encoded.
    recognizer_track_refresh_s: float = Field(1.0, ge=0, le=60)
    recognizer_track_max_gap_s: float = Field(0.5, gt=0, le=10)
    recognizer_track_min_iou: float = Field(0.3, gt=0, le=1)
    # A face continuing a named track keeps the name while its closest student stays the same
    # within this distance (a new face always needs RECOGNIZER_TOLERANCE and the margin).
    recognizer_track_keep_tolerance: float = Field(0.60, gt=0, lt=1)
    # A face farther than that from every student is re-checked only this often while it stays
    # in place (a visitor in view costs two encodings a second, not one per frame).
    recognizer_track_unknown_refresh_s: float = Field(0.5, ge=0, le=60)
    recognizer_worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # Seconds between "frames processed" log lines (0: never).
    recognizer_stats_interval_s: float = Field(30.0, ge=0)
