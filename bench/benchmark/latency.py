"""Latency from capture to the committed attendance row and to the dashboard's SSE event, at
half and at twice the measured capacity: drop-oldest must keep it bounded when overloaded."""

import json
import statistics
import threading
import time
from datetime import UTC
from typing import Any

import httpx
import numpy as np
import sqlalchemy as sa

from bench.benchmark.measure import epoch, percentiles
from bench.benchmark.stack import Stack, fresh_stack
from bench.benchmark.system import Bench, Tap
from harness.processes import free_port, wait_until
from harness.servers import frames_waiting


class SseListener:
    """Reads the dashboard's /events stream; keeps (arrival, capture time) of each new sighting."""

    def __init__(self, url: str) -> None:
        self.latencies_ms: list[tuple[float, float]] = []  # (capture epoch, latency ms)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        last_at: dict[Any, str] = {}
        # The dashboard sends a keep-alive every 15 s, so a 60 s read timeout only fires on a dead stream.
        with httpx.stream("GET", url, timeout=httpx.Timeout(10.0, read=60.0)) as response:
            event = ""
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "recognition":
                    data = json.loads(line[5:])
                    if data.get("at") and last_at.get(data["entry_id"]) != data["at"]:
                        last_at[data["entry_id"]] = data["at"]
                        captured = epoch(data["at"])
                        self.latencies_ms.append((captured, (time.time() - captured) * 1000))

    def close(self) -> None:
        self._stop.set()


def latency_run(bench: Bench, workers: int, input_fps: float, seconds: float) -> dict[str, Any]:
    with fresh_stack(bench.tmp) as stack:
        stack.enroll(bench.people)
        stack.start("recorder", "services.recorder")
        port, api_port = free_port(), free_port()
        stack.start("api", "services.api", API_PORT=str(api_port), API_HOST="127.0.0.1")  # for its memory
        stack.start(
            "web",
            "services.web",
            WEB_PORT=str(port),
            WEB_HOST="127.0.0.1",
            WEB_API_URL=f"http://127.0.0.1:{api_port}",
        )
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/health"), 60, "the dashboard")
        stack.start_recognizers(workers)
        tap = Tap(stack.amqp_url)
        sse = SseListener(f"http://127.0.0.1:{port}/events")
        time.sleep(1)
        capture = stack.start(
            "capture",
            "services.capture",
            CAPTURE_SOURCE=str(bench.video),
            CAPTURE_FPS="0",
            CAPTURE_PACE="realtime",
            CAPTURE_CLOCK="wall",  # latency from the moment of capture, not the looped file's time
            CAPTURE_SPEED=f"{input_fps / bench.source_fps:.3f}",
            CAPTURE_AT_END="loop",
            CAMERA_ID="bench",
            LOG_LEVEL="INFO",
        )
        depths: list[int] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            depths.append(frames_waiting(stack.amqp_url))
        stack.stop("capture")
        published = int(capture.log().split(" frames published")[0].rsplit(" ", 1)[-1])
        time.sleep(3)  # let the last frames through
        stack.sample_memory()
        tap.close()
        sse.close()
        analyzed = [(arrival, body) for arrival, body in tap.kind("frame.analyzed")]
        to_analyzed = [
            (epoch(b["captured_at"]), (arrival - epoch(b["captured_at"])) * 1000) for arrival, b in analyzed
        ]
        to_row = _committed_latencies(stack)
        bench.remember_memory(stack)
        return {
            "input_fps": round(input_fps, 1),
            "seconds": seconds,
            "frames_published": published,
            "frames_analyzed": len(analyzed),
            "frames_dropped": published - len(analyzed),
            "queue_depth_max": max(depths, default=0),
            "queue_depth_median": statistics.median(depths) if depths else 0,
            "capture_to_analyzed_ms": percentiles([v for _, v in to_analyzed]),
            "capture_to_committed_row_ms": percentiles([v for _, v in to_row]),
            "capture_to_dashboard_ms": percentiles([v for _, v in sse.latencies_ms]),
            "committed_row_p95_by_third_ms": _p95_by_third(to_row),
        }


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _committed_latencies(stack: Stack) -> list[tuple[float, float]]:
    """Capture -> the identity event (and the attendance row it updates) committed by the recorder."""
    engine = stack.engine()
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT captured_at, recorded_at FROM identity_events WHERE kind = 'recognized'")
        ).all()
    engine.dispose()
    return [(c.replace(tzinfo=UTC).timestamp(), (r - c).total_seconds() * 1000) for c, r in rows]


def _p95_by_third(samples: list[tuple[float, float]]) -> list[float]:
    """p95 of each third of the run, by capture time: flat if latency does not grow."""
    ordered = [latency for _, latency in sorted(samples)]
    thirds = [ordered[i * len(ordered) // 3 : (i + 1) * len(ordered) // 3] for i in range(3)]
    return [round(float(np.percentile(t, 95)), 1) for t in thirds if t]
