from datetime import UTC, datetime, timedelta

from services.common.messages import FaceBox
from services.faces.matching import Identity, Match
from services.recognizer.tracking import FaceTracker, Named, iou

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
ADA = Identity(1, "S1", "Ada")
BOB = Identity(2, "S2", "Bob")


def box(left: int, top: int = 0, size: int = 100) -> FaceBox:
    return FaceBox(top=top, right=left + size, bottom=top + size, left=left)


def ms(n: int) -> datetime:
    return T0 + timedelta(milliseconds=n)


def confident(identity: Identity, distance: float = 0.4) -> Match:
    return Match(identity, distance, 0.8, identity)


def doubtful(closest: Identity, distance: float) -> Match:
    return Match(None, distance, 0.9, closest)


def step(
    tracker: FaceTracker, at: datetime, boxes: list[FaceBox], matches: list[Match]
) -> list[Named | None]:
    """One frame as the worker runs it; `matches` are used in order for faces that need encoding."""
    tracks = tracker.continuing("cam", at, boxes)
    pending = iter(matches)
    named: list[Named | None] = []
    for b, track in zip(boxes, tracks, strict=True):
        if track is not None and not tracker.needs_encoding(track, at):
            named.append(tracker.carry(track, b, at))
        else:
            named.append(tracker.resolve(track, b, next(pending), at))
    tracker.update("cam", at, [n for n in named if n], tracks)
    return named


def test_iou() -> None:
    assert iou(box(0), box(0)) == 1.0
    assert iou(box(0), box(200)) == 0.0
    assert round(iou(box(0), box(50)), 3) == round(5000 / 15000, 3)


def test_a_new_face_needs_the_strict_rule_and_then_keeps_its_name_without_encoding() -> None:
    tracker = FaceTracker()
    [first] = step(tracker, T0, [box(0)], [confident(ADA)])
    assert first is not None and first.strict and first.track.identity == ADA
    [second] = step(tracker, ms(100), [box(10)], [])  # no match consumed: no encoding
    assert second is not None and not second.strict and second.track.identity == ADA


def test_strangers_never_inherit_a_name() -> None:
    tracker = FaceTracker()
    [face] = step(tracker, T0, [box(0)], [doubtful(ADA, 0.6)])  # close-ish to Ada, not confident
    assert face is None
    [again] = step(tracker, ms(100), [box(0)], [doubtful(ADA, 0.6)])
    assert again is None  # still encoded and still unknown: no track was started


def test_a_track_is_re_verified_every_refresh_period_with_hysteresis() -> None:
    tracker = FaceTracker(refresh_s=1.0, keep_tolerance=0.65)
    step(tracker, T0, [box(0)], [confident(ADA)])
    for n in range(1, 10):
        assert step(tracker, ms(100 * n), [box(0)], []) != [None]
    [kept] = step(tracker, ms(1000), [box(0)], [doubtful(ADA, 0.62)])  # head turned: still Ada's track
    assert kept is not None and kept.track.identity == ADA and not kept.strict
    [ended] = step(tracker, ms(2000), [box(0)], [doubtful(ADA, 0.70)])  # too far even for a track
    assert ended is not None and ended.track.identity is None  # Ada's name is gone: unknown now
    [after] = tracker.continuing("cam", ms(2100), [box(0)])
    assert after is not None and after.identity is None


def test_a_track_whose_face_now_looks_like_someone_else_is_renamed_or_ended() -> None:
    tracker = FaceTracker(refresh_s=1.0)
    step(tracker, T0, [box(0)], [confident(ADA)])
    [renamed] = step(tracker, ms(1000), [box(0)], [confident(BOB)])
    assert renamed is not None and renamed.track.identity == BOB and renamed.strict
    [ended] = step(tracker, ms(2000), [box(0)], [doubtful(ADA, 0.5)])  # closest is Ada, not Bob
    assert ended is None


def test_names_are_carried_only_on_the_same_camera_close_in_time_and_place() -> None:
    tracker = FaceTracker(max_gap_s=0.5, min_iou=0.5)
    step(tracker, T0, [box(0)], [confident(ADA)])
    assert tracker.continuing("other-cam", ms(100), [box(0)]) == [None]
    assert tracker.continuing("cam", ms(100), [box(60)]) == [None]  # IoU 0.25
    assert tracker.continuing("cam", ms(600), [box(0)]) == [None]  # gap too long


def test_two_faces_never_share_one_track() -> None:
    tracker = FaceTracker()
    step(tracker, T0, [box(0)], [confident(ADA)])
    first, second = tracker.continuing("cam", ms(100), [box(5), box(0)])
    assert first is None and second is not None  # the better overlap wins


def test_forget_and_refresh_zero() -> None:
    tracker = FaceTracker()
    step(tracker, T0, [box(0)], [confident(ADA)])
    tracker.forget()
    assert tracker.continuing("cam", ms(100), [box(0)]) == [None]
    off = FaceTracker(refresh_s=0)
    step(off, T0, [box(0)], [confident(ADA)])
    assert off.continuing("cam", ms(10), [box(0)]) == [None]


def test_a_face_clearly_nobody_is_rechecked_twice_a_second_not_every_frame() -> None:
    tracker = FaceTracker(keep_tolerance=0.6, unknown_refresh_s=0.5)
    [first] = step(tracker, T0, [box(0)], [doubtful(ADA, 0.8)])
    assert first is not None and first.track.identity is None  # unknown, but tracked
    [carried] = step(tracker, ms(200), [box(0)], [])  # no encoding consumed
    assert carried is not None and carried.track.identity is None
    [rechecked] = step(tracker, ms(500), [box(0)], [confident(ADA)])  # encoded again, now named
    assert rechecked is not None and rechecked.track.identity == ADA and rechecked.strict


def test_a_face_close_to_a_name_is_encoded_again_in_every_frame() -> None:
    tracker = FaceTracker(keep_tolerance=0.6)
    step(tracker, T0, [box(0)], [doubtful(ADA, 0.58)])
    assert tracker.continuing("cam", ms(33), [box(0)]) == [None]  # no track: a fresh chance each frame
