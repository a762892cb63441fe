"""docker-compose.yml: every service has a memory limit (issue 9, finding 4: a decompression bomb
took the API to 2.6 GB with nothing to stop it), sized from measured peaks with room to spare.

The two services whose peak depends on their input (a recognizer's frame, the API's enrollment
photo) are measured here, on an input at their own default limits, in a fresh interpreter."""

import json
import subprocess
import sys
from typing import Any

import pytest

from harness.paths import ROOT

# Peak resident memory measured (MB): README "Speed and accuracy" (make bench) for the Python
# services, this machine's idle RabbitMQ 4 and MariaDB for the two servers.
MEASURED_PEAK_MB = {
    "rabbitmq": 130,
    "mysql": 260,
    "migrate": 82,  # the recorder's image, running one short command
    "rabbitmq-migrate": 82,  # the same image, the same kind of short command
    "capture": 83,
    "capture-webcam": 83,
    "recognizer": 222,
    "recorder": 82,
    "api": 296,
    "web": 116,  # with matplotlib drawing a course report chart of 1,000 sessions (VmHWM)
}
HEADROOM = 2.0  # a limit is at least twice the peak


def limit_mb(service: dict[str, Any]) -> float:
    # Compose reports mem_limit in bytes.
    return int(service["mem_limit"]) / (1024 * 1024)


def test_every_service_has_a_memory_limit(services: dict[str, Any]) -> None:
    assert set(MEASURED_PEAK_MB) == set(services), "measure the new service's peak"
    missing = [name for name, service in services.items() if not service.get("mem_limit")]
    assert missing == []


@pytest.mark.parametrize("name", sorted(MEASURED_PEAK_MB))
def test_each_limit_leaves_room_above_the_measured_peak(name: str, services: dict[str, Any]) -> None:
    assert limit_mb(services[name]) >= HEADROOM * MEASURED_PEAK_MB[name]


PEAK_SCRIPT = """
import json, sys
from datetime import UTC, datetime
import cv2, numpy as np

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "recognizer":
    from services.common.messages import FrameCaptured
    from services.common.transport import Delivery
    from services.faces.engine import build_analyzer
    from services.faces.matching import Gallery, Identity, Matcher
    from services.recognizer.service import FrameRecognizer
    from services.recognizer.settings import RecognizerSettings

    settings = RecognizerSettings()
    limits = settings.frame_limits()
    rows = [(Identity(i + 1, f"S{i}", "x"), np.random.rand(128)) for i in range(10_000)]
    matcher = Matcher(Gallery.from_rows(rows), 0.55, 0.05)
    worker = FrameRecognizer(build_analyzer(**settings.analyzer_options()), lambda: matcher, "w")
    width = limits.max_side
    height = min(limits.max_pixels // width, width)
    noise = np.random.randint(0, 256, (height, width, 3), np.uint8)  # the largest JPEG of that size
    jpeg = cv2.imencode(".jpg", noise, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    del noise
    meta = FrameCaptured(camera_id="c", seq=1, captured_at=datetime.now(UTC), width=width, height=height)
    [handled] = worker.handle([Delivery(body=jpeg, routing_key="frame.c", headers=meta.to_headers())])
    assert handled.rejected is None, handled.rejected
else:
    from services.faces.engine import PHOTO_LIMITS
    from services.faces.enrollment import PhotoRejectedError, analyze_photo, enrollment_analyzer

    analyzer = enrollment_analyzer()
    height = int((PHOTO_LIMITS.max_pixels * 3 / 4) ** 0.5)
    width = PHOTO_LIMITS.max_pixels // height
    photo = cv2.imencode(".jpg", np.full((height, width, 3), 128, np.uint8))[1].tobytes()
    try:
        analyze_photo(photo, analyzer)
    except PhotoRejectedError as error:
        assert "no face" in str(error), error
print(json.dumps({"peak_mb": hwm_mb()}))
"""


@pytest.mark.parametrize("name", ["recognizer", "api"])
def test_an_input_at_the_default_limits_fits_in_half_the_memory_limit(
    name: str, services: dict[str, Any]
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, name],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    peak = json.loads(result.stdout.strip().splitlines()[-1])["peak_mb"]
    assert peak <= limit_mb(services[name]) / HEADROOM, f"{name} peaked at {peak:.0f} MB"
