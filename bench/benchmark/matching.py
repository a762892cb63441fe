"""Time to match one face against galleries of 100 .. 1,000,000 encodings, against the Python
loop over face_distance that scripts use: where the vectorised Matcher stops being free."""

import statistics
import time
from typing import Any

import face_recognition
import numpy as np

from bench.benchmark.measure import progress
from services.faces.matching import Gallery, Identity, Matcher


def matching_times(sizes: list[int], faces: int = 30) -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    results = []
    for size in sizes:
        encodings = rng.normal(size=(size, 128)).astype(np.float32)
        encodings /= np.linalg.norm(encodings, axis=1, keepdims=True) * 2  # dlib-like norms (~0.5)
        students = max(1, size // 2)  # two photos per student
        identities = [Identity(i + 1, f"S{i}", f"S{i}") for i in range(students)]
        gallery = Gallery(identities, np.arange(size) % students, encodings)
        matcher = Matcher(gallery, 0.55, 0.05)
        probes = encodings[rng.integers(size, size=faces)] + rng.normal(scale=0.01, size=(faces, 128))
        matcher.match(probes[:1])  # warm up
        times = []
        for probe in probes:
            started = time.perf_counter()
            matcher.match(probe[None, :])
            times.append((time.perf_counter() - started) * 1000)
        row: dict[str, Any] = {"gallery": size, "ms_per_face": round(statistics.median(times), 3)}
        if size <= 10_000:  # the Python loop over face_distance calls is too slow beyond
            known = list(encodings.astype(np.float64))
            loop = []
            for probe in probes[:5]:
                started = time.perf_counter()
                _ = [face_recognition.face_distance([k], probe)[0] for k in known]
                loop.append((time.perf_counter() - started) * 1000)
            row["python_loop_ms_per_face"] = round(statistics.median(loop), 2)
        results.append(row)
        progress(f"matching: {size:>9,} encodings: {row['ms_per_face']} ms per face")
        del encodings, gallery, matcher
    return results
