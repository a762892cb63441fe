"""Throughput through the real services and the real RabbitMQ with 1..N recognizer processes:
what a deployment gets, broker and JPEG transport included."""

import json
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import pika

from bench.benchmark.measure import Throughput, epoch
from bench.benchmark.stack import Stack, fresh_stack
from harness.processes import wait_until
from services.common import topology
from services.common.amqp.connection import connection_parameters
from services.common.settings import BrokerSettings


@dataclass
class Bench:
    """What every run through the real system shares."""

    video: Path
    people: dict[str, list[Path]]
    target: str
    tmp: Path
    source_fps: float
    loops: int = 1
    memory: dict[str, float] = field(default_factory=dict)

    def remember_memory(self, stack: Stack) -> None:
        for kind, peak in stack.peak_mb.items():
            self.memory[kind] = max(self.memory.get(kind, 0.0), peak)


class Tap:
    """Copies of what the recognizers publish, collected on a thread with arrival times."""

    def __init__(self, amqp_url: str) -> None:
        self.messages: list[tuple[float, str, dict[str, Any]]] = []  # (arrival epoch, routing key, body)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(amqp_url,), daemon=True)
        self._thread.start()
        self._ready.wait(30)

    def _run(self, amqp_url: str) -> None:
        connection = pika.BlockingConnection(
            connection_parameters(BrokerSettings(amqp_url=amqp_url), "bench")
        )
        channel = connection.channel()
        topology.declare(channel)
        queue = channel.queue_declare("", exclusive=True).method.queue
        # Only what is measured: a tap on everything would take CPU from the recognizers.
        channel.queue_bind(queue, topology.RECOGNIZER_EXCHANGE, "frame.analyzed.*")
        channel.queue_bind(queue, topology.RECOGNIZER_EXCHANGE, "face.recognized.*")
        self._ready.set()
        for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.2):
            if method is not None:
                self.messages.append((time.time(), method.routing_key, json.loads(body)))
            if self._stop.is_set():
                break
        connection.close()

    def kind(self, prefix: str) -> list[tuple[float, dict[str, Any]]]:
        return [(arrival, body) for arrival, key, body in list(self.messages) if key.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def looped_video(video: Path, loops: int, tmp: Path) -> Path:
    """The clip played `loops` times in a row, as one file (a longer, steadier measurement)."""
    if loops <= 1:
        return video
    out = tmp / f"{video.stem}-x{loops}.mp4"
    if out.exists():
        return out
    source = cv2.VideoCapture(str(video))
    fps = source.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, frame = source.read()
        if not ok:
            break
        frames.append(frame)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    for _ in range(loops):
        for frame in frames:
            writer.write(frame)
    writer.release()
    return out


def system_throughput(bench: Bench, workers: int) -> Throughput:
    target = bench.target
    with fresh_stack(bench.tmp) as stack:
        stack.enroll(bench.people)
        stack.start("recorder", "services.recorder")
        stack.start_recognizers(workers)
        tap = Tap(stack.amqp_url)
        capture = stack.start(
            "capture",
            "services.capture",
            CAPTURE_SOURCE=str(looped_video(bench.video, bench.loops, bench.tmp)),
            CAPTURE_FPS="0",
            CAPTURE_PACE="fast",
            CAMERA_ID="bench",
            LOG_LEVEL="INFO",
        )
        capture.wait(timeout_s=1800)
        published = int(capture.log().split(" frames published")[0].rsplit(" ", 1)[-1])
        wait_until(lambda: len(tap.kind("frame.analyzed")) >= published, 300, "every frame analyzed")
        stack.sample_memory()
        tap.close()
        analyzed = [body for _, body in tap.kind("frame.analyzed")]
        start = min(epoch(b["captured_at"]) for b in analyzed)
        end = max(epoch(b["analyzed_at"]) for b in analyzed)
        recognized = [body for _, body in tap.kind("face.recognized")]
        target_frames = len({b["frame_seq"] for b in recognized if b["student_number"] == target})
        others = sorted({b["student_number"] for b in recognized} - {target})
        per_worker: dict[str, int] = {}
        for body in analyzed:
            per_worker[body["worker"]] = per_worker.get(body["worker"], 0) + 1
        result = Throughput(
            f"system, {workers} recognizer(s)",
            end - start,
            len(analyzed),
            sum(b["faces"] for b in analyzed),
            target_frames,
            others,
        )
        result.extra = {
            "frames_per_worker": per_worker,
            "median_ms_per_frame": round(statistics.median(b["elapsed_ms"] for b in analyzed), 1),
        }
        bench.remember_memory(stack)
        return result
