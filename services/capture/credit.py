"""Fast pace's credit window: at most `size` frames of this camera in flight. No pika here.

In fast pace (a recorded file processed as fast as the recognizers go, nothing dropped) capture
publishes a frame only while fewer than `size` of its frames are in flight: published, and
neither analyzed (the recognizers publish `frame.analyzed.<camera>` for each frame they finish)
nor given up on. A frame is given up on:
- after `timeout_s` without its summary: it was lost with a worker that died (its queue goes
  with it), or rejected as corrupt; the window must not stay shut for good;
- when the connection to the broker was lost: summaries sent meanwhile are lost too.
A frame the broker returned (no recognizer's queue is bound yet: published `mandatory`) is kept
to be published again, in order, once a recognizer is there.
"""

from dataclasses import dataclass

from services.common.messages import FrameCaptured


@dataclass(frozen=True)
class InFlight:
    frame: FrameCaptured
    jpeg: bytes
    sent_at: float


class CreditWindow:
    def __init__(self, size: int, timeout_s: float) -> None:
        self.size = size
        self.timeout_s = timeout_s
        self._in_flight: dict[int, InFlight] = {}
        self._returned: dict[int, InFlight] = {}
        self.timed_out = 0  # frames given up on after timeout_s

    def __len__(self) -> int:
        return len(self._in_flight) + len(self._returned)

    def sent(self, frame: FrameCaptured, jpeg: bytes, now: float) -> None:
        self._in_flight[frame.seq] = InFlight(frame, jpeg, now)

    def analyzed(self, seq: int) -> None:
        self._in_flight.pop(seq, None)

    def returned(self, seq: int) -> None:
        """The broker returned this frame: no recognizer took it."""
        frame = self._in_flight.pop(seq, None)
        if frame is not None:
            self._returned[seq] = frame

    def forget(self, keep: int | None = None) -> None:
        """The connection was lost and with it the summaries on their way: start afresh (but
        for frame `keep`, published on the new connection)."""
        kept = self._in_flight.get(keep) if keep is not None else None
        self._in_flight.clear()
        if kept is not None and keep is not None:
            self._in_flight[keep] = kept

    def take_returned(self) -> list[InFlight]:
        """The returned frames, oldest first, to publish again (they count as in flight again
        once `sent`)."""
        frames = [self._returned[seq] for seq in sorted(self._returned)]
        self._returned.clear()
        return frames

    def has_room(self, now: float) -> bool:
        for seq, frame in list(self._in_flight.items()):
            if now - frame.sent_at >= self.timeout_s:
                del self._in_flight[seq]
                self.timed_out += 1
        return len(self) < self.size
