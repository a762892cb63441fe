"""Open-set matching: which enrolled student is this face, if anyone?

Every face is compared with every enrolled encoding in one matrix product (float32, norms
precomputed: ~3 ms per face for 100,000 encodings, docs/performance-notes.md). A student may have
several encodings; their distance is the smallest. A face is named only when the best student
is within `tolerance` AND beats the second-best student by `margin`: two students nearly as
close means we cannot tell them apart, so we say "unknown" rather than guess a name.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from services.faces.engine import ENCODING_SIZE


@dataclass(frozen=True)
class Identity:
    student_id: int
    student_number: str
    name: str


@dataclass(frozen=True)
class Match:
    """The outcome for one face. `identity` is None for an unknown face."""

    identity: Identity | None
    best_distance: float | None  # to the closest student, named or not
    second_distance: float | None  # to the closest other student
    closest: Identity | None = None  # the closest student, even when not confident enough to name

    @property
    def margin(self) -> float | None:
        if self.best_distance is None or self.second_distance is None:
            return None
        return self.second_distance - self.best_distance


def is_confident(best: float, second: float | None, tolerance: float, margin: float) -> bool:
    """The naming rule: close enough, and clearly closer than anyone else."""
    return best <= tolerance and (second is None or second - best >= margin)


class Gallery:
    """Enrolled encodings as one float32 matrix, grouped by student."""

    def __init__(self, identities: list[Identity], owners: np.ndarray, encodings: np.ndarray) -> None:
        """`owners[i]` is the index in `identities` of the student whose encoding is `encodings[i]`."""
        order = np.argsort(owners, kind="stable")
        self.identities = identities
        self.owners = np.asarray(owners, dtype=np.int64)[order]
        self.matrix = np.ascontiguousarray(encodings[order], dtype=np.float32).reshape(-1, ENCODING_SIZE)
        self.sq_norms = np.einsum("ij,ij->i", self.matrix, self.matrix)
        # Where each student's block of encodings starts; reduceat takes each block's minimum.
        self.starts = np.flatnonzero(np.r_[True, self.owners[1:] != self.owners[:-1]]) if len(self) else None
        self.block_owners = self.owners[self.starts] if self.starts is not None else self.owners
        self.one_per_student = self.starts is not None and len(self.starts) == len(self)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[Identity, np.ndarray]]) -> "Gallery":
        index: dict[int, int] = {}
        identities: list[Identity] = []
        owners: list[int] = []
        encodings: list[np.ndarray] = []
        for identity, encoding in rows:
            if identity.student_id not in index:
                index[identity.student_id] = len(identities)
                identities.append(identity)
            owners.append(index[identity.student_id])
            encodings.append(encoding)
        matrix = np.asarray(encodings, dtype=np.float32).reshape(-1, ENCODING_SIZE)
        return cls(identities, np.asarray(owners, dtype=np.int64), matrix)

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def student_count(self) -> int:
        return len(self.identities)

    def student_distances(self, faces: np.ndarray) -> np.ndarray:
        """(faces, students-with-encodings) distances: each student's closest encoding."""
        query = np.ascontiguousarray(faces, dtype=np.float32).reshape(-1, ENCODING_SIZE)
        squared = (
            np.einsum("ij,ij->i", query, query)[:, None]
            + self.sq_norms[None, :]
            - 2.0 * (query @ self.matrix.T)
        )
        if self.starts is not None and not self.one_per_student:
            squared = np.minimum.reduceat(squared, self.starts, axis=1)
        return np.sqrt(np.maximum(squared, 0.0))


class Matcher:
    def __init__(self, gallery: Gallery, tolerance: float, margin: float) -> None:
        self.gallery = gallery
        self.tolerance = tolerance
        self.margin = margin

    def match(self, faces: np.ndarray | list[np.ndarray]) -> list[Match]:
        faces = np.asarray(faces).reshape(-1, ENCODING_SIZE)
        if len(faces) == 0:
            return []
        if len(self.gallery) == 0:
            return [Match(None, None, None) for _ in faces]
        distances = self.gallery.student_distances(faces)
        if distances.shape[1] == 1:
            best_columns = np.zeros(len(faces), dtype=np.int64)
            seconds: list[float | None] = [None] * len(faces)
        else:
            two = np.argpartition(distances, 1, axis=1)[:, :2]
            rows = np.arange(len(faces))[:, None]
            pair = distances[rows, two]
            first = np.argmin(pair, axis=1)
            best_columns = two[np.arange(len(faces)), first]
            seconds = [float(v) for v in pair[np.arange(len(faces)), 1 - first]]
        matches = []
        for row, column in enumerate(best_columns):
            best = float(distances[row, column])
            second = seconds[row]
            closest = self.gallery.identities[int(self.gallery.block_owners[column])]
            named = closest if is_confident(best, second, self.tolerance, self.margin) else None
            matches.append(Match(named, best, second, closest))
        return matches
