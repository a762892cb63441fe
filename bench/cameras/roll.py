"""Pure figures of a cameras run, from what the database recorded: each camera's roll (who
of the lesson's present students it marked, and who it marked wrongly) and the latency from
capture to the committed identity_events row."""

import statistics
from collections.abc import Iterable, Mapping
from typing import Any


def camera_roll(present: set[str], marked: set[str]) -> dict[str, Any]:
    """One camera's roll: capture loops the lesson, so a student counts if marked at any time
    in the run's window."""
    return {
        "present": len(present),
        "marked": len(present & marked),
        "complete": present <= marked,
        "wrongly_marked": sorted(marked - present),
    }


def run_roll(present: set[str], marked_by_camera: Mapping[str, set[str]]) -> dict[str, Any]:
    """Every camera's roll and the run's totals (marked of present over all cameras, cameras
    with a complete roll, the worst camera)."""
    per_camera = {camera: camera_roll(present, marked) for camera, marked in marked_by_camera.items()}
    worst = min(per_camera, key=lambda c: per_camera[c]["marked"], default=None)
    return {
        "marked": sum(r["marked"] for r in per_camera.values()),
        "present": len(present) * len(per_camera),
        "complete_cameras": sum(1 for r in per_camera.values() if r["complete"]),
        "wrongly_marked": sum(len(r["wrongly_marked"]) for r in per_camera.values()),
        "worst_camera": worst,
        "worst_marked": per_camera[worst]["marked"] if worst else None,
        "per_camera": per_camera,
    }


def latency_ms(latencies_s: Iterable[float]) -> dict[str, float | None]:
    """p50/p95 of recorded_at - captured_at, in ms (None without events)."""
    values = sorted(s * 1000 for s in latencies_s)
    if not values:
        return {"p50": None, "p95": None, "events": 0}
    if len(values) == 1:
        return {"p50": round(values[0], 1), "p95": round(values[0], 1), "events": 1}
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return {"p50": round(statistics.median(values), 1), "p95": round(cuts[18], 1), "events": len(values)}
