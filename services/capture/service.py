"""The capture loop: sample a source, encode frames as JPEG, hand them to a sink. No pika here.

Live sources are drained continuously and sampled by wall clock, so a published frame is
always the newest one; files are sampled by their own timestamps, so a file at 30 fps and a
camera at 30 fps yield the same frames per second of action.

A live frame is stamped with the wall clock. A frame of a video file is stamped with the
file's own time: CAPTURE_MEDIA_START (default: when capture started) plus the frame's position
in the file, whatever the pace or speed, so tracking, the recorder's vote and the session a
mark belongs to follow the lesson, not how fast it is processed; a recorded lesson can be
processed later into the session it belongs to by setting CAPTURE_MEDIA_START to when it
was filmed. A looping file keeps counting from where the previous pass ended.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import cv2
import numpy as np

from services.capture.settings import CaptureSettings
from services.capture.sources import FrameSource, SourceError
from services.common.messages import CameraHeartbeat, FrameCaptured, utc_now
from services.common.settings import redact
from services.common.transport import Backoff

logger = logging.getLogger(__name__)


class FrameSink(Protocol):
    def publish_frame(self, frame: FrameCaptured, jpeg: bytes) -> None: ...
    def publish_heartbeat(self, heartbeat: CameraHeartbeat) -> None: ...
    def backlog(self) -> tuple[int, int]:
        """(frames waiting for a recognizer, recognizers consuming)."""

    def sleep(self, seconds: float) -> None:
        """Wait, keeping the transport's connection alive meanwhile."""


def encode_frame(image: np.ndarray, max_width: int, quality: int) -> tuple[bytes, int, int]:
    height, width = image.shape[:2]
    if width > max_width:
        height, width = round(height * max_width / width), max_width
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise SourceError("JPEG encoding failed")
    return jpeg.tobytes(), width, height


class CaptureLoop:
    def __init__(
        self,
        settings: CaptureSettings,
        open_source: Callable[[], FrameSource],
        sink: FrameSink,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.open_source = open_source
        self.sink = sink
        self.stop = stop
        self.clock = clock
        self.seq = 0
        self.last_frame_at: datetime | None = None
        self._status: str = "streaming"
        self._next_heartbeat = 0.0
        self.media_start: datetime = settings.capture_media_start or utc_now()
        self._media_offset_s = 0.0  # where this pass of a looping file starts in media time
        self._media_end_s = 0.0  # the latest media time published, for the next pass to follow

    def run(self) -> int:
        """Publish frames until the source ends (CAPTURE_AT_END=stop) or `stop` is set; returns the count."""
        while not self.stop.is_set():
            source = self._open()
            if source is None:
                break
            try:
                ended = self._stream(source)
            except SourceError as error:
                logger.warning("camera %s: %s; reopening", self.settings.camera_id, error)
                self._status = "reconnecting"
                continue
            finally:
                source.close()
            if ended and self.settings.capture_at_end == "stop":
                logger.info("end of %s after %d frames", redact(self.settings.capture_source), self.seq)
                self._status = "ended"
                break
        self._heartbeat(force=True)
        return self.seq

    def _open(self) -> FrameSource | None:
        for attempt, delay in enumerate(Backoff(first_s=1.0, max_s=30.0).delays(), start=1):
            if self.stop.is_set():
                return None
            try:
                source = self.open_source()
            except SourceError as error:
                self._status = "reconnecting"
                logger.warning(
                    "camera %s: %s (attempt %d); retrying in %.0fs",
                    self.settings.camera_id,
                    error,
                    attempt,
                    delay,
                )
                self._heartbeat()
                self.sink.sleep(delay)
                continue
            if attempt > 1:
                logger.info("camera %s: source open again", self.settings.camera_id)
            self._status = "streaming"
            return source
        return None

    def _stream(self, source: FrameSource) -> bool:
        """Publish sampled frames of an open source; True when a file or folder has ended."""
        fps = self.settings.capture_fps
        period = 1.0 / fps if fps > 0 else 0.0
        started = self.clock()
        next_sample = 0.0  # media time (files) or clock time (live) of the next frame to keep
        self._media_offset_s = self._media_end_s + (period or 0.0) if self.seq else 0.0
        while not self.stop.is_set():
            frame = source.read()
            if frame is None:
                return True
            media_at: datetime | None = None
            if source.live or frame.media_time_s is None:
                now = self.clock()
                if now < next_sample:
                    continue  # drain the camera so the next frame we keep is fresh
                next_sample = now + period
            else:
                media_time = frame.media_time_s
                if media_time + 1e-6 < next_sample:
                    continue
                while next_sample <= media_time + 1e-6 and period > 0:
                    next_sample += period
                if self.settings.capture_pace == "realtime":
                    delay = started + media_time / self.settings.capture_speed - self.clock()
                    if delay > 0:
                        self.sink.sleep(delay)
                self._media_end_s = self._media_offset_s + media_time
                media_at = self.media_start + timedelta(seconds=self._media_end_s)
            if self.settings.capture_pace == "fast":
                self._wait_for_room()
            self._publish(frame.image, media_at)
            self._heartbeat()
        return False

    def _wait_for_room(self) -> None:
        """Fast pace: publish only when a recognizer will take the frame soon, so none is dropped.
        Two waiting frames per recognizer keep every one busy between two polls of the queue
        (each poll is a broker round trip: polling less leaves the CPU to the recognizers)."""
        while not self.stop.is_set():
            waiting, consumers = self.sink.backlog()
            if waiting < max(self.settings.capture_max_backlog, 2 * consumers):
                return
            self.sink.sleep(0.02)

    def _publish(self, image: np.ndarray, media_at: datetime | None) -> None:
        """Publish one frame, stamped with its media time (files) or the wall clock (live)."""
        jpeg, width, height = encode_frame(
            image, self.settings.capture_max_width, self.settings.capture_jpeg_quality
        )
        now = utc_now()
        frame = FrameCaptured(
            camera_id=self.settings.camera_id,
            seq=self.seq,
            captured_at=media_at or now,
            width=width,
            height=height,
        )
        self.sink.publish_frame(frame, jpeg)
        self.seq += 1
        self.last_frame_at = now  # the camera is alive: wall time, whatever the frame's own time

    def _heartbeat(self, force: bool = False) -> None:
        now = self.clock()
        if not force and now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self.settings.capture_heartbeat_s
        self.sink.publish_heartbeat(
            CameraHeartbeat(
                camera_id=self.settings.camera_id,
                camera_name=self.settings.display_name,
                source=redact(self.settings.capture_source)[:500],
                last_frame_at=self.last_frame_at,
                frames_published=self.seq,
                status=self._status,
            )
        )
