"""What really happened in a lesson, as the evaluation reads it: who was there (a truth.json
from bench.lessons, or a plain list of student numbers), the class roster, and, for
generated lessons, who was where in every frame."""

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Truth:
    present: set[str]  # student numbers really there (and meant to be: the class)
    roster: set[str] | None = None  # the class; None: no roster given
    names: dict[str, str] = field(default_factory=dict)  # student number -> name
    others: set[str] = field(default_factory=set)  # enrolled, other classes, passing through
    strangers: set[str] = field(default_factory=set)  # never enrolled
    fps: float | None = None
    width: int | None = None
    # Per frame: (person key, left, top, right, bottom) of each face drawn; empty without truth.json.
    boxes: list[list[tuple[str, int, int, int, int]]] = field(default_factory=list)
    appearances: list[dict[str, Any]] = field(default_factory=list)
    turn: dict[str, Any] | None = None

    @property
    def expected(self) -> set[str]:
        """Who should be marked: present, and on the roster when there is one."""
        return self.present if self.roster is None else self.present & self.roster

    @property
    def in_video(self) -> set[str]:
        return self.present | self.others | self.strangers

    def who_at(self, frame: int, centre: tuple[float, float]) -> str | None:
        """The person whose face was drawn around `centre` in `frame` (the nearest if several)."""
        if not 0 <= frame < len(self.boxes):
            return None
        x, y = centre
        best: tuple[float, str] | None = None
        for key, left, top, right, bottom in self.boxes[frame]:
            if left <= x <= right and top <= y <= bottom:
                distance = (x - (left + right) / 2) ** 2 + (y - (top + bottom) / 2) ** 2
                if best is None or distance < best[0]:
                    best = (distance, key)
        return best[1] if best else None

    def role(self, key: str) -> str:
        if key in self.present:
            return "present"
        if key in self.others:
            return "other class"
        if key in self.strangers:
            return "stranger"
        if self.roster is not None and key in self.roster:
            return "absent (on the roster)"
        return "not in the lesson"


def read_roster(path: Path) -> tuple[set[str], dict[str, str]]:
    numbers: set[str] = set()
    names: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            number = (row.get("student_number") or "").strip()
            if number:
                numbers.add(number)
                names[number] = (row.get("name") or "").strip() or number
    return numbers, names


def load_truth(present: Path, roster: Path | None) -> Truth:
    """`present` is a bench.lessons truth.json or a text file of student numbers, one a line."""
    if present.suffix == ".json":
        data = json.loads(present.read_text())
        appearances = data.get("appearances", [])
        truth = Truth(
            present=set(data["present"]),
            others=set(data.get("others", [])),
            strangers=set(data.get("strangers", [])),
            names={k: v["name"] for k, v in data.get("people", {}).items()},
            fps=data.get("fps"),
            width=data.get("width"),
            appearances=appearances,
            turn=data.get("turn"),
        )
        truth.boxes = [
            [(appearances[n]["person"], left, top, right, bottom) for n, left, top, right, bottom in frame]
            for frame in data.get("boxes", [])
        ]
    else:
        lines = (line.split("#")[0].strip() for line in present.read_text().splitlines())
        truth = Truth(present={line for line in lines if line})
    if roster is not None:
        truth.roster, names = read_roster(roster)
        truth.names = {**truth.names, **names}
    return truth
