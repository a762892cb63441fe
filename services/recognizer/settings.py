"""Recognizer settings (environment variables of the same names)."""

import os
import socket
from typing import Any

from pydantic import Field

from services.common.settings import BrokerSettings, DatabaseSettings
from services.faces.engine import FRAME_FORMATS, FRAME_LIMITS, MIB, ImageLimits
from services.faces.settings import RecognitionSettings
from services.recognizer.live_gallery import DEFAULT_MIN_RELOAD_S
from services.recognizer.preview import PreviewMaker
from services.recognizer.tracking import FaceTracker


class RecognizerSettings(RecognitionSettings, BrokerSettings, DatabaseSettings):
    def tracker(self) -> FaceTracker:
        return FaceTracker(
            rule=self.decision_rule(),
            refresh_s=self.recognizer_track_refresh_s,
            unknown_refresh_s=self.recognizer_track_unknown_refresh_s,
            refresh_frames=self.recognizer_track_refresh_frames,
            unknown_refresh_frames=self.recognizer_track_unknown_refresh_frames,
            max_gap_s=self.recognizer_track_max_gap_s,
            slow_gap_s=self.recognizer_track_slow_gap_s,
            still_iou=self.recognizer_track_still_iou,
            min_iou=self.recognizer_track_min_iou,
            max_misses=self.recognizer_track_max_misses,
            keep_tolerance=self.recognizer_track_keep_tolerance,
            reid_distance=self.recognizer_track_reid_distance,
            reid_reach=self.recognizer_track_reid_reach,
        )

    recognizer_prefetch: int = Field(1, ge=1, le=100)
    # Tracks (services/recognizer/tracking.py): a face continues the track whose box it overlaps
    # by at least RECOGNIZER_TRACK_MIN_IOU in its camera's previous frame. A track ends when
    # RECOGNIZER_TRACK_MAX_MISSES + 1 frames in a row show no face in its place, or after
    # RECOGNIZER_TRACK_SLOW_GAP_S of the camera's own time without a frame. Across a gap longer
    # than RECOGNIZER_TRACK_MAX_GAP_S (an overloaded worker gets a camera's frames seconds
    # apart) a face continues its track only if its box overlaps the old one by
    # RECOGNIZER_TRACK_STILL_IOU (it barely moved), and across one far beyond the camera's
    # usual pace its next frame is a fresh look.
    recognizer_track_min_iou: float = Field(0.3, gt=0, le=1)
    recognizer_track_max_misses: int = Field(0, ge=0, le=10)
    recognizer_track_max_gap_s: float = Field(1.5, gt=0, le=10)
    recognizer_track_slow_gap_s: float = Field(30.0, gt=0, le=120)
    recognizer_track_still_iou: float = Field(0.6, gt=0, le=1)
    # A named track is encoded again this often to re-verify it (0: every frame). A look whose
    # closest student is still the same within RECOGNIZER_TRACK_KEEP_TOLERANCE keeps the name
    # (a head turned away for a moment); anything else ends it and the track decides again.
    recognizer_track_refresh_s: float = Field(1.0, ge=0, le=60)
    recognizer_track_keep_tolerance: float = Field(0.60, gt=0, lt=1)
    # A new track whose first look is within RECOGNIZER_TRACK_REID_DISTANCE of the last look of
    # a track of its camera that ended within SLOW_GAP_S, at most RECOGNIZER_TRACK_REID_REACH face
    # widths away, continues it (0: never): a person walking past an overloaded camera moves
    # further between its analyzed frames than their face is wide.
    recognizer_track_reid_distance: float = Field(0.40, ge=0, lt=1)
    recognizer_track_reid_reach: float = Field(4.0, gt=0, le=50)
    # A track that has had its decision window of looks and still names nobody is looked at
    # again this often (a visitor in view costs two encodings a second, not one per frame).
    recognizer_track_unknown_refresh_s: float = Field(0.5, ge=0, le=60)
    # ...and only after this many frames of the track since its last look, so under overload
    # (a camera's frames seconds apart) a frame does not cost an encoding per face: at 5
    # frames/s, 5 and 3 frames are the seconds above.
    recognizer_track_refresh_frames: int = Field(5, ge=1, le=1000)
    recognizer_track_unknown_refresh_frames: int = Field(3, ge=1, le=1000)
    recognizer_worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    # Seconds between "frames processed" log lines (0: never).
    recognizer_stats_interval_s: float = Field(30.0, ge=0)
    # Frames over these limits are dead-lettered before they are decoded (a small PNG or JPEG
    # can claim billions of pixels). Capture sends JPEG frames at most CAPTURE_MAX_WIDTH wide:
    # the defaults fit 4K (3840x2160); raise them with CAPTURE_MAX_WIDTH beyond that.
    recognizer_max_frame_megapixels: float = Field(FRAME_LIMITS.max_pixels / 1e6, gt=0, le=100)
    recognizer_max_frame_side: int = Field(FRAME_LIMITS.max_side, ge=160, le=16384)
    recognizer_max_frame_bytes: int = Field(8 * MIB, ge=64 * 1024)
    # A burst of "gallery changed" broadcasts (a class enrolled, or forged ones) reloads the
    # gallery at most once per this many seconds; the last one is always honoured.
    recognizer_gallery_min_reload_s: float = Field(DEFAULT_MIN_RELOAD_S, ge=0, le=600)
    # Camera previews for the live page (services/recognizer/preview.py): at most this many per
    # camera per second (0: none), this many pixels wide, boxes and names drawn.
    recognizer_preview_fps: float = Field(2.0, ge=0, le=10)
    recognizer_preview_width: int = Field(480, ge=160, le=1920)

    def preview_maker(self) -> PreviewMaker | None:
        if self.recognizer_preview_fps == 0:
            return None
        return PreviewMaker(self.recognizer_preview_fps, self.recognizer_preview_width)

    def frame_limits(self) -> ImageLimits:
        return ImageLimits(
            max_pixels=round(self.recognizer_max_frame_megapixels * 1e6),
            max_side=self.recognizer_max_frame_side,
            max_bytes=self.recognizer_max_frame_bytes,
            formats=FRAME_FORMATS,
        )

    def analyzer_options(self) -> dict[str, Any]:
        """The shared options, and the frame limits a worker's analyzer checks before decoding."""
        limits = self.frame_limits()
        return {
            **super().analyzer_options(),
            "max_frame_pixels": limits.max_pixels,
            "max_frame_side": limits.max_side,
            "max_frame_bytes": self.recognizer_max_frame_bytes,
        }
