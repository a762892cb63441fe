"""Tracks and the per-track decision, as pure logic (no dlib): what a worker does with the
boxes and matches of successive frames of one camera."""

from datetime import UTC, datetime, timedelta

import numpy as np

from services.common.messages import FaceBox
from services.faces.decision import DecisionRule, fuse
from services.faces.matching import Gallery, Identity, Match, Matcher
from services.recognizer.settings import RecognizerSettings
from services.recognizer.tracking import FaceTracker, Track, iou

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
ADA = Identity(1, "S1", "Ada")
BOB = Identity(2, "S2", "Bob")


def box(left: int, top: int = 0, size: int = 100) -> FaceBox:
    return FaceBox(top=top, right=left + size, bottom=top + size, left=left)


def at(n: int) -> datetime:
    """Frame n of a 5 frames/s camera."""
    return T0 + timedelta(milliseconds=200 * n)


def confident(identity: Identity, distance: float = 0.40) -> Match:
    return Match(identity, distance, 0.8, identity)


def doubtful(closest: Identity, distance: float) -> Match:
    return Match(None, distance, 0.9, closest)


def face_of(match: Match) -> np.ndarray:
    """The encoding of a look: each student's face its own point, 0.6 from any other's."""
    encoding = np.zeros(128)
    if match.closest is not None:
        encoding[match.closest.student_id] = 0.6 / np.sqrt(2)
    return encoding


def frame(tracker: FaceTracker, n: int, faces: list[tuple[FaceBox, Match]]) -> list[Track]:
    """One frame as the worker runs it: the match of a face is used only if it is encoded."""
    tracks = tracker.step("cam", at(n), [b for b, _ in faces])
    for track, (_, match) in zip(tracks, faces, strict=True):
        if tracker.needs_encoding(track, at(n)):
            tracker.reidentify("cam", track, face_of(match))
            tracker.observe(track, face_of(match), match, at(n))  # no matcher: the looks' votes decide
    return tracks


def test_iou() -> None:
    assert iou(box(0), box(0)) == 1.0
    assert iou(box(0), box(200)) == 0.0
    assert 0.3 < iou(box(0), box(40)) < 0.5


def test_a_track_is_named_only_when_enough_fresh_looks_agree() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4))
    [first] = frame(tracker, 0, [(box(0), confident(ADA))])
    assert not first.named  # one look is not enough
    [second] = frame(tracker, 1, [(box(5), confident(ADA))])
    assert second is first and second.named
    assert second.decision is not None and second.decision.agreeing == 2


def test_a_stranger_named_once_among_doubtful_looks_stays_unknown() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4))
    looks = [confident(ADA, 0.53), doubtful(ADA, 0.58), doubtful(BOB, 0.57), doubtful(ADA, 0.59)]
    for n, look in enumerate(looks):
        [track] = frame(tracker, n, [(box(0), look)])
    assert not track.named


def test_two_students_named_in_one_track_name_nobody() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4))
    for n, look in enumerate([confident(ADA), confident(BOB), confident(ADA)]):
        [track] = frame(tracker, n, [(box(0), look)])
    assert track.decision is not None and track.decision.contested and not track.named


def test_a_name_never_moves_to_the_next_person_who_sits_there() -> None:
    """Ada leaves her seat, the seat is empty for a frame, Bob sits down in the same place."""
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), refresh_s=1.0)
    for n in range(3):
        [ada] = frame(tracker, n, [(box(0), confident(ADA))])
    assert ada.named
    frame(tracker, 3, [])  # nobody there: Ada's track ends
    [bob] = frame(tracker, 4, [(box(0), confident(BOB))])
    assert bob is not ada and not bob.named  # a new track, deciding from scratch
    [bob] = frame(tracker, 5, [(box(0), confident(BOB))])
    assert bob.decision is not None and bob.decision.identity == BOB


def test_a_swap_without_an_empty_frame_is_caught_by_the_reverification() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), refresh_s=0.0)
    for n in range(2):
        [track] = frame(tracker, n, [(box(0), confident(ADA))])
    assert track.named
    [track] = frame(tracker, 2, [(box(0), confident(BOB))])  # same place, another face
    assert not track.named  # the name does not carry over an inconsistent look


def test_a_named_track_is_reverified_every_refresh_and_keeps_its_name_through_a_turned_head() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), refresh_s=1.0)
    encoded = []
    for n in range(12):
        look = doubtful(ADA, 0.57) if n >= 5 else confident(ADA)
        [track] = frame(tracker, n, [(box(0), look)])
        encoded.append(track.encoded_at == at(n))
    # Every frame until named (frames 0-1), then once a second (frames 6 and 11 at 5 frames/s).
    assert encoded == [True, True, False, False, False, False, True, False, False, False, False, True]
    assert track.named


def test_a_track_ends_after_the_slow_gap_in_the_cameras_time() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), max_gap_s=1.0, slow_gap_s=5.0)
    for n in range(2):
        [ada] = frame(tracker, n, [(box(0), confident(ADA))])
    [later] = frame(tracker, 10, [(box(0), confident(ADA))])  # 1.8 s later: still her track
    assert later is ada
    [much_later] = frame(tracker, 40, [(box(0), confident(ADA))])  # 6 s later
    assert much_later is not ada


def test_unknown_faces_are_looked_at_less_often_once_the_window_is_full() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=3), unknown_refresh_s=0.5)
    encoded = []
    for n in range(8):
        [track] = frame(tracker, n, [(box(0), doubtful(ADA, 0.7))])
        encoded.append(track.encoded_at == at(n))
    assert encoded == [True, True, True, False, False, True, False, False]


def test_the_decision_reports_thin_evidence_as_check() -> None:
    rule = DecisionRule(agree=2, window=4, check_distance=0.45, check_margin=0.08)
    sure = rule.decide([confident(ADA, 0.35), confident(ADA, 0.38)])
    close = rule.decide([confident(ADA, 0.47), confident(ADA, 0.49)])
    thin = rule.decide([Match(ADA, 0.35, 0.40, ADA), confident(ADA, 0.35)])
    assert (sure.tier, close.tier, thin.tier) == ("confident", "check", "check")
    assert sure.mean_distance is not None and abs(sure.mean_distance - 0.365) < 1e-9
    assert thin.margin is not None and abs(thin.margin - 0.05) < 1e-9


def test_each_camera_has_its_own_tracks() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=1, window=1))
    [a] = tracker.step("cam-a", at(0), [box(0)])
    [b] = tracker.step("cam-b", at(0), [box(0)])
    assert a is not b
    [a_again] = tracker.step("cam-a", at(1), [box(0)])
    assert a_again is a


def test_fusing_looks_names_a_student_each_look_only_nearly_matches() -> None:
    """Two looks 0.52 away on either side of Ada: neither is within 0.5, their fusion is."""
    ada = np.zeros(128)
    ada[0] = 1.0
    gallery = Matcher(Gallery.from_rows([(ADA, ada), (BOB, -ada)]), tolerance=0.5, margin=0.08)
    left, right = ada.copy(), ada.copy()
    left[1], right[1] = 0.52, -0.52
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4))
    looks = gallery.match([left, right])
    assert all(m.identity is None for m in looks)
    [track] = tracker.step("cam", at(0), [box(0)])
    tracker.observe(track, left, looks[0], at(0), gallery)
    [track] = tracker.step("cam", at(1), [box(0)])
    decision = tracker.observe(track, right, looks[1], at(1), gallery)
    assert decision.identity == ADA


def test_a_fused_name_is_refused_when_a_look_names_someone_else() -> None:
    rule = DecisionRule(agree=2, window=4)
    decision = rule.decide([confident(ADA), confident(BOB), confident(ADA)], fused=confident(ADA))
    assert decision.identity is None and decision.contested


ROSTER_RULE = DecisionRule(agree=3, window=4, roster_tolerance=0.50, roster_margin=0.05)


def test_the_roster_rule_proposes_a_student_the_strict_rule_leaves_unknown() -> None:
    """Fused 0.49 from Ada, 0.06 ahead of Bob: not a name (0.47 / 0.08), a roster candidate."""
    looks = [doubtful(ADA, 0.49)] * 3
    decision = ROSTER_RULE.decide(looks, fused=Match(None, 0.49, 0.55, ADA))
    assert decision.identity is None and decision.roster_candidate == ADA
    assert decision.agreeing == 3 and decision.best_distance == 0.49


def test_the_roster_rule_needs_its_tolerance_margin_enough_looks_and_no_other_name() -> None:
    assert ROSTER_RULE.decide([doubtful(ADA, 0.52)] * 3, Match(None, 0.52, 0.7, ADA)).roster_candidate is None
    assert (
        ROSTER_RULE.decide([doubtful(ADA, 0.49)] * 3, Match(None, 0.49, 0.52, ADA)).roster_candidate is None
    )
    assert ROSTER_RULE.decide([doubtful(ADA, 0.49)] * 2, Match(None, 0.49, 0.6, ADA)).roster_candidate is None
    bob_once = [doubtful(ADA, 0.49), confident(BOB), doubtful(ADA, 0.49)]
    assert ROSTER_RULE.decide(bob_once, Match(None, 0.49, 0.6, ADA)).roster_candidate is None
    off = DecisionRule(agree=3, window=4)
    assert off.decide([doubtful(ADA, 0.49)] * 3, Match(None, 0.49, 0.6, ADA)).roster_candidate is None


def test_a_named_track_has_no_roster_candidate() -> None:
    decision = ROSTER_RULE.decide([confident(ADA)] * 3, fused=confident(ADA))
    assert decision.identity == ADA and decision.roster_candidate is None


def test_the_roster_rule_settings_reach_the_decision() -> None:
    rule = RecognizerSettings(recognizer_roster_tolerance=0.51, recognizer_roster_margin=0.04).decision_rule()
    assert (rule.roster_tolerance, rule.roster_margin) == (0.51, 0.04)
    assert RecognizerSettings(recognizer_roster_tolerance=0).decision_rule().roster_tolerance is None


def test_a_fused_embedding_keeps_the_looks_length() -> None:
    a, b = np.zeros(128), np.zeros(128)
    a[0], b[1] = 1.0, 1.0
    assert abs(np.linalg.norm(fuse([a, b])) - 1.0) < 1e-9


def test_under_overload_a_named_track_is_reverified_every_few_frames_not_in_every_frame() -> None:
    # The worker gets this camera's frames 1.2 s apart (frames 0, 6, 12...): a wait of a second
    # alone re-encodes the face in every frame; counted in frames too, in one frame of five.
    def run(refresh_frames: int) -> list[bool]:
        tracker = FaceTracker(
            rule=DecisionRule(agree=2, window=4), refresh_s=1.0, refresh_frames=refresh_frames
        )
        encoded = []
        for n in range(0, 72, 6):
            [track] = frame(tracker, n, [(box(0), confident(ADA))])
            encoded.append(track.encoded_at == at(n))
        assert track.named
        return encoded

    assert run(refresh_frames=1) == [True] * 12
    assert run(refresh_frames=5) == [
        True,
        True,
        False,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
        False,
        True,
    ]


def test_the_settings_count_refreshes_in_frames_by_default() -> None:
    tracker = RecognizerSettings().tracker()
    assert (tracker.refresh_frames, tracker.unknown_refresh_frames) == (5, 3)


def slow(tracker: FaceTracker, frames: range, faces: list[tuple[FaceBox, Match]]) -> list[list[Track]]:
    """The camera's frames n of `frames` as an overloaded worker gets them (13 apart: 2.6 s)."""
    return [frame(tracker, n, faces) for n in frames]


def test_under_overload_tracks_follow_the_cameras_slower_pace() -> None:
    # Frames 2.6 s apart, beyond the 1.5 s gap at full rate: a seated student keeps one track,
    # named after 2 looks; each frame is a fresh look until the worker knows the camera's pace
    # (3 intervals), then one frame in five, instead of deciding from scratch in every frame.
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), refresh_s=1.0, refresh_frames=5)
    ids, encoded = [], []
    for n in range(0, 13 * 12, 13):
        [track] = frame(tracker, n, [(box(0), confident(ADA))])
        ids.append(track.id)
        encoded.append(track.encoded_at == at(n))
    assert len(set(ids)) == 1 and track.named
    assert encoded == [True] * 4 + [False, False, False, False, True, False, False, False]


def test_a_frame_later_than_the_cameras_pace_is_a_fresh_look_at_every_track() -> None:
    """Nobody watched the seat for longer than usual: a still face keeps its track and name,
    but is looked at again at once, so someone else who sat down exactly there is caught."""
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), refresh_frames=5)
    *_, [ada] = slow(tracker, range(0, 13 * 6, 13), [(box(0), confident(ADA))])
    assert ada.named and not tracker.needs_encoding(ada, at(13 * 6))
    [late] = frame(tracker, 13 * 6 + 60, [(box(0), confident(BOB))])  # 14.6 s: over 5 times the pace
    assert late is ada and late.encoded_at == at(13 * 6 + 60) and not late.named


def test_a_stall_far_beyond_the_cameras_pace_still_ends_its_tracks() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), max_gap_s=1.5, slow_gap_s=10.0)
    [[ada], *_] = slow(tracker, range(0, 13 * 5, 13), [(box(0), confident(ADA))])
    [later] = frame(tracker, 13 * 4 + 60, [(box(0), confident(ADA))])  # 12 s without a frame
    assert later is not ada


def test_across_a_slow_gap_only_a_face_that_barely_moved_keeps_its_track() -> None:
    """Nobody watched the seat for 2.6 s: Bob standing where Ada was, but not exactly, is a new
    track; Ada shifting in her seat is still Ada's."""
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), refresh_frames=5)
    *_, [ada] = slow(tracker, range(0, 13 * 5, 13), [(box(0), confident(ADA))])
    [shifted] = frame(tracker, 13 * 5, [(box(5), confident(ADA))])  # IoU 0.90
    assert shifted is ada and ada.named
    [bob] = frame(tracker, 13 * 6, [(box(45), confident(BOB))])  # IoU 0.43 with her last box
    assert bob is not ada and not bob.named


def test_the_slow_gap_setting_reaches_the_tracker() -> None:
    tracker = RecognizerSettings(recognizer_track_slow_gap_s=4.0, recognizer_track_still_iou=0.7).tracker()
    assert (tracker.slow_gap_s, tracker.still_iou) == (4.0, 0.7)


def test_a_person_walking_past_an_overloaded_camera_keeps_one_track_and_is_named() -> None:
    """Frames 1 s apart (the worker's share of a door camera), Ada 1.5 face widths further on in
    each: no box overlaps the last, yet her looks gather on one track and name her; without
    reidentification every frame starts a new track that never decides."""
    for reid, named in ((0.40, True), (0.0, False)):
        tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), reid_distance=reid)
        ids = set()
        for step in range(5):
            [track] = frame(tracker, 5 * step, [(box(150 * step), confident(ADA))])
            ids.add(track.id)
        assert (len(ids) == 1, track.named) == (reid > 0, named)


def test_another_face_near_where_a_track_ended_starts_its_own_track() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4))
    for step in range(3):
        [ada] = frame(tracker, 5 * step, [(box(150 * step), confident(ADA))])
    assert ada.named
    [bob] = frame(tracker, 15, [(box(450), confident(BOB))])  # where Ada would be next
    assert bob.id != ada.id and not bob.named
    [far] = frame(tracker, 16, [(box(2000), confident(ADA))])  # Ada, within the gap, 17 widths away
    assert far.id != ada.id and not far.named


def test_a_track_that_ended_beyond_the_gap_is_not_continued() -> None:
    tracker = FaceTracker(rule=DecisionRule(agree=2, window=4), max_gap_s=1.5, slow_gap_s=3.0)
    for n in range(2):
        [ada] = frame(tracker, n, [(box(0), confident(ADA))])
    [later] = frame(tracker, 20, [(box(300), confident(ADA))])  # 3.8 s later
    assert later.id != ada.id and not later.named


def test_the_reidentification_settings_reach_the_tracker() -> None:
    settings = RecognizerSettings(recognizer_track_reid_distance=0.3, recognizer_track_reid_reach=2.5)
    tracker = settings.tracker()
    assert (tracker.reid_distance, tracker.reid_reach) == (0.3, 2.5)
