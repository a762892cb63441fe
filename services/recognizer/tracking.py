"""Face tracks inside one worker: who a face is is decided over its track, not per frame.

A worker receives every frame of the cameras routed to it, in order (services.common.topology:
camera affinity), so it can follow a face from frame to frame. A detected face continues the
track whose box it overlaps most (IoU >= `min_iou`, one to one) in the camera's previous frame;
otherwise it starts a new track. A track ends as soon as a frame of its camera shows no face
in its place (`max_misses` frames, default none), or after too long without a frame of that
camera, so a name never moves to the next person who sits there.

Across a gap in the camera's time longer than `max_gap_s` (under overload a camera's frames
reach the worker seconds apart: only the newest waits, cameras in turn,
services/recognizer/scheduling.py) nobody was watching the seat, so a face continues its track
only if it has barely moved (`still_iou`): a seated student has, a person walking past rarely
lands on the previous one's box. Time alone ends a track only after `slow_gap_s`. A gap longer
than the camera's usual pace at this worker (`CameraPace`: `GAP_INTERVALS` of its usual
interval) does not end it but makes its next frame a fresh look (`recheck`), so a swap in a
seat nobody watched is caught by appearance before any event carries the name. Ending tracks
on such gaps instead fed on itself: one costly frame (every face new) delayed the next frame of
each of the worker's cameras past its pace, which ended their tracks, which made those frames
costly too (a seated class at 5 cameras per worker: 3.4 new tracks a frame, 5.7 looks a frame
instead of 2.6).

A face that lost its place is not lost: a person walking past an overloaded camera moves
further between two of its analyzed frames than their face is wide, so no box overlaps and
every frame would start a new track that never gathers the looks a name needs (a door camera
at 8 cameras on 2 cores marked 2 of 48 present). A new track is encoded anyway, so its first
look is compared with the looks of the tracks of its camera that ended within `slow_gap_s`
(`reidentify`): one whose last look is within `reid_distance` (far below the tolerance: the
same face in two frames, not two people who look alike) and whose box is within `reid_reach`
face widths continues there, with its looks and its name. Two different people are rarely
that close, and if they were, the next looks would have to agree with the name to keep it.

Encodings are what cost (~75 ms each, docs/performance-notes.md), so a track is encoded:
- in every frame until its decision (services.faces.decision) names a student;
- at once after a gap beyond its camera's pace (`recheck`, above);
- once named, every `refresh_s` to re-verify it: a look that names somebody else, or whose
  closest student is someone else or farther than `keep_tolerance`, ends the name and the
  track starts deciding again from that look;
- a track with a full window and still no name, every `unknown_refresh_s` (a visitor standing
  in view costs a couple of encodings a second, not one per frame).
Both waits also count the track's frames (`refresh_frames`, `unknown_refresh_frames`): under
overload a camera's frames reach the worker seconds apart, and a wait in seconds alone would
re-encode every named face in every frame, tripling the cost of a frame exactly when frames
are scarce (issue 11); counted in frames too, a frame costs about the same at any rate.
Every identity event is one fresh encoding of a track, with the distance measured in that
frame (never a carried one) and the track's evidence; frames in between publish nothing but
the frame summary.
"""

import statistics
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from services.common.messages import FaceBox
from services.faces.decision import Decision, DecisionRule, fuse
from services.faces.matching import Match, Matcher
from services.recognizer.crops import CropBudget


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
    seen_at: datetime  # media time of the last frame that showed this face
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    misses: int = 0  # frames of its camera since, without its face
    frames_since_look: int = 0  # frames showing this face since its last fresh look
    matches: list[Match] = field(default_factory=list)  # fresh looks, the newest last
    encodings: list[np.ndarray] = field(default_factory=list)  # of those looks
    encoded_at: datetime | None = None
    decision: Decision | None = None
    crops: CropBudget = field(default_factory=CropBudget)  # face crops sent for review
    recheck: bool = False  # continued across a gap beyond its camera's pace: look again now

    @property
    def named(self) -> bool:
        return self.decision is not None and self.decision.identity is not None


GAP_INTERVALS = 4.0  # unevenly served (one costly frame delays the next of each camera): no fresh look
LOST_PER_CAMERA = 50  # ended tracks kept for reidentify: a crowded camera's recent few
PACE_SAMPLES = 8  # intervals remembered per camera; the median of at least 3 sets its pace


@dataclass
class CameraPace:
    """The media-time interval between the frames of one camera that this worker analyzed."""

    last_at: datetime | None = None
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=PACE_SAMPLES))

    def usual_gap(self, max_gap_s: float, slow_gap_s: float) -> float:
        """The longest gap that is this camera's usual pace at this worker: `max_gap_s`, or its
        usual interval (before this frame: a stall cannot excuse itself) times GAP_INTERVALS,
        at most `slow_gap_s`. Tracks continued across a longer one are looked at again."""
        if len(self.intervals) < 3:
            return max_gap_s
        return max(max_gap_s, min(slow_gap_s, GAP_INTERVALS * statistics.median(self.intervals)))

    def record(self, at: datetime) -> None:
        if self.last_at is not None and at > self.last_at:
            self.intervals.append((at - self.last_at).total_seconds())
        if self.last_at is None or at > self.last_at:
            self.last_at = at


@dataclass
class FaceTracker:
    rule: DecisionRule = field(default_factory=DecisionRule)
    refresh_s: float = 1.0
    unknown_refresh_s: float = 0.5
    refresh_frames: int = 1
    unknown_refresh_frames: int = 1
    max_gap_s: float = 1.5
    slow_gap_s: float = 30.0
    min_iou: float = 0.3
    still_iou: float = 0.6
    max_misses: int = 0
    keep_tolerance: float = 0.60
    reid_distance: float = 0.40  # 0: a track that lost its place is never continued elsewhere
    reid_reach: float = 4.0  # face widths
    _tracks: dict[str, list[Track]] = field(default_factory=dict)
    _paces: dict[str, CameraPace] = field(default_factory=dict)
    _lost: dict[str, list[Track]] = field(default_factory=dict)  # ended, with looks, within the gap

    def step(self, camera_id: str, at: datetime, boxes: list[FaceBox]) -> list[Track]:
        """The track of each box in this frame of the camera (continued or new); tracks whose
        face is gone from its place, or whose camera was not seen for too long, end."""
        pace = self._paces.setdefault(camera_id, CameraPace())
        usual = timedelta(seconds=pace.usual_gap(self.max_gap_s, self.slow_gap_s))
        pace.record(at)
        gap = timedelta(seconds=max(self.max_gap_s, self.slow_gap_s))
        live = [t for t in self._tracks.get(camera_id, []) if timedelta(0) <= at - t.seen_at <= gap]
        fast = timedelta(seconds=self.max_gap_s)
        needed = [self.min_iou if at - t.seen_at <= fast else max(self.min_iou, self.still_iou) for t in live]
        pairs = sorted(
            ((iou(box, track.box), b, t) for b, box in enumerate(boxes) for t, track in enumerate(live)),
            key=lambda p: p[0],
            reverse=True,
        )
        chosen: list[Track | None] = [None] * len(boxes)
        used: set[int] = set()
        for overlap, b, t in pairs:
            if overlap < self.min_iou:
                break
            if overlap < needed[t]:
                continue
            if chosen[b] is None and t not in used:
                chosen[b] = live[t]
                used.add(t)
        tracks = []
        for box, continued in zip(boxes, chosen, strict=True):
            track = continued or Track(box, at)
            if continued is not None:
                track.frames_since_look += 1
                track.recheck = track.recheck or at - track.seen_at > usual
            track.box, track.seen_at, track.misses = box, at, 0
            tracks.append(track)
        missed = [t for i, t in enumerate(live) if i not in used]
        for track in missed:
            track.misses += 1
        self._tracks[camera_id] = [*tracks, *(t for t in missed if t.misses <= self.max_misses)]
        ended = [t for t in missed if t.misses > self.max_misses and t.encodings]
        recent = [t for t in self._lost.get(camera_id, []) if at - t.seen_at <= gap]
        self._lost[camera_id] = [*ended, *recent][:LOST_PER_CAMERA]
        return tracks

    def reidentify(self, camera_id: str, track: Track, encoding: np.ndarray) -> bool:
        """Whether a new track's first look is the face of a track of this camera that just
        ended nearby; if so, the new track continues that one (its id, looks and name)."""
        if self.reid_distance <= 0 or track.encodings or track.encoded_at is not None:
            return False
        best: tuple[float, Track] | None = None
        for old in self._lost.get(camera_id, []):
            reach = self.reid_reach * max(old.box.width, track.box.width)
            if _centre_distance(old.box, track.box) > reach:
                continue
            distance = float(np.linalg.norm(old.encodings[-1] - encoding))
            if distance <= self.reid_distance and (best is None or distance < best[0]):
                best = (distance, old)
        if best is None:
            return False
        old = best[1]
        self._lost[camera_id].remove(old)
        track.id, track.matches, track.encodings = old.id, old.matches, old.encodings
        track.encoded_at, track.decision, track.crops = old.encoded_at, old.decision, old.crops
        track.frames_since_look = old.frames_since_look + 1
        return True

    def needs_encoding(self, track: Track, at: datetime) -> bool:
        if track.encoded_at is None or track.recheck:
            return True
        if track.named:
            refresh, frames = self.refresh_s, self.refresh_frames
        elif len(track.matches) < self.rule.window:
            return True  # still deciding: every frame is a look
        else:
            refresh, frames = self.unknown_refresh_s, self.unknown_refresh_frames
        return track.frames_since_look >= frames and at - track.encoded_at >= timedelta(seconds=refresh)

    def observe(
        self, track: Track, encoding: np.ndarray, match: Match, at: datetime, matcher: Matcher | None = None
    ) -> Decision:
        """Add a fresh look (its encoding and match) to the track and decide again; with a
        matcher and a fusing rule, on the fused embedding of the track's looks."""
        track.encoded_at, track.frames_since_look, track.recheck = at, 0, False
        previous = track.decision
        was_named = previous is not None and previous.identity is not None
        consistent = was_named and previous is not None and self._consistent(previous, match)
        if was_named and not consistent:
            track.matches, track.encodings = [], []  # the name does not carry over an inconsistent look
        track.matches = [*track.matches, match][-self.rule.window :]
        track.encodings = [*track.encodings, encoding][-self.rule.window :]
        fused = None
        if self.rule.fused and matcher is not None:
            [fused] = matcher.match(fuse(track.encodings))
        decision = self.rule.decide(track.matches, fused)
        if consistent and previous is not None and decision.identity is None:
            decision = _keep(previous, decision)  # hysteresis: a turned head keeps the name
        track.decision = decision
        return decision

    def _consistent(self, decision: Decision, match: Match) -> bool:
        if match.identity is not None:
            return match.identity == decision.identity
        return (
            match.closest == decision.identity
            and match.best_distance is not None
            and match.best_distance <= self.keep_tolerance
        )

    def forget(self) -> None:
        self._tracks.clear()
        self._lost.clear()

    def live_tracks(self, camera_id: str) -> list[Track]:
        return list(self._tracks.get(camera_id, []))


def _centre_distance(a: FaceBox, b: FaceBox) -> float:
    return float(
        np.hypot((a.left + a.right - b.left - b.right) / 2, (a.top + a.bottom - b.top - b.bottom) / 2)
    )


def _keep(named: Decision, now: Decision) -> Decision:
    """The named decision, with the evidence of the looks now in the window."""
    return Decision(
        identity=named.identity,
        fresh=now.fresh,
        agreeing=named.agreeing,
        best_distance=named.best_distance,
        mean_distance=named.mean_distance,
        margin=named.margin,
        tier=named.tier,
        contested=False,
        candidate=named.identity,
    )
