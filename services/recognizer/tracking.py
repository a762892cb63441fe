"""Short-term face tracking inside one worker: fewer encodings, steadier names.

An encoding costs ~75 ms, detection ~18 ms (PERFORMANCE-NOTES.md), and a student in front
of a camera shows the same face in the same place frame after frame. A detected face whose
box overlaps (IoU >= `min_iou`) a face this worker named in a frame at most `max_gap_s`
earlier continues that face's track:
- within `refresh_s` of the track's last encoding it keeps the name with no encoding at all;
- after that it is encoded again. A confident match (the normal rule) renames or confirms
  the track. A match that is not confident but still has the track's student as the closest,
  within `keep_tolerance`, keeps the name (hysteresis: a head turned away for a moment does
  not make a student unknown). Anything else ends the track: the face is unknown.
A face that is clearly nobody (farther than `keep_tolerance` from every student) starts an
unknown track, re-checked only every `unknown_refresh_s`: a visitor standing in view costs
an encoding twice a second, not in every frame, while a face close to a name (between the
tolerance and `keep_tolerance`) is still encoded in every frame, each a chance to name it.
Safety: a face that starts a named track is always named by the strict rule, so strangers
never inherit a name; events named by a track say `tracked=true` and the recorder's vote
counts only strictly named sightings; a gallery change forgets every track.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.common.messages import FaceBox
from services.faces.matching import Identity, Match


def iou(a: FaceBox, b: FaceBox) -> float:
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    return overlap / (a.width * a.height + b.width * b.height - overlap)


@dataclass
class Track:
    box: FaceBox
    identity: Identity | None  # None: a face that is clearly nobody enrolled
    distance: float | None  # of the track's last encoding
    margin: float | None
    seen_at: datetime
    encoded_at: datetime


@dataclass(frozen=True)
class Named:
    """A face's outcome for this frame: its track (whose identity None means unknown), and
    whether the strict rule named it in this frame (a vote) or its track did."""

    track: Track
    strict: bool


@dataclass
class FaceTracker:
    refresh_s: float = 1.0
    max_gap_s: float = 0.5
    min_iou: float = 0.3
    keep_tolerance: float = 0.60
    unknown_refresh_s: float = 0.5
    _tracks: dict[str, list[Track]] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.refresh_s > 0

    def continuing(self, camera_id: str, at: datetime, boxes: list[FaceBox]) -> list[Track | None]:
        """For each box, the track it continues (greedy one-to-one by overlap), or None."""
        if not self.enabled:
            return [None] * len(boxes)
        gap = timedelta(seconds=self.max_gap_s)
        live = [t for t in self._tracks.get(camera_id, []) if timedelta(0) <= at - t.seen_at <= gap]
        pairs = sorted(
            ((iou(box, track.box), b, t) for b, box in enumerate(boxes) for t, track in enumerate(live)),
            reverse=True,
        )
        chosen: list[Track | None] = [None] * len(boxes)
        used: set[int] = set()
        for overlap, b, t in pairs:
            if overlap < self.min_iou:
                break
            if chosen[b] is None and t not in used:
                chosen[b] = live[t]
                used.add(t)
        return chosen

    def needs_encoding(self, track: Track | None, at: datetime) -> bool:
        if track is None:
            return True
        refresh = self.refresh_s if track.identity is not None else self.unknown_refresh_s
        return at - track.encoded_at >= timedelta(seconds=refresh)

    def carry(self, track: Track, box: FaceBox, at: datetime) -> Named:
        """The track's name for a face that needs no encoding in this frame."""
        track.box, track.seen_at = box, at
        return Named(track, strict=False)

    def resolve(self, track: Track | None, box: FaceBox, match: Match, at: datetime) -> Named | None:
        """The outcome of a freshly encoded face, given the track it continues; None: unknown
        and not worth tracking (close to a name: encode it again in the next frame)."""
        if match.identity is not None and match.best_distance is not None:
            if track is None or track.identity != match.identity:
                track = Track(box, match.identity, match.best_distance, match.margin, at, at)
            else:
                track.distance, track.margin, track.encoded_at = match.best_distance, match.margin, at
            track.box, track.seen_at = box, at
            return Named(track, strict=True)
        if (
            track is not None
            and match.closest == track.identity
            and match.best_distance is not None
            and match.best_distance <= self.keep_tolerance
        ):
            track.distance, track.margin, track.encoded_at = match.best_distance, match.margin, at
            track.box, track.seen_at = box, at
            return Named(track, strict=False)
        if match.best_distance is None or match.best_distance > self.keep_tolerance:
            return Named(Track(box, None, match.best_distance, None, at, at), strict=False)  # clearly nobody
        return None

    def update(self, camera_id: str, at: datetime, named: list[Named], continued: list[Track | None]) -> None:
        """Keep this frame's named faces, and older tracks no face of this frame continued
        (they may reappear in the next frame); a continued track that lost its name ends."""
        if not self.enabled:
            return
        gap = timedelta(seconds=self.max_gap_s)
        current = [n.track for n in named]
        done = [*current, *(t for t in continued if t is not None)]
        older = [
            t
            for t in self._tracks.get(camera_id, [])
            if at - t.seen_at <= gap and all(t is not d for d in done)
        ]
        self._tracks[camera_id] = [*current, *older]

    def forget(self) -> None:
        self._tracks.clear()
