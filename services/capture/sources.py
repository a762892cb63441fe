"""Frame sources: anything OpenCV's VideoCapture opens (webcam, RTSP/HTTP, video file) and a
folder of still images."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from services.capture.settings import source_kind
from services.common.settings import redact

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


class SourceError(RuntimeError):
    """The source cannot be opened or stopped delivering frames."""


@dataclass(frozen=True)
class SourceFrame:
    image: np.ndarray  # BGR, as OpenCV reads it
    media_time_s: float | None  # position in a file; None for live sources


class FrameSource(Protocol):
    live: bool  # a camera or stream (frames arrive in real time) rather than a file or folder

    def read(self) -> SourceFrame | None:
        """The next frame; None at the end of a file. Raises SourceError if the source failed."""

    def close(self) -> None: ...


class VideoSource:
    def __init__(self, spec: str) -> None:
        kind = source_kind(spec)
        self.live = kind in ("device", "stream")
        self.description = redact(spec)
        self._capture = cv2.VideoCapture(int(spec) if kind == "device" else spec)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"cannot open {self.description}")
        if self.live:
            self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the newest frame, not a backlog

    def read(self) -> SourceFrame | None:
        ok, image = self._capture.read()
        if not ok or image is None:
            if self.live:
                raise SourceError(f"{self.description} stopped delivering frames")
            return None
        media_time = None if self.live else self._capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        return SourceFrame(image, media_time)

    def close(self) -> None:
        self._capture.release()


class ImageFolderSource:
    """Each image of a folder, in name order, as one frame; unreadable files are skipped."""

    live = False

    def __init__(self, folder: str, fps: float) -> None:
        self.paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"no images in {folder}")
        self._period = 1.0 / fps if fps > 0 else 0.2
        self._next = 0

    def read(self) -> SourceFrame | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return SourceFrame(image, (self._next - 1) * self._period)
            logger.warning("skipping %s: not a readable image", path)
        return None

    def close(self) -> None:
        pass


def open_source(spec: str, fps: float) -> FrameSource:
    if source_kind(spec) == "folder":
        return ImageFolderSource(spec, fps)
    return VideoSource(spec)
