"""A lesson's script, before any pixel: seats, who sits where from which frame to which, and
who walks through when. Pure and deterministic from the random generator it is given.

Three scenes (issue 11 benchmarks the last two apart):
- `class`: students arrive, leave, two take turns at one seat; strangers and students of other
  classes walk along the front;
- `seated`: every present student sits in view for the whole lesson; the others walk through;
- `door`: a camera at a door: nobody sits, everyone (present students included) walks
  through once, one after another.

Times are frame indexes (`first` inclusive, `last` exclusive); the video has `fps` frames a
second. The layout is drawn for a 1280-wide frame and scaled to the lesson's width.
"""

from dataclasses import dataclass

import numpy as np

# (face centre y, face width, seats) per row, back to front, in a 1280x720 frame.
ROWS = ((170, 64, 10), (320, 80, 8), (480, 100, 7))
SCENES = ("class", "seated", "door")
# Walkers pass along the front of the room, left to right, larger (nearer the camera).
LANE_Y, LANE_FACE, LANE_SPEED = 640, 110, 200.0  # px, px, px per second
# The pasted photo region is this many times the face width (dlib's HOG box is ~65% of it).
PATCH_PER_FACE = 1 / 0.65


@dataclass(frozen=True)
class Seat:
    index: int
    row: int
    x: float  # face centre
    y: float
    face: float  # face width, px


@dataclass(frozen=True)
class Appearance:
    person: str  # Person.key
    kind: str  # seated | walker
    first: int  # first frame shown
    last: int  # first frame no longer shown
    seat: int | None = None  # seated only
    x0: float = 0.0  # walkers: face centre x at `first`
    speed: float = 0.0  # walkers: px per frame


@dataclass(frozen=True)
class Turn:
    """Two present students taking turns at one seat: `first` leaves, the seat stays empty
    a moment, then `second` sits there."""

    seat: int
    first: str
    second: str
    leaves: int  # first frame without `first`
    arrives: int  # first frame with `second`


def seats(width: int) -> list[Seat]:
    scale = width / 1280
    out: list[Seat] = []
    for row, (y, face, count) in enumerate(ROWS):
        spacing = 1280 / count
        for n in range(count):
            out.append(Seat(len(out), row, (n + 0.5) * spacing * scale, y * scale, face * scale))
    return out


def plan(
    rng: np.random.Generator,
    present: list[str],
    walkers: list[str],
    *,
    frames: int,
    fps: float,
    width: int,
    min_visible_s: float,
    turn_gap_s: float,
    scene: str = "class",
) -> tuple[list[Seat], list[Appearance], Turn | None]:
    """Seat the present students as the scene says and send the walkers through, one after
    another."""
    layout = seats(width)
    turn: Turn | None = None
    if scene == "class":
        appearances, turn = _class(rng, present, layout, frames, round(min_visible_s * fps), turn_gap_s * fps)
    elif scene == "seated":
        order = list(present)
        rng.shuffle(order)
        if len(order) > len(layout):
            raise ValueError("more present students than the seats can hold")
        chosen = rng.choice(len(layout), size=len(order), replace=False)
        appearances = [
            Appearance(key, "seated", 0, frames, int(seat)) for key, seat in zip(order, chosen, strict=True)
        ]
    elif scene == "door":
        appearances, walkers = [], [*present, *walkers]
    else:
        raise ValueError(f"unknown scene {scene!r} (one of {', '.join(SCENES)})")
    appearances += _walk(rng, walkers, frames, fps, width)
    appearances.sort(key=lambda a: (a.first, a.person))
    return layout, appearances, turn


def _class(  # noqa: PLR0917 (one private call site)
    rng: np.random.Generator,
    present: list[str],
    layout: list[Seat],
    frames: int,
    min_visible: int,
    gap_frames: float,
) -> tuple[list[Appearance], Turn | None]:
    """Present students arriving, leaving, and two taking turns at one seat."""
    gap = max(1, round(gap_frames))
    appearances: list[Appearance] = []
    order = list(present)
    rng.shuffle(order)
    free_at = dict.fromkeys(range(len(layout)), -(10**6))  # seat -> first frame it is free
    turn = None
    if len(order) >= 2:
        seat = int(rng.integers(len(layout)))
        first, second = order[0], order[1]
        arrive = int(rng.integers(0, max(1, frames // 8)))
        leaves = int(rng.integers(frames * 2 // 5, frames // 2 + 1))
        leaves = max(leaves, arrive + min_visible)
        arrives = leaves + gap
        if arrives + min_visible > frames:
            raise ValueError("the lesson is too short for two turns at one seat")
        appearances.append(Appearance(first, "seated", arrive, leaves, seat))
        appearances.append(Appearance(second, "seated", arrives, frames, seat))
        free_at[seat] = 10**9  # taken for the whole lesson
        turn = Turn(seat, first, second, leaves, arrives)
        order = order[2:]
    # The others: most are there from the start, some come late, some leave early (their
    # seats are then taken by late comers, a second after they are gone at the earliest).
    n = len(order)
    needed = max(0, n - (len(layout) - (1 if turn else 0)))
    early = max(round(0.2 * n), needed)
    late = max(round(0.2 * n), needed)
    kinds = ["early"] * early + ["late"] * min(late, n - early) + ["whole"] * max(0, n - early - late)
    wanted = []
    for key, kind in zip(order, kinds, strict=True):
        if kind == "late":
            start = int(rng.integers(frames * 3 // 10, frames * 6 // 10))
            end = frames
        else:
            start = int(rng.integers(0, max(1, frames // 5)))
            end = frames if kind == "whole" else int(rng.integers(frames * 2 // 5, frames * 7 // 10))
        wanted.append((start, max(end, min(frames, start + min_visible)), key))
    wanted.sort()
    for wanted_start, wanted_end, key in wanted:
        start, end = wanted_start, wanted_end
        free = [s for s, at in free_at.items() if at + gap <= start]
        if free:
            seat = int(free[int(rng.integers(len(free)))])
        else:  # every seat taken: the first to come free, a gap after its last occupant
            seat = min(free_at, key=lambda s: free_at[s])
            start = free_at[seat] + gap
            end = max(end, start + min_visible)
            if end > frames:
                raise ValueError("more present students than the seats can hold")
        appearances.append(Appearance(key, "seated", start, end, seat))
        free_at[seat] = end
    return appearances, turn


def _walk(
    rng: np.random.Generator, walkers: list[str], frames: int, fps: float, width: int
) -> list[Appearance]:
    """Walkers: one after another along the lane, so that no two overlap."""
    appearances: list[Appearance] = []
    scale = width / 1280
    patch = LANE_FACE * PATCH_PER_FACE * scale
    speed = LANE_SPEED * scale / fps
    crossing = int(np.ceil((width + patch) / speed))  # frames from entering to gone
    spacing = int(np.ceil(patch / speed)) + 2
    if walkers:
        window = frames - crossing - 1
        if window < spacing * (len(walkers) - 1):
            raise ValueError("the lesson is too short for so many walkers")
        starts = sorted(int(s) for s in rng.choice(window - spacing * (len(walkers) - 1) + 1, len(walkers)))
        starts = [s + spacing * i for i, s in enumerate(starts)]
        order = list(walkers)
        rng.shuffle(order)
        for key, start in zip(order, starts, strict=True):
            appearances.append(Appearance(key, "walker", start, start + crossing, None, -patch / 2, speed))
    return appearances


def face_centre(appearance: Appearance, layout: list[Seat], frame: int, height: int) -> tuple[float, float]:
    if appearance.kind == "seated":
        seat = layout[appearance.seat or 0]
        return seat.x, seat.y
    return appearance.x0 + appearance.speed * (frame - appearance.first), LANE_Y * height / 720


def face_width(appearance: Appearance, layout: list[Seat], width: int) -> float:
    if appearance.kind == "seated":
        return layout[appearance.seat or 0].face
    return LANE_FACE * width / 1280
