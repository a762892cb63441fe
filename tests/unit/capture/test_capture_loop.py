import threading
from datetime import UTC, datetime

import numpy as np
import pytest

from services.capture.credit import CreditWindow
from services.capture.service import NO_RECOGNIZER_WAIT_S, CaptureLoop, CreditEvents, encode_frame
from services.capture.settings import CaptureSettings
from services.capture.sources import SourceError, SourceFrame
from services.common.messages import CameraHeartbeat, FrameCaptured


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordingSink:
    """Records what capture publishes. `analyze_after`: a recognizer analyzes each frame that
    long after it was published (None: never, a dead worker); `no_recognizer_until`: frames
    published before then are returned by the broker."""

    def __init__(
        self, clock: FakeClock, analyze_after: float | None = 0.0, no_recognizer_until: float = -1.0
    ) -> None:
        self.clock = clock
        self.frames: list[tuple[FrameCaptured, bytes]] = []
        self.heartbeats: list[CameraHeartbeat] = []
        self.sleeps: list[float] = []
        self.analyze_after = analyze_after
        self.no_recognizer_until = no_recognizer_until
        self.pending: list[tuple[float, int]] = []  # (analyzed at, seq)
        self.events = CreditEvents()
        self.most_in_flight = 0

    def publish_frame(self, frame: FrameCaptured, jpeg: bytes) -> None:
        self.frames.append((frame, jpeg))
        if self.clock.now < self.no_recognizer_until:
            self.events.returned.append(frame.seq)
        elif self.analyze_after is not None:
            self.pending.append((self.clock.now + self.analyze_after, frame.seq))
        self.most_in_flight = max(self.most_in_flight, len(self.pending))

    def publish_heartbeat(self, heartbeat: CameraHeartbeat) -> None:
        self.heartbeats.append(heartbeat)

    def credit_events(self) -> CreditEvents:
        events, self.events = self.events, CreditEvents()
        return events

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.now += seconds
        done = [seq for at, seq in self.pending if at <= self.clock.now]
        self.pending = [(at, seq) for at, seq in self.pending if at > self.clock.now]
        self.events.analyzed += done


class FileSource:
    """A 30 fps file of `count` frames, each a distinct gray level."""

    live = False

    def __init__(self, count: int, clock: FakeClock | None = None) -> None:
        self.count = count
        self.index = 0
        self.clock = clock

    def read(self) -> SourceFrame | None:
        if self.index >= self.count:
            return None
        self.index += 1
        return SourceFrame(np.full((36, 64, 3), self.index, np.uint8), (self.index - 1) / 30)

    def close(self) -> None:
        pass


def settings(**overrides: object) -> CaptureSettings:
    return CaptureSettings(capture_source="0", camera_id="cam-1", **overrides)  # type: ignore[arg-type]


def run(loop_settings: CaptureSettings, sources: list[object], sink: RecordingSink) -> int:
    queue = list(sources)

    def open_source() -> object:
        item = queue.pop(0) if queue else FileSource(0)
        if isinstance(item, Exception):
            raise item
        return item

    return CaptureLoop(loop_settings, open_source, sink, threading.Event(), clock=sink.clock).run()  # type: ignore[arg-type]


def test_a_file_is_sampled_by_its_own_timestamps() -> None:
    sink = RecordingSink(FakeClock())
    assert run(settings(capture_fps=5, capture_pace="fast"), [FileSource(60)], sink) == 10
    seqs = [frame.seq for frame, _ in sink.frames]
    assert seqs == list(range(10))  # consecutive sequence numbers
    assert sink.heartbeats[-1].status == "ended" and sink.heartbeats[-1].frames_published == 10


def test_fps_zero_publishes_every_frame() -> None:
    sink = RecordingSink(FakeClock())
    assert run(settings(capture_fps=0, capture_pace="fast"), [FileSource(45)], sink) == 45


def test_realtime_pace_waits_for_each_frame_time_and_speed_scales_it() -> None:
    sink = RecordingSink(FakeClock())
    run(settings(capture_fps=5, capture_pace="realtime"), [FileSource(60)], sink)
    assert sum(sink.sleeps) == pytest.approx(1.8, abs=0.01)  # the 10th kept frame is at 1.8 s
    fast_sink = RecordingSink(FakeClock())
    run(settings(capture_fps=5, capture_pace="realtime", capture_speed=2), [FileSource(60)], fast_sink)
    assert sum(fast_sink.sleeps) == pytest.approx(0.9, abs=0.01)


def test_fast_pace_keeps_at_most_the_backlog_in_flight_and_marks_frames_not_droppable() -> None:
    sink = RecordingSink(FakeClock(), analyze_after=0.05)
    run(settings(capture_fps=0, capture_pace="fast", capture_max_backlog=2), [FileSource(20)], sink)
    assert [frame.seq for frame, _ in sink.frames] == list(range(20))
    assert sink.most_in_flight == 2
    assert all(not frame.droppable for frame, _ in sink.frames)
    assert not sink.pending, "capture ends once its last frames are analyzed"


def test_realtime_frames_are_droppable_and_need_no_credit() -> None:
    sink = RecordingSink(FakeClock(), analyze_after=None)
    run(settings(capture_fps=5, capture_pace="realtime"), [FileSource(30)], sink)
    assert len(sink.frames) == 5 and all(frame.droppable for frame, _ in sink.frames)


def test_frames_lost_with_a_dead_worker_are_given_up_on_after_the_timeout() -> None:
    sink = RecordingSink(FakeClock(), analyze_after=None)  # nobody ever analyzes them
    run(
        settings(capture_fps=0, capture_pace="fast", capture_max_backlog=2, capture_credit_timeout_s=3),
        [FileSource(4)],
        sink,
    )
    assert len(sink.frames) == 4
    assert sink.clock.now == pytest.approx(6.0, abs=0.05)  # two windows of two, 3 s each


def test_frames_no_recognizer_took_are_published_again_in_order() -> None:
    sink = RecordingSink(FakeClock(), analyze_after=0.01, no_recognizer_until=1.2)
    run(settings(capture_fps=0, capture_pace="fast", capture_max_backlog=2), [FileSource(4)], sink)
    seqs = [frame.seq for frame, _ in sink.frames]
    # Frame 0 came back until a recognizer was there, then went again; nothing out of order or lost.
    assert seqs.count(0) == 4  # at 0, 0.5 and 1 s returned; at 1.5 s taken
    assert seqs == sorted(seqs) and set(seqs) == {0, 1, 2, 3}
    assert NO_RECOGNIZER_WAIT_S in sink.sleeps


def test_the_credit_window_forgets_in_flight_frames_on_reconnect() -> None:
    window = CreditWindow(size=2, timeout_s=10)
    frame = FrameCaptured(camera_id="cam-1", seq=0, captured_at=datetime.now(UTC), width=1, height=1)
    window.sent(frame, b"", now=0)
    window.sent(frame.model_copy(update={"seq": 1}), b"", now=0)
    assert not window.has_room(now=1)
    window.forget()
    assert window.has_room(now=1)


def test_a_failing_source_is_reopened_with_backoff_not_fatal() -> None:
    sink = RecordingSink(FakeClock())
    failures = [SourceError("cannot open rtsp://cam"), SourceError("cannot open rtsp://cam")]
    assert run(settings(capture_fps=0, capture_pace="fast"), [*failures, FileSource(3)], sink) == 3
    assert sink.sleeps[:2] == [1.0, 2.0]
    assert sink.heartbeats[0].status == "reconnecting"


def test_looping_a_file_replays_it_until_stopped() -> None:
    sink = RecordingSink(FakeClock())
    stop = threading.Event()
    sources = [FileSource(4), FileSource(4), FileSource(4)]

    def open_source() -> FileSource:
        if len(sources) == 1:
            stop.set()
        return sources.pop(0)

    loop = CaptureLoop(
        settings(capture_fps=0, capture_pace="fast", capture_at_end="loop"),
        open_source,
        sink,
        stop,
        clock=sink.clock,
    )
    assert loop.run() == 8


def test_frames_wider_than_the_limit_are_scaled_down_before_encoding() -> None:
    jpeg, width, height = encode_frame(np.zeros((720, 1280, 3), np.uint8), max_width=640, quality=80)
    assert (width, height) == (640, 360)
    assert jpeg[:2] == b"\xff\xd8"
    _, width, height = encode_frame(np.zeros((360, 640, 3), np.uint8), max_width=1280, quality=80)
    assert (width, height) == (640, 360)


@pytest.mark.parametrize("pace", ["fast", "realtime"])
def test_a_files_frames_carry_its_own_time_in_both_paces(pace: str) -> None:
    start = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
    sink = RecordingSink(FakeClock())
    run(
        settings(capture_fps=5, capture_pace=pace, capture_speed=4, capture_media_start=start),
        [FileSource(60)],
        sink,
    )
    stamps = [(frame.captured_at - start).total_seconds() for frame, _ in sink.frames]
    assert stamps == pytest.approx([i / 5 for i in range(10)], abs=1e-6)  # the file's 2 s, not the pace's


def test_a_file_played_as_a_camera_carries_the_clocks_time() -> None:
    """CAPTURE_CLOCK=wall (the benchmark's): at 4x, media time would run 4x ahead of the clock."""
    sink = RecordingSink(FakeClock())
    before = datetime.now(UTC)
    run(
        settings(capture_fps=5, capture_pace="realtime", capture_speed=4, capture_clock="wall"),
        [FileSource(60)],
        sink,
    )
    after = datetime.now(UTC)
    assert len(sink.frames) == 10
    assert all(before <= frame.captured_at <= after for frame, _ in sink.frames)


def test_a_looping_file_keeps_counting_media_time() -> None:
    start = datetime(2026, 9, 7, 8, 30, tzinfo=UTC)
    sink = RecordingSink(FakeClock())
    stop = threading.Event()
    passes = iter([FileSource(30), FileSource(30)])

    def open_source() -> FileSource:
        source = next(passes, None)
        if source is None:
            stop.set()
            return FileSource(0)
        return source

    loop = settings(capture_fps=5, capture_pace="fast", capture_at_end="loop", capture_media_start=start)
    CaptureLoop(loop, open_source, sink, stop, clock=sink.clock).run()  # type: ignore[arg-type]
    stamps = [frame.captured_at for frame, _ in sink.frames]
    assert len(stamps) == 10
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # never back in time


class LiveSource:
    """A camera delivering `count` frames, then stopping."""

    live = True

    def __init__(self, count: int) -> None:
        self.count = count

    def read(self) -> SourceFrame | None:
        if self.count == 0:
            return None
        self.count -= 1
        return SourceFrame(np.zeros((36, 64, 3), np.uint8), None)

    def close(self) -> None:
        pass


def test_a_live_frame_carries_the_clock() -> None:
    sink = RecordingSink(FakeClock())
    before = datetime.now(UTC)
    run(settings(capture_fps=0, capture_at_end="stop"), [LiveSource(3)], sink)
    assert all(before <= frame.captured_at <= datetime.now(UTC) for frame, _ in sink.frames)
