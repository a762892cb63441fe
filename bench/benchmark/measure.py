"""What every section shares: progress on stderr (a run takes minutes), percentiles, ISO times,
and the Throughput figure both the in-process and the real-system runs report."""

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np


def progress(message: str) -> None:
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": len(values),
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
    }


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass
class Throughput:
    label: str
    seconds: float
    frames: int
    faces: int
    target_frames: int  # frames in which the target person was named
    other_names: list[str] = field(default_factory=list)  # anyone else named (should be nobody)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds

    @property
    def faces_per_s(self) -> float:
        return self.faces / self.seconds
