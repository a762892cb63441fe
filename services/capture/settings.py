"""Capture settings (environment variables of the same names)."""

from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from services.common.settings import CAMERA_ID_PATTERN, BaseServiceSettings, BrokerSettings


def source_kind(source: str) -> Literal["device", "stream", "folder", "file"]:
    if source.isdigit():
        return "device"
    if "://" in source:
        return "stream"
    return "folder" if Path(source).is_dir() else "file"


class CaptureSettings(BaseServiceSettings, BrokerSettings):
    camera_id: str = Field("camera-1", pattern=CAMERA_ID_PATTERN)
    camera_name: str = Field("", max_length=200, description="shown to people; defaults to CAMERA_ID")
    # A webcam index ("0"), an RTSP/HTTP URL, a video file or a folder of images.
    capture_source: str = "0"
    # Frames published per second of source time (0: every frame). A few are plenty for attendance.
    capture_fps: float = Field(5.0, ge=0, le=120)
    # realtime: a file plays at its own speed (times capture_speed);
    # fast: as fast as the recognizers take frames (tests and benchmarks), nothing dropped.
    capture_pace: Literal["realtime", "fast"] = "realtime"
    capture_speed: float = Field(1.0, gt=0, le=100)
    capture_at_end: Literal["stop", "loop"] = "stop"
    # Wider frames are scaled down before JPEG encoding.
    capture_max_width: int = Field(1280, ge=160, le=7680)
    capture_jpeg_quality: int = Field(85, ge=30, le=100)
    # In fast pace, at most this many frames of the camera in flight (published, not yet
    # analyzed); a frame whose summary has not come after CAPTURE_CREDIT_TIMEOUT_S is given up
    # on (lost with a recognizer that died).
    capture_max_backlog: int = Field(2, ge=1, le=1000)
    capture_credit_timeout_s: float = Field(10.0, gt=0, le=600)
    capture_heartbeat_s: float = Field(5.0, gt=0, le=300)
    # A video file's frames are stamped with this moment plus their position in the file
    # (ISO 8601 with an offset, e.g. 2026-09-07T08:30:00+02:00 for a lesson filmed then);
    # unset: when capture started. Live cameras always use the clock.
    capture_media_start: AwareDatetime | None = None
    # media: a file's frames carry its own time (above); wall: the clock, as a live camera's
    # do (a benchmark playing a file as a camera measures latency from the moment of capture).
    capture_clock: Literal["media", "wall"] = "media"

    @field_validator("capture_source")
    @classmethod
    def _source_exists(cls, value: str) -> str:
        value = value.strip()
        if source_kind(value) == "file" and not Path(value).is_file():
            raise ValueError(f"no such video file or folder: {value}")
        return value

    @property
    def display_name(self) -> str:
        return self.camera_name or self.camera_id
