"""Is every camera served? Per camera, frames offered and processed per second, from the workers'
`CameraLoad` reports (services/recognizer/scheduling.py) and capture's heartbeats. Pure: the
recorder, the API's /health and GET /cameras and the dashboard feed it and show its answer.

- processed per second: the camera's frames analyzed by whichever workers reported it within
  the window (a camera moves to another worker when one dies or joins);
- offered per second: the larger of what the workers received and what capture says it
  published (its heartbeats' `frames_published`), so a camera whose frames reach no worker at
  all still shows as offered and not processed;
- under-served: processed below `under_served_below` (default half) of offered.
"""

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.messages import CameraHeartbeat, CameraLoad

UNDER_SERVED_BELOW = 0.5
WINDOW_S = 30.0


@dataclass(frozen=True)
class CameraRate:
    camera_id: str
    offered_per_s: float
    processed_per_s: float
    dropped_per_s: float
    workers: tuple[str, ...]  # that reported this camera within the window
    ms_per_frame: float | None  # mean analysis time of its processed frames
    under_served: bool

    @property
    def served_share(self) -> float | None:
        return self.processed_per_s / self.offered_per_s if self.offered_per_s > 0 else None


class CameraLoadBoard:
    def __init__(self, window_s: float = WINDOW_S, under_served_below: float = UNDER_SERVED_BELOW) -> None:
        self.window = timedelta(seconds=window_s)
        self.under_served_below = under_served_below
        self._loads: dict[str, deque[CameraLoad]] = {}
        self._beats: dict[str, deque[CameraHeartbeat]] = {}

    def add(self, load: CameraLoad) -> None:
        self._loads.setdefault(load.camera_id, deque()).append(load)

    def add_heartbeat(self, beat: CameraHeartbeat) -> None:
        beats = self._beats.setdefault(beat.camera_id, deque())
        if beats and beat.frames_published < beats[-1].frames_published:
            beats.clear()  # capture restarted: its count starts again
        beats.append(beat)

    def _prune(self, now: datetime) -> None:
        for table in (self._loads, self._beats):
            for camera in list(table):
                entries = table[camera]
                while entries and entries[0].sent_at < now - self.window:
                    entries.popleft()
                if not entries:
                    del table[camera]

    def rates(self, now: datetime) -> dict[str, CameraRate]:
        """Every camera heard of within the window, by camera id."""
        self._prune(now)
        out: dict[str, CameraRate] = {}
        for camera in sorted(set(self._loads) | set(self._beats)):
            loads = [load for load in self._loads.get(camera, ()) if load.sent_at <= now]
            received = processed = dropped = 0
            busy_s, span_s = 0.0, 0.0
            if loads:
                start = min(load.sent_at - timedelta(seconds=load.interval_s) for load in loads)
                span_s = min(self.window, now - start).total_seconds()
                received = sum(load.received for load in loads)
                processed = sum(load.processed for load in loads)
                dropped = sum(load.dropped for load in loads)
                busy_s = sum(load.busy_s for load in loads)
            offered = received / span_s if span_s > 0 else 0.0
            published = self._published_per_s(camera)
            if published is not None:
                offered = max(offered, published)
            processed_per_s = processed / span_s if span_s > 0 else 0.0
            out[camera] = CameraRate(
                camera_id=camera,
                offered_per_s=round(offered, 3),
                processed_per_s=round(processed_per_s, 3),
                dropped_per_s=round(dropped / span_s, 3) if span_s > 0 else 0.0,
                workers=tuple(sorted({load.worker for load in loads})),
                ms_per_frame=round(1000 * busy_s / processed, 2) if processed else None,
                under_served=offered > 0 and processed_per_s < self.under_served_below * offered,
            )
        return out

    def _published_per_s(self, camera: str) -> float | None:
        beats = self._beats.get(camera)
        if not beats or len(beats) < 2:
            return None
        first, last = beats[0], beats[-1]
        seconds = (last.sent_at - first.sent_at).total_seconds()
        if seconds <= 0:
            return None
        return (last.frames_published - first.frames_published) / seconds
