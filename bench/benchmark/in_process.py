"""Single-process runs on decoded frames: the naive loop attendance scripts usually are, and one
recognizer's own code without the broker, for the per-core comparison."""

import time
from datetime import UTC, datetime, timedelta

import cv2
import face_recognition
import numpy as np

from bench.benchmark.measure import Throughput
from services.capture.service import encode_frame
from services.common.messages import FrameCaptured
from services.faces.engine import build_analyzer
from services.faces.matching import Gallery, Identity, Matcher, is_confident
from services.faces.settings import RecognitionSettings
from services.recognizer.service import FrameRecognizer
from services.recognizer.settings import RecognizerSettings


def naive_loop(
    frames: list[np.ndarray], known: list[tuple[str, np.ndarray]], target: str, same_rule: bool = False
) -> Throughput:
    """face_recognition's own example, as attendance scripts copy it (tolerance 0.6). With
    `same_rule`, faces are named by this system's rule instead (tolerance and margin), to tell
    what the speed levers cost in recall from what the stricter tolerance costs."""
    settings = RecognitionSettings()
    names = [name for name, _ in known]
    encodings = [encoding for _, encoding in known]
    faces = target_frames = 0
    others: set[str] = set()
    started = time.perf_counter()
    for rgb in frames:
        locations = face_recognition.face_locations(rgb)
        found = set()
        for encoding in face_recognition.face_encodings(rgb, locations):
            faces += 1
            distances = face_recognition.face_distance(encodings, encoding)
            best = int(np.argmin(distances))
            if same_rule:
                rivals = [float(d) for name, d in zip(names, distances, strict=True) if name != names[best]]
                second = min(rivals) if rivals else None
                if is_confident(
                    float(distances[best]), second, settings.recognizer_tolerance, settings.recognizer_margin
                ):
                    found.add(names[best])
            elif face_recognition.compare_faces(encodings, encoding)[best]:
                found.add(names[best])
        target_frames += target in found
        others |= found - {target}
    label = "naive loop, this system's rule" if same_rule else "naive loop"
    return Throughput(label, time.perf_counter() - started, len(frames), faces, target_frames, sorted(others))


def system_in_process(
    frames: list[np.ndarray], known: list[tuple[str, np.ndarray]], target: str, tracking: bool = True
) -> Throughput:
    """One recognizer's own code (JPEG decode, detection, tracking, encodings, matching) with the
    default settings, in this process: the per-core figure without the broker."""
    settings = RecognizerSettings()
    gallery = Gallery.from_rows((Identity(i + 1, name, name), enc) for i, (name, enc) in enumerate(known))
    matcher = Matcher(gallery, settings.recognizer_tolerance, settings.recognizer_margin)
    tracker = settings.tracker()
    if not tracking:  # every face encoded in every frame
        tracker.refresh_s = tracker.unknown_refresh_s = 0
    worker = FrameRecognizer(build_analyzer(**settings.analyzer_options()), lambda: matcher, "bench", tracker)
    jpegs = [encode_frame(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 1280, 85)[0] for rgb in frames]
    start_at = datetime.now(UTC)
    faces = target_frames = 0
    others: set[str] = set()
    started = time.perf_counter()
    for seq, jpeg in enumerate(jpegs):
        meta = FrameCaptured(
            camera_id="bench",
            seq=seq,
            captured_at=start_at + timedelta(seconds=seq / 30),
            width=frames[0].shape[1],
            height=frames[0].shape[0],
        )
        result = worker.recognize(meta, jpeg)
        names = {identity.student_number for identity in result.named}
        faces += result.faces
        target_frames += target in names
        others |= names - {target}
    label = "one worker in-process" + ("" if tracking else ", no tracking")
    throughput = Throughput(
        label, time.perf_counter() - started, len(frames), faces, target_frames, sorted(others)
    )
    throughput.extra = {"encoded_faces": worker.stats.encoded}
    return throughput
