"""The lesson generator: deterministic from its seed, its truth is what the video shows, and
no enrollment photo is ever in the video. On a stand-in LFW folder of plain images."""

import csv
import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.lessons.cast import cast, list_people
from bench.lessons.lesson import LessonSpec, generate
from bench.lessons.script import plan

SPEC = LessonSpec(
    seed=7,
    enrolled=20,
    roster=8,
    present=6,
    strangers=2,
    others=2,
    duration_s=20.0,
    min_visible_s=5.0,
    width=640,
    enrollable_only=False,  # the stand-in photos show no face
)


@pytest.fixture(scope="module")
def lfw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 people with 1 to 4 photos each, in LFW's layout; every photo is a different image."""
    root = tmp_path_factory.mktemp("lfw")
    rng = np.random.default_rng(0)
    for n in range(60):
        name = f"Person_{n:02d}"
        (root / "people" / name).mkdir(parents=True)
        for k in range(1, 1 + (n % 4) + 1):
            image = np.full((250, 250, 3), rng.integers(0, 255, 3), np.uint8)
            cv2.putText(image, f"{n}/{k}", (60, 130), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (255, 255, 255), 3)
            cv2.imwrite(str(root / "people" / name / f"{name}_{k:04d}.jpg"), image)
    return root


@pytest.fixture(scope="module")
def lesson(lfw: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("lesson") / "one"
    return out, generate(SPEC, out, lfw)


def test_the_same_seed_draws_the_same_lesson_and_another_seed_another(
    lfw: Path, lesson, tmp_path: Path
) -> None:
    out, truth = lesson
    again = generate(SPEC, tmp_path / "again", lfw)
    assert again == truth
    assert (tmp_path / "again" / "lesson.mp4").read_bytes() == (out / "lesson.mp4").read_bytes()
    other = generate(LessonSpec(**{**SPEC.__dict__, "seed": 8}), tmp_path / "other", lfw)
    assert other["present"] != truth["present"] or other["appearances"] != truth["appearances"]


def test_the_truth_counts_match_the_spec_and_the_files(lesson) -> None:
    out, truth = lesson
    assert len(truth["enrolled"]) == SPEC.enrolled
    assert len(truth["roster"]) == SPEC.roster
    assert len(truth["present"]) == SPEC.present
    assert len(truth["strangers"]) == SPEC.strangers
    assert len(truth["others"]) == SPEC.others
    assert set(truth["present"]) <= set(truth["roster"]) <= set(truth["enrolled"])
    assert not set(truth["others"]) & set(truth["roster"])
    assert set(truth["others"]) <= set(truth["enrolled"])
    assert not set(truth["strangers"]) & set(truth["enrolled"])
    assert sorted(p.name for p in (out / "enroll").iterdir()) == truth["enrolled"]
    with (out / "roster.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["student_number"] for r in rows) == truth["roster"]
    assert all(r["name"] == truth["people"][r["student_number"]]["name"] for r in rows)
    video = cv2.VideoCapture(str(out / "lesson.mp4"))
    frames = 0
    while True:
        ok, frame = video.read()
        if not ok:
            break
        assert frame.shape == (truth["height"], truth["width"], 3)
        frames += 1
    assert frames == truth["frames"] == SPEC.frames == len(truth["boxes"])
    assert json.loads((out / "truth.json").read_text()) == truth


def test_everyone_in_the_video_is_seen_as_scripted(lesson) -> None:
    _, truth = lesson
    appearances = truth["appearances"]
    seen = {a["person"] for a in appearances}
    assert seen == set(truth["present"]) | set(truth["others"]) | set(truth["strangers"])
    for a in appearances:
        role = truth["people"][a["person"]]["role"]
        assert a["role"] == role
        assert a["kind"] == ("seated" if role == "present" else "walker")
        if role == "present":
            assert a["end_s"] - a["start_s"] >= SPEC.min_visible_s - 1e-9
    assert all(len([a for a in appearances if a["person"] == p]) == 1 for p in seen)
    # Each frame's boxes are exactly the appearances scripted for that frame.
    for frame, boxes in enumerate(truth["boxes"]):
        scripted = {n for n, a in enumerate(appearances) if a["first_frame"] <= frame < a["last_frame"]}
        assert {b[0] for b in boxes} == scripted
        for _, left, top, right, bottom in boxes:
            assert right > left and bottom > top
    # Nobody shares a seat at the same time.
    for seat in {a["seat"] for a in appearances if a["seat"] is not None}:
        spans = sorted((a["first_frame"], a["last_frame"]) for a in appearances if a["seat"] == seat)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))


def test_two_students_take_turns_at_one_seat_with_an_empty_second_between(lesson) -> None:
    _, truth = lesson
    turn = truth["turn"]
    assert turn["first"] in truth["present"] and turn["second"] in truth["present"]
    at_seat = sorted(
        (a["first_frame"], a["last_frame"], a["person"])
        for a in truth["appearances"]
        if a["seat"] == turn["seat"]
    )
    assert [p for *_, p in at_seat] == [turn["first"], turn["second"]]
    (_, leaves, _), (arrives, _, _) = at_seat
    assert arrives - leaves == round(SPEC.turn_gap_s * SPEC.fps)
    assert turn["gap_s"] == pytest.approx(SPEC.turn_gap_s)
    first, second = (
        next(n for n, a in enumerate(truth["appearances"]) if a["person"] == key)
        for key in (turn["first"], turn["second"])
    )
    for frame in range(leaves, arrives):  # the seat is empty in between
        assert not {b[0] for b in truth["boxes"][frame]} & {first, second}


def test_no_enrollment_photo_is_in_the_video_and_enrollment_links_into_lfw(lfw: Path, lesson) -> None:
    out, truth = lesson
    in_video = {p["video_photo"] for p in truth["people"].values() if p["video_photo"]}
    enrolled = {photo for p in truth["people"].values() for photo in p["enroll_photos"]}
    assert len(in_video) == len(truth["appearances"])
    assert not in_video & enrolled
    for number in truth["enrolled"]:
        links = sorted((out / "enroll" / number).iterdir())
        assert 1 <= len(links) <= 2
        assert all(link.is_symlink() for link in links)  # never a copy of the LFW photos
        targets = sorted(str(link.resolve().relative_to(lfw.resolve())) for link in links)
        assert targets == sorted(truth["people"][number]["enroll_photos"])
        assert not set(targets) & in_video


def test_a_seated_class_is_in_view_all_lesson_and_only_the_others_walk() -> None:
    present, walkers = [f"S{n}" for n in range(9)], ["X1", "S90", "S91"]
    layout, appearances, turn = plan(
        np.random.default_rng(3), present, walkers, frames=150, fps=5, width=1280,
        min_visible_s=6, turn_gap_s=1, scene="seated",
    )  # fmt: skip
    assert turn is None
    seated = [a for a in appearances if a.kind == "seated"]
    assert sorted(a.person for a in seated) == present
    assert all((a.first, a.last) == (0, 150) for a in seated)
    assert len({a.seat for a in seated}) == len(present) and all(
        0 <= (a.seat or 0) < len(layout) for a in seated
    )
    assert sorted(a.person for a in appearances if a.kind == "walker") == sorted(walkers)


def test_at_a_door_everyone_walks_through_once_nobody_sits() -> None:
    present, walkers = [f"S{n}" for n in range(6)], ["X1", "X2", "S90", "S91"]
    _, appearances, turn = plan(
        np.random.default_rng(3), present, walkers, frames=200, fps=5, width=1280,
        min_visible_s=6, turn_gap_s=1, scene="door",
    )  # fmt: skip
    assert turn is None
    assert {a.kind for a in appearances} == {"walker"}
    assert sorted(a.person for a in appearances) == sorted(present + walkers)
    starts = sorted(a.first for a in appearances)
    assert all(b > a for a, b in itertools.pairwise(starts))  # one after another along the lane
    assert all(a.first >= 0 and a.last < 200 for a in appearances)


def test_an_unknown_scene_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scene 'hall'"):
        plan(np.random.default_rng(0), ["S1"], [], frames=50, fps=5, width=640, min_visible_s=1,
             turn_gap_s=1, scene="hall")  # fmt: skip


def test_only_photos_the_enrollment_accepts_enroll_and_the_video_shows_a_later_one(lfw: Path) -> None:
    # Every even-numbered person's first photo is refused (those with one photo cannot enroll).
    refused = {p for p in (lfw / "people").rglob("*_0001.jpg") if int(p.parent.name.split("_")[1]) % 2 == 0}
    people = cast(
        list_people(lfw), np.random.default_rng(5), enrolled=20, roster=8, present=6, strangers=2, others=2,
        accepts=lambda photo: photo not in refused,
    )  # fmt: skip
    enrolled = [p for p in people if p.role != "stranger"]
    assert len(enrolled) == 20
    for person in enrolled:
        assert person.enroll_photos and not set(person.enroll_photos) & refused
        if person.video_photo is not None:
            photos = sorted((lfw / "people" / person.lfw).glob("*.jpg"))
            assert photos.index(person.video_photo) > max(photos.index(p) for p in person.enroll_photos)
