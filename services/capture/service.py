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

Fast pace keeps at most CAPTURE_MAX_BACKLOG frames of this camera in flight (`credit.py`: a
frame is in flight until a recognizer says it analyzed it, or CAPTURE_CREDIT_TIMEOUT_S passed),
marks its frames not droppable, so the worker that has this camera analyzes every one of them
in order, and at the end of a file waits for its last frames, so capture exits once the whole
file is analyzed.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import cv2
import numpy as np

from services.capture.credit import CreditWindow
from services.capture.settings import CaptureSettings
from services.capture.sources import FrameSource, SourceError
from services.common.messages import CameraHeartbeat, FrameCaptured, utc_now
from services.common.settings import redact
from services.common.transport import Backoff

logger = logging.getLogger(__name__)


# After the broker returned a frame (no recognizer bound yet), wait this long before trying again.
NO_RECOGNIZER_WAIT_S = 0.5


@dataclass
class CreditEvents:
    """What the transport heard since it was last asked (fast pace only)."""

    analyzed: list[int] = field(default_factory=list)  # seqs of this camera's frames analyzed
    returned: list[int] = field(default_factory=list)  # seqs no recognizer took
    reconnected: bool = False  # summaries may have been lost meanwhile


class FrameSink(Protocol):
    def publish_frame(self, frame: FrameCaptured, jpeg: bytes) -> None:
        """Publish a frame; a frame that is not droppable is published so that the broker
        returns it (`credit_events().returned`) if no recognizer takes it."""

    def publish_heartbeat(self, heartbeat: CameraHeartbeat) -> None: ...
    def credit_events(self) -> CreditEvents:
        """Fast pace: the frames analyzed or returned since the last call."""

    def sleep(self, seconds: float) -> None:
        """Wait, keeping the transport's connection alive (and hearing of analyzed frames) meanwhile."""


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
        self.credit = CreditWindow(settings.capture_max_backlog, settings.capture_credit_timeout_s)
        self._waiting_for_recognizer = False

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
                if self.settings.capture_pace == "fast":
                    self._drain()
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
                if self.settings.capture_clock == "media":
                    media_at = self.media_start + timedelta(seconds=self._media_end_s)
            if self.settings.capture_pace == "fast":
                self._wait_for_room()
            self._publish(frame.image, media_at)
            self._heartbeat()
        return False

    def _wait_for_room(self) -> None:
        """Fast pace: publish only while fewer than CAPTURE_MAX_BACKLOG frames are in flight, so a
        worker is never handed more of this camera than it takes, and none is dropped."""
        while not self.stop.is_set():
            self._take_credit()
            if self._resend_returned():
                continue
            if self.credit.has_room(self.clock()):
                return
            self._heartbeat()
            self.sink.sleep(0.01)

    def _drain(self) -> None:
        """Fast pace, end of the file: wait until its last frames are analyzed (or given up on)."""
        while not self.stop.is_set():
            self._take_credit()
            if self._resend_returned():
                continue
            self.credit.has_room(self.clock())  # gives up on frames lost with a worker
            if not len(self.credit):
                break
            self._heartbeat()
            self.sink.sleep(0.01)
        if self.credit.timed_out:
            logger.warning(
                "camera %s: %d frame(s) never analyzed within %.0fs (lost with a recognizer?)",
                self.settings.camera_id,
                self.credit.timed_out,
                self.settings.capture_credit_timeout_s,
            )

    def _take_credit(self, keep: int | None = None) -> None:
        events = self.sink.credit_events()
        if events.reconnected:
            self.credit.forget(keep)
        for seq in events.analyzed:
            self.credit.analyzed(seq)
        for seq in events.returned:
            self.credit.returned(seq)

    def _resend_returned(self) -> bool:
        """Publish again, oldest first, the frames no recognizer took; True if there were any."""
        frames = self.credit.take_returned()
        if not frames:
            if self._waiting_for_recognizer:
                logger.info("camera %s: a recognizer takes frames again", self.settings.camera_id)
                self._waiting_for_recognizer = False
            return False
        if not self._waiting_for_recognizer:
            logger.warning("camera %s: no recognizer takes frames yet; waiting", self.settings.camera_id)
            self._waiting_for_recognizer = True
        self._heartbeat()
        self.sink.sleep(NO_RECOGNIZER_WAIT_S)
        for in_flight in frames:
            self.credit.sent(in_flight.frame, in_flight.jpeg, self.clock())
            self.sink.publish_frame(in_flight.frame, in_flight.jpeg)
            self._take_credit(keep=in_flight.frame.seq)
        return True

    def _publish(self, image: np.ndarray, media_at: datetime | None) -> None:
        """Publish one frame, stamped with its media time (files) or the wall clock (live)."""
        jpeg, width, height = encode_frame(
            image, self.settings.capture_max_width, self.settings.capture_jpeg_quality
        )
        now = utc_now()
        fast = self.settings.capture_pace == "fast"
        frame = FrameCaptured(
            camera_id=self.settings.camera_id,
            seq=self.seq,
            captured_at=media_at or now,
            width=width,
            height=height,
            droppable=not fast,  # fast pace: every frame analyzed, in order
        )
        if fast:
            self.credit.sent(frame, jpeg, self.clock())
        self.sink.publish_frame(frame, jpeg)
        if fast:
            self._take_credit(keep=frame.seq)  # a (re)connection by this publish forgets the frames before it
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
