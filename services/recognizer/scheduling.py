"""Which frame a worker analyzes next: a fair share for every camera under overload. No pika here.

The broker sends a worker every frame of the cameras hashed to it (services.common.topology,
camera affinity), as fast as they come. The consumer (services.common.amqp, `Schedule`) offers
each frame to `FrameScheduler` on arrival and asks it for the next one whenever it is free:

- only the newest frame of each camera waits: a new frame supersedes the older ones of its
  camera still waiting, which are acked and counted as dropped, never analyzed;
- cameras are served in turn (round robin), one frame each, so when a worker cannot keep up
  every camera's processed rate falls by the same factor, and each camera's tracker still sees
  its frames in order, just further apart;
- a frame that is not droppable (`FrameCaptured.droppable` False: capture's fast pace, a file
  processed whole) supersedes nothing and is never superseded: its camera's frames wait in
  order, still served in turn with the other cameras.

`LoadReports` counts, per camera, frames received, dropped and processed, and yields one
`CameraLoad` per camera every `interval_s` for the recognizer to publish (`reporting` wraps
its handler to attach them to its results).
"""

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.common import topology
from services.common.messages import CameraLoad, utc_now
from services.common.transport import Delivery, Handled, Handler, Outgoing

LOAD_REPORT_INTERVAL_S = 5.0
UNKNOWN_CAMERA = ""  # frames without a camera id wait in a line of their own (the handler rejects them)


def camera_of(delivery: Delivery) -> str:
    camera = delivery.headers.get("camera_id")
    return camera if isinstance(camera, str) else UNKNOWN_CAMERA


def droppable(delivery: Delivery) -> bool:
    return delivery.headers.get("droppable", True) is not False


@dataclass
class CameraCounts:
    received: int = 0
    processed: int = 0
    dropped: int = 0
    busy_s: float = 0.0


@dataclass
class LoadReports:
    """Per-camera counts since the last report; thread-safe (the consumer's thread receives and
    drops, the handler's thread processes and reports)."""

    worker: str
    interval_s: float = LOAD_REPORT_INTERVAL_S
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = utc_now
    totals: CameraCounts = field(default_factory=CameraCounts)
    _counts: dict[str, CameraCounts] = field(default_factory=dict)
    _since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _camera(self, camera: str) -> CameraCounts:
        if self._since is None:
            self._since = self.clock()
        return self._counts.setdefault(camera, CameraCounts())

    def received(self, camera: str) -> None:
        with self._lock:
            self._camera(camera).received += 1
            self.totals.received += 1

    def dropped(self, camera: str, count: int = 1) -> None:
        with self._lock:
            self._camera(camera).dropped += count
            self.totals.dropped += count

    def processed(self, camera: str, busy_s: float) -> None:
        with self._lock:
            counts = self._camera(camera)
            counts.processed += 1
            counts.busy_s += busy_s
            self.totals.processed += 1
            self.totals.busy_s += busy_s

    def due(self) -> list[CameraLoad]:
        """One report per camera seen since the last reports, once `interval_s` has passed."""
        with self._lock:
            now = self.clock()
            if self._since is None or now - self._since < self.interval_s:
                return []
            elapsed, counts = now - self._since, self._counts
            self._since, self._counts = now, {}
        sent_at = self.wall()
        return [
            CameraLoad(
                camera_id=camera,
                worker=self.worker,
                sent_at=sent_at,
                interval_s=elapsed,
                received=c.received,
                processed=c.processed,
                dropped=c.dropped,
                busy_s=round(c.busy_s, 4),
            )
            for camera, c in sorted(counts.items())
            if camera != UNKNOWN_CAMERA
        ]


class FrameScheduler:
    """Holds the frames waiting in a worker and chooses the next one (module docstring).
    Implements services.common.amqp's `Schedule`; called on the consumer's thread only."""

    def __init__(self, reports: LoadReports | None = None) -> None:
        self.reports = reports
        # Cameras with frames waiting, in the order they will be served; each camera's frames
        # in arrival order (which is capture's order: one queue per worker).
        self._lines: OrderedDict[str, deque[Delivery]] = OrderedDict()

    def offer(self, delivery: Delivery) -> list[Delivery]:
        camera = camera_of(delivery)
        line = self._lines.get(camera)
        if line is None:
            line = self._lines[camera] = deque()  # a camera with nothing waiting joins the end of the turn
        superseded: list[Delivery] = []
        if droppable(delivery) and line:
            superseded = [d for d in line if droppable(d)]
            if superseded:
                line = self._lines[camera] = deque(d for d in line if not droppable(d))
        line.append(delivery)
        if self.reports is not None:
            self.reports.received(camera)
            if superseded:
                self.reports.dropped(camera, len(superseded))
        return superseded

    def next(self) -> Delivery | None:
        if not self._lines:
            return None
        camera, line = next(iter(self._lines.items()))
        delivery = line.popleft()
        if line:
            self._lines.move_to_end(camera)  # its next frame waits for every other camera's turn
        else:
            del self._lines[camera]
        return delivery

    def clear(self) -> list[Delivery]:
        held = [delivery for line in self._lines.values() for delivery in line]
        self._lines.clear()
        return held

    def waiting(self) -> dict[str, int]:
        """Frames waiting per camera, in serving order (for tests and logs)."""
        return {camera: len(line) for camera, line in self._lines.items()}


def reporting(
    handler: Handler, reports: LoadReports, clock: Callable[[], float] = time.perf_counter
) -> Handler:
    """`handler`, counting each delivery it handles as processed for its camera, and publishing
    the load reports that are due along with the result of the last delivery of a call."""

    def handle(deliveries: list[Delivery]) -> list[Handled]:
        results = []
        for delivery in deliveries:
            started = clock()
            [result] = handler([delivery])
            reports.processed(camera_of(delivery), clock() - started)
            results.append(result)
        if results and results[-1].rejected is None:
            loads = [
                Outgoing(
                    topology.RECOGNIZER_EXCHANGE, topology.load_key(load.camera_id), load, persistent=False
                )
                for load in reports.due()
            ]
            if loads:
                results[-1] = replace(results[-1], publish=[*results[-1].publish, *loads])
        return results

    return handle
