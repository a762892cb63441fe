"""Recognition on real faces (../shared/faces): enrollment through the real path into MySQL,
probes through the workers' own analyzer and matcher, with the default settings."""

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.common.students import Consent, add_face_encoding, create_student
from services.faces.engine import FaceAnalyzer, build_analyzer, decode_image
from services.faces.enrollment import analyze_photo, enrollment_analyzer
from services.faces.matching import Matcher
from services.faces.settings import RecognitionSettings
from services.recognizer.live_gallery import load_gallery

pytestmark = pytest.mark.faces


def photos(faces_dir: Path) -> dict[str, list[Path]]:
    return {p.name: sorted(p.glob("*.jpg")) for p in sorted((faces_dir / "people").iterdir())}


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return build_analyzer(**RecognitionSettings().analyzer_options())


@pytest.fixture
def matcher(engine: sa.Engine, faces_dir: Path) -> Matcher:
    """One photo (the first) of every person who has several, enrolled as a student."""
    enroller = enrollment_analyzer()
    for name, files in photos(faces_dir).items():
        if len(files) < 2:
            continue
        photo = analyze_photo(files[0].read_bytes(), enroller)
        with engine.begin() as connection:
            student = create_student(connection, name, name.replace("_", " ").title(), Consent("test"))
            add_face_encoding(connection, student.id, photo)
    settings = RecognitionSettings()
    return Matcher(load_gallery(engine), settings.recognizer_tolerance, settings.recognizer_margin)


def names_in(path: Path, analyzer: FaceAnalyzer, matcher: Matcher) -> list[str]:
    """The name (student number) or 'unknown' of each face, left to right."""
    faces = sorted(analyzer.analyze(decode_image(path.read_bytes())), key=lambda f: f.box.left + f.box.right)
    return [
        m.identity.student_number if m.identity else "unknown"
        for m in matcher.match([f.encoding for f in faces])
    ]


def test_every_other_photo_of_an_enrolled_person_is_named_correctly_or_not_at_all(
    faces_dir: Path, analyzer: FaceAnalyzer, matcher: Matcher
) -> None:
    """One photo at a time, at the defaults calibrated for a track's fused looks: a photo may
    stay unknown (a track adds looks), but it is never given another student's name."""
    probes = [(name, f) for name, files in photos(faces_dir).items() if len(files) > 1 for f in files[1:]]
    assert len(probes) == 22
    found = {f"{p.parent.name}/{p.name}": names_in(p, analyzer, matcher) for name, p in probes}
    wrong = {k: v for k, v in found.items() if v not in ([k.split("/")[0]], ["unknown"])}
    assert wrong == {}
    named = [k for k, v in found.items() if v == [k.split("/")[0]]]
    assert len(named) >= 16, f"only {len(named)} of 22 photos named: {found}"


def test_people_never_enrolled_are_unknown_not_the_nearest_name(
    faces_dir: Path, analyzer: FaceAnalyzer, matcher: Matcher
) -> None:
    strangers = [files[0] for files in photos(faces_dir).values() if len(files) == 1]
    assert len(strangers) == 5
    assert {p.parent.name: names_in(p, analyzer, matcher) for p in strangers} == {
        p.parent.name: ["unknown"] for p in strangers
    }


def test_images_without_faces_give_no_faces(faces_dir: Path, analyzer: FaceAnalyzer) -> None:
    images = sorted((faces_dir / "no_face").glob("*.jpg"))
    assert len(images) == 5
    assert {p.name: len(analyzer.analyze(decode_image(p.read_bytes()))) for p in images} == {
        p.name: 0 for p in images
    }


def test_in_group_photos_enrolled_people_are_named_and_others_unknown(
    faces_dir: Path, analyzer: FaceAnalyzer, matcher: Matcher
) -> None:
    with (faces_dir / "groups" / "groups.csv").open() as file:
        groups = list(csv.DictReader(file))
    enrolled = {name for name, files in photos(faces_dir).items() if len(files) > 1}
    for group in groups:
        labels = group["identities_left_to_right"].split(";")
        expected = [label if label in enrolled else "unknown" for label in labels]
        assert names_in(faces_dir / "groups" / group["file"], analyzer, matcher) == expected, group["file"]


def test_a_stranger_in_the_clip_is_never_named_with_everyone_else_enrolled(faces_dir: Path) -> None:
    """Lin-Manuel Miranda not enrolled, all 36 photos of the 14 others enrolled: the worker
    (tracking on, default settings) must not name him in any of the 275 frames. At the usual
    0.6 he is named john_lennon in one frame (0.59), which tracking would then carry."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    import cv2  # noqa: PLC0415

    from services.common.messages import FaceRecognized, FrameCaptured  # noqa: PLC0415
    from services.faces.matching import Gallery, Identity  # noqa: PLC0415
    from services.recognizer.service import FrameRecognizer  # noqa: PLC0415
    from services.recognizer.settings import RecognizerSettings  # noqa: PLC0415

    settings = RecognizerSettings()
    enroller = enrollment_analyzer()
    rows = [
        (Identity(n + 1, name, name), analyze_photo(f.read_bytes(), enroller).encoding)
        for n, (name, files) in enumerate(photos(faces_dir).items())
        if name != "lin_manuel_miranda"
        for f in files
    ]
    assert len(rows) == 36
    matcher = Matcher(Gallery.from_rows(rows), settings.recognizer_tolerance, settings.recognizer_margin)
    worker = FrameRecognizer(
        build_analyzer(**settings.analyzer_options()), lambda: matcher, "test", settings.tracker()
    )
    video = cv2.VideoCapture(str(faces_dir / "video" / "short_hamilton_clip.mp4"))
    start, seq, faces, named = datetime.now(UTC), 0, 0, []
    while True:
        ok, image = video.read()
        if not ok:
            break
        meta = FrameCaptured(
            camera_id="stage",
            seq=seq,
            captured_at=start + timedelta(seconds=seq / 30),
            width=image.shape[1],
            height=image.shape[0],
        )
        result = worker.recognize(meta, cv2.imencode(".jpg", image)[1].tobytes())
        faces += result.faces
        named += [(seq, e.student_number) for e in result.events if isinstance(e, FaceRecognized)]
        seq += 1
    assert seq == 275 and faces > 100
    assert named == []
