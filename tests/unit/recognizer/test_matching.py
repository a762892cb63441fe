import numpy as np
import pytest

from services.faces.matching import Gallery, Identity, Matcher, is_confident

ADA = Identity(1, "S1", "Ada")
BOB = Identity(2, "S2", "Bob")
CY = Identity(3, "S3", "Cy")


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=128)
    return vector / np.linalg.norm(vector)


def near(base: np.ndarray, distance: float, seed: int = 99) -> np.ndarray:
    """A vector exactly `distance` away from `base`."""
    direction = np.random.default_rng(seed).normal(size=128)
    direction -= direction @ base * base  # orthogonal, so the distance is exact
    return base + distance * direction / np.linalg.norm(direction)


@pytest.mark.parametrize(
    ("best", "second", "named"),
    [
        (0.40, 0.80, True),
        (0.55, 0.80, False),  # beyond the tolerance
        (0.40, 0.43, False),  # two students almost as close: do not guess
        (0.40, None, True),  # one student enrolled: no second to compare with
        (0.50, 0.55, True),  # margin exactly met
    ],
)
def test_naming_rule(best: float, second: float | None, named: bool) -> None:
    assert is_confident(best, second, tolerance=0.5, margin=0.05) is named


def test_a_face_is_named_after_its_closest_student_and_distances_are_exact() -> None:
    ada, bob = unit(1), unit(2)
    matcher = Matcher(Gallery.from_rows([(ADA, ada), (BOB, bob)]), tolerance=0.54, margin=0.05)
    [match] = matcher.match(np.array([near(ada, 0.3)]))
    assert match.identity == ADA
    assert match.best_distance == pytest.approx(0.3, abs=1e-4)
    assert match.second_distance == pytest.approx(np.linalg.norm(near(ada, 0.3) - bob), abs=1e-4)


def test_a_stranger_is_unknown_not_the_nearest_name() -> None:
    matcher = Matcher(Gallery.from_rows([(ADA, unit(1)), (BOB, unit(2))]), tolerance=0.54, margin=0.05)
    [match] = matcher.match(np.array([unit(3)]))
    assert match.identity is None
    assert match.best_distance is not None and match.best_distance > 0.54


def test_a_student_counts_by_their_closest_photo_and_is_not_their_own_second_best() -> None:
    ada1, ada2, bob = unit(1), unit(4), unit(2)
    gallery = Gallery.from_rows([(ADA, ada1), (BOB, bob), (ADA, ada2)])
    assert len(gallery) == 3 and gallery.student_count == 2
    [match] = Matcher(gallery, tolerance=0.54, margin=0.05).match(np.array([near(ada2, 0.2)]))
    assert match.identity == ADA
    assert match.best_distance == pytest.approx(0.2, abs=1e-4)
    # The second best is Bob, not Ada's other photo (which would make the margin meaningless).
    assert match.second_distance == pytest.approx(np.linalg.norm(near(ada2, 0.2) - bob), abs=1e-4)


def test_vectorised_matching_agrees_with_a_plain_loop() -> None:
    rng = np.random.default_rng(7)
    people = [Identity(i, f"S{i}", f"P{i}") for i in range(1, 51)]
    rows = [(people[int(rng.integers(50))], unit(1000 + n)) for n in range(300)]
    faces = np.array([near(rows[n][1], 0.2 + 0.0137 * n, seed=n) for n in range(0, 300, 10)])
    matches = Matcher(Gallery.from_rows(rows), tolerance=0.5, margin=0.05).match(faces)
    for face, match in zip(faces, matches, strict=True):
        per_student: dict[int, float] = {}
        for identity, encoding in rows:
            distance = float(np.linalg.norm(face - encoding))
            per_student[identity.student_id] = min(per_student.get(identity.student_id, 9.0), distance)
        ranked = sorted(per_student.items(), key=lambda item: item[1])
        assert match.best_distance == pytest.approx(ranked[0][1], abs=1e-4)
        assert match.second_distance == pytest.approx(ranked[1][1], abs=1e-4)
        expected = ranked[0][0] if is_confident(ranked[0][1], ranked[1][1], 0.5, 0.05) else None
        assert (match.identity.student_id if match.identity else None) == expected


def test_several_faces_at_once_and_edge_cases() -> None:
    ada, bob, cy = unit(1), unit(2), unit(3)
    matcher = Matcher(Gallery.from_rows([(ADA, ada), (BOB, bob), (CY, cy)]), tolerance=0.54, margin=0.05)
    matches = matcher.match(np.array([near(cy, 0.1), near(bob, 0.2), unit(9)]))
    assert [m.identity for m in matches] == [CY, BOB, None]
    assert matcher.match(np.empty((0, 128))) == []
    [lonely] = Matcher(Gallery.from_rows([]), 0.54, 0.05).match(np.array([ada]))
    assert lonely.identity is None and lonely.best_distance is None
    [single] = Matcher(Gallery.from_rows([(ADA, ada)]), 0.54, 0.05).match(np.array([near(ada, 0.3)]))
    assert single.identity == ADA and single.second_distance is None and single.margin is None
